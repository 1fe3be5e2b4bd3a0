"""Mode counts, KL and the full digit evaluation, against true labels and
independent formulas."""
from __future__ import annotations

import collections
import math

import numpy as np
import pytest
import scipy.stats
import torch

from smallgan.data.stacked_mnist import StackedMNIST
from smallgan.metrics import fid as F
from smallgan.metrics.classifier import DigitFeatures, predict_digits, torch_threads
from smallgan.metrics.digits import (evaluate_digits, kl_to_uniform, mode_coverage,
                                     sample_images, stacked_mnist_reference)


@pytest.fixture(autouse=True)
def one_torch_thread():
    # This small network runs 3-5x faster on one thread than on two on a
    # busy 2-core machine (measured); results do not depend on it.
    with torch_threads(1):
        yield


def _pacgan_style(digits: np.ndarray) -> tuple[int, float]:
    """Modes and KL the way PacGAN's evaluation counts them: a dict of
    digit tuples, then sum p log(p / (1/1000)) over the observed ones."""
    counts = collections.Counter(map(tuple, digits.tolist()))
    p = np.array(list(counts.values()), dtype=float) / len(digits)
    return len(counts), float(np.sum(p * np.log(p / 0.001)))


def test_mode_coverage_matches_a_dictionary_count() -> None:
    rng = np.random.default_rng(0)
    digits = rng.integers(0, 10, size=(5000, 3))
    digits[:2000, 0] = 7  # skewed
    got = mode_coverage(digits)
    modes, kl = _pacgan_style(digits)
    assert (got.modes, got.n_modes, got.n) == (modes, 1000, 5000)
    assert got.kl == pytest.approx(kl, rel=1e-12)
    assert got.histogram.sum() == 5000 and got.histogram[700:800].sum() >= 2000
    assert str(got) == f"modes {modes}/1000, KL {kl:.3f} (5000 samples)"


def test_kl_closed_cases_and_scipy() -> None:
    assert kl_to_uniform(np.full(1000, 26)) == 0.0
    one = np.zeros(1000, dtype=np.int64)
    one[123] = 26_000
    assert kl_to_uniform(one) == pytest.approx(math.log(1000), rel=1e-14)
    counts = np.random.default_rng(1).integers(0, 50, size=1000)
    assert kl_to_uniform(counts) == pytest.approx(
        scipy.stats.entropy(counts / counts.sum(), np.full(1000, 1e-3)), rel=1e-12)
    one_channel = mode_coverage(np.array([3, 3, 4, 9]))
    assert (one_channel.modes, one_channel.n_modes) == (3, 10)


@pytest.fixture(scope="module")
def stacked_pair():
    held_out = StackedMNIST(2000, seed=21, split="test")
    train = StackedMNIST(2000, seed=22, split="train")
    return held_out, train


def test_real_stacked_mnist_counts_match_the_true_labels(mnist_classifier, stacked_pair) -> None:
    net, _ = mnist_classifier
    held_out, train = stacked_pair
    idx = np.arange(len(held_out))
    fake, real = held_out.images(idx), train.images(idx)
    # each channel is classified on its own: triples right about 0.98^3 of the time
    predicted = predict_digits(net, fake, threads=1)
    assert np.mean(np.all(predicted == held_out.digits, axis=1)) >= 0.92
    report = evaluate_digits(fake, real, classifier=net, fake_range=(0.0, 1.0), splits=2, threads=1)
    truth = mode_coverage(held_out.digits)
    assert abs(report.modes.modes - truth.modes) <= 25
    assert report.modes.kl == pytest.approx(truth.kl, abs=0.05)
    # the Fréchet distance is the one the fid module computes on these features
    ex = DigitFeatures(net)
    ff = F.extract_features([fake], ex, len(fake), value_range=(0.0, 1.0))
    fr = F.extract_features([real], ex, len(real), value_range=(0.0, 1.0))
    assert ff.shape == (2000, 384)
    expect = F.frechet_distance(*F.feature_statistics(ff), *F.feature_statistics(fr))
    assert report.fd.value == pytest.approx(expect, rel=1e-6)
    assert report.fd.name == "FD[mnist-cnn]" and (report.fd.n_fake, report.fd.n_real) == (2000, 2000)
    assert report.prdc.precision > 0.8 and report.prdc.recall > 0.8
    assert report.score.name == "CS[mnist-cnn]" and report.score.splits == 2
    flat = report.as_dict()
    assert flat["modes"] == report.modes.modes and flat["fd_mnist_cnn"] == report.fd.value
    assert flat["cs_mnist_cnn"] == report.score.mean and flat["coverage"] == report.prdc.coverage


def test_a_collapsed_generator_is_caught(mnist_classifier, stacked_pair) -> None:
    net, _ = mnist_classifier
    held_out, train = stacked_pair
    few = held_out.images(np.arange(60))
    collapsed = few.repeat(25, 1, 1, 1) * 2 - 1  # 1,500 samples, 60 distinct, in [-1, 1]
    report = evaluate_digits(collapsed, train.images(np.arange(1500)), classifier=net, splits=1,
                             threads=1)
    assert report.modes.modes <= 60
    assert report.modes.kl >= math.log(1000 / 60) - 1e-12  # at most 60 modes occupied
    assert report.prdc.recall == 0.0  # duplicates: zero radii around every fake
    # 60 distinct fakes can sit in only so many real balls (about k each)
    assert report.prdc.coverage < 0.3


def test_single_channel_mnist(mnist_classifier) -> None:
    from smallgan.data.digits import MlxtendMNIST, mnist_digits_split

    net, _ = mnist_classifier
    data = MlxtendMNIST()
    train, test = mnist_digits_split(data.labels, 100, seed=0)
    report = evaluate_digits(data.images[torch.from_numpy(test)], data.images[torch.from_numpy(train)],
                             classifier=net, fake_range=(0.0, 1.0), splits=1, threads=1)
    assert (report.modes.modes, report.modes.n_modes) == (10, 10)
    assert report.modes.kl < 0.01
    assert 9.0 < report.score.mean <= 10.0  # confident and balanced: near the maximum, 10


def test_reference_helper_and_sampling(mnist_classifier) -> None:
    net, _ = mnist_classifier
    ref = stacked_mnist_reference(1000, classifier=net, splits=1, threads=1)
    # 1,000 draws over 1,000 modes cover about 1 - 1/e of them
    assert 560 <= ref.modes.modes <= 700 and ref.fd.n_fake == 1000
    calls = []

    def g(b: int) -> torch.Tensor:
        calls.append(torch.is_grad_enabled())
        return torch.zeros(b, 3, 28, 28, requires_grad=True) * 2

    x = sample_images(g, 1234, batch_size=500)
    assert x.shape == (1234, 3, 28, 28) and calls == [False, False, False] and not x.requires_grad


def test_bad_arguments(mnist_classifier) -> None:
    net, _ = mnist_classifier
    x3, x1 = torch.zeros(4, 3, 28, 28), torch.zeros(4, 1, 28, 28)
    with pytest.raises(ValueError, match="fake and real must have the same channels, got 3 and 1"):
        evaluate_digits(x3, x1, classifier=net)
    with pytest.raises(ValueError, match=r"fake must be images of shape \(n, c, 28, 28\) with n >= 2, "
                                         r"got \(4, 3, 32, 32\)"):
        evaluate_digits(torch.zeros(4, 3, 32, 32), x3, classifier=net)
    with pytest.raises(TypeError, match="real must be floating point images, got dtype torch.uint8"):
        evaluate_digits(x3, x3.to(torch.uint8), classifier=net)
    with pytest.raises(ValueError, match=r"fake_range must be \(low, high\) with high > low, got \(1, 1\)"):
        evaluate_digits(x3, x3, classifier=net, fake_range=(1, 1))
    with pytest.raises(ValueError, match="nearest_k must be >= 1, got 0"):
        evaluate_digits(x3, x3, classifier=net, nearest_k=0)
    with pytest.raises(ValueError, match="digits must lie in 0..9, got values from 0 to 12"):
        mode_coverage(np.array([[0, 12]]))
    with pytest.raises(ValueError, match="counts are all zero"):
        kl_to_uniform(np.zeros(10, dtype=np.int64))
    with pytest.raises(ValueError, match=r"sample\(b\) must return an image tensor \(b, c, H, W\)"):
        sample_images(lambda b: np.zeros((b, 3, 28, 28)), 10)
