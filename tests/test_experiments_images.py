"""A few training steps of each image experiment on tiny files in the real
on-disk formats (CIFAR-10 python batches, an image folder, MNIST IDX), the
ablation switches, and the timing command's CPU smoke run."""
from __future__ import annotations

import gzip
import json
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from smallgan.cli import main
from smallgan.experiments import lsgan_digits, sagan_lsun, sngan_cifar10, timing

TINY = dict(steps=2, batch_size=4, n_dis=1, fid_fake=8, fid_real=8, feature="random-conv",
            embedding="raw", projection_dim=16, threads=1, device="cpu", prefetch=0)


def write_cifar(root: Path, per_batch: int = 8) -> Path:
    """CIFAR-10 "python version" batches: pickled dicts with bytes keys, as the
    original files (written by Python 2) have."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        d = {b"data": rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8),
             b"labels": rng.integers(0, 10, size=per_batch).tolist(),
             b"batch_label": name.encode()}
        with open(folder / name, "wb") as f:
            pickle.dump(d, f, protocol=2)
    return root


def write_mnist(root: Path, n: int = 40) -> Path:
    """The four MNIST IDX files, gzipped (magic 0x0803 images, 0x0801 labels)."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for split, count in (("train", n), ("t10k", 8)):
        images = rng.integers(0, 256, size=(count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=count, dtype=np.uint8)
        with gzip.open(root / f"{split}-images-idx3-ubyte.gz", "wb") as f:
            f.write(struct.pack(">BBBBIII", 0, 0, 8, 3, count, 28, 28) + images.tobytes())
        with gzip.open(root / f"{split}-labels-idx1-ubyte.gz", "wb") as f:
            f.write(struct.pack(">BBBBI", 0, 0, 8, 1, count) + labels.tobytes())
    return root


def write_folder(root: Path, n: int = 12) -> Path:
    from PIL import Image

    root.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i in range(n):
        arr = rng.integers(0, 256, size=(50, 70, 3), dtype=np.uint8)  # not square, not 64
        Image.fromarray(arr).save(root / f"church_{i:03d}.png")
    return root


def test_sngan_cifar10_smallgan_steps(tmp_path: Path) -> None:
    root = write_cifar(tmp_path / "data")
    cfg = sngan_cifar10.SNGANConfig(root=str(root), g_ch=8, d_ch=8,
                                    cache_dir=str(tmp_path / "cache"), **TINY)
    r = sngan_cifar10.run(cfg, tmp_path / "run", tensorboard=False)
    assert r["label"] == "Small-GAN" and r["embeddings"] == "raw/proj16-seed0"
    # the fallback feature is never reported as an FID
    assert "fid" not in r["metrics"] and r["metrics"]["fd_random_conv"] > 0
    assert r["metrics"]["fid_n_fake"] == 8 and r["metrics"]["fid_n_real"] == 8
    saved = json.loads((tmp_path / "run" / "result.json").read_text())
    assert saved["config"]["batch_size"] == 4
    assert list((tmp_path / "run" / "samples").glob("step_*.png"))
    assert (tmp_path / "cache" / "cifar10-train.raw.proj16-seed0.npy").is_file()
    assert list((tmp_path / "cache").glob("*.fid-stats.npz"))


def test_sngan_cifar10_cli_gan_and_ablations(tmp_path: Path, capsys) -> None:
    root = write_cifar(tmp_path / "data")
    common = ["train", "sngan-cifar10", "--root", str(root), "--g-ch", "8", "--d-ch", "8",
              "--steps", "1", "--batch-size", "4", "--n-dis", "1", "--fid-every", "-1",
              "--threads", "1", "--prefetch", "0", "--embedding", "raw",
              "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--no-tensorboard",
              "--device", "cpu"]
    assert main(common + ["--sampling", "random", "--out", str(tmp_path / "gan")]) == 0
    assert "GAN " in capsys.readouterr().out
    gan = json.loads((tmp_path / "gan" / "result.json").read_text())
    assert gan["embeddings"] is None  # a GAN needs no embeddings
    # ablations: target-only core-sets on unprojected raw pixels, factor pair 2x4
    assert main(common + ["--no-coreset-prior", "--projection-dim", "0", "--prior-factor", "2",
                          "--target-factor", "4", "--out", str(tmp_path / "abl")]) == 0
    abl = json.loads((tmp_path / "abl" / "result.json").read_text())
    assert abl["label"] == "Small-GAN (target only)"
    assert abl["embeddings"] == "raw/unprojected"
    assert (abl["config"]["prior_factor"], abl["config"]["target_factor"]) == (2, 4)
    train_cfg = json.loads((tmp_path / "abl" / "config.json").read_text())["train"]
    assert train_cfg["coreset_prior"] is False and train_cfg["sampling"] == "coreset"


def test_sngan_sweep_runs_both_samplings(tmp_path: Path) -> None:
    root = write_cifar(tmp_path / "data")
    cfg = sngan_cifar10.SNGANConfig(root=str(root), g_ch=8, d_ch=8, fid_every=-1,
                                    cache_dir=str(tmp_path / "cache"),
                                    **{**TINY, "steps": 1})
    rs = sngan_cifar10.sweep(cfg, tmp_path / "sweep", batches=(4,), tensorboard=False)
    assert [r["label"] for r in rs] == ["GAN", "Small-GAN"]
    assert (tmp_path / "sweep" / "smallgan-b4" / "result.json").is_file()


def test_sagan_lsun_folder_steps(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "church")
    cfg = sagan_lsun.SAGANConfig(root=str(root), resolution=64, ch=8, target_factor=2,
                                 cache_dir=str(tmp_path / "cache"),
                                 **{**TINY, "steps": 1, "batch_size": 2, "fid_fake": 4,
                                    "fid_real": 4})
    r = sagan_lsun.run(cfg, tmp_path / "run", tensorboard=False)
    assert r["label"] == "Small-GAN" and r["dataset"] == "folder-church-64"
    assert r["metrics"]["fd_random_conv"] >= 0
    grid = sorted((tmp_path / "run" / "samples").glob("step_*.png"))[-1]
    import matplotlib.pyplot as plt

    assert plt.imread(grid).shape[0] > 64  # a grid of 64x64 samples


def test_lsgan_mnist_idx_all_discriminators(tmp_path: Path, capsys) -> None:
    root = write_mnist(tmp_path / "mnist")
    args = ["train", "lsgan-digits", "--dataset", "mnist", "--root", str(root),
            "--discriminators", "all", "--steps", "1", "--batch-size", "4", "--ngf", "4",
            "--g-steps", "2", "--fid-every", "-1", "--threads", "1", "--prefetch", "0",
            "--projection-dim", "8", "--cache-dir", str(tmp_path / "cache"),
            "--device", "cpu", "--no-progress", "--no-tensorboard", "--out", str(tmp_path / "ls")]
    assert main(args) == 0
    out = capsys.readouterr().out
    from smallgan.models.lsgan import DISCRIMINATORS

    for name in DISCRIMINATORS:
        assert (tmp_path / "ls" / name / "result.json").is_file()
        assert name in out
    assert "MB params" in out and (tmp_path / "ls" / "comparison.png").is_file()


def test_lsgan_cli_names_match_models() -> None:
    from smallgan.models.lsgan import DISCRIMINATORS

    assert lsgan_digits.DISCRIMINATOR_NAMES == tuple(DISCRIMINATORS)


def test_lsgan_g_steps_repeat_generator_updates(tmp_path: Path) -> None:
    # With g_steps=3 the generator's optimizer takes 3 steps per iteration.
    cfg = lsgan_digits.LSGANConfig(ngf=4, g_steps=3, fid_every=-1, discriminator="inception-8",
                                   cache_dir=str(tmp_path / "c"), limit=64,
                                   **{**TINY, "steps": 2})
    lsgan_digits.run(cfg, tmp_path / "run", tensorboard=False)
    state = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
    steps_g = {int(s["step"]) for s in state["opt_g"]["state"].values()}
    steps_d = {int(s["step"]) for s in state["opt_d"]["state"].values()}
    assert steps_g == {6} and steps_d == {2}


def test_timing_cli_smoke(tmp_path: Path, capsys) -> None:
    argv = ["train", "timing", "--tiny", "--batch-sizes", "8", "12", "--n-dis", "1", "2",
            "--windows", "3", "--out", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    for label in ("SN-GAN, random batches", "Small-GAN, synchronous core-sets",
                  "Small-GAN, prefetched core-sets", "Prefetched core-sets: time added"):
        assert label in out
    assert out.count("[timing] n_dis") == 4  # a progress line per cell
    result = json.loads((tmp_path / "timing.json").read_text())
    assert result["complete"]
    rows = result["rows"]
    assert [(r["n_dis"], r["batch"], r["mode"]) for r in rows] == [
        (nd, b, m) for nd in (1, 2) for b in (8, 12)
        for m in ("random", "coreset-sync", "coreset-prefetch", "coreset-prefetch-caller")]
    for r in rows:
        assert r["updates"] == 6 and len(r["windows_s"]) == 3  # 3 windows of 2 (tiny)
        assert r["seconds"] == pytest.approx(sum(r["windows_s"]))
        assert r["ms_per_update"] > 0 and 0 < r["host_ms"] and r["wait_ms"] >= 0
    # paired against the random rows: exactly zero and one there
    assert all(r["added_ms"] == 0 and r["ratio"] == 1 for r in rows if r["mode"] == "random")
    with open(tmp_path / "timing.csv") as f:
        lines = f.read().splitlines()
    assert lines[0].startswith("n_dis,batch,mode,label,updates,seconds,ms_per_update,added_ms")
    assert len(lines) == 1 + len(rows)
    md = (tmp_path / "timing.md").read_text()
    assert "| 6 updates (s) |" in md and "paper: added ms" in md
    # the summary's prefetched column is the prefetched row, not the synchronous one
    pre = next(r for r in rows if r["mode"] == "coreset-prefetch" and r["n_dis"] == 2
               and r["batch"] == 12)
    cal = next(r for r in rows if r["mode"] == "coreset-prefetch-caller" and r["n_dis"] == 2
               and r["batch"] == 12)
    rnd = next(r for r in rows if r["mode"] == "random" and r["n_dis"] == 2 and r["batch"] == 12)
    assert (f"| 2 | 12 | {rnd['ms_per_update']:.2f} | {pre['added_ms']:+.3f} | {pre['ratio']:.4f} | "
            f"{cal['added_ms']:+.3f} | ") in md


def test_timing_cell_counts_batches_and_keeps_them_seeded() -> None:
    """A cell runs the trainer's own step: n_dis real and n_dis + 1 prior batches per update."""
    cfg = timing.TimingConfig.tiny(window=3, windows=2, warmup=1)
    data = timing.make_data(cfg)
    with timing.Cell(cfg, 8, 2, data, "cpu") as cell:
        cell.warm_up()
        cell.round()
        cell.round()
        summary = cell.summary()
        for m in timing.MODES:
            t = cell._rigs[m].trainer
            assert t.step == 7 and t._real_batches == 14 and t._prior_batches == 21
        # same seed and step count: synchronous and prefetched core-sets trained alike
        w_sync = cell._rigs["coreset-sync"].trainer.generator.state_dict()
        w_pre = cell._rigs["coreset-prefetch"].trainer.generator.state_dict()
        assert all(torch.equal(w_sync[k], w_pre[k]) for k in w_sync)
    assert set(summary) == set(timing.MODES)
    assert cell._rigs == {}  # closed
    with pytest.raises(ValueError, match="modes must be some of"):
        timing.Cell(cfg, 8, 1, data, "cpu", modes=("kmeans",))


@pytest.mark.parametrize("make, match", [
    (lambda: sngan_cifar10.SNGANConfig(dataset="svhn"), "dataset must be one of"),
    (lambda: sngan_cifar10.SNGANConfig(embedding="vgg"), "embedding must be one of"),
    (lambda: sngan_cifar10.SNGANConfig(projection_dim=-1), "projection_dim must be >= 0, got -1"),
    (lambda: sagan_lsun.SAGANConfig(root="x", resolution=32), "resolution must be one of"),
    (lambda: lsgan_digits.LSGANConfig(discriminator="big"), "discriminator must be one of"),
    (lambda: timing.TimingConfig(dataset_size=100), "dataset_size=100 is smaller"),
    (lambda: timing.TimingConfig(window=0), "window must be a positive integer"),
    (lambda: timing.TimingConfig(n_dis=()), "n_dis must be a non-empty list of positive"),
    (lambda: timing.TimingConfig(batch_sizes=(64, 0)), "batch_sizes must be a non-empty list"),
])
def test_bad_configs(make, match) -> None:
    with pytest.raises(ValueError, match=match):
        make()


def test_missing_data_and_oversized_protocol(tmp_path: Path) -> None:
    cfg = sngan_cifar10.SNGANConfig(root=str(tmp_path / "nowhere"), **TINY)
    with pytest.raises(FileNotFoundError, match="cifar-10-python.tar.gz"):
        sngan_cifar10.run(cfg, tmp_path / "run")
    root = write_cifar(tmp_path / "data", per_batch=2)
    cfg = sngan_cifar10.SNGANConfig(root=str(root), g_ch=8, d_ch=8, **{**TINY, "fid_real": 50})
    with pytest.raises(ValueError, match="fid_real=50 exceeds the 10 real images"):
        sngan_cifar10.run(cfg, tmp_path / "run")


def test_seeds_share_one_embedding_cache(tmp_path: Path) -> None:
    # the projection seed is not the training seed: seeds 0 and 1 reuse one cache
    root = write_cifar(tmp_path / "data")
    for seed in (0, 1):
        cfg = sngan_cifar10.SNGANConfig(root=str(root), g_ch=8, d_ch=8, seed=seed,
                                        cache_dir=str(tmp_path / "cache"),
                                        **{**TINY, "fid_real": 2, "fid_fake": 2})
        r = sngan_cifar10.run(cfg, tmp_path / f"run{seed}", tensorboard=False)
        assert r["embeddings"] == "raw/proj16-seed0"
    assert [p.name for p in (tmp_path / "cache").glob("*.npy")] == ["cifar10-train.raw.proj16-seed0.npy"]


def test_embeddings_from_smallgan_embed_cache(tmp_path: Path) -> None:
    # a cache written the way `smallgan embed` writes it (the reader itself,
    # its own extractor and projection) drives the target core-set; a cache
    # of another dataset is refused before any training
    from smallgan.data import open_dataset
    from smallgan.embeddings import compute_embeddings

    root = write_cifar(tmp_path / "data")
    reader = open_dataset("cifar10", root)  # what `smallgan embed cifar10 --root` reads
    cache = tmp_path / "mine.npy"
    emb = compute_embeddings(reader, torch.nn.Flatten(), cache, progress=False,
                             projection={"dim": 8, "seed": 3})
    cfg = sngan_cifar10.SNGANConfig(root=str(root), g_ch=8, d_ch=8, embeddings=str(cache),
                                    cache_dir=str(tmp_path / "cache"),
                                    **{**TINY, "fid_every": -1})
    r = sngan_cifar10.run(cfg, tmp_path / "run", tensorboard=False)
    assert r["embeddings"].startswith("mine.npy: ") and "proj8-seed3" in r["embeddings"]
    assert not list((tmp_path / "cache").glob("*.npy"))  # nothing recomputed
    assert emb.shape == (40, 8)
    other = sngan_cifar10.SNGANConfig(root=str(root), g_ch=8, d_ch=8, embeddings=str(cache),
                                      limit=12, **{**TINY, "fid_every": -1})
    with pytest.raises(ValueError, match=r"mine.npy' were computed on another dataset: its "
                                         r"manifest has length 40, this run's dataset has 12"):
        sngan_cifar10.run(other, tmp_path / "run2", tensorboard=False)
    assert not (tmp_path / "run2").exists()


# --------------------------------------------- the classifier's features as core-set embeddings


@pytest.mark.parametrize("channels", [1, 3])
def test_mnist_cnn_embedding_is_classifier_features_projected(mnist_classifier, classifier_cache,
                                                              tmp_path: Path,
                                                              channels: int) -> None:
    # reference: every channel through the plain (unfused) classifier, the
    # channels' 128-d features side by side, times the seeded JL matrix, in float64
    from smallgan.data.digits import MlxtendMNIST
    from smallgan.data.stacked_mnist import StackedMNIST
    from smallgan.experiments.images import GANImages, real_embeddings
    from smallgan.projection import projection_matrix

    net, _ = mnist_classifier
    cache = classifier_cache
    base = (MlxtendMNIST() if channels == 1 else StackedMNIST(50, seed=4, split="test"))
    images = GANImages(base, limit=7)
    emb, name = real_embeddings(images, "mnist-cnn", 16, seed=3, cache_dir=cache,
                                dataset="tiny", batch_size=3)
    x = torch.stack([base[i][0] for i in range(7)]).double()  # (7, c, 28, 28) in [0, 1]
    plain = net.double().eval()
    try:
        with torch.no_grad():
            feats = torch.cat([plain.features(x[:, c:c + 1]) for c in range(channels)], dim=1)
    finally:
        net.float()
    assert feats.shape == (7, 128 * channels)
    want = feats.numpy() @ projection_matrix(128 * channels, 16, seed=3)
    assert emb.shape == (7, 16) and emb.dtype == np.float32
    np.testing.assert_allclose(emb, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
    assert name == "mnist-cnn/proj16-seed3"
    # unprojected: the features themselves
    raw, name = real_embeddings(images, "mnist-cnn", 0, cache_dir=cache, dataset="tiny")
    np.testing.assert_allclose(raw, feats.numpy(), rtol=1e-4, atol=1e-4 * feats.abs().max().item())
    assert name == "mnist-cnn/unprojected"
    assert not list(cache.glob("mnist-cnn.*.pt"))[1:]  # no second classifier was trained


def test_mnist_cnn_embedding_refused_for_other_images(tmp_path: Path) -> None:
    from smallgan.experiments.images import EMBEDDINGS, GANImages, real_embeddings
    from smallgan.experiments.image_gan import EMBEDDING_NAMES

    assert EMBEDDING_NAMES == EMBEDDINGS
    colour = torch.utils.data.TensorDataset(torch.rand(4, 3, 32, 32), torch.zeros(4))
    with pytest.raises(ValueError, match=r"embedding='mnist-cnn' needs 28x28 digit images "
                                         r"\(c, 28, 28\), got images of shape \(3, 32, 32\)"):
        real_embeddings(GANImages(colour), "mnist-cnn", 8, cache_dir=tmp_path)
    assert not list(tmp_path.iterdir())  # refused before any classifier or cache file
    with pytest.raises(ValueError, match="embedding='mnist-cnn' needs 28x28 MNIST-family digits; "
                                         "SNGANConfig trains on other images"):
        sngan_cifar10.SNGANConfig(embedding="mnist-cnn")
    with pytest.raises(ValueError, match="feature='mnist-cnn' needs 28x28 MNIST-family digits; "
                                         "SAGANConfig"):
        sagan_lsun.SAGANConfig(root="x", feature="mnist-cnn")
    code = main(["train", "sngan-cifar10", "--root", str(tmp_path), "--embedding", "mnist-cnn",
                 "--out", str(tmp_path / "run")])
    assert code == 2 and not (tmp_path / "run").exists()


# ------------------------------------ lsgan-digits scored by the classifier, with D's size


def test_lsgan_mnist_cnn_metrics_and_sizes(classifier_cache, tmp_path: Path, capsys) -> None:
    import csv

    from smallgan.models.lsgan import make_discriminator

    cache = classifier_cache
    names = ["original", "inception-8"]
    args = ["train", "lsgan-digits", "--dataset", "mnist-digits", "--feature", "mnist-cnn",
            "--discriminators", *names, "--steps", "1", "--batch-size", "4", "--ngf", "4",
            "--g-steps", "1", "--fid-every", "1", "--fid-fake", "100", "--fid-real", "100",
            "--threads", "1", "--prefetch", "0", "--projection-dim", "8",
            "--cache-dir", str(cache), "--device", "cpu", "--no-progress", "--no-tensorboard",
            "--out", str(tmp_path / "ls")]
    assert main(args) == 0
    printed = capsys.readouterr()
    with open(tmp_path / "ls" / "comparison.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["discriminator"] for r in rows] == names
    for name, row in zip(names, rows):
        result = json.loads((tmp_path / "ls" / name / "result.json").read_text())
        params = list(make_discriminator(name).parameters())
        n = sum(p.numel() for p in params)  # float32: 4 bytes each
        assert result["d_parameters"] == n and result["d_param_mb"] == pytest.approx(4 * n / 1e6)
        assert result["discriminator"] == name and result["d_activation_mb"] > 0
        m = result["metrics"]
        assert (m["n_modes"], m["fd_n_fake"], m["fd_n_real"], m["prdc_k"]) == (10, 100, 100, 5)
        assert m["fd_mnist_cnn"] > 0 and 1.0 <= m["cs_mnist_cnn"] <= 10.0
        for key in ("d_parameters", "modes", "fd_mnist_cnn", "cs_mnist_cnn", "precision",
                    "coverage"):
            want = result[key] if key == "d_parameters" else m[key]
            assert float(row[key]) == pytest.approx(want)
        assert float(row["d_param_mb"]) == pytest.approx(4 * n / 1e6)
        line = next(s for s in printed.out.splitlines() if s.startswith(name))
        assert "FD[mnist-cnn]" in line and f"{4 * n / 1e6:.3f} MB params" in line
        assert "modes " in line and "/10" in line


def test_lsgan_mnist_cnn_on_idx_files_and_refusals(classifier_cache, tmp_path: Path) -> None:
    root = write_mnist(tmp_path / "mnist")  # 40 training images
    cache = classifier_cache
    kw = dict(TINY, feature="mnist-cnn", fid_fake=20, fid_real=20, fid_every=1, steps=1)
    cfg = lsgan_digits.LSGANConfig(dataset="mnist", root=str(root), ngf=4, g_steps=1,
                                   discriminator="inception-8", cache_dir=str(cache), **kw)
    r = lsgan_digits.run(cfg, tmp_path / "run", tensorboard=False)
    assert r["metrics"]["fd_n_real"] == 20 and r["metrics"]["n_modes"] == 10
    too_many = lsgan_digits.LSGANConfig(dataset="mnist", root=str(root), ngf=4,
                                        cache_dir=str(cache), **{**kw, "fid_real": 41})
    with pytest.raises(ValueError, match="fid_real=41 exceeds the 40 real images"):
        lsgan_digits.run(too_many, tmp_path / "run2", tensorboard=False)
    assert not (tmp_path / "run2").exists()
    with pytest.raises(ValueError, match=r"feature='mnist-cnn' needs 28x28 MNIST \(dataset "
                                         r"'mnist-digits' or 'mnist'\), got dataset='digits'"):
        lsgan_digits.LSGANConfig(feature="mnist-cnn")
    with pytest.raises(ValueError, match="embedding='mnist-cnn' needs 28x28 MNIST"):
        lsgan_digits.LSGANConfig(embedding="mnist-cnn")
    with pytest.raises(ValueError, match=r"fid_real must be <= 4000 with feature='mnist-cnn' on "
                                         r"mnist-digits"):
        lsgan_digits.LSGANConfig(dataset="mnist-digits", feature="mnist-cnn", fid_real=4001)


# ------------------------------------ the compact-discriminator study over seeds


def test_lsgan_study_over_seeds_summary_and_resume(classifier_cache, tmp_path: Path,
                                                   capsys) -> None:
    import csv
    import statistics

    names = ["original", "inception-8"]
    out = tmp_path / "study"
    args = ["train", "lsgan-digits", "--dataset", "mnist-digits", "--feature", "mnist-cnn",
            "--discriminators", *names, "--seeds", "2", "--first-seed", "3", "--steps", "1",
            "--batch-size", "4", "--ngf", "4", "--g-steps", "1", "--fid-every", "1",
            "--fid-fake", "60", "--fid-real", "60", "--threads", "1", "--prefetch", "0",
            "--projection-dim", "8", "--sampling", "random", "--cache-dir",
            str(classifier_cache), "--device", "cpu", "--no-progress", "--no-tensorboard",
            "--out", str(out)]
    assert main(args) == 0
    results = {(n, s): json.loads((out / n / f"seed{s}" / "result.json").read_text())
               for n in names for s in (3, 4)}
    assert {r["config"]["seed"] for r in results.values()} == {3, 4}
    with open(out / "summary.csv", newline="") as f:
        summary = {r["discriminator"]: r for r in csv.DictReader(f)}
    assert list(summary) == names
    for n in names:
        row = summary[n]
        assert row["n_seeds"] == "2" and row["seeds"] == "3 4"
        assert float(row["gas_reported_mb"]) == lsgan_digits.GAS_REPORTED_MB[n]
        for key in ("fd_mnist_cnn", "cs_mnist_cnn", "modes", "coverage"):
            vals = [results[(n, s)]["metrics"][key] for s in (3, 4)]
            assert float(row[f"{key}_mean"]) == pytest.approx(statistics.mean(vals))
            assert float(row[f"{key}_std"]) == pytest.approx(statistics.stdev(vals))
    md = (out / "summary.md").read_text()
    ratio = results[("original", 3)]["d_parameters"] / results[("inception-8", 3)]["d_parameters"]
    assert f"| inception-8 | 2 |" in md and f"{ratio:.2f}" in md
    assert f"{777 / 361:.2f}" in md  # GAS's own ratio for inception-8
    assert (out / "sizes.png").is_file() and (out / "comparison.png").is_file()
    assert "summary.md" in capsys.readouterr().out
    # --resume reads the finished runs back (no retraining: result.json unchanged)
    before = {k: (out / k[0] / f"seed{k[1]}" / "result.json").stat().st_mtime_ns for k in results}
    assert main(args + ["--resume"]) == 0
    after = {k: (out / k[0] / f"seed{k[1]}" / "result.json").stat().st_mtime_ns for k in results}
    assert before == after
    # without --resume an existing study is refused before any work
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    # paired.csv: each discriminator minus original on the same seed, by hand
    with open(out / "paired.csv", newline="") as f:
        diffs = {(r["discriminator"], r["metric"]): r for r in csv.DictReader(f)}
    assert {d for d, _ in diffs} == {"inception-8"}
    for key in ("fd_mnist_cnn", "modes", "coverage"):
        d = [results[("inception-8", s)]["metrics"][key] - results[("original", s)]["metrics"][key]
             for s in (3, 4)]
        row = diffs[("inception-8", key)]
        assert row["n_pairs"] == "2" and row["seeds"] == "3 4"
        assert float(row["diff_mean"]) == pytest.approx(statistics.mean(d))
        assert float(row["diff_std"]) == pytest.approx(statistics.stdev(d))
        assert int(row["n_positive"]) == sum(x > 0 for x in d)
    assert "Paired difference to original" in md and "| inception-8 | 2 |" in md
    assert "d_loss_end" not in {m for _, m in diffs}  # no better direction: not paired
    # the D loss at the end, from each run's log (one logged row here: its own)
    with open(out / "comparison.csv", newline="") as f:
        for r in csv.DictReader(f):
            with open(out / r["discriminator"] / f"seed{r['seed']}" / "log.csv", newline="") as g:
                last = list(csv.DictReader(g))[-1]
            assert float(r["d_loss_end"]) == pytest.approx(float(last["d_loss"]))
            assert float(r["g_loss_end"]) == pytest.approx(float(last["g_loss"]))
    assert "D loss, last 10 % (0.25: chance)" in md
    # curves.csv: every evaluation of every run (fid-every 1, one step: step 1)
    with open(out / "curves.csv", newline="") as f:
        curves = list(csv.DictReader(f))
    assert sorted((r["discriminator"], r["seed"], r["step"]) for r in curves) == sorted(
        (n, str(s), "1") for n in names for s in (3, 4))
    assert (out / "curves.png").is_file()
    # --report with a run missing: trains nothing, names it, tables from the rest
    (out / "inception-8" / "seed4" / "result.json").unlink()
    capsys.readouterr()
    assert main(args + ["--report"]) == 0
    printed = capsys.readouterr().out
    assert "inception-8          seed 4: not finished, left out of the report" in printed
    assert not (out / "inception-8" / "seed4" / "result.json").exists()
    with open(out / "summary.csv", newline="") as f:
        summary = {r["discriminator"]: r for r in csv.DictReader(f)}
    assert summary["inception-8"]["seeds"] == "3" and summary["original"]["seeds"] == "3 4"
    with open(out / "paired.csv", newline="") as f:
        assert {r["n_pairs"] for r in csv.DictReader(f)} == {"1"}
    # --report on an empty folder: an error, nothing written
    assert main(args[:-1] + [str(tmp_path / "none"), "--report"]) == 1
    assert "no finished run of this study" in capsys.readouterr().err
    assert main(["train", "lsgan-digits", "--report", "--out", str(tmp_path / "none")]) == 2
    assert "--report needs --discriminators" in capsys.readouterr().err
    assert not (tmp_path / "none").exists()


def test_lsgan_seeds_refusals(tmp_path: Path, capsys) -> None:
    base = ["train", "lsgan-digits", "--out", str(tmp_path / "x")]
    assert main(base + ["--seeds", "2"]) == 2
    assert "--seeds needs --discriminators" in capsys.readouterr().err
    assert main(base + ["--discriminators", "all", "--seeds", "0"]) == 2
    assert "--seeds must be a positive integer, got 0" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_lsgan_format_summary_ratios() -> None:
    # hand-made rows: the ratios and the mean +- std cells are formatted from them
    rows = [{"discriminator": "original", "n_seeds": 3, "d_parameters": 1000, "d_param_mb": 0.004,
             "gas_reported_mb": 777, "fd_mnist_cnn_mean": 10.0, "fd_mnist_cnn_std": 1.5},
            {"discriminator": "inception-32", "n_seeds": 3, "d_parameters": 250,
             "d_param_mb": 0.001, "gas_reported_mb": 489, "fd_mnist_cnn_mean": 12.25,
             "fd_mnist_cnn_std": 0.5}]
    md = lsgan_digits.format_summary(rows).splitlines()
    assert md[0].count("|") == 9 and "FD[mnist-cnn]" in md[0]
    assert md[2] == "| original | 3 | 1,000 | 0.004 | 1.00 | 777 | 1.00 | 10.0 +- 1.5 |"
    assert md[3] == "| inception-32 | 3 | 250 | 0.001 | 4.00 | 489 | 1.59 | 12.2 +- 0.5 |"


def test_lsgan_end_losses_by_hand(tmp_path: Path) -> None:
    # 20 logged iterations: the last 10 % are the last 2 rows
    rows = [(20 * (i + 1), 1.0 + i, 2.0 * i) for i in range(20)]
    (tmp_path / "log.csv").write_text("step,d_loss,g_loss,step_time_s\n" + "".join(
        f"{s},{d},{g},0.5\n" for s, d, g in rows))
    got = lsgan_digits.end_losses(tmp_path)
    assert got == {"d_loss_end": pytest.approx((19.0 + 20.0) / 2),
                   "g_loss_end": pytest.approx((36.0 + 38.0) / 2)}
    # a short log keeps at least its last row; no log, no losses
    assert lsgan_digits.end_losses(tmp_path, share=0.01)["d_loss_end"] == pytest.approx(20.0)
    assert lsgan_digits.end_losses(tmp_path / "missing") == {}
