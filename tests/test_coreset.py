"""smallgan.kcenter against an independent float64 brute force (tests/kcenter_reference.py)."""
from __future__ import annotations

import re
import threading

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

import smallgan
from smallgan import _core, kcenter
from kcenter_reference import (assert_valid_greedy, box_points, float32_distance_bound, objective,
                               reference_kcenter)

LEVELS = list(_core.available_simd_levels())


def gaussian(n, d, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(dtype)


# ---------------------------------------------------------------- exactness

SHAPES = [
    (1, 1, 1), (1, 5, 1), (2, 1, 2), (7, 3, 7), (16, 8, 16), (17, 9, 5), (33, 2, 33),
    (100, 1, 50), (100, 2048, 20), (256, 17, 256), (512, 128, 128), (1024, 32, 128),
    (1000, 64, 999), (4099, 15, 300), (20000, 3, 200), (20000, 33, 64),
]


@pytest.mark.parametrize("n,d,k", SHAPES)
def test_matches_float64_reference(n, d, k):
    x = gaussian(n, d, seed=n * 31 + d)
    idx, radius, dists = kcenter(x, k, first=0, return_radius=True, return_distances=True)
    assert idx.dtype == np.int64 and idx.shape == (k,)
    ref_idx, ref_radius, ref_dists = reference_kcenter(x, k, first=0)
    np.testing.assert_array_equal(idx, ref_idx)  # continuous data: no ties within rounding
    assert radius == pytest.approx(ref_radius, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(dists, ref_dists, rtol=1e-5, atol=1e-6)
    assert radius == pytest.approx(objective(x, idx), rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.int8, np.int32,
                                   np.int64, np.uint8, np.bool_])
def test_dtypes(dtype):
    x = np.random.default_rng(3).integers(0, 50, size=(300, 7)).astype(dtype)
    idx, radius = kcenter(x, 40, first=5, return_radius=True)
    assert_valid_greedy(x.astype(np.float64), idx, first=5)
    assert radius == pytest.approx(objective(x, idx), rel=1e-5)


def test_float64_is_converted_not_truncated():
    # values that differ only beyond float32 precision relative to an offset
    x = gaussian(500, 6, seed=1, dtype=np.float64) * 1e-2 + 3.0
    idx = kcenter(x, 60, first=0)
    assert_valid_greedy(x, idx, first=0)


@pytest.mark.parametrize("view", ["rows", "cols", "transposed", "reversed", "both"])
def test_strided_inputs(view):
    base = gaussian(800, 40, seed=7, dtype=np.float64)
    x = {
        "rows": base[::3],
        "cols": base[:, ::4],
        "transposed": np.asfortranarray(base),
        "reversed": base[::-1, ::-1],
        "both": base[1::2, 3::5],
    }[view]
    before = x.copy()
    idx = kcenter(x, 50, first=1)
    np.testing.assert_array_equal(idx, reference_kcenter(x, 50, first=1)[0])
    np.testing.assert_array_equal(x, before)
    np.testing.assert_array_equal(idx, kcenter(np.ascontiguousarray(x), 50, first=1))


def test_input_never_modified_and_readonly_ok():
    x = gaussian(200, 5)
    x.setflags(write=False)
    before = x.copy()
    kcenter(x, 200, seed=0)
    np.testing.assert_array_equal(x, before)


def test_list_input_is_accepted():
    pts = [[0.0, 0.0], [1.0, 0.0], [0.0, 5.0], [0.1, 0.0]]
    np.testing.assert_array_equal(kcenter(pts, 3, first=0), [0, 2, 1])


# ---------------------------------------------------------------- duplicates and ties

def test_duplicates_give_unique_indices_lowest_first():
    x = np.zeros((10, 3), dtype=np.float32)
    x[7] = 1.0
    idx, radius, dists = kcenter(x, 10, first=4, return_radius=True, return_distances=True)
    # 7 is the only point away from 4; then everything is at distance 0 and the
    # lowest unselected index comes next
    np.testing.assert_array_equal(idx, [4, 7, 0, 1, 2, 3, 5, 6, 8, 9])
    np.testing.assert_allclose(dists, [np.inf, np.sqrt(3), 0, 0, 0, 0, 0, 0, 0, 0])
    assert radius == 0.0


def test_clustered_data_with_exact_duplicates(rng):
    centres = rng.normal(scale=10, size=(30, 8))
    labels = rng.integers(0, 30, size=3000)
    x = (centres[labels] + rng.normal(scale=0.01, size=(3000, 8))).astype(np.float32)
    x[::7] = x[0]  # many exact copies of row 0
    idx, radius = kcenter(x, 500, first=3, return_radius=True)
    assert len(np.unique(idx)) == 500
    ref_radius = assert_valid_greedy(x, idx, first=3)
    assert radius == pytest.approx(ref_radius, rel=1e-4, abs=1e-6)
    # the first 30 picks must hit the 30 clusters (well separated)
    assert len(np.unique(labels[idx[:30]])) == 30


def test_all_points_identical_k_equals_n():
    x = np.ones((37, 4))
    np.testing.assert_array_equal(kcenter(x, 37, first=36), [36] + list(range(36)))


def test_ties_break_to_lowest_index():
    # the four corners are all at distance sqrt(2) from the centre: 1 first;
    # then rows 2, 3 and 4 all stay at squared distance 2: 2 next
    x = np.array([[0, 0], [1, 1], [-1, 1], [1, -1], [-1, -1]], dtype=np.float32)
    np.testing.assert_array_equal(kcenter(x, 3, first=0), [0, 1, 2])


# ---------------------------------------------------------------- first, seed, selected

def test_first_default_drawn_from_seed():
    x = gaussian(300, 4)
    a = kcenter(x, 20, seed=42)
    b = kcenter(x, 20, seed=42)
    np.testing.assert_array_equal(a, b)
    assert a[0] == np.random.default_rng(42).integers(300)
    assert len({int(kcenter(x, 1, seed=s)[0]) for s in range(20)}) > 1


def test_selected_extends_reference():
    x = gaussian(700, 12, seed=9)
    sel = [5, 100, 650]
    idx, radius, dists = kcenter(x, 40, selected=sel, return_radius=True, return_distances=True)
    ref_idx, ref_radius, ref_dists = reference_kcenter(x, 40, selected=sel)
    np.testing.assert_array_equal(idx, ref_idx)
    assert not set(idx.tolist()) & set(sel)
    assert radius == pytest.approx(ref_radius, rel=1e-5)
    np.testing.assert_allclose(dists, ref_dists, rtol=1e-5)
    assert radius == pytest.approx(objective(x, list(sel) + idx.tolist()), rel=1e-5)


def test_selected_with_first():
    x = gaussian(400, 3, seed=2)
    idx, dists = kcenter(x, 10, selected=np.array([0, 1]), first=7, return_distances=True)
    ref_idx, _, ref_dists = reference_kcenter(x, 10, first=7, selected=[0, 1])
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dists, ref_dists, rtol=1e-5)


def test_selected_all_but_k():
    x = gaussian(50, 2)
    idx = kcenter(x, 5, selected=np.arange(45))
    assert sorted(idx.tolist()) == [45, 46, 47, 48, 49]


def test_greedy_is_a_2_approximation_on_small_problems(rng):
    # brute-force optimum over all 3-subsets of 14 points
    from itertools import combinations

    x = rng.normal(size=(14, 2))
    opt = min(objective(x, c) for c in combinations(range(14), 3))
    _, r = kcenter(x, 3, first=0, return_radius=True)
    assert opt - 1e-9 <= r <= 2 * opt + 1e-6


# ---------------------------------------------------------------- threads and SIMD levels

@pytest.mark.parametrize("n,d", [(5000, 64), (20000, 16), (3001, 100)])  # >= 2**18 floats
def test_one_and_two_threads_identical(n, d):
    x = gaussian(n, d, seed=n)
    assert _core.choose_threads(n, d, 2) == 2  # the 2-thread path really runs
    a = kcenter(x, 300, first=0, threads=1, return_distances=True)
    b = kcenter(x, 300, first=0, threads=2, return_distances=True)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_tie_rule_across_thread_chunks():
    # duplicates spread over both threads' chunks: lowest index must win
    x = np.zeros((4096, 8), dtype=np.float32)
    x[4000] = 3.0
    x[10] = 3.0
    for t in (1, 2):
        np.testing.assert_array_equal(kcenter(x, 4, first=0, threads=t), [0, 10, 1, 2])


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("d", [1, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64])
def test_simd_levels_match_baseline(level, d):
    for n in (1, 15, 16, 17, 63, 64, 65, 333):
        x = gaussian(n, d, seed=n + 100 * d)
        k = max(1, n // 3)
        base = kcenter(x, k, first=0, _simd="baseline", return_distances=True)
        got = kcenter(x, k, first=0, _simd=level, return_distances=True)
        np.testing.assert_array_equal(got[0], base[0])
        np.testing.assert_allclose(got[1], base[1], rtol=1e-5)


def test_simd_level_reported():
    assert _core.simd_level() in LEVELS
    assert "baseline" in LEVELS
    with pytest.raises(ValueError, match="unknown SIMD level 'sse9'"):
        kcenter(gaussian(4, 2), 1, first=0, _simd="sse9")


def test_env_override_lowers_level():
    import subprocess
    import sys

    code = "import smallgan._core as c; print(c.simd_level())"
    env = dict(__import__("os").environ, SMALLGAN_SIMD="baseline")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "baseline"


def test_show_config(capsys):
    info = smallgan.show_config()
    out = capsys.readouterr().out
    for key in ("simd_level", "openmp", "threads", "cuda_kernel", "pool_threads"):
        assert key in info and key in out
    assert info["simd_level"] in LEVELS


# ---------------------------------------------------------------- concurrency

def test_concurrent_calls_from_four_threads():
    xs = [gaussian(3000, 24, seed=s) for s in range(4)]
    expected = [reference_kcenter(x, 64, first=0)[0] for x in xs]
    results = [None] * 4
    errors = []

    def work(i):
        try:
            for _ in range(5):
                results[i] = kcenter(xs[i], 64, first=0)
                np.testing.assert_array_equal(results[i], expected[i])
        except Exception as exc:  # collected and re-raised in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("x,k,kw,exc,match", [
    (np.zeros(5), 1, {}, ValueError, r"x must be 2-D .* got shape \(5,\)"),
    (np.zeros((2, 2, 2)), 1, {}, ValueError, r"x must be 2-D .* got shape \(2, 2, 2\)"),
    (np.zeros((0, 3)), 1, {}, ValueError, r"at least one row, got shape \(0, 3\)"),
    (np.zeros((3, 0)), 1, {}, ValueError, r"at least one column, got shape \(3, 0\)"),
    (np.zeros((3, 2)), 0, {}, ValueError, r"k must be >= 1, got k = 0"),
    (np.zeros((3, 2)), -2, {}, ValueError, r"k must be >= 1, got k = -2"),
    (np.zeros((3, 2)), 4, {}, ValueError, r"k = 4 is larger than the number of points n = 3"),
    (np.zeros((3, 2)), 2.0, {}, TypeError, r"k must be an int, got 2.0"),
    (np.zeros((3, 2)), True, {}, TypeError, r"k must be an int, got True"),
    (np.zeros((3, 2)), 2, {"selected": [0, 1]}, ValueError, r"k = 2 is larger than the 1 rows not already in selected \(n = 3\)"),
    (np.zeros((3, 2)), 1, {"first": 3}, ValueError, r"first = 3 is out of range for n = 3"),
    (np.zeros((3, 2)), 1, {"first": -1}, ValueError, r"first = -1 is out of range for n = 3"),
    (np.zeros((3, 2)), 1, {"first": 1, "selected": [1]}, ValueError, r"first = 1 is already in selected"),
    (np.zeros((5, 2)), 1, {"selected": [0, 7]}, ValueError, r"selected contains index 7, out of range for n = 5"),
    (np.zeros((5, 2)), 1, {"selected": [-1]}, ValueError, r"selected contains index -1, out of range"),
    (np.zeros((5, 2)), 1, {"selected": [2, 2]}, ValueError, r"selected contains duplicate index 2"),
    (np.zeros((5, 2)), 1, {"selected": [0.5]}, TypeError, r"selected must hold integer indices, got dtype float64"),
    (np.zeros((5, 2)), 1, {"threads": 0}, ValueError, r"threads must be >= 1 or None, got 0"),
    (np.zeros((5, 2), dtype=complex), 1, {}, TypeError, r"x must be real-valued, got complex dtype complex128"),
    (np.array([[object()]]), 1, {}, TypeError, r"x must be a real numeric array, got dtype object"),
])
def test_bad_input_raises(x, k, kw, exc, match):
    with pytest.raises(exc, match=match):
        kcenter(x, k, **kw)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_rejected_with_count_and_row(bad):
    x = gaussian(100, 4, dtype=np.float64)
    x[17, 2] = bad
    x[60, 0] = bad
    before = x.copy()
    with pytest.raises(ValueError, match=r"x contains 2 NaN or Inf value\(s\); the first is in row 17"):
        kcenter(x, 5, first=0)
    np.testing.assert_array_equal(x, before)


def test_values_beyond_float32_distance_range_rejected():
    x = np.full((4, 2), 1e308)
    x[1] = -1e308
    with pytest.raises(ValueError, match=r"x has values up to 1e\+308 in magnitude; .* rescale x"):
        kcenter(x, 2, first=0)
    # |x| = 1e17 is accepted and its squared distances (8e34) fit in float32
    idx, radius = kcenter(x / 1e291, 2, first=0, return_radius=True)
    assert idx.tolist() == [0, 1] and radius == 0.0


# Squared distances are summed in float32.  The bound on |x| depends on d: at
# 2048 columns, |x| = 9e17 (below a flat 1e18) already overflowed every
# distance to inf and the picks fell to the lowest indices.

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [128, 2048])
@pytest.mark.parametrize("factor", [1.01, None])  # None: 9e17, inside the old flat bound
def test_values_above_the_d_dependent_bound_rejected(d, dtype, factor):
    bound = float32_distance_bound(d)
    magnitude = bound * factor if factor else 9e17
    x = box_points(48, d, magnitude, dtype)
    largest = float(np.abs(x).max())
    assert largest > bound
    msg = (rf"x has values up to {re.escape(f'{largest:.4g}')} in magnitude; distances are computed "
           rf"in float32, so for d = {d} columns \|x\| must stay below {re.escape(f'{bound:.4g}')}: rescale x")
    with pytest.raises(ValueError, match=msg):
        kcenter(x, 5, first=0)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("d", [128, 2048])
def test_values_just_below_the_bound_are_exact(d, dtype, level):
    x = box_points(48, d, 0.99 * float32_distance_bound(d), dtype)
    idx, radius, dists = kcenter(x, 12, first=0, return_radius=True, return_distances=True, _simd=level)
    ref_idx, ref_radius, ref_dists = reference_kcenter(x, 12, first=0)
    np.testing.assert_array_equal(idx, ref_idx)
    assert np.isfinite(dists[1:]).all() and np.isfinite(radius)
    np.testing.assert_allclose(dists, ref_dists, rtol=1e-5)
    assert radius == pytest.approx(ref_radius, rel=1e-5)


# ---------------------------------------------------------------- property tests

points = hnp.arrays(
    np.float64,
    st.tuples(st.integers(1, 60), st.integers(1, 6)),
    elements=st.floats(-100, 100, allow_nan=False, width=32),
)


@given(x=points, data=st.data())
def test_property_valid_greedy(x, data):
    n = x.shape[0]
    k = data.draw(st.integers(1, n))
    first = data.draw(st.integers(0, n - 1))
    idx, radius = kcenter(x, k, first=first, return_radius=True)
    assert len(set(idx.tolist())) == k and idx[0] == first
    ref_radius = assert_valid_greedy(x, idx, first=first)
    assert radius == pytest.approx(ref_radius, rel=1e-4, abs=1e-3)
    assert radius == pytest.approx(objective(x, idx), rel=1e-4, abs=1e-3)


@given(x=points, seed=st.integers(0, 2**32 - 1))
def test_property_radius_monotone_in_k(x, seed):
    n = x.shape[0]
    radii = [kcenter(x, k, seed=seed, return_radius=True)[1] for k in range(1, n + 1)]
    assert all(b <= a + 1e-9 for a, b in zip(radii, radii[1:]))
    assert radii[-1] == 0.0
    # prefix property: the k-selection is the first k of the n-selection
    full = kcenter(x, n, seed=seed)
    for k in (1, max(1, n // 2)):
        np.testing.assert_array_equal(kcenter(x, k, seed=seed), full[:k])


@given(x=points, data=st.data())
def test_property_selected_extends(x, data):
    n = x.shape[0]
    if n < 2:
        return
    sel = data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=n - 1, unique=True))
    k = data.draw(st.integers(1, n - len(sel)))
    idx = kcenter(x, k, selected=sel)
    assert not set(idx.tolist()) & set(sel)
    assert_valid_greedy(x, idx, selected=sel)


def test_squared_distances_that_underflow_float32_tie_at_zero():
    # found by the property above: both remaining points are 1.2e-38 or less
    # from the selected one, squared distances 1.4e-76 and 0 in float64, both 0
    # in float32; either pick is a farthest point to float32 precision
    x = np.array([[1.17549435e-38], [1.17549435e-38], [0.0]])
    idx = kcenter(x, 1, selected=[0])
    assert idx.tolist() in ([1], [2])
    assert_valid_greedy(x, idx, selected=[0])


# ---------------------------------------------------------------- lazy block updates

def _clustered(n, d, seed=0):
    r = np.random.default_rng(seed)
    centres = r.normal(scale=6, size=(40, d))
    return (centres[r.integers(0, 40, n)] + r.normal(size=(n, d))).astype(np.float32)


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 7, 8, 9, 17, 33, 130])
def test_lazy_updates_bit_identical_to_eager(level, d):
    # Skipped blocks catch up later with several centres at once (the 2- and
    # 4-centre kernel paths, with every partial-sum tail d % 4): the result,
    # distances included, must equal updating every block every step.
    sel = np.empty(0, dtype=np.int64)
    lvl = _core.simd_level_id(level)
    for x in (gaussian(700, d, seed=d), _clustered(900, d, seed=d)):
        for threads in (1, 2):
            lazy = _core.kcenter(x, 350, 0, sel, threads, lvl, True, True)
            eager = _core.kcenter(x, 350, 0, sel, 1, lvl, True, False)
            np.testing.assert_array_equal(lazy[0], eager[0])
            np.testing.assert_array_equal(lazy[1], eager[1])
            assert lazy[2] == eager[2]


def test_lazy_updates_with_selected_and_first():
    x = _clustered(3000, 6, seed=4)
    sel = np.arange(0, 3000, 97, dtype=np.int64)
    for first in (-1, 5):
        lazy = _core.kcenter(x, 200, first, sel, 2, -1, True, True)
        eager = _core.kcenter(x, 200, first, sel, 1, -1, True, False)
        np.testing.assert_array_equal(lazy[0], eager[0])
        np.testing.assert_array_equal(lazy[1], eager[1])
    ref = reference_kcenter(x, 200, selected=sel)
    got = kcenter(x, 200, selected=sel, return_distances=True)
    assert_valid_greedy(x, got[0], selected=sel)
    np.testing.assert_allclose(got[1][:20], ref[2][:20], rtol=1e-5)


def test_omp_num_threads_is_honoured():
    import os
    import subprocess
    import sys

    code = ("import smallgan._core as c; "
            "print(c.max_threads(), c.choose_threads(1 << 20, 64), c.choose_threads(1 << 20, 64, 2))")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    # the default follows OMP_NUM_THREADS; an explicit threads= still overrides it
    assert out.stdout.split() == ["1", "1", "2" if _core.openmp() else "1"]


def test_small_problems_run_serial():
    # the automatic choice keeps training sizes serial; an explicit request is
    # honoured up to one 16-row block per thread
    assert _core.choose_threads(1024, 32) == 1
    assert _core.choose_threads(512, 128) == 1
    assert _core.choose_threads(64, 1, 8) == 4
    if _core.openmp() and _core.max_threads() > 1:
        assert _core.choose_threads(65536, 64) == min(_core.max_threads(), 32)
