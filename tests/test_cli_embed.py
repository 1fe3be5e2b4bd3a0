"""`smallgan embed` end to end: digits -> small extractor -> projected cache -> CoresetBatchSampler."""
from __future__ import annotations

import json
import sys
import textwrap

import numpy as np
import pytest
import torch

from smallgan.cli import main
from smallgan.cli.embed import resolve_extractor
from smallgan.projection import DEFAULT_PROJECTION_DIM as DEFAULT_DIM
from smallgan.embeddings import load_embeddings, read_manifest
from smallgan.projection import projection_matrix

EXTRACTOR_MODULE = textwrap.dedent('''
    import torch

    class Tiny(torch.nn.Module):
        """A fixed random conv net: 1 x 8 x 8 digits -> 64 features."""
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.pool = torch.nn.AdaptiveAvgPool2d(4)

        def forward(self, x):
            return self.pool(torch.relu(self.conv(x))).flatten(1)

    def make():
        return Tiny()

    def pixels(x):
        return x.flatten(1)

    instance = Tiny()
    not_callable = 3
''')


@pytest.fixture
def extractor_module(tmp_path, monkeypatch):
    name = f"tiny_extractor_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(EXTRACTOR_MODULE)
    monkeypatch.chdir(tmp_path)  # resolve_extractor searches the current directory
    yield name
    sys.modules.pop(name, None)


def test_embed_digits_then_coreset_batches(tmp_path, extractor_module, capsys):
    out = tmp_path / "cache" / "digits.npy"
    rc = main(["embed", "digits", "--out", str(out), "--extractor", f"{extractor_module}:make",
               "--dim", "16", "--seed", "5", "--batch-size", "256", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert "1797 x 16 float32" in capsys.readouterr().out

    emb = load_embeddings(out)
    assert emb.shape == (1797, 16)
    m = read_manifest(out)
    assert m["projection"]["dim"] == 16 and m["projection"]["seed"] == 5 and m["projection"]["in_dim"] == 64
    # independent recomputation: the digits through the same net, projected in float64
    from sklearn.datasets import load_digits

    net = resolve_extractor(f"{extractor_module}:make")
    x = torch.from_numpy(load_digits().images[:, None] / 16.0).float()
    with torch.no_grad():
        ref = net(x).double().numpy() @ projection_matrix(64, 16, seed=5)
    np.testing.assert_allclose(emb, ref, rtol=1e-4, atol=1e-5)

    # second run: reused, nothing recomputed
    rc = main(["embed", "digits", "--out", str(out), "--extractor", f"{extractor_module}:make",
               "--dim", "16", "--seed", "5", "--no-progress"])
    assert rc == 0 and "already complete, reused" in capsys.readouterr().out

    # the cache drives core-set batches of the digits dataset
    from torch.utils.data import DataLoader

    from smallgan.data import open_dataset
    from smallgan.sampling import CoresetBatchSampler

    dataset = open_dataset("digits")
    sampler = CoresetBatchSampler(emb, batch_size=32, factor=8, seed=0, prefetch=2)
    try:
        batches = list(sampler)
        assert len(batches) == len(sampler) == 1797 // 32
        for b in batches[:5]:
            assert len(b) == 32 and len(set(b)) == 32 and all(0 <= i < 1797 for i in b)
        # Each batch is in greedy k-center order over a superset of itself
        # (its candidates), so within the batch every point is the farthest
        # from the points before it, and those distances never increase.
        # Checked in float64, written plainly here.
        e = np.asarray(emb, dtype=np.float64)
        for b in batches[:3]:
            pts = e[b]
            mins = np.linalg.norm(pts - pts[0], axis=1)
            previous = np.inf
            for j in range(1, 32):
                assert mins[j] >= mins[j:].max() * (1 - 1e-5), (j, mins[j], mins[j:].max())
                assert mins[j] <= previous * (1 + 1e-5)
                previous = mins[j]
                mins = np.minimum(mins, np.linalg.norm(pts - pts[j], axis=1))
        # a batch of random rows is not in that order (the check above can fail)
        rand = e[np.random.default_rng(0).choice(1797, 32, replace=False)]
        first_gap = np.linalg.norm(rand - rand[0], axis=1)
        assert first_gap[1] < first_gap[1:].max()
        loader = DataLoader(dataset, batch_sampler=CoresetBatchSampler(emb, 32, factor=4, seed=1, prefetch=0))
        images, labels = next(iter(loader))
        assert images.shape == (32, 1, 8, 8) and labels.shape == (32,)
    finally:
        sampler.close()


def test_embed_resumes_after_interrupt(tmp_path, extractor_module, capsys, monkeypatch):
    import smallgan.embeddings as emb_mod

    out = tmp_path / "d.npy"
    calls = {"n": 0}
    real = emb_mod.compute_embeddings

    def interrupted(dataset, extractor, path, **kw):
        def flaky(x):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
            return extractor(x)
        flaky.extractor_id = emb_mod.extractor_id(extractor)
        return real(dataset, flaky, path, **kw)

    monkeypatch.setattr(emb_mod, "compute_embeddings", interrupted)
    args = ["embed", "digits", "--out", str(out), "--extractor", f"{extractor_module}:pixels",
            "--batch-size", "100", "--no-progress"]
    assert main(args) == 130  # Ctrl-C
    assert read_manifest(out)["rows_done"] == 200
    monkeypatch.setattr(emb_mod, "compute_embeddings", real)
    assert main(args) == 0
    assert "resumed at row 200" in capsys.readouterr().out
    full = tmp_path / "full.npy"
    assert main(["embed", "digits", "--out", str(full), "--extractor", f"{extractor_module}:pixels",
                 "--batch-size", "100", "--no-progress"]) == 0
    assert np.array_equal(load_embeddings(out), load_embeddings(full))
    assert read_manifest(out)["projection"]["dim"] == DEFAULT_DIM == 32


def test_embed_raw_features_and_mnist_files(tmp_path, extractor_module, capsys):
    import gzip
    import struct

    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(9, 28, 28), dtype=np.uint8)
    (tmp_path / "mn").mkdir()
    for split, arr in (("train-images-idx3-ubyte", imgs), ("train-labels-idx1-ubyte", np.arange(9, dtype=np.uint8))):
        header = struct.pack(">HBB", 0, 8, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
        (tmp_path / "mn" / f"{split}.gz").write_bytes(gzip.compress(header + arr.tobytes()))
    out = tmp_path / "raw.npy"
    rc = main(["embed", "mnist", "--root", str(tmp_path / "mn"), "--out", str(out),
               "--extractor", f"{extractor_module}:pixels", "--dim", "0", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    e = load_embeddings(out)
    assert e.shape == (9, 784) and read_manifest(out)["projection"] is None
    np.testing.assert_allclose(e, imgs.reshape(9, -1) / 255.0, rtol=1e-6)


def test_resolve_extractor_forms(extractor_module):
    assert isinstance(resolve_extractor(f"{extractor_module}:make"), torch.nn.Module)
    assert isinstance(resolve_extractor(f"{extractor_module}:Tiny"), torch.nn.Module)
    assert isinstance(resolve_extractor(f"{extractor_module}:instance"), torch.nn.Module)
    f = resolve_extractor(f"{extractor_module}:pixels")
    assert f(torch.ones(2, 1, 3, 3)).shape == (2, 9)
    with pytest.raises(ValueError, match="is a int, not a Module or callable"):
        resolve_extractor(f"{extractor_module}:not_callable")
    with pytest.raises(ValueError, match="has no attribute 'nope'"):
        resolve_extractor(f"{extractor_module}:nope")
    with pytest.raises(ValueError, match="MODULE:ATTR, got 'justamodule'"):
        resolve_extractor("justamodule")
    with pytest.raises(ModuleNotFoundError):
        resolve_extractor("no_such_module_xyz:f")


def test_cli_errors_are_messages_not_tracebacks(tmp_path, extractor_module, capsys, monkeypatch):
    monkeypatch.delenv("SMALLGAN_INCEPTION_WEIGHTS", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    cases = [
        (["embed", "digits", "--out", str(tmp_path / "a.npy")],
         "Inception-v3 weights not found"),
        (["embed", "cifar10", "--root", str(tmp_path), "--out", str(tmp_path / "a.npy"),
          "--extractor", f"{extractor_module}:pixels"], "cifar-10-python.tar.gz"),
        (["embed", "mnist", "--out", str(tmp_path / "a.npy")], "root (the folder holding them) is required"),
        (["embed", "digits", "--out", str(tmp_path / "a.bin")], "--out must end in .npy"),
        (["embed", "digits", "--out", str(tmp_path / "a.npy"), "--dim", "-1"], "--dim must be >= 0"),
        (["embed", "digits", "--out", str(tmp_path / "a.npy"), "--extractor", f"{extractor_module}:pixels",
          "--weights", "w.pth"], "--weights only applies to --extractor inception"),
        (["embed", "digits", "--out", str(tmp_path / "a.npy"), "--image-size", "32"],
         "only apply to the folder dataset"),
        (["embed", "digits", "--out", str(tmp_path / "a.npy"), "--device", "gpu0"], "is not a torch device"),
        (["embed", "digits", "--out", str(tmp_path / "a.npy"), "--batch-size", "0"], "--batch-size must be >= 1"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("smallgan embed: error:") and message in err, (argv, err)
    # a cache for other settings is refused, not overwritten
    good = ["embed", "digits", "--out", str(tmp_path / "c.npy"), "--extractor", f"{extractor_module}:pixels",
            "--dim", "4", "--no-progress"]
    assert main(good) == 0
    manifest = (tmp_path / "c.json").read_text()
    assert main(good[:-2] + ["8", "--no-progress"]) == 2
    assert "projection: cache has" in capsys.readouterr().err
    assert (tmp_path / "c.json").read_text() == manifest
    assert json.loads(manifest)["rows_done"] == 1797
