"""The project's MNIST classifier: its accuracy floor, its cache, its features
and the classifier score, each against an independent computation."""
from __future__ import annotations

import re

import numpy as np
import pytest
import scipy.stats
import torch

from smallgan.data.digits import MlxtendMNIST, mnist_digits_split
from smallgan.metrics import classifier as C
from smallgan.metrics import fid as F


@pytest.fixture(autouse=True)
def one_torch_thread():
    # This small network runs 3-5x faster on one thread than on two on a
    # busy 2-core machine (measured); results do not depend on it.
    with C.torch_threads(1):
        yield


@pytest.fixture(scope="module")
def held_out():
    data = MlxtendMNIST()
    _, test = mnist_digits_split(data.labels, 100, seed=0)
    return data.images[torch.from_numpy(test)], data.labels[test]


def test_accuracy_on_the_held_out_thousand_is_at_least_97_percent(mnist_classifier, held_out) -> None:
    net, _ = mnist_classifier
    images, labels = held_out
    assert images.shape == (1000, 1, 28, 28) and np.bincount(labels).tolist() == [100] * 10
    with torch.no_grad():  # the plain forward pass, not the fast evaluation path
        predicted = net(images).argmax(1).numpy()
    accuracy = float(np.mean(predicted == labels))
    assert accuracy >= 0.97, f"held-out accuracy {accuracy:.3f} < 0.97"
    assert net.info.test_accuracy == pytest.approx(accuracy, abs=1e-12)
    # the fast path (folded BatchNorm, channels-last) predicts the same digits
    fast = C.predict_digits(net, images)[:, 0]
    assert np.mean(fast == predicted) >= 0.999


def test_fast_features_equal_the_plain_forward_pass(mnist_classifier) -> None:
    net, _ = mnist_classifier
    x = torch.rand(300, 3, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        plain = torch.cat([net.features(x[:, c:c + 1]) for c in range(3)], dim=1)
        logits = [net(x[:, c:c + 1]) for c in range(3)]
    torch.testing.assert_close(C.DigitFeatures(net)(x), plain, rtol=1e-4, atol=1e-4)
    feats, probs = C.classifier_outputs(net, x * 2 - 1, value_range=(-1.0, 1.0), batch_size=7)
    np.testing.assert_allclose(feats, plain.double().numpy(), rtol=1e-4, atol=1e-4)
    for c in range(3):
        np.testing.assert_allclose(probs[:, c], torch.softmax(logits[c].double(), 1).numpy(),
                                   atol=1e-5)


def test_cache_file_is_named_by_seed_and_key_and_reused(mnist_classifier, monkeypatch) -> None:
    net, cache = mnist_classifier
    files = sorted(p.name for p in cache.iterdir())
    assert len(files) == 1 and re.fullmatch(r"mnist-cnn\.seed0\.[0-9a-f]{16}\.pt", files[0])
    assert files[0] == C.classifier_path(C.ClassifierConfig(), cache).name
    assert files[0].split(".")[2] == net.info.key == C.classifier_key()

    def no_training(*a, **k):
        raise AssertionError("a cached classifier must not be retrained")

    monkeypatch.setattr(C, "train_mnist_classifier", no_training)
    again = C.load_mnist_classifier(cache_dir=cache)
    for (name, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    assert again.info == net.info and not again.training
    assert not any(p.requires_grad for p in again.parameters())
    with pytest.raises(FileNotFoundError, match="smallgan train mnist-classifier --seed 3"):
        C.load_mnist_classifier(3, cache_dir=cache, train=False)


def test_key_follows_settings_and_is_stable() -> None:
    base = C.classifier_key()
    assert base == C.classifier_key(C.ClassifierConfig())
    assert C.classifier_key(C.ClassifierConfig(epochs=7)) != base
    assert C.classifier_key(C.ClassifierConfig(seed=1)) != base
    assert C.classifier_path(C.ClassifierConfig(seed=4), "/x").name.startswith("mnist-cnn.seed4.")


def test_feature_extractor_for_the_frechet_distance(mnist_classifier, held_out, monkeypatch) -> None:
    net, cache = mnist_classifier
    monkeypatch.setenv("SMALLGAN_CACHE", str(cache))  # the session's network, no training
    extractor, name = F.load_feature_extractor("mnist-cnn")
    assert name == "mnist-cnn"
    images, _ = held_out
    real_a, real_b = images[0::2], images[1::2]  # 50 of each digit on each side
    blurred = torch.nn.functional.avg_pool2d(real_b, 5, stride=1, padding=2)

    def fd(x, y):
        fx = F.extract_features([x], extractor, len(x), value_range=(0.0, 1.0))
        fy = F.extract_features([y], extractor, len(y), value_range=(0.0, 1.0))
        assert fx.shape == (len(x), 128)
        return F.frechet_distance(*F.feature_statistics(fx), *F.feature_statistics(fy))

    same, blur = fd(real_a, real_b), fd(real_a, blurred)
    # two halves of the same digits are far closer than digits and their blur
    assert same < 0.1 * blur
    result = F.FIDResult(same, 500, 500, name)
    assert result.name == "FD[mnist-cnn]" and not result.comparable
    assert "NOT comparable to published FIDs" in str(result)


# ---------------------------------------------------------------- classifier score


def _reference_score(p: np.ndarray) -> float:
    """exp(H(p(y)) - E_x H(p(y|x))): the same quantity written through entropies."""
    return float(np.exp(scipy.stats.entropy(p.mean(axis=0)) - scipy.stats.entropy(p, axis=1).mean()))


def test_classifier_score_matches_the_entropy_form() -> None:
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.full(10, 0.3), size=2000)
    r = C.classifier_score(p, splits=1)
    assert r.mean == pytest.approx(_reference_score(p), rel=1e-12) and r.std == 0.0
    parts = [_reference_score(p[i * 200:(i + 1) * 200]) for i in range(10)]
    r10 = C.classifier_score(p, splits=10)
    assert r10.mean == pytest.approx(np.mean(parts), rel=1e-12)
    assert r10.std == pytest.approx(np.std(parts), rel=1e-9)
    assert str(r10).startswith("CS[mnist-cnn] ") and "(2k samples, 10 splits)" in str(r10)


def test_classifier_score_closed_cases() -> None:
    one_hot = np.eye(10)[np.arange(1000) % 10]
    assert C.classifier_score(one_hot, splits=1).mean == pytest.approx(10.0, rel=1e-12)
    same = np.tile(np.random.default_rng(1).dirichlet(np.ones(10)), (100, 1))
    assert C.classifier_score(same, splits=1).mean == pytest.approx(1.0, rel=1e-12)
    # rows with exact zeros contribute 0 log 0 = 0
    assert C.classifier_score(np.eye(4)[[0, 1, 2, 3, 0, 1]], splits=1).mean == pytest.approx(
        np.exp(scipy.stats.entropy([2, 2, 1, 1])), rel=1e-12)


def test_classifier_score_of_channels_uses_the_joint_distribution() -> None:
    rng = np.random.default_rng(2)
    per_channel = rng.dirichlet(np.full(10, 0.2), size=(400, 3))
    joint = np.einsum("na,nb,nc->nabc", per_channel[:, 0], per_channel[:, 1],
                      per_channel[:, 2]).reshape(400, 1000)
    assert C.classifier_score(per_channel, splits=2).mean == pytest.approx(
        C.classifier_score(joint, splits=2).mean, rel=1e-12)
    # index 100 d0 + 10 d1 + d2, as Stacked-MNIST mode ids
    i = 17
    d = per_channel[i].argmax(axis=1)
    assert C._joint(per_channel)[i].argmax() == 100 * d[0] + 10 * d[1] + d[2]


# ---------------------------------------------------------------- errors


def test_bad_arguments(mnist_classifier) -> None:
    net, _ = mnist_classifier
    with pytest.raises(ValueError, match="epochs must be >= 1, got 0"):
        C.ClassifierConfig(epochs=0)
    with pytest.raises(TypeError, match=r"widths must be a tuple of 3 ints, got \[16, 32, 64\]"):
        C.ClassifierConfig(widths=[16, 32, 64])
    with pytest.raises(ValueError, match="lr must be a finite number in"):
        C.ClassifierConfig(lr=0.0)
    with pytest.raises(TypeError, match="config must be a ClassifierConfig, got dict"):
        C.train_mnist_classifier({})
    with pytest.raises(ValueError, match=r"images must have shape \(n, c, 28, 28\), got \(4, 1, 32, 32\)"):
        C.classifier_outputs(net, torch.zeros(4, 1, 32, 32))
    with pytest.raises(ValueError, match=r"value_range must be \(low, high\) with high > low, got \(1, 0\)"):
        C.classifier_outputs(net, torch.zeros(4, 1, 28, 28), value_range=(1, 0))
    with pytest.raises(ValueError, match=r"images must have shape \(b, c, 28, 28\) \(MNIST-family digits\), "
                                         r"got \(2, 3, 32, 32\)"):
        C.DigitFeatures(net)(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match="probs rows must sum to 1; row 1 sums to 2"):
        C.classifier_score(np.array([[0.5, 0.5], [1.0, 1.0]]), splits=1)
    with pytest.raises(ValueError, match="splits=10 leaves fewer than 2 of the 12 rows per split"):
        C.classifier_score(np.eye(2)[np.arange(12) % 2], splits=10)
    with pytest.raises(ValueError, match="probs holds 1 negative, NaN or Inf values"):
        C.classifier_score(np.array([[np.nan, 1.0], [0.5, 0.5]]), splits=1)
    with pytest.raises(TypeError, match="seed must be an int, got '0'"):
        C.load_mnist_classifier("0")


def test_cli_trains_reports_and_reuses(mnist_classifier, capsys) -> None:
    from smallgan.cli import main

    net, cache = mnist_classifier
    path = C.classifier_path(C.ClassifierConfig(), cache)
    accuracy = f"test accuracy {100 * net.info.test_accuracy:.1f} % on the 1,000 held-out digits"
    assert net.cli_output.splitlines()[0] == f"saved: {path}"  # the session's training run
    assert accuracy in net.cli_output and "on 1 thread)" in net.cli_output
    assert main(["train", "mnist-classifier", "--out", str(cache)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == f"already trained: {path}" and accuracy in out
    assert main(["train", "mnist-classifier", "--out", str(cache), "--seed", "-1"]) == 2
    assert "smallgan train mnist-classifier: seed must be >= 0, got -1" in capsys.readouterr().err
