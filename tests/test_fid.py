"""Fréchet distance against closed forms, its robustness, caching and labels."""
from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pytest
import scipy.linalg
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
    # invertible or singular, either argument: named, with the eigenvalue
    with pytest.raises(ValueError, match=r"sigma1 is not positive semi-definite \(eigenvalue -4\)"):
        F.frechet_distance(np.zeros(2), np.diag([1.0, -4.0]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match=r"sigma1 is not positive semi-definite \(eigenvalue -4\)"):
        F.frechet_distance(np.zeros(2), np.diag([0.0, -4.0]), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match=r"sigma2 is not positive semi-definite \(sigma1\^\(1/2\) "
                                         r"sigma2 sigma1\^\(1/2\) has eigenvalue -4\)"):
        F.frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), np.diag([1.0, -4.0]))


def test_commuting_covariances_closed_form() -> None:
    # S1 = Q diag(a) Q^T, S2 = Q diag(b) Q^T commute: Tr((S1 S2)^1/2) = sum sqrt(a_i b_i)
    rng = np.random.default_rng(4)
    q, _ = np.linalg.qr(rng.normal(size=(24, 24)))
    a, b = rng.uniform(0.05, 5, size=24), rng.uniform(0.05, 5, size=24)
    mu1, mu2 = rng.normal(size=24), rng.normal(size=24)
    expect = np.sum((mu1 - mu2) ** 2) + np.sum(a + b - 2 * np.sqrt(a * b))
    got = F.frechet_distance(mu1, q @ np.diag(a) @ q.T, mu2, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expect, rel=1e-10)


def test_identical_rank_deficient_statistics_give_zero() -> None:
    x = np.random.default_rng(5).normal(size=(50, 256)) * np.linspace(0.1, 3, 256)
    mu, s = F.feature_statistics(x)
    assert F.frechet_distance(mu, s, mu, s) == 0.0


# High-precision reference: Tr((S1 S2)^1/2) is by definition the sum of the
# square roots of the eigenvalues of S1 S2 (real and >= 0 for PSD inputs).
# mpmath computes them at 50 digits from the exact float64 inputs, with its
# general (non-symmetric) eigensolver: nothing in common with the route under
# test but the definition.

def _mp_frechet(mu1, s1, mu2, s2) -> float:
    with mpmath.workdps(50):
        ev = mpmath.eig(mpmath.matrix(s1.tolist()) * mpmath.matrix(s2.tolist()),
                        left=False, right=False)
        tr = mpmath.fsum(mpmath.sqrt(max(mpmath.re(e), 0)) for e in ev)
        value = (mpmath.fsum((mpmath.mpf(a) - mpmath.mpf(b)) ** 2 for a, b in zip(mu1, mu2))
                 + mpmath.fsum(mpmath.mpf(v) for v in np.diagonal(s1))
                 + mpmath.fsum(mpmath.mpf(v) for v in np.diagonal(s2)) - 2 * tr)
        return float(value)


def test_mpmath_reference_agrees_with_mpmath_sqrtm() -> None:
    # the reference itself, checked once against mpmath's matrix square root
    # (which converges only on well-conditioned products)
    rng = np.random.default_rng(6)
    s1, s2 = _spd(rng, 4), _spd(rng, 4)
    with mpmath.workdps(50):
        root = mpmath.sqrtm(mpmath.matrix(s1.tolist()) * mpmath.matrix(s2.tolist()))
        tr = float(mpmath.re(sum(root[i, i] for i in range(4))))
    zero = np.zeros(4)
    assert _mp_frechet(zero, s1, zero, s2) == pytest.approx(np.trace(s1) + np.trace(s2) - 2 * tr,
                                                            rel=1e-14)


@pytest.mark.parametrize("d, r1, r2", [(4, 2, 3), (4, 1, 1), (6, 3, 4), (6, 2, 2), (6, 5, 3)])
def test_rank_deficient_against_mpmath(d: int, r1: int, r2: int) -> None:
    # S = A A^T with small integer A: exactly rank-deficient in float64
    rng = np.random.default_rng(d * 100 + r1 * 10 + r2)
    a, b = rng.integers(-5, 6, size=(d, r1)).astype(float), rng.integers(-5, 6, size=(d, r2)).astype(float)
    s1, s2 = a @ a.T, b @ b.T
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    got = F.frechet_distance(mu1, s1, mu2, s2)
    scale = np.trace(s1) + np.trace(s2)
    assert abs(got - _mp_frechet(mu1, s1, mu2, s2)) <= 1e-7 * scale


@pytest.mark.parametrize("cond", [1e3, 1e6, 1e10, 1e14])
@pytest.mark.parametrize("d", [4, 6])
def test_ill_conditioned_against_mpmath(d: int, cond: float) -> None:
    rng = np.random.default_rng(int(np.log10(cond)) + d)
    q1, _ = np.linalg.qr(rng.normal(size=(d, d)))
    q2, _ = np.linalg.qr(rng.normal(size=(d, d)))
    s1 = q1 @ np.diag(np.geomspace(1.0, 1.0 / cond, d)) @ q1.T
    s2 = q2 @ np.diag(np.geomspace(1.0 / cond, 1.0, d)) @ q2.T
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    mu1, mu2 = rng.normal(size=d), rng.normal(size=d)
    got = F.frechet_distance(mu1, s1, mu2, s2)
    scale = np.trace(s1) + np.trace(s2)
    assert abs(got - _mp_frechet(mu1, s1, mu2, s2)) <= 1e-7 * scale


def _sqrtm_that_warns(a):
    # like SciPy >= 1.16 on a product it deems singular or ill-conditioned
    root = _REAL_SQRTM(a)
    warnings.warn("Matrix is singular.", scipy.linalg.LinAlgWarning, stacklevel=2)
    return root


def _sqrtm_that_is_silent(a):
    # like SciPy < 1.16, which had no LinAlgWarning for it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        return _REAL_SQRTM(a)


_REAL_SQRTM = scipy.linalg.sqrtm


@pytest.mark.parametrize("rank", [6, 3])
def test_value_does_not_depend_on_scipy_sqrtm_warnings(monkeypatch, rank: int) -> None:
    # The same statistics must give the same number on every SciPy version,
    # whether or not its sqrtm flags the product.
    rng = np.random.default_rng(7)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = _spd(rng, 6), _spd(rng, 6, rank)
    values = []
    for sqrtm in (_sqrtm_that_warns, _sqrtm_that_is_silent):
        monkeypatch.setattr(scipy.linalg, "sqrtm", sqrtm)
        values.append(F.frechet_distance(mu1, s1, mu2, s2))
    assert values[0] == values[1]
    assert abs(values[0] - _mp_frechet(mu1, s1, mu2, s2)) <= 1e-7 * (np.trace(s1) + np.trace(s2))


def _pytorch_fid(mu1, sigma1, mu2, sigma2, eps=1e-6) -> float:
    """pytorch-fid's calculate_frechet_distance (src/pytorch_fid/fid_score.py,
    v0.3.0), written out: scipy sqrtm of the product; if that is not finite,
    eps * I added to both covariances; then the real part. (Its
    ``disp=False`` is dropped: deprecated since SciPy 1.16, same root.)"""
    diff = mu1 - mu2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1.dot(sigma2))
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("d, n", [(8, 100), (64, 1000), (128, 1000)])
def test_agrees_with_pytorch_fid_on_well_conditioned_statistics(d: int, n: int) -> None:
    rng = np.random.default_rng(d)
    x = rng.normal(size=(n, d)) @ rng.normal(size=(d, d))
    y = rng.normal(loc=0.3, size=(n, d)) @ rng.normal(size=(d, d))
    (mu1, s1), (mu2, s2) = F.feature_statistics(x), F.feature_statistics(y)
    assert F.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(_pytorch_fid(mu1, s1, mu2, s2),
                                                                 rel=1e-6)


def test_pytorch_fid_offset_is_biased_where_ours_is_exact() -> None:
    # Where pytorch-fid takes its fallback, the eps * I offset moves the value
    # by about 2 sqrt(eps * s) per direction null in one covariance only.
    s1, s2 = np.diag([4.0, 0.0, 0.0]), np.diag([1.0, 0.0, 2.0])
    mu1, mu2 = np.zeros(3), np.ones(3)
    exact = 3.0 + (4 + 1 - 2 * 2) + 2.0
    assert F.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(exact, abs=1e-12)
    eps = 1e-6
    offset = np.eye(3) * eps
    root = scipy.linalg.sqrtm((s1 + offset) @ (s2 + offset))  # pytorch-fid's fallback branch
    with_offset = 3.0 + np.trace(s1) + np.trace(s2) - 2 * np.trace(root.real)
    assert exact - with_offset == pytest.approx(2 * (np.sqrt(eps * 2) + eps) + 2.5 * eps, rel=1e-3)


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
    with pytest.raises(ValueError, match="n_fake must be >= 2, got 1"):
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
