"""``smallgan train stacked-mnist``: a few steps end to end, and its evaluation hook."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from smallgan.cli import main
from smallgan.data.stacked_mnist import StackedMNIST
from smallgan.experiments.stacked_mnist import StackedMNISTConfig, digits_hook
from smallgan.metrics.classifier import torch_threads
from smallgan.metrics.digits import evaluate_digits


@pytest.fixture(autouse=True)
def one_torch_thread():
    with torch_threads(1):  # see test_metrics_classifier.py
        yield


@pytest.mark.parametrize("sampling", ["random", "coreset"])
def test_cli_trains_and_reports_modes(classifier_cache, tmp_path, capsys, sampling) -> None:
    cache = classifier_cache
    out = tmp_path / sampling
    code = main(["train", "stacked-mnist", "--sampling", sampling, "--steps", "2",
                 "--batch-size", "8", "--n-train", "300", "--fid-fake", "300", "--fid-real", "300",
                 "--projection-dim", "16", "--prefetch", "0", "--threads", "1",
                 "--cache-dir", str(cache), "--out", str(out), "--no-progress",
                 "--no-tensorboard"])
    assert code == 0
    printed = capsys.readouterr()
    result = json.loads((out / "result.json").read_text())
    m = result["metrics"]
    assert 1 <= m["modes"] <= 300 and 0.0 <= m["kl"] <= math.log(1000) + 1e-12
    assert (m["fd_n_fake"], m["fd_n_real"], m["prdc_k"]) == (300, 300, 5)
    assert m["fd_mnist_cnn"] > 0 and 0 <= m["precision"] <= 1 and 0 <= m["coverage"] <= 1
    label = "Small-GAN" if sampling == "coreset" else "GAN"
    line = next(s for s in printed.out.splitlines() if s.startswith(label))
    assert f"D {result['d_parameters']:,} params" in line and "(not an FID)" in line
    assert "(300 fake / 300 real, k=5)" in line
    assert "FD[mnist-cnn]" in printed.err and "modes " in printed.err


def test_hook_evaluates_what_the_generator_samples(mnist_classifier) -> None:
    net, cache = mnist_classifier
    fake = StackedMNIST(400, seed=31, split="test")
    real = StackedMNIST(400, seed=32, split="train").images(np.arange(400))
    logs = []

    class Trainer:  # samples real held-out images, in the generator's [-1, 1]
        def sample(self, n, seed=0, batch=0):
            return fake.images(np.arange(n)) * 2 - 1

    hook = digits_hook(real, n_fake=400, nearest_k=3, cache_dir=cache, device="cpu",
                       log=logs.append)
    got = hook(Trainer(), 7)
    expect = evaluate_digits(fake.images(np.arange(400)), real, classifier=net, nearest_k=3,
                             fake_range=(0.0, 1.0))
    assert got["modes"] == expect.modes.modes and got["kl"] == pytest.approx(expect.modes.kl)
    assert got["fd_mnist_cnn"] == pytest.approx(expect.fd.value, rel=1e-6)
    assert got["precision"] == expect.prdc.precision and got["prdc_k"] == 3
    assert logs[-1].startswith("step 7: modes ")


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="feature must be 'mnist-cnn' for stacked-mnist"):
        StackedMNISTConfig(feature="random-conv")
    with pytest.raises(ValueError, match="ndf must be >= 1, got 0"):
        StackedMNISTConfig(ndf=0)
    with pytest.raises(ValueError, match="data_split must be one of 'all', 'train', 'test'; got 'val'"):
        StackedMNISTConfig(data_split="val")
    assert main(["train", "stacked-mnist", "--n-train", "0", "--out", "/nonexistent/x"]) == 2
