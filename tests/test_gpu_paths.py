"""The CUDA code paths, each also run on the CPU so CI exercises the same test body.

``-m gpu`` selects the CUDA cases; without a GPU they are skipped, not failed.
Covered: ``PriorCoreset(device="cuda")`` (pinned staging, non-blocking copies,
batches equal to the CPU ones), ``compute_embeddings(device="cuda")`` against
the CPU result, a short AMP run of the Trainer, and a run stopped by SIGINT in
a subprocess and resumed, against an uninterrupted one.
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from smallgan.embeddings import compute_embeddings, read_manifest
from smallgan.sampling import PriorCoreset
from smallgan.training.checkpoint import load_checkpoint

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="needs a CUDA GPU")
#: every test body below runs on the CPU (CI) and, marked gpu, on CUDA
DEVICES = ["cpu", pytest.param("cuda", marks=[pytest.mark.gpu, needs_cuda])]


# --------------------------------------------------------------------------
# PriorCoreset on a device
# --------------------------------------------------------------------------

@pytest.mark.parametrize("prefetch", [0, 2])
@pytest.mark.parametrize("device", DEVICES)
def test_prior_coreset_on_device_gives_the_cpu_batches(device, prefetch):
    # the training sizes: 4 * 64 candidates of 128-d z per batch
    with PriorCoreset(128, 64, factor=4, seed=7, device=device, prefetch=prefetch) as dev, \
            PriorCoreset(128, 64, factor=4, seed=7, prefetch=0) as ref:
        for _ in range(6):
            z = next(dev)
            assert z.device.type == device and z.dtype == torch.float32
            assert z.shape == (64, 128)
            assert torch.equal(z.cpu(), next(ref))
        assert dev.position == 6


@pytest.mark.gpu
@needs_cuda
def test_prior_coreset_cuda_copies_from_pinned_memory_without_blocking(monkeypatch):
    """Batches are staged in pinned memory and copied with non_blocking=True.

    The device is kept busy by a sleep kernel while 16 batches are taken: the
    calls must return before it ends (the copies queue behind it, nothing
    waits), and the batches must still be right once it has, although the
    host allocator was asked for pinned buffers in between (a staging buffer
    recycled before its copy ran would show up here as NaN).
    """
    copies = []
    original_to = torch.Tensor.to

    def spy(self, *args, **kwargs):
        out = original_to(self, *args, **kwargs)
        if self.device.type == "cpu" and out.device.type == "cuda":
            copies.append((self.is_pinned(), bool(kwargs.get("non_blocking", False))))
        return out

    cycles = 200_000_000  # ~0.1 s at ~2 GHz; measured below, not assumed
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    torch.cuda._sleep(cycles)
    torch.cuda.synchronize()
    sleep_s = time.perf_counter() - t0

    # Fill torch's pinned host cache with blocks of the batches' size first, as a
    # training run's first steps do: the batches below then stage in cached
    # blocks, and no cudaHostAlloc (which may wait for the device) is timed.
    warm = [torch.empty((64, 128), pin_memory=True) for _ in range(24)]
    del warm
    with PriorCoreset(128, 64, factor=4, seed=3, device="cuda", prefetch=2) as dev, \
            PriorCoreset(128, 64, factor=4, seed=3, prefetch=0) as ref:
        next(dev)  # starts the producer
        time.sleep(0.05)
        monkeypatch.setattr(torch.Tensor, "to", spy)
        torch.cuda._sleep(cycles)
        t0 = time.perf_counter()
        got = [next(dev) for _ in range(16)]
        fetch_s = time.perf_counter() - t0
        monkeypatch.undo()
        scribble = [torch.full((64, 128), float("nan"), pin_memory=True) for _ in range(32)]
        torch.cuda.synchronize()
        expected = [next(ref) for _ in range(17)][1:]
    del scribble
    assert len(copies) == 16 and all(pinned and nb for pinned, nb in copies), copies
    assert fetch_s < sleep_s / 2, (fetch_s, sleep_s)
    for b, (z, e) in enumerate(zip(got, expected)):
        assert torch.equal(z.cpu(), e), f"batch {b} differs"


# --------------------------------------------------------------------------
# compute_embeddings on a device
# --------------------------------------------------------------------------

class _Images(torch.utils.data.Dataset):
    """Seeded (image, label) pairs, CIFAR-shaped."""

    def __init__(self, n: int = 100, seed: int = 0) -> None:
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, 3, 32, 32, generator=g) * 2 - 1
        self.y = torch.randint(0, 10, (n,), generator=g)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def _conv_extractor(seed: int = 0) -> torch.nn.Module:
    """A small seeded conv net (no weights to download): 3x32x32 -> 64 features."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(2), torch.nn.Flatten())


@pytest.mark.parametrize("device", DEVICES)
def test_compute_embeddings_on_device_matches_cpu(tmp_path, device):
    data = _Images()
    kw = dict(batch_size=32, projection={"dim": 32, "seed": 1}, progress=False)  # 100 = 3 * 32 + 4
    ref = compute_embeddings(data, _conv_extractor(), tmp_path / "cpu.npy", device="cpu", **kw)
    net = _conv_extractor()
    got = compute_embeddings(data, net, tmp_path / "dev.npy", device=device, **kw)
    assert got.shape == ref.shape == (100, 32) and got.dtype == np.float32
    assert next(net.parameters()).device.type == device and net.training  # mode restored
    # cuDNN may use TF32 for the convolutions: equal up to that rounding; a
    # shuffled row or a wrong projection would be off by O(1)
    scale = float(np.abs(ref).max())
    assert float(np.abs(np.asarray(got) - np.asarray(ref)).max()) <= 5e-3 * scale
    m_ref, m_dev = read_manifest(tmp_path / "cpu.npy"), read_manifest(tmp_path / "dev.npy")
    assert m_dev["rows_done"] == 100 and m_dev["extractor"] == m_ref["extractor"]
    assert m_dev["projection"]["dim"] == 32


# --------------------------------------------------------------------------
# Trainer with AMP
# --------------------------------------------------------------------------

@pytest.mark.parametrize("device", DEVICES)
def test_trainer_amp_short_run(tmp_path, device):
    from smallgan.experiments import timing
    from smallgan.models.sngan import SNGANDiscriminator, SNGANGenerator
    from smallgan.training.trainer import TrainConfig, Trainer

    data = timing.make_data(timing.TimingConfig.tiny(dataset_size=512, embedding_dim=16))
    ch = 32 if device == "cuda" else 8
    torch.manual_seed(0)
    g, d = SNGANGenerator(16, ch), SNGANDiscriminator(ch)
    start = {k: v.clone() for k, v in d.state_dict().items()}
    out_dtypes = set()
    g.conv.register_forward_hook(lambda mod, inp, out: out_dtypes.add(out.dtype))
    cfg = TrainConfig(steps=8, batch_size=16, z_dim=16, prior="normal", loss="hinge", n_dis=2,
                      lr_g=2e-4, lr_d=2e-4, betas_g=(0.0, 0.9), betas_d=(0.0, 0.9),
                      sampling="coreset", amp=True, device=device, log_every=1,
                      sample_every=0, eval_every=0, checkpoint_every=0, progress=False,
                      tensorboard=False, prefetch=2)
    t = Trainer(cfg, g, d, data, tmp_path)
    t.fit()
    amp_dtype = torch.float16 if device == "cuda" else torch.bfloat16
    assert out_dtypes == {amp_dtype}
    assert all(p.dtype == torch.float32 and p.device.type == device
               for p in list(t.generator.parameters()) + list(t.discriminator.parameters()))
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(1, 9))
    assert all(np.isfinite(float(r["d_loss"])) and np.isfinite(float(r["g_loss"])) for r in rows)
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["step"] == 8 and ckpt["real_batches"] == 16 and ckpt["prior_batches"] == 24
    if device == "cuda":
        # loss scaling on CUDA; its state travels with the checkpoint
        for name in ("scaler_g", "scaler_d"):
            scale = ckpt[name]["scale"]
            assert 0 < scale <= 2.0 ** 16 and np.isfinite(scale), (name, scale)
        assert "cuda_rng" in ckpt
    # D trained: a step skipped for an fp16 overflow cannot skip all 16
    now = t.discriminator.state_dict()
    assert any(not torch.equal(start[k], now[k].cpu()) for k in start if k.endswith("original"))


# --------------------------------------------------------------------------
# Ctrl-C in a subprocess, then --resume: the same weights as one run
# --------------------------------------------------------------------------

_STEPS = 1000
_LOG_EVERY = _STEPS // 100  # what `train gmm` uses


def _gmm_cmd(out: Path, device: str) -> list:
    return [sys.executable, "-m", "smallgan", "train", "gmm", "--modes", "4", "--steps", str(_STEPS),
            "--batch-size", "16", "--hidden", "16", "--sampling", "coreset", "--prefetch", "2",
            "--device", device, "--out", str(out), "--no-tensorboard", "--no-progress"]


def _env() -> dict:
    # cuBLAS picks the same kernels in every process only with a fixed workspace
    return {**os.environ, "CUBLAS_WORKSPACE_CONFIG": ":4096:8", "PYTHONUNBUFFERED": "1"}


def _last_logged_step(log: Path) -> int:
    try:
        lines = log.read_text().splitlines()
    except FileNotFoundError:
        return 0
    last = lines[-1].split(",", 1)[0] if len(lines) > 1 else ""
    return int(last) if last.isdigit() else 0


def _logged_losses(log: Path) -> dict:
    with open(log, newline="") as f:
        return {int(r["step"]): (r["d_loss"], r["g_loss"]) for r in csv.DictReader(f)}


@pytest.mark.parametrize("device", DEVICES)
def test_sigint_then_resume_equals_uninterrupted(tmp_path, device):
    cut, full = tmp_path / "cut", tmp_path / "full"
    proc = subprocess.Popen(_gmm_cmd(cut, device), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env())
    try:
        deadline = time.monotonic() + 120
        while _last_logged_step(cut / "log.csv") < 3 * _LOG_EVERY:
            if proc.poll() is not None:
                pytest.fail(f"run ended before it could be interrupted:\n{proc.communicate()[1]}")
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.01)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted after step" in err and "Traceback" not in err
    stopped = load_checkpoint(cut / "checkpoint.pt")["step"]
    assert 3 * _LOG_EVERY <= stopped < _STEPS, "the run finished before the interrupt"

    resumed = subprocess.run(_gmm_cmd(cut, device) + ["--resume"], capture_output=True,
                             text=True, env=_env(), timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run(_gmm_cmd(full, device), capture_output=True, text=True, env=_env(),
                           timeout=300)
    assert whole.returncode == 0, whole.stderr

    a, b = load_checkpoint(full / "checkpoint.pt"), load_checkpoint(cut / "checkpoint.pt")
    assert a["step"] == b["step"] == _STEPS
    for net in ("generator", "discriminator"):
        assert a[net].keys() == b[net].keys()
        for k in a[net]:
            assert torch.equal(a[net][k], b[net][k]), (net, k)
    for opt in ("opt_g", "opt_d"):
        for i, s in a[opt]["state"].items():
            for k, v in s.items():
                assert torch.equal(v, b[opt]["state"][i][k]), (opt, i, k)
    assert (a["prior_batches"], a["real_batches"]) == (b["prior_batches"], b["real_batches"])
    # the same metrics at the end, and the same logged losses in every logging
    # window the interruption did not split (the resumed run's first window
    # averages only its own steps)
    assert a["metrics"] == b["metrics"]
    la, lb = _logged_losses(full / "log.csv"), _logged_losses(cut / "log.csv")
    split = (stopped // _LOG_EVERY + 1) * _LOG_EVERY if stopped % _LOG_EVERY else None
    assert [s for s in la if s != split] == [s for s in lb if s != split]
    for s in la:
        if s != split:
            assert la[s] == lb[s], s
