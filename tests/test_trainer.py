"""The shared Trainer: artifacts, resume, Ctrl-C, losses, EMA, checkpoints, config checks."""
import csv
import json
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from smallgan.data.points import PointDataset, collate_rows
from smallgan.models.mlp import MLPDiscriminator, MLPGenerator
from smallgan.training.checkpoint import ResumeError, load_checkpoint, save_checkpoint
from smallgan.training.ema import EMA
from smallgan.training.losses import d_loss, g_loss
from smallgan.training.trainer import RealData, TrainConfig, Trainer, TrainingInterrupted


def _points(n=1024, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[-1.0, -1.0], [1.0, 1.0], [-1.0, 1.0], [1.0, -1.0]])
    return (centres[rng.integers(0, 4, n)] + 0.05 * rng.normal(size=(n, 2))).astype(np.float32)


def _data():
    pts = _points()
    return RealData(PointDataset(torch.from_numpy(pts)), embeddings=pts, collate_fn=collate_rows)


def _nets(seed=0):
    torch.manual_seed(seed)
    return MLPGenerator(2, 16), MLPDiscriminator(2, 16)


def _config(**kw):
    base = dict(steps=120, batch_size=16, z_dim=2, lr_g=1e-3, lr_d=1e-3, sampling="coreset",
                log_every=10, sample_every=60, eval_every=30, checkpoint_every=40,
                plot_samples=32, progress=False, tensorboard=False, seed=3, prefetch=1)
    base.update(kw)
    return TrainConfig(**base)


def _eval(trainer, step):
    x = trainer.sample(64, seed=0)
    return {"mean_x": float(x[:, 0].mean()), "step_seen": float(step)}


def _plot(samples, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.scatter(samples[:, 0], samples[:, 1], s=1)
    fig.savefig(path)
    plt.close(fig)


def test_tiny_run_writes_every_artifact(tmp_path):
    g, d = _nets()
    t = Trainer(_config(tensorboard=True, ema_decay=0.9), g, d, _data(), tmp_path,
                eval_fn=_eval, plot_fn=_plot, extra_config={"note": "tiny"})
    metrics = t.fit()
    assert metrics["step_seen"] == 120.0
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["train"]["sampling"] == "coreset" and cfg["experiment"] == {"note": "tiny"}
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == list(range(10, 121, 10))
    for col in ("d_loss", "g_loss", "step_time_s", "wait_prior_s", "wait_target_s"):
        assert all(math.isfinite(float(r[col])) for r in rows), col
    with open(tmp_path / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [30, 60, 90, 120]
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == [
        "step_0000060.png", "step_0000120.png"]
    assert any(p.name.startswith("events.out.tfevents") for p in (tmp_path / "tb").iterdir())
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["step"] == 120
    # n_dis = 1: one real batch per step, two prior batches (D and G updates)
    assert ckpt["real_batches"] == 120 and ckpt["prior_batches"] == 240
    assert "ema" in ckpt and ckpt["ema"]["num_updates"] == 120
    assert not list(tmp_path.glob("*.tmp"))


def _weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("sampling, kw", [
    ("coreset", dict(ema_decay=0.95, n_dis=2)),
    ("random", dict(lr_decay="linear")),
    # a log row spanning the interruption (7 does not divide 50) must average
    # the steps before and after it, as the uninterrupted run's row does;
    # DataLoader workers must not change the batches
    ("coreset", dict(log_every=7, num_workers=2)),
    ("random", dict(log_every=7, num_workers=2)),
])
def test_resume_equals_uninterrupted(tmp_path, sampling, kw):
    cfg = _config(sampling=sampling, **kw)
    g, d = _nets()
    full = Trainer(cfg, g, d, _data(), tmp_path / "full", eval_fn=_eval)
    full.fit()

    def stop_at_50(trainer, step):
        if step == 50 and not getattr(trainer, "_stopped_once", False):
            trainer._stopped_once = True
            trainer.request_stop()
        return _eval(trainer, step)

    cfg_stop = _config(sampling=sampling, **{**kw, "eval_every": 25})
    g, d = _nets()
    first = Trainer(cfg_stop, g, d, _data(), tmp_path / "cut", eval_fn=stop_at_50)
    with pytest.raises(TrainingInterrupted) as info:
        first.fit()
    assert info.value.step == 50
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["step"] == 50
    # a fresh process would rebuild the models from scratch: different weights here
    g, d = _nets(seed=99)
    second = Trainer(cfg_stop, g, d, _data(), tmp_path / "cut", eval_fn=_eval, resume=True)
    second.fit()
    _assert_same(_weights(full.generator), _weights(second.generator))
    _assert_same(_weights(full.discriminator), _weights(second.discriminator))
    if full.ema is not None:
        _assert_same(_weights(full.ema.module), _weights(second.ema.module))
    a, b = full.opt_g.state_dict()["state"], second.opt_g.state_dict()["state"]
    for k in a:
        assert torch.equal(a[k]["exp_avg"], b[k]["exp_avg"])
    # the logs read as one run: the losses match row for row
    with open(tmp_path / "full" / "log.csv") as f1, open(tmp_path / "cut" / "log.csv") as f2:
        r1, r2 = list(csv.DictReader(f1)), list(csv.DictReader(f2))
    assert [(r["step"], r["d_loss"], r["g_loss"]) for r in r1] == \
        [(r["step"], r["d_loss"], r["g_loss"]) for r in r2]


def test_resume_with_other_settings_is_refused(tmp_path):
    g, d = _nets()
    Trainer(_config(steps=20), g, d, _data(), tmp_path).fit()
    g, d = _nets()
    with pytest.raises(ValueError, match="the config differs .*lr_g: checkpoint 0.001 vs now 0.002"):
        Trainer(_config(steps=40, lr_g=2e-3), g, d, _data(), tmp_path, resume=True).fit()
    # more steps is fine: the run is extended
    g, d = _nets()
    t = Trainer(_config(steps=40), g, d, _data(), tmp_path, resume=True)
    t.fit()
    assert t.step == 40


def test_ctrl_c_writes_checkpoint_and_exits_cleanly(tmp_path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "smallgan", "train", "gmm", "--modes", "4", "--steps", "10000000",
           "--batch-size", "16", "--hidden", "16", "--out", str(out), "--no-tensorboard",
           "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "config.json").exists():  # written once Ctrl-C is handled
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.05)
        time.sleep(1.0)  # let it train a little
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted after step" in err and "--resume" in err
    assert "Traceback" not in err
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["step"] >= 1
    assert ckpt["prior_batches"] == 2 * ckpt["step"] and ckpt["real_batches"] == ckpt["step"]
    assert not list(out.glob("*.tmp"))


@pytest.mark.parametrize("kw, exc, match", [
    ({"steps": -1}, ValueError, "steps must be >= 0, got -1"),
    ({"prior_factor": 0}, ValueError, "prior_factor must be >= 1, got 0"),
    ({"target_factor": 0.5}, TypeError, "target_factor must be an int, got 0.5 of type float"),
    ({"steps": "100"}, TypeError, "steps must be an int, got '100' of type str"),
    ({"loss": "wgan"}, ValueError, "loss must be one of 'ns', 'hinge', 'lsgan'; got 'wgan'"),
    ({"sampling": "kmeans"}, ValueError, "sampling must be one of 'random', 'coreset'; got 'kmeans'"),
    ({"sampling": None}, TypeError, "sampling must be a str"),
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1, got 0"),
    ({"lr_d": -1e-4}, ValueError, r"lr_d must be a finite number in \(0.0, inf\], got -0.0001"),
    ({"lr_d": "fast"}, TypeError, "lr_d must be a number, got 'fast'"),
    ({"betas_g": (0.5, 1.0)}, ValueError, r"betas_g\[1\] must be a finite number in \[0.0, 1.0\), got 1.0"),
    ({"betas_d": (0.5,)}, ValueError, r"betas_d must be a pair \(beta1, beta2\), got \(0.5,\)"),
    ({"betas_d": 0.5}, TypeError, r"betas_d must be a pair \(beta1, beta2\), got 0.5"),
    ({"ema_decay": 1.5}, ValueError, "ema_decay must be a finite number in"),
    ({"prior": "cauchy"}, ValueError, "prior must be one of 'uniform', 'normal'; got 'cauchy'"),
    ({"n_dis": 0}, ValueError, "n_dis must be >= 1, got 0"),
    ({"amp": "yes"}, TypeError, "amp must be a bool, got 'yes'"),
    ({"device": "gpu:x"}, ValueError, "device must be a torch device string, got 'gpu:x'"),
])
def test_bad_config_is_rejected(kw, exc, match):
    with pytest.raises(exc, match=match):
        _config(**kw)


def test_bad_data_is_rejected(tmp_path):
    pts = _points(64)
    with pytest.raises(ValueError, match=r"embeddings must have shape \(len\(dataset\)=64, d\)"):
        RealData(PointDataset(pts), embeddings=pts[:10])
    g, d = _nets()
    with pytest.raises(ValueError, match="needs data.embeddings"):
        Trainer(_config(), g, d, RealData(PointDataset(pts)), tmp_path)
    with pytest.raises(ValueError, match="dataset has 64 rows, fewer than batch_size=100"):
        Trainer(_config(batch_size=100), g, d, RealData(PointDataset(pts), pts), tmp_path)


@pytest.mark.parametrize("loss", ["ns", "hinge", "lsgan"])
def test_losses_and_ablation_switches_train(tmp_path, loss):
    g, d = _nets()
    cfg = _config(steps=12, loss=loss, coreset_target=False, n_dis=2, eval_every=0)
    data = RealData(PointDataset(_points()), collate_fn=collate_rows)  # no embeddings needed
    t = Trainer(cfg, g, d, data, tmp_path)
    t.fit()
    ckpt = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ckpt["real_batches"] == 24 and ckpt["prior_batches"] == 36


def test_loss_values_hand_computed():
    r, f = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    assert float(d_loss("ns", r, f)) == pytest.approx((sp(-2) + sp(1)) / 2 + (sp(0.5) + sp(-3)) / 2)
    assert float(g_loss("ns", f)) == pytest.approx((sp(-0.5) + sp(3)) / 2)
    assert float(d_loss("hinge", r, f)) == pytest.approx((0 + 2) / 2 + (1.5 + 0) / 2)
    assert float(g_loss("hinge", f)) == pytest.approx(1.25)
    assert float(d_loss("lsgan", r, f)) == pytest.approx(0.5 * (1 + 4) / 2 + 0.5 * (0.25 + 9) / 2)
    assert float(g_loss("lsgan", f)) == pytest.approx(0.5 * (0.25 + 16) / 2)
    with pytest.raises(ValueError, match="loss must be one of 'ns', 'hinge', 'lsgan'; got 'l1'"):
        g_loss("l1", f)


def test_ema_average():
    net = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    ema = EMA(net, decay=0.5, start=1)
    with torch.no_grad():
        net.weight.fill_(4.0)
    ema.update(net)  # before start: copies
    assert float(ema.module.weight) == 4.0
    with torch.no_grad():
        net.weight.fill_(8.0)
    ema.update(net)  # 0.5 * 4 + 0.5 * 8
    assert float(ema.module.weight) == 6.0
    with pytest.raises(ValueError, match="decay must be in"):
        EMA(net, decay=1.0)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint({"step": 1}, path)

    def broken_save(obj, f):
        f.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint({"step": 2}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.pt"]
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        load_checkpoint(tmp_path / "missing.pt")


def test_amp_on_cpu_trains_with_bfloat16(tmp_path):
    g, d = _nets()
    t = Trainer(_config(steps=10, amp=True, eval_every=0), g, d, _data(), tmp_path)
    t.fit()
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert rows and all(math.isfinite(float(r["d_loss"])) for r in rows)
    assert all(p.dtype == torch.float32 for p in t.generator.parameters())  # weights stay fp32


def test_resume_with_another_experiment_config_is_refused(tmp_path):
    # the experiment's own settings (here: the data) are part of the run too
    g, d = _nets()
    Trainer(_config(steps=10), g, d, _data(), tmp_path, extra_config={"gmm": {"modes": 4, "n_eval": 100}}).fit()
    g, d = _nets()
    with pytest.raises(ResumeError, match=r"experiment.gmm.modes: checkpoint 4 vs now 9"):
        Trainer(_config(steps=20), g, d, _data(), tmp_path,
                extra_config={"gmm": {"modes": 9, "n_eval": 100}}, resume=True).fit()
    # evaluation sizes may change: they do not change the weights' trajectory
    g, d = _nets()
    t = Trainer(_config(steps=20), g, d, _data(), tmp_path,
                extra_config={"gmm": {"modes": 4, "n_eval": 500}}, resume=True)
    t.fit()
    assert t.step == 20


def test_cli_resume_with_other_modes_exits_2_naming_the_field(tmp_path):
    out = tmp_path / "run"
    base = [sys.executable, "-m", "smallgan", "train", "gmm", "--steps", "4", "--batch-size", "16",
            "--hidden", "8", "--out", str(out), "--no-tensorboard", "--no-progress"]
    p = subprocess.run(base + ["--modes", "4"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(base + ["--modes", "9", "--steps", "8", "--resume"], capture_output=True,
                       text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    assert "experiment.gmm.modes: checkpoint 4 vs now 9" in p.stderr
    assert "Traceback" not in p.stderr


def test_mlp_scale_is_saved_with_the_weights():
    g, d = MLPGenerator(2, 8, scale=9.0), MLPDiscriminator(2, 8, scale=9.0)
    g1, d1 = MLPGenerator(2, 8, scale=1.0), MLPDiscriminator(2, 8, scale=1.0)
    g1.load_state_dict(g.state_dict())
    d1.load_state_dict(d.state_dict())
    z = torch.randn(5, 2)
    torch.testing.assert_close(g1(z), g(z))
    torch.testing.assert_close(d1(9.0 * z), d(9.0 * z))


class _Payload:
    """Unpickling this runs code: it writes a marker file."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_checkpoint_with_a_pickled_callable_is_refused_and_nothing_runs(tmp_path):
    g, d = _nets()
    Trainer(_config(steps=5), g, d, _data(), tmp_path).fit()
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    marker = tmp_path / "pwned"
    state["metrics"] = {"fid": _Payload(marker)}
    torch.save(state, tmp_path / "checkpoint.pt")  # what a crafted file would hold
    g, d = _nets()
    with pytest.raises(ResumeError, match=r"refusing to load .*checkpoint.pt: it holds objects "
                                          r"other than tensors and plain types"):
        Trainer(_config(steps=10), g, d, _data(), tmp_path, resume=True).fit()
    assert not marker.exists()


class _SeedOfWorker(torch.utils.data.Dataset):
    """Item i: (point i, the torch seed of the process that loaded it)."""

    def __init__(self, pts):
        self.pts = torch.as_tensor(pts)

    def __len__(self):
        return len(self.pts)

    def __getitem__(self, i):
        return self.pts[i], torch.initial_seed()


class _RecordingTrainer(Trainer):
    def _to_real(self, batch):
        self.seen_seeds = getattr(self, "seen_seeds", set()) | set(batch[1].tolist())
        return super()._to_real(batch)


def test_worker_seeds_depend_on_the_config_seed_not_the_global_rng(tmp_path):
    # DataLoader workers are seeded from a base seed derived from (seed,
    # epoch), not drawn from torch's global RNG: a resumed run (or any code
    # that used the global RNG before fit) gives its workers the same seeds
    pts = _points(256)

    def collate(items):
        return torch.stack([p for p, _ in items]), torch.tensor([s for _, s in items])

    seeds = []
    for i, global_seed in enumerate((0, 12345)):
        g, d = _nets()
        torch.manual_seed(global_seed)
        data = RealData(_SeedOfWorker(pts), embeddings=pts, collate_fn=collate)
        t = _RecordingTrainer(_config(steps=20, num_workers=2, sampling="random"), g, d, data,
                              tmp_path / str(i))
        t.fit()
        seeds.append(t.seen_seeds)
    assert len(seeds[0]) >= 2 and seeds[0] == seeds[1]


_CTRL_C_WITH_WORKERS = """
import sys, numpy as np, torch, torch.multiprocessing as mp
from smallgan.data.points import PointDataset, collate_rows
from smallgan.models.mlp import MLPDiscriminator, MLPGenerator
from smallgan.training.trainer import RealData, TrainConfig, Trainer, TrainingInterrupted
if __name__ == "__main__":
    mp.set_start_method(sys.argv[2])
    pts = np.random.default_rng(0).normal(size=(1024, 2)).astype(np.float32)
    cfg = TrainConfig(steps=10_000_000, batch_size=16, z_dim=2, num_workers=2,
                      sampling="coreset", progress=False, tensorboard=False,
                      checkpoint_every=0, log_every=0, sample_every=0)
    t = Trainer(cfg, MLPGenerator(2, 8), MLPDiscriminator(2, 8),
                RealData(PointDataset(torch.from_numpy(pts)), pts, collate_rows), sys.argv[1])
    try:
        t.fit()
    except TrainingInterrupted as exc:
        print("STOPPED", exc.step, flush=True)
        sys.exit(130)
"""


# spawn: workers start with Python's default SIGINT handler (the old code
# lost them: "DataLoader worker exited unexpectedly"); fork: they inherit ours
@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_ctrl_c_with_dataloader_workers_still_checkpoints(tmp_path, start_method):
    # a terminal's Ctrl-C reaches the whole process group, workers included
    import os

    out = tmp_path / "run"
    script = tmp_path / "train.py"  # spawn needs an importable __main__
    script.write_text(_CTRL_C_WITH_WORKERS)
    proc = subprocess.Popen([sys.executable, str(script), str(out), start_method],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / "config.json").exists():
            assert proc.poll() is None, proc.communicate()[1]
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.05)
        time.sleep(4.0)  # workers started (several epochs of 64 batches) and batches flowing
        os.killpg(proc.pid, signal.SIGINT)
        stdout, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err
    assert "STOPPED" in stdout and "Traceback" not in err
    ckpt = load_checkpoint(out / "checkpoint.pt")
    assert ckpt["step"] >= 1 and ckpt["real_batches"] == ckpt["step"]
