"""Tests for smallgan.embeddings: values, resume after interruption, reuse, mismatch, atomicity."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

import smallgan.embeddings as emb
from smallgan.embeddings import (
    compute_embeddings,
    dataset_fingerprint,
    extractor_id,
    load_embeddings,
    manifest_path,
    projection_path,
    read_manifest,
)
from smallgan.projection import load_projection, projection_matrix


class Images(Dataset):
    """n random 1 x 6 x 6 images with labels, deterministic from the seed."""

    def __init__(self, n: int = 23, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.x = torch.rand(n, 1, 6, 6, generator=g)
        self.y = torch.arange(n) % 10

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


class Net(torch.nn.Module):
    """A small CNN extractor; `fail_after` batches then raises (a simulated interruption)."""

    def __init__(self, seed: int = 0, out: int = 10):
        super().__init__()
        torch.manual_seed(seed)
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.bn = torch.nn.BatchNorm2d(4)
        self.fc = torch.nn.Linear(64, out)
        self.fail_after = None
        self.images_seen = 0
        self.calls = 0

    def forward(self, x):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise RuntimeError("simulated interruption")
        self.calls += 1
        self.images_seen += x.shape[0]
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def reference(ds, net, proj=None):
    """Features written plainly: every image through the net at once, float64 projection."""
    with torch.no_grad():
        f = net.eval()(ds.x).double().numpy()
    if proj is not None:
        f = f @ projection_matrix(f.shape[1], proj["dim"], proj.get("seed", 0), proj.get("kind", "gaussian"))
    return f


def test_values_shape_and_manifest(tmp_path):
    ds, net = Images(), Net()
    path = tmp_path / "e.npy"
    out = compute_embeddings(ds, net, path, batch_size=5, progress=False)
    assert isinstance(out, np.memmap) and out.shape == (23, 10) and out.dtype == np.float32
    assert not out.flags.writeable
    np.testing.assert_allclose(out, reference(ds, net), rtol=1e-5, atol=1e-6)
    m = json.loads(manifest_path(path).read_text())
    assert manifest_path(path) == tmp_path / "e.json"
    assert m["dataset"] == {"length": 23, "fingerprint": dataset_fingerprint(ds)}
    assert m["extractor"] == extractor_id(net) and m["extractor"].startswith("test_embeddings.Net/sha256:")
    assert m["shape"] == [23, 10] and m["dtype"] == "float32" and m["rows_done"] == 23
    assert m["projection"] is None and m["feature_dim"] == 10
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.json", "e.npy"]  # no temp files left
    assert np.array_equal(load_embeddings(path), out)


@pytest.mark.parametrize("kind", ["gaussian", "sparse"])
def test_projected_cache_and_stored_matrix(tmp_path, kind):
    ds, net = Images(), Net(out=40)
    path = tmp_path / "p.npy"
    proj = {"dim": 8, "seed": 3, "kind": kind}
    out = compute_embeddings(ds, net, path, batch_size=4, projection=proj, progress=False)
    assert out.shape == (23, 8)
    np.testing.assert_allclose(out, reference(ds, net, proj), rtol=1e-4, atol=1e-5)
    m = read_manifest(path)
    assert m["projection"]["dim"] == 8 and m["projection"]["in_dim"] == 40 and m["projection"]["kind"] == kind
    assert m["projection"]["file"] == "p.projection.npz"
    matrix, settings = load_projection(projection_path(path))
    assert settings == {k: m["projection"][k] for k in settings}
    assert np.array_equal(matrix, projection_matrix(40, 8, 3, kind).astype(np.float32))


def test_resume_after_interruption_equals_uninterrupted_run(tmp_path):
    ds = Images(n=37)
    whole = compute_embeddings(ds, Net(), tmp_path / "whole.npy", batch_size=4,
                               projection={"dim": 6}, progress=False)

    net = Net()
    net.fail_after = 3
    path = tmp_path / "part.npy"
    with pytest.raises(RuntimeError, match="simulated interruption"):
        compute_embeddings(ds, net, path, batch_size=4, projection={"dim": 6}, progress=False)
    m = read_manifest(path)
    assert m["rows_done"] == 12  # the three finished batches are kept
    with pytest.raises(ValueError, match="unfinished: 12 of 37 rows done"):
        load_embeddings(path)

    net.fail_after, net.images_seen = None, 0
    resumed = compute_embeddings(ds, net, path, batch_size=4, projection={"dim": 6}, progress=False)
    assert net.images_seen == 37 - 12  # resumed, not recomputed
    assert np.array_equal(np.asarray(resumed), np.asarray(whole))


def test_resume_after_hard_kill(tmp_path):
    # A process killed without unwinding (os._exit: no finally, no flush on
    # exit) keeps the rows of its last checkpoint; resuming gives the same array.
    script = textwrap.dedent(f"""
        import os, sys, torch
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import smallgan.embeddings as emb
        from test_embeddings import Images, Net
        emb._CHECKPOINT_SECONDS = 0.0  # checkpoint after every batch
        net = Net()
        orig = net.forward
        def forward(x):
            if net.calls == 4:
                os._exit(3)
            return orig(x)
        net.forward = forward
        emb.compute_embeddings(Images(n=37), net, {str(tmp_path / "k.npy")!r}, batch_size=4, progress=False)
    """)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 3, proc.stderr
    assert read_manifest(tmp_path / "k.npy")["rows_done"] == 16
    net = Net()
    resumed = compute_embeddings(Images(n=37), net, tmp_path / "k.npy", batch_size=4, progress=False)
    assert net.images_seen == 37 - 16
    whole = compute_embeddings(Images(n=37), Net(), tmp_path / "w.npy", batch_size=4, progress=False)
    assert np.array_equal(np.asarray(resumed), np.asarray(whole))


def test_finished_cache_is_reused_without_work(tmp_path):
    ds, net = Images(), Net()
    first = np.array(compute_embeddings(ds, net, tmp_path / "e.npy", batch_size=8, progress=False))
    mtime = os.stat(tmp_path / "e.npy").st_mtime_ns
    net.fail_after = 0  # any call would raise
    again = compute_embeddings(ds, net, tmp_path / "e.npy", batch_size=3, progress=False)
    assert np.array_equal(again, first)
    assert os.stat(tmp_path / "e.npy").st_mtime_ns == mtime


def test_mismatch_is_an_error_naming_what_differs(tmp_path):
    path = tmp_path / "e.npy"
    compute_embeddings(Images(seed=0), Net(seed=0), path, batch_size=8, projection={"dim": 4}, progress=False)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    with pytest.raises(ValueError, match=r"dataset fingerprint: cache has 'sha256:.*requested 'sha256:"):
        compute_embeddings(Images(seed=1), Net(seed=0), path, projection={"dim": 4}, progress=False)
    with pytest.raises(ValueError, match=r"dataset length: cache has 23, requested 22"):
        compute_embeddings(Images(n=22), Net(seed=0), path, projection={"dim": 4}, progress=False)
    with pytest.raises(ValueError, match=r"extractor: cache has 'test_embeddings.Net/sha256:\w+', requested"):
        compute_embeddings(Images(seed=0), Net(seed=1), path, projection={"dim": 4}, progress=False)
    with pytest.raises(ValueError, match=r"projection: cache has .*'dim': 4.*requested .*'dim': 5"):
        compute_embeddings(Images(seed=0), Net(seed=0), path, projection={"dim": 5}, progress=False)
    with pytest.raises(ValueError, match=r"projection: cache has .*'seed': 0.*requested .*'seed': 1"):
        compute_embeddings(Images(seed=0), Net(seed=0), path, projection={"dim": 4, "seed": 1}, progress=False)
    with pytest.raises(ValueError, match=r"projection: cache has \{.*\}, requested None"):
        compute_embeddings(Images(seed=0), Net(seed=0), path, progress=False)
    with pytest.raises(ValueError, match=r"dtype: cache has 'float32', requested 'float16'"):
        compute_embeddings(Images(seed=0), Net(seed=0), path, projection={"dim": 4}, dtype="float16",
                           progress=False)
    with pytest.raises(ValueError, match=r"extractor: cache has .*; dtype: cache has"):  # all listed
        compute_embeddings(Images(seed=0), Net(seed=1), path, projection={"dim": 4}, dtype="float64",
                           progress=False)
    with pytest.raises(ValueError, match=r"extractor: cache has '.*', requested 'custom-id'"):
        compute_embeddings(Images(seed=0), Net(seed=0), path, projection={"dim": 4}, extractor_id="custom-id",
                           progress=False)
    assert before == {p.name: p.read_bytes() for p in tmp_path.iterdir()}  # nothing touched


def test_foreign_npy_is_never_overwritten(tmp_path):
    path = tmp_path / "mine.npy"
    np.save(path, np.arange(5))
    data = path.read_bytes()
    with pytest.raises(ValueError, match="exists but has no manifest.*refusing to overwrite"):
        compute_embeddings(Images(), Net(), path, progress=False)
    assert path.read_bytes() == data


def test_manifest_written_atomically_and_only_after_flush(tmp_path, monkeypatch):
    events = []
    real_flush = np.memmap.flush
    real_write = emb._write_manifest

    def flush(self):
        events.append(("flush",))
        return real_flush(self)

    def write(path, manifest):
        events.append(("manifest", manifest["rows_done"]))
        return real_write(path, manifest)

    monkeypatch.setattr(np.memmap, "flush", flush)
    monkeypatch.setattr(emb, "_write_manifest", write)
    monkeypatch.setattr(emb, "_CHECKPOINT_SECONDS", 0.0)
    compute_embeddings(Images(n=10), Net(), tmp_path / "e.npy", batch_size=3, progress=False)
    manifests = [e for e in events if e[0] == "manifest"]
    assert [m[1] for m in manifests] == [0, 3, 6, 9, 10]
    # every manifest that counts new rows comes right after a flush
    for i, e in enumerate(events):
        if e[0] == "manifest" and e[1] > 0:
            assert events[i - 1] == ("flush",), events

    # A failure while writing the manifest leaves the previous one intact and no temp file.
    monkeypatch.setattr(emb, "_write_manifest", real_write)
    path = tmp_path / "f.npy"
    net = Net()
    net.fail_after = 2
    with pytest.raises(RuntimeError):
        compute_embeddings(Images(n=10), net, path, batch_size=3, progress=False)
    good = manifest_path(path).read_text()

    def broken_dump(obj, f, **kw):
        f.write('{"format": "smallgan-emb')  # half a manifest, then the disk fills up
        raise OSError("No space left on device")

    monkeypatch.setattr(emb.json, "dump", broken_dump)
    net.fail_after = None
    with pytest.raises(OSError, match="No space left"):
        compute_embeddings(Images(n=10), net, path, batch_size=3, progress=False)
    assert manifest_path(path).read_text() == good
    assert json.loads(good)["rows_done"] == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["e.json", "e.npy", "f.json", "f.npy"]


def test_module_mode_restored_and_data_untouched(tmp_path):
    ds, net = Images(), Net()
    x_before = ds.x.clone()
    net.train()
    compute_embeddings(ds, net, tmp_path / "e.npy", batch_size=8, progress=False)
    assert net.training
    assert torch.equal(ds.x, x_before)
    # eval mode was used: BN running stats untouched by the pass
    assert torch.equal(net.bn.running_mean, torch.zeros(4))


def test_plain_function_extractor_and_bare_image_items(tmp_path):
    data = [torch.full((2, 3, 3), float(i)) for i in range(7)]

    def mean_std(x):
        return torch.stack([x.mean((1, 2, 3)), x.std((1, 2, 3))], 1)

    out = compute_embeddings(data, mean_std, tmp_path / "f.npy", batch_size=3, progress=False)
    np.testing.assert_allclose(out[:, 0], np.arange(7))
    assert read_manifest(tmp_path / "f.npy")["extractor"].endswith("mean_std")


def test_bad_extractor_output(tmp_path):
    with pytest.raises(ValueError, match=r"extractor returned shape \(2, 5\) for a batch of 3 images"):
        compute_embeddings(Images(), lambda x: torch.zeros(2, 5), tmp_path / "a.npy", batch_size=3,
                           progress=False)

    def nan_at_row_4(x):
        f = torch.zeros(x.shape[0], 3)
        if x.shape[0] == 3 and float(x[1].sum()) == float(Images().x[4].sum()):
            f[1, 0] = float("nan")
        return f

    with pytest.raises(ValueError, match=r"NaN or Inf for 1 image\(s\) of rows \[3, 6\), first dataset index 4"):
        compute_embeddings(Images(), nan_at_row_4, tmp_path / "b.npy", batch_size=3, progress=False)
    assert read_manifest(tmp_path / "b.npy")["rows_done"] == 3


def test_argument_errors(tmp_path):
    ds, net = Images(), Net()
    p = tmp_path / "e.npy"
    with pytest.raises(TypeError, match="extractor must be callable, got int"):
        compute_embeddings(ds, 3, p)
    with pytest.raises(ValueError, match=r"path must end in .npy, got '.*e.bin'"):
        compute_embeddings(ds, net, tmp_path / "e.bin")
    with pytest.raises(FileNotFoundError, match="folder .*nodir.* does not exist"):
        compute_embeddings(ds, net, tmp_path / "nodir" / "e.npy")
    with pytest.raises(ValueError, match="batch_size must be >= 1, got 0"):
        compute_embeddings(ds, net, p, batch_size=0)
    with pytest.raises(TypeError, match="batch_size must be an int, got 2.0"):
        compute_embeddings(ds, net, p, batch_size=2.0)
    with pytest.raises(ValueError, match="num_workers must be >= 0, got -1"):
        compute_embeddings(ds, net, p, num_workers=-1)
    with pytest.raises(ValueError, match="dtype must be 'float32', 'float16' or 'float64', got 'int8'"):
        compute_embeddings(ds, net, p, dtype="int8")
    with pytest.raises(ValueError, match=r"projection has unknown keys \['dims'\]"):
        compute_embeddings(ds, net, p, projection={"dims": 3})
    with pytest.raises(ValueError, match="projection needs 'dim'"):
        compute_embeddings(ds, net, p, projection={"seed": 3})
    with pytest.raises(ValueError, match="dim must be >= 1, got 0"):
        compute_embeddings(ds, net, p, projection={"dim": 0})
    with pytest.raises(TypeError, match="projection must be None or a dict"):
        compute_embeddings(ds, net, p, projection=32)
    with pytest.raises(ValueError, match="device must name a torch device .* got 'gpu0'"):
        compute_embeddings(ds, net, p, device="gpu0")
    with pytest.raises(ValueError, match="dataset is empty"):
        compute_embeddings([], net, p)
    with pytest.raises(TypeError, match="dataset\\[0\\] gives an image of type str"):
        compute_embeddings(["a"], net, p)
    with pytest.raises(TypeError, match="extractor_id must be a non-empty str"):
        compute_embeddings(ds, net, p, extractor_id="")
    assert list(tmp_path.iterdir()) == []  # nothing written by any of them
    with pytest.raises(FileNotFoundError, match="no embedding manifest"):
        load_embeddings(p)
    with pytest.raises(ValueError, match="mmap_mode must be 'r' or 'c'"):
        load_embeddings(p, mmap_mode="r+")


def test_fingerprint_sees_content_and_labels():
    a = Images(seed=0)
    b = Images(seed=0)
    assert dataset_fingerprint(a) == dataset_fingerprint(b)
    b.y = b.y.clone()
    b.y[-1] += 1
    assert dataset_fingerprint(a) != dataset_fingerprint(b)
    c = Images(seed=0)
    c.x = c.x.clone()
    c.x[0, 0, 0, 0] += 1e-3
    assert dataset_fingerprint(a) != dataset_fingerprint(c)
