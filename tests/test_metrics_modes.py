"""Mode-dropping metrics against hand-computed cases."""
import math

import numpy as np
import pytest

from smallgan.metrics.modes import ModeStats, kl_from_uniform, mode_stats, nearest_mode

MEANS = np.array([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]])


def test_nearest_mode_hand_computed():
    x = np.array([[0.1, 0.0], [1.9, 0.1], [0.9, 1.2], [3.0, 3.0]])
    idx, dist = nearest_mode(x, MEANS)
    # (0.9, 1.2): distances 1.5, sqrt(1.21+1.44), sqrt(0.81+0.64)=1.204, sqrt(1.21+0.64)
    assert idx.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(dist, [0.1, np.hypot(0.1, 0.1), np.hypot(0.9, 0.8), np.hypot(1, 1)])


def test_nearest_mode_ties_go_to_lowest_index():
    idx, dist = nearest_mode(np.array([[1.0, 0.0]]), MEANS)
    assert idx.tolist() == [0] and dist.tolist() == [1.0]


def test_mode_stats_hand_computed():
    std = 0.05  # high quality: within 0.2
    x = np.array([
        [0.0, 0.0],    # mode 0, HQ
        [0.19, 0.0],   # mode 0, HQ (0.19 <= 0.2)
        [0.0, 0.25],   # mode 0, not HQ
        [2.0, 0.2],    # mode 1, HQ exactly at the boundary
        [1.0, 1.7],    # mode 2 (distance 1.044), not HQ
    ])
    s = mode_stats(x, MEANS, std)
    # histograms: all samples [3, 1, 1, 0] of 5; high-quality [2, 1, 0, 0] of 3
    kl = 0.6 * math.log(4 * 0.6) + 2 * 0.2 * math.log(4 * 0.2)
    kl_hq = (2 / 3) * math.log(4 * 2 / 3) + (1 / 3) * math.log(4 / 3)
    assert s == ModeStats(n_samples=5, n_modes=4, recovered=3, recovered_hq=2, high_quality=3,
                          kl_uniform=pytest.approx(kl, rel=1e-12),
                          kl_uniform_hq=pytest.approx(kl_hq, rel=1e-12))
    assert s.recovered_pct == 75.0
    assert s.recovered_hq_pct == 50.0
    assert s.high_quality_pct == 60.0
    d = s.as_dict()
    assert d["recovered"] == 3 and d["high_quality_pct"] == 60.0


def test_threshold_parameter():
    x = np.array([[0.3, 0.0]])
    assert mode_stats(x, MEANS, 0.05).high_quality == 0
    assert mode_stats(x, MEANS, 0.05, threshold=6.0).high_quality == 1


def test_real_data_is_almost_all_high_quality():
    from smallgan.data.gmm import GMMGrid

    grid = GMMGrid(25)
    x, labels = grid.sample(10_000, seed=1)
    s = mode_stats(x, grid.means, grid.std)
    # P(|N(0, s^2 I_2)| > 4 s) = exp(-8) = 0.03 %
    assert s.recovered == 25 and s.recovered_hq == 25
    assert s.high_quality >= 9_990
    idx, _ = nearest_mode(x, grid.means)
    assert (idx == labels).all()


def test_chunking_does_not_change_the_result():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 3, size=(1000, 2))
    a = nearest_mode(x, MEANS)
    b = nearest_mode(x, MEANS, chunk=7)
    assert (a[0] == b[0]).all() and (a[1] == b[1]).all()


@pytest.mark.parametrize("samples, match", [
    (np.zeros((0, 2)), "samples must be a non-empty 2-D array"),
    (np.zeros(4), "samples must be a non-empty 2-D array"),
    (np.array([[0.0, np.nan]]), "samples contains 1 rows with NaN or Inf"),
    (np.zeros((3, 3)), "samples have 3 columns but means have 2"),
])
def test_bad_samples(samples, match):
    with pytest.raises(ValueError, match=match):
        mode_stats(samples, MEANS, 0.05)


@pytest.mark.parametrize("kw, match", [
    ({"std": 0.0}, "std must be a positive finite number"),
    ({"std": float("nan")}, "std must be a positive finite number"),
    ({"std": 0.05, "threshold": -1.0}, "threshold must be a positive finite number"),
])
def test_bad_parameters(kw, match):
    with pytest.raises(ValueError, match=match):
        mode_stats(np.zeros((1, 2)), MEANS, **kw)


def test_kl_from_uniform_closed_cases():
    # uniform -> 0; one bin of m -> log m; half the mass on each of 2 of m bins -> log(m / 2)
    assert kl_from_uniform(np.full(7, 3)) == pytest.approx(0.0, abs=1e-15)
    assert kl_from_uniform(np.array([0, 0, 9, 0, 0])) == pytest.approx(math.log(5), rel=1e-12)
    assert kl_from_uniform(np.array([4, 0, 4, 0, 0, 0])) == pytest.approx(math.log(3), rel=1e-12)
    assert math.isnan(kl_from_uniform(np.zeros(3)))
    with pytest.raises(ValueError, match="counts"):
        kl_from_uniform(np.array([1, -1]))


def test_kl_matches_scipy_entropy_on_a_random_histogram():
    from scipy.stats import entropy

    counts = np.random.default_rng(0).integers(0, 50, size=100)
    assert kl_from_uniform(counts) == pytest.approx(entropy(counts, np.ones(100)), rel=1e-12)


def test_mode_stats_kl_zero_on_balanced_samples_and_log_m_on_one_mode():
    from smallgan.data.gmm import GMMGrid

    grid = GMMGrid(25)
    balanced = np.repeat(grid.means, 40, axis=0)   # exactly 40 per mode
    assert mode_stats(balanced, grid.means, grid.std).kl_uniform == pytest.approx(0.0, abs=1e-15)
    one = np.repeat(grid.means[:1], 1000, axis=0)
    s = mode_stats(one, grid.means, grid.std)
    assert s.kl_uniform == pytest.approx(math.log(25)) and s.kl_uniform_hq == pytest.approx(math.log(25))
