"""Precision/recall/density/coverage against the authors' code (prdc), a plain
float64 brute force, and closed cases."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from smallgan.metrics.prdc import PRDC, knn_radii, prdc


def _brute(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float, float, float]:
    """Independent reference: full float64 distance matrices by direct
    differences, radii from sorted rows (self at 0 included), strict <."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    d_rf = np.sqrt(((real[:, None, :] - fake[None, :, :]) ** 2).sum(-1))
    d_rr = np.sqrt(((real[:, None, :] - real[None, :, :]) ** 2).sum(-1))
    d_ff = np.sqrt(((fake[:, None, :] - fake[None, :, :]) ** 2).sum(-1))
    rad_r = np.sort(d_rr, axis=1)[:, k]
    rad_f = np.sort(d_ff, axis=1)[:, k]
    in_real = d_rf < rad_r[:, None]
    in_fake = d_rf < rad_f[None, :]
    return (float(in_real.any(axis=0).mean()), float(in_fake.any(axis=1).mean()),
            float(in_real.sum() / (k * fake.shape[0])), float(in_real.any(axis=1).mean()))


def _values(r: PRDC) -> tuple[float, float, float, float]:
    return (r.precision, r.recall, r.density, r.coverage)


def _reference_prdc(real: np.ndarray, fake: np.ndarray, k: int) -> dict:
    from prdc import compute_prdc

    with contextlib.redirect_stdout(io.StringIO()):  # it prints the sample counts
        return {key: float(v) for key, v in compute_prdc(real, fake, k).items()}


@pytest.mark.parametrize("n, m, d, k, shift", [(600, 500, 16, 5, 0.3), (400, 900, 64, 3, 0.0),
                                               (300, 300, 2, 10, 1.0), (250, 200, 1, 1, 0.5)])
def test_matches_authors_reference(n: int, m: int, d: int, k: int, shift: float) -> None:
    rng = np.random.default_rng(n + d)
    real = rng.normal(size=(n, d))
    fake = rng.normal(size=(m, d)) * 1.3 + shift
    ref = _reference_prdc(real, fake, k)
    got = prdc(real, fake, k)
    # Continuous data: no distance lies within rounding of a radius, so the
    # fractions agree exactly and the density to rounding.
    assert (got.precision, got.recall, got.coverage) == (ref["precision"], ref["recall"],
                                                          ref["coverage"])
    assert got.density == pytest.approx(ref["density"], rel=1e-12)
    # and the authors' code is itself what the brute force says
    assert got.density == pytest.approx(_brute(real, fake, k)[2], rel=1e-12)


def test_identical_sets_give_one() -> None:
    x = np.random.default_rng(1).normal(size=(300, 10))
    r = prdc(x, x.copy(), 5)
    assert (r.precision, r.recall, r.coverage) == (1.0, 1.0, 1.0)
    assert r.density == pytest.approx(_brute(x, x, 5)[2], rel=1e-12)


def test_far_apart_sets_give_zero() -> None:
    rng = np.random.default_rng(2)
    real = rng.normal(size=(200, 8))
    fake = rng.normal(size=(150, 8)) + 1000.0
    assert _values(prdc(real, fake, 5)) == (0.0, 0.0, 0.0, 0.0)


def test_ties_and_duplicates_match_brute_force() -> None:
    # Integer lattice points far from the origin: many distances tie exactly
    # with a radius (strict < decides), and duplicates give zero radii.
    rng = np.random.default_rng(3)
    real = rng.integers(0, 4, size=(300, 3)).astype(np.float64) + 1e4
    fake = rng.integers(0, 4, size=(250, 3)).astype(np.float64) + 1e4
    for k in (1, 3, 5):
        assert _values(prdc(real, fake, k)) == pytest.approx(_brute(real, fake, k), abs=1e-15)


def test_boundary_within_float32_rounding_is_decided_exactly() -> None:
    # Fakes at (1 -+ 1e-9) times a real point's radius from it: float32 cannot
    # tell inside from outside; the exact float64 recomputation must.
    rng = np.random.default_rng(4)
    real = rng.normal(size=(200, 24))
    k = 4
    d_rr = np.sqrt(((real[:, None] - real[None]) ** 2).sum(-1))
    radius = np.sort(d_rr, axis=1)[:, k]
    u = rng.normal(size=(100, 24))
    u /= np.linalg.norm(u, axis=1, keepdims=True)
    which = rng.integers(0, 200, size=100)
    sign = np.where(np.arange(100) % 2 == 0, -1.0, 1.0)
    fake = real[which] + u * (radius[which] * (1 + sign * 1e-9))[:, None]
    got, ref = prdc(real, fake, k), _brute(real, fake, k)
    assert _values(got) == pytest.approx(ref, abs=1e-15)


def test_scale_and_offset_do_not_change_the_result() -> None:
    rng = np.random.default_rng(5)
    real = rng.normal(size=(250, 12))
    fake = rng.normal(size=(200, 12)) * 0.8
    base = _values(prdc(real, fake, 3))
    assert base == pytest.approx(_brute(real, fake, 3), abs=1e-15)
    for scale, offset in ((2.0 ** 40, 0.0), (1e-30, 0.0), (1.0, 3e3), (2.0 ** -20, 1.0)):
        got = _values(prdc(real * scale + offset, fake * scale + offset, 3))
        assert got == pytest.approx(_brute(real * scale + offset, fake * scale + offset, 3),
                                    abs=1e-15)


@pytest.mark.parametrize("block", [1, 7, 64, 10_000])
def test_block_size_does_not_change_the_result(block: int) -> None:
    rng = np.random.default_rng(6)
    real = rng.normal(size=(150, 5))
    fake = rng.normal(size=(130, 5)) + 0.2
    assert _values(prdc(real, fake, 3, block=block)) == pytest.approx(_brute(real, fake, 3),
                                                                       abs=1e-15)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2**32 - 1), st.integers(8, 40), st.integers(8, 40),
       st.integers(1, 6))
def test_random_small_integer_sets_match_brute_force(k: int, seed: int, n: int, m: int,
                                                     d: int) -> None:
    rng = np.random.default_rng(seed)
    real = rng.integers(-3, 4, size=(n, d)).astype(np.float64)
    fake = rng.integers(-2, 5, size=(m, d)).astype(np.float64)
    assert _values(prdc(real, fake, k)) == pytest.approx(_brute(real, fake, k), abs=1e-15)


@settings(max_examples=30, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(3, 30), st.integers(1, 4)),
                  elements=st.floats(-100, 100, allow_nan=False, width=32)),
       st.integers(1, 2))
def test_knn_radii_match_sorted_distances(x: np.ndarray, k: int) -> None:
    d = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    expect = np.sort(d, axis=1)[:, k]
    np.testing.assert_allclose(knn_radii(x, k), expect, rtol=1e-12, atol=0)


def test_duplicates_give_zero_radius() -> None:
    x = np.repeat(np.arange(10.0)[:, None], 3, axis=0)  # every point three times
    assert np.all(knn_radii(x, 2) == 0.0)
    assert knn_radii(x, 3).min() == 1.0


def test_many_duplicates_take_the_brute_force_path() -> None:
    # 40 copies of each point: the search's k + 9 candidates are all at
    # distance 0, so every row falls back to the exact brute force.
    rng = np.random.default_rng(9)
    x = np.repeat(rng.normal(size=(5, 4)), 40, axis=0)
    expect = np.sort(np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)), axis=1)[:, 39:41]
    np.testing.assert_array_equal(knn_radii(x, 39), expect[:, 0])
    np.testing.assert_array_equal(knn_radii(x, 40), expect[:, 1])
    # a collapsed generator: zero fake radii, so recall is 0
    real = rng.normal(size=(200, 4))
    got = prdc(real, x, 5)
    assert got.recall == 0.0
    assert _values(got) == pytest.approx(_brute(real, x, 5), abs=1e-15)


def test_torch_and_float32_inputs() -> None:
    rng = np.random.default_rng(7)
    real = rng.normal(size=(120, 6)).astype(np.float32)
    fake = rng.normal(size=(100, 6)).astype(np.float32) + 0.1
    got = prdc(torch.from_numpy(real), torch.from_numpy(fake), 3, feature="mnist-cnn")
    assert _values(got) == pytest.approx(_brute(real, fake, 3), abs=1e-15)
    assert got.feature == "mnist-cnn" and (got.n_real, got.n_fake, got.nearest_k) == (120, 100, 3)
    assert str(got).endswith("(k=3, 120 real / 100 fake, mnist-cnn)")
    assert got.as_dict()["precision"] == got.precision


def test_threads_do_not_change_the_result() -> None:
    rng = np.random.default_rng(8)
    real, fake = rng.normal(size=(300, 9)), rng.normal(size=(280, 9))
    assert _values(prdc(real, fake, 5, threads=1)) == _values(prdc(real, fake, 5, threads=2))


def test_bad_arguments() -> None:
    x = np.zeros((10, 3)) + np.arange(10)[:, None]
    with pytest.raises(ValueError, match="nearest_k must be < the number of samples on each side, "
                                         "got nearest_k=10 with 10 real and 12 fake"):
        prdc(x, np.vstack([x, x[:2] + 0.5]), 10)
    with pytest.raises(ValueError, match="nearest_k must be >= 1, got 0"):
        prdc(x, x, 0)
    with pytest.raises(TypeError, match="nearest_k must be an int, got 2.5"):
        prdc(x, x, 2.5)
    with pytest.raises(ValueError, match="same width, got 3 and 2"):
        prdc(x, x[:, :2], 2)
    with pytest.raises(ValueError, match=r"fake_features must be a non-empty 2-D array \(n, d\), "
                                         r"got shape \(10,\)"):
        prdc(x, x[:, 0], 2)
    bad = x.copy()
    bad[4, 1] = np.nan
    with pytest.raises(ValueError, match=r"real_features contains 1 rows with NaN or Inf \(first at row 4\)"):
        prdc(bad, x, 2)
    with pytest.raises(TypeError, match="real_features must be a real numeric array, got dtype object"):
        prdc(np.array([[object()]] * 3), x, 1)
    with pytest.raises(TypeError, match="real_features must be a real numeric array, got dtype complex128"):
        prdc(x + 1j, x, 1)
    with pytest.raises(ValueError, match="block must be >= 1, got 0"):
        prdc(x, x, 2, block=0)
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        prdc(x, x, 2, threads=0)
    with pytest.raises(ValueError, match="k must be <= 9, got 10"):
        knn_radii(x, 10)
