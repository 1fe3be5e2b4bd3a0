"""Fréchet distance against closed forms, its robustness, caching and labels."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from smallgan.metrics import fid as F


def _spd(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.normal(size=(d, rank or d))
    return a @ a.T / (rank or d)


def _reference(mu1, s1, mu2, s2) -> float:
    """Independent float64 reference: Tr((S1 S2)^1/2) = Tr((A S2 A)^1/2) with
    A = S1^1/2, where A S2 A is symmetric PSD, so only eigh is needed."""
    w, v = np.linalg.eigh(s1)
    a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    e = np.linalg.eigvalsh(a @ s2 @ a)
    tr = np.sqrt(np.clip(e, 0, None)).sum()
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr)


def test_identical_gaussians_give_zero() -> None:
    rng = np.random.default_rng(0)
    mu, s = rng.normal(size=16), _spd(rng, 16)
    assert F.frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)


def test_means_only_give_squared_distance() -> None:
    s = np.eye(4) * 2.5
    assert F.frechet_distance(np.zeros(4), s, np.array([1.0, 2.0, 0, -2]), s) == pytest.approx(9.0)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_diagonal_covariances_closed_form(d: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    mu1, mu2 = rng.normal(size=d) * 3, rng.normal(size=d) * 3
    v1, v2 = rng.uniform(0.01, 9, size=d), rng.uniform(0.01, 9, size=d)
    expect = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    got = F.frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2))
    assert got == pytest.approx(expect, rel=1e-9, abs=1e-9)


def test_dense_covariances_match_reference_and_are_symmetric() -> None:
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.normal(size=30), rng.normal(size=30)
    s1, s2 = _spd(rng, 30), _spd(rng, 30)
    d12 = F.frechet_distance(mu1, s1, mu2, s2)
    assert d12 == pytest.approx(_reference(mu1, s1, mu2, s2), rel=1e-8)
    assert d12 == pytest.approx(F.frechet_distance(mu2, s2, mu1, s1), rel=1e-8)


def test_singular_diagonal_covariances_exact() -> None:
    # Exactly singular product: scipy flags it and the symmetric route runs.
    # The eps*I remedy would be off by 2*sqrt(1e-6 * 2) = 0.0028 here.
    got = F.frechet_distance(np.zeros(3), np.diag([4.0, 0.0, 0.0]),
                             np.ones(3), np.diag([1.0, 0.0, 2.0]))
    assert got == pytest.approx(3.0 + (4 + 1 - 4) + 2.0, abs=1e-9)


@settings(max_examples=25, deadline=None)
@given(st.integers(2, 10), st.integers(0, 2**32 - 1))
def test_rotated_singular_covariances_closed_form(d: int, seed: int) -> None:
    # Q diag(v) Q^T with some v zero: dense, singular, and still a closed form
    # when both share the rotation Q.
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    v1, v2 = rng.uniform(0.1, 4, size=d), rng.uniform(0.1, 4, size=d)
    v1[rng.permutation(d)[: d // 2]] = 0.0
    v2[rng.permutation(d)[: d // 3]] = 0.0
    s1, s2 = q @ np.diag(v1) @ q.T, q @ np.diag(v2) @ q.T
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    expect = np.sum((mu1 - mu2) ** 2) + np.sum(v1 + v2 - 2 * np.sqrt(v1 * v2))
    got = F.frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(got)
    assert got == pytest.approx(expect, rel=1e-6, abs=1e-6)


def test_rank_deficient_covariances_finite_and_correct() -> None:
    # Covariances from fewer samples than dimensions, as with a small FID
    # protocol on 2048-d features.
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(6, 40)), rng.normal(loc=0.5, size=(9, 40))
    (mu1, s1), (mu2, s2) = F.feature_statistics(x), F.feature_statistics(y)
    assert np.linalg.matrix_rank(s1) == 5
    got = F.frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(got)
    assert got == pytest.approx(_reference(mu1, s1, mu2, s2), rel=1e-6)
    zero = F.frechet_distance(mu1, s1, mu1, s1)
    assert zero == pytest.approx(0.0, abs=1e-6)


def test_not_psd_is_rejected() -> None:
    with pytest.raises(ValueError, match="complex square root"):
        F.frechet_distance(np.zeros(2), np.diag([1.0, -4.0]), np.zeros(2), np.eye(2))
    # singular and indefinite: caught on the symmetric route
    with pytest.raises(ValueError, match="sigma1 is not positive semi-definite"):
        F.frechet_distance(np.zeros(2), np.diag([0.0, -4.0]), np.zeros(2), np.eye(2))


@pytest.mark.parametrize("args, match", [
    ((np.zeros(3), np.eye(2), np.zeros(3), np.eye(3)), r"sigma1 must have shape \(3, 3\)"),
    ((np.zeros(3), np.eye(3), np.zeros(2), np.eye(2)), "mu1 and mu2 must have the same shape"),
    ((np.zeros((3, 1)), np.eye(3), np.zeros(3), np.eye(3)), "mu1 must be 1-D"),
    ((np.array([0, np.nan, 0]), np.eye(3), np.zeros(3), np.eye(3)), "mu1 contains 1 NaN"),
    ((np.zeros(3), np.eye(3), np.zeros(3), np.full((3, 3), np.inf)), "sigma2 contains 9 NaN"),
])
def test_bad_input_names_the_argument(args, match) -> None:
    with pytest.raises(ValueError, match=match):
        F.frechet_distance(*args)


def test_feature_statistics_validation() -> None:
    with pytest.raises(ValueError, match="at least 2 rows"):
        F.feature_statistics(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="must be 2-D"):
        F.feature_statistics(np.zeros(3))


def test_statistics_roundtrip_and_pytorch_fid_files(tmp_path) -> None:
    rng = np.random.default_rng(3)
    mu, s = rng.normal(size=5), _spd(rng, 5)
    p = F.save_statistics(tmp_path / "a" / "s.npz", mu, s, n=123, feature="inception")
    mu2, s2, meta = F.load_statistics(p)
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(s, s2)
    assert meta == {"n": 123, "feature": "inception"}
    assert not list(p.parent.glob("*.tmp"))
    np.savez(tmp_path / "ptfid.npz", mu=mu, sigma=s)  # pytorch-fid's layout
    assert F.load_statistics(tmp_path / "ptfid.npz")[2] == {"n": None, "feature": None}
    np.savez(tmp_path / "bad.npz", m=mu)
    with pytest.raises(ValueError, match="no 'mu' and 'sigma'"):
        F.load_statistics(tmp_path / "bad.npz")


def test_result_labels_protocol_and_never_calls_fallback_fid() -> None:
    r = F.FIDResult(18.754, 50_000, 50_000, "inception")
    assert str(r) == "FID 18.75 (50k fake / 50k real, inception)"
    f = F.FIDResult(3.2, 5_000, 1_234, "random-conv")
    assert "FID" not in f.name and not f.comparable
    assert str(f).startswith("FD[random-conv] 3.20 (5k fake / 1234 real")
    assert "NOT comparable" in str(f)


def _images(seed: int, n: int, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # Smooth blobs, so that a shift in brightness is a real distribution change.
    x = torch.rand(n, 3, 4, 4, generator=g)
    x = torch.nn.functional.interpolate(x, size=16, mode="bilinear", align_corners=False)
    return (x * 2 - 1 + shift).clamp(-1, 1)


def test_fid_pipeline_with_fallback_features_and_cache(tmp_path) -> None:
    ex = F.random_conv_features(seed=0)
    real = _images(0, 120)
    calls = []

    def real_batches():
        calls.append(1)
        return iter(real.split(40))

    def sampler(data):
        it = iter(data.split(40))
        return lambda b: next(it)[:b]

    cache = F.stats_path(tmp_path, "toy", "random-conv", 120)
    same = F.fid(sampler(_images(0, 120)), real_batches, n_fake=120, n_real=120,
                 batch_size=40, feature="random-conv", extractor=ex, cache=cache)
    assert same.value == pytest.approx(0.0, abs=1e-3)
    assert (same.n_fake, same.n_real, same.feature) == (120, 120, "random-conv")
    other = F.fid(sampler(_images(1, 120, shift=0.5)), real_batches, n_fake=120, n_real=120,
                  batch_size=40, feature="random-conv", extractor=ex, cache=cache)
    assert other.value > 1.0
    assert len(calls) == 1  # the second call read the cached real statistics
    with pytest.raises(ValueError, match="holds n=120"):
        F.real_statistics(real_batches, ex, "random-conv", 100, cache)


def test_extract_features_needs_enough_images() -> None:
    ex = F.random_conv_features()
    with pytest.raises(ValueError, match="gave only 10"):
        F.extract_features([torch.zeros(10, 1, 28, 28)], ex, 20)
    feats = F.extract_features([(torch.zeros(10, 1, 28, 28), torch.zeros(10))], ex, 4)
    assert feats.shape == (4, 512) and feats.dtype == np.float64


def test_fid_argument_checks() -> None:
    with pytest.raises(ValueError, match="n_fake must be an integer >= 2, got 1"):
        F.fid(lambda b: None, lambda: [], n_fake=1, feature="random-conv")
    with pytest.raises(ValueError, match="feature must be one of"):
        F.load_feature_extractor("vgg")


def test_fid_leaves_autograd_enabled() -> None:
    # Regression: a no_grad block inside the (unfinished) sample generator
    # switched autograd off for the caller when the generator was collected.
    import gc

    ex = F.random_conv_features()
    F.fid(lambda b: torch.zeros(b, 1, 16, 16), lambda: [torch.rand(30, 1, 16, 16)],
          n_fake=10, n_real=10, batch_size=4, feature="random-conv", extractor=ex)
    gc.collect()
    assert torch.is_grad_enabled()
