"""The engine's spatial path for low-d inputs (csrc/kcenter_spatial.cpp).

Checked three ways: against a float64 brute force written here (independent
of the engine and of tests/kcenter_reference.py), bit for bit against the
eager traversal (every block updated every step: the same kernel without any
pruning), and across thread counts.  Every case asserts that the spatial path
ran and that it skipped blocks, so a fallback to the other path would fail.
"""
from __future__ import annotations

import numpy as np
import pytest

from smallgan import _core, kcenter

LEVELS = list(_core.available_simd_levels())
NO_SEL = np.empty(0, dtype=np.int64)
BLOCKED, SPATIAL = 1, 2


def brute_force(x, k, first=None, selected=()):
    """Farthest-first traversal in float64, the textbook way: O(n k) numpy.

    Returns (picks, pick distances, radius).  Ties go to the lowest index
    (np.argmax returns the first maximum); taken rows are masked with -1.
    """
    x = np.asarray(x, dtype=np.float64)
    d2 = np.full(len(x), np.inf)
    taken = np.zeros(len(x), dtype=bool)
    for s in selected:
        d2 = np.minimum(d2, ((x - x[s]) ** 2).sum(axis=1))
        taken[s] = True
    c = first if first is not None else int(np.argmax(np.where(taken, -1.0, d2)))
    picks, dists = [], []
    for _ in range(k):
        picks.append(c)
        dists.append(np.sqrt(d2[c]))
        taken[c] = True
        d2 = np.minimum(d2, ((x - x[c]) ** 2).sum(axis=1))
        c = int(np.argmax(np.where(taken, -1.0, d2)))
    rest = np.where(taken, -1.0, d2)
    return np.array(picks), np.array(dists), float(np.sqrt(max(rest.max(), 0.0)))


def engine(x, k, first=None, selected=NO_SEL, threads=1, path=SPATIAL, simd="", prune=True):
    """_core.kcenter with distances; returns (picks, distances, radius, info)."""
    level = -1 if not simd else _core.simd_level_id(simd)
    sel = np.asarray(selected, dtype=np.int64)
    idx, dist, radius, _, info = _core.kcenter(x, k, -1 if first is None else first, sel, threads, level,
                                               True, prune, path, stats=True)
    return idx, dist, radius, info


def assert_spatial_and_pruned(info, n, centres, d=3):
    # An eager traversal makes one block update per block and centre; boxes
    # of 16 rows rule out most blocks in 1-4 dimensions, fewer in 8 (uniform
    # 8-d data: about a third of them at these sizes).
    assert info["path"] == "spatial"
    assert info["block_updates"] < (0.5 if d <= 4 else 0.9) * centres * -(-n // 16), info


# ---------------------------------------------------------------- data

def uniform(n, d, seed):
    return np.random.default_rng(seed).random((n, d)).astype(np.float32)


def clustered(n, d, seed):
    # tight, well separated clusters, and a few far outliers: the case that
    # needs the refined (adaptive) Morton order
    r = np.random.default_rng(seed)
    centres = r.normal(scale=20.0, size=(12, d))
    x = centres[r.integers(0, 12, n)] + r.normal(scale=0.05, size=(n, d))
    x[r.choice(n, 5, replace=False)] = r.uniform(-500, 500, size=(5, d))
    return x.astype(np.float32)


def duplicated(n, d, seed):
    # n // 8 distinct points, each repeated about 8 times at scattered rows:
    # copies tie exactly, in float32 as in float64
    r = np.random.default_rng(seed)
    base = r.random((n // 8, d)).astype(np.float32)
    return base[r.integers(0, n // 8, n)]


def collinear(n, d, seed):
    # small integers on a line through the origin: every squared distance is
    # an exact integer below 2^24 in float32 too, so ties (points at equal
    # distance on both sides of a centre, at different Morton positions) are
    # exact in both precisions and must go to the lowest index
    r = np.random.default_rng(seed)
    direction = r.integers(1, 4, size=d)
    t = r.integers(-300, 301, size=n)
    return (t[:, None] * direction[None, :]).astype(np.float32)


def sphere(n, d, seed):
    # points on the unit sphere (at d = 1: only -1 and 1, a case of duplicates)
    v = np.random.default_rng(seed).normal(size=(n, d))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


KINDS = {"uniform": uniform, "clustered": clustered, "duplicated": duplicated, "collinear": collinear,
         "sphere": sphere}


# ---------------------------------------------------------------- exactness

@pytest.mark.parametrize("d", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("kind", list(KINDS))
def test_matches_float64_brute_force(kind, d):
    n, k = 3000, 320
    x = KINDS[kind](n, d, seed=d)
    idx, dist, radius, info = engine(x, k, first=7)
    assert_spatial_and_pruned(info, n, k, d)
    ref_idx, ref_dist, ref_radius = brute_force(x, k, first=7)
    # continuous data has no ties within float32 rounding; the tied cases are
    # exact in float32 (repeated rows, small integers)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-5, atol=1e-6)
    assert radius == pytest.approx(ref_radius, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize("kind", ["uniform", "duplicated", "collinear"])
@pytest.mark.parametrize("d", [2, 3])
def test_selected_and_first_through_the_public_api(kind, d):
    n = 4000
    x = KINDS[kind](n, d, seed=10 + d)
    sel = np.random.default_rng(d).choice(n, 40, replace=False)
    first = int(np.setdiff1d(np.arange(n), sel)[5])
    k = 300  # with len(selected), past the counts at which kcenter takes the spatial path
    assert _core.choose_path(n, d, k + len(sel)) == "spatial"
    for f in (None, first):
        idx, radius, dist = kcenter(x, k, selected=sel, first=f, return_radius=True, return_distances=True)
        ref_idx, ref_dist, ref_radius = brute_force(x, k, first=f, selected=sel)
        np.testing.assert_array_equal(idx, ref_idx)
        np.testing.assert_allclose(dist, ref_dist, rtol=1e-5, atol=1e-6)
        assert radius == pytest.approx(ref_radius, rel=1e-5, abs=1e-6)
        info = engine(x, k, first=f, selected=sel, path=0)[3]
        assert_spatial_and_pruned(info, n, k + len(sel), d)


def test_ties_go_to_the_lowest_original_index():
    # rings of integer points at distance 5 from their centre ((3,4), (5,0), ...),
    # rows shuffled: after each ring centre, every ring point ties exactly
    r = np.random.default_rng(0)
    ring = np.array([(3, 4), (4, 3), (5, 0), (0, 5), (-3, 4), (-4, 3), (-5, 0), (0, -5),
                     (3, -4), (4, -3), (-3, -4), (-4, -3)], dtype=np.float32)
    centres = np.stack(np.meshgrid(np.arange(0, 400, 40), np.arange(0, 400, 40)), -1).reshape(-1, 2)
    x = np.concatenate([centres + p for p in ring] + [centres]).astype(np.float32)
    x = x[r.permutation(len(x))]
    k = len(x) // 2
    idx, _, _, info = engine(x, k, first=0)
    assert_spatial_and_pruned(info, len(x), k)
    np.testing.assert_array_equal(idx, brute_force(x, k, first=0)[0])
    # all rows on one point: after the first, the lowest unselected index each time
    x = np.zeros((700, 3), dtype=np.float32)
    idx, dist, radius, info = engine(x, 700, first=300)
    np.testing.assert_array_equal(idx, [300] + [i for i in range(700) if i != 300])
    assert radius == 0.0 and (dist[1:] == 0).all()
    assert info["path"] == "spatial"


# ---------------------------------------------------------------- identical to the eager traversal

@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("d", [1, 2, 3, 4, 5, 7, 8, 9, 17, 32])
def test_bit_identical_to_eager(level, d):
    # same kernel, no pruning: distances and radius equal to the last bit,
    # also past d = 8 (the path can be asked for up to 32 columns)
    n, k = 2500, 400
    for x in (uniform(n, d, seed=d), clustered(n, d, seed=d)):
        got = engine(x, k, first=3, simd=level)
        eager = engine(x, k, first=3, simd=level, path=BLOCKED, prune=False)
        assert got[3]["path"] == "spatial" and eager[3]["path"] == "blocked"
        np.testing.assert_array_equal(got[0], eager[0])
        np.testing.assert_array_equal(got[1], eager[1])
        assert got[2] == eager[2]


@pytest.mark.parametrize("scale", [1e-19, 1e-3, 1e3, "bound"])
def test_bit_identical_at_extreme_magnitudes(scale):
    # tiny values (squared distances in float32's subnormal range) and values
    # just below the magnitude bound: the skip test's rounding margin must
    # hold at both ends
    d, n, k = 3, 2000, 500
    x = uniform(n, d, seed=5).astype(np.float64) * 2 - 1
    limit = np.sqrt(np.finfo(np.float32).max / d) / 4
    x = x * (0.99 * limit if scale == "bound" else scale)
    got = engine(x, k, first=0)
    eager = engine(x, k, first=0, path=BLOCKED, prune=False)
    assert got[3]["path"] == "spatial"
    np.testing.assert_array_equal(got[0], eager[0])
    np.testing.assert_array_equal(got[1], eager[1])
    assert got[2] == eager[2]


def rounded_grid(d, spacing, offset, seed):
    # points of a grid with a spacing float32 cannot represent: rows that are
    # equidistant from two centres in exact arithmetic differ by an ulp or so
    # in float32, so a block's largest min-distance and the distance from a
    # new centre to its box often agree to the last bits
    side = {1: 3000, 2: 55, 3: 15, 4: 8, 5: 5}[d]
    g = np.stack(np.meshgrid(*[np.arange(side)] * d, indexing="ij"), -1).reshape(-1, d)
    x = (offset + g * spacing).astype(np.float32)
    return x[np.random.default_rng(seed).permutation(len(x))]


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("d", [1, 2, 3, 4, 5])
@pytest.mark.parametrize("spacing,offset", [(0.1, 0.0), (0.1, 1000.0), (1e-22, 0.0), (3e-23, 1e-21)])
def test_bit_identical_where_rounding_decides(d, spacing, offset, level):
    # The skip test must hold with each kernel's rounding (relative margin;
    # the kernels sum the d terms in other orders than the box test) and in
    # float32's subnormal range (absolute margin): here any skipped block
    # holding a row that one more ulp would have lowered shows up as a
    # different distance or pick.
    x = rounded_grid(d, spacing, offset, seed=d)
    k = len(x) // 3
    got = engine(x, k, first=0, simd=level)
    eager = engine(x, k, first=0, simd=level, path=BLOCKED, prune=False)
    assert got[3]["path"] == "spatial"
    np.testing.assert_array_equal(got[0], eager[0])
    np.testing.assert_array_equal(got[1], eager[1])
    assert got[2] == eager[2]


# Offsets t (float32) found by search: the kernel of that SIMD level sums the
# squares of t in another order than the box test does, and gets a result one
# ulp below the box test's, while for the permuted offsets t[perm] the kernel
# gives exactly the box test's value for t.
ADVERSARIAL = {
    "avx2": ([1.2034552097320557, 1.2623133659362793, 1.7503646612167358], [0, 2, 1]),
    "avx512": ([1.852632761001587, 1.5929410457611084, 1.2600975036621094, 1.8398815393447876], [0, 2, 1, 3]),
}


@pytest.mark.parametrize("level", LEVELS)
@pytest.mark.parametrize("name", list(ADVERSARIAL))
def test_rounding_margin_is_needed(name, level):
    # Rows: an old centre at t[perm], a new centre at -t, and 32 copies of the
    # origin (so one block holds nothing else: its box is the point 0).  The
    # origin's min-distance after the old centre equals, to the last bit, the
    # box test's distance from the new centre to that block, but the kernel
    # puts the origin one ulp closer to the new centre.  Without the relative
    # margin that block is skipped and the third pick's distance is off by an
    # ulp (on the SIMD level the offsets were found for; the others must agree
    # with the eager traversal all the same).
    t, perm = np.array(ADVERSARIAL[name][0], dtype=np.float32), ADVERSARIAL[name][1]
    x = np.zeros((34, len(t)), dtype=np.float32)
    x[0], x[1] = t[perm], -t
    got = engine(x, 3, first=0, simd=level)
    eager = engine(x, 3, first=0, simd=level, path=BLOCKED, prune=False)
    assert got[3]["path"] == "spatial"
    np.testing.assert_array_equal(got[0], [0, 1, 2])
    np.testing.assert_array_equal(got[1], eager[1])
    assert got[2] == eager[2]


def test_bit_identical_with_selected_and_first():
    x = clustered(3000, 3, seed=4)
    sel = np.arange(0, 3000, 97)
    for first in (None, 5):
        got = engine(x, 300, first=first, selected=sel)
        eager = engine(x, 300, first=first, selected=sel, path=BLOCKED, prune=False)
        np.testing.assert_array_equal(got[0], eager[0])
        np.testing.assert_array_equal(got[1], eager[1])
        assert got[2] == eager[2]


def test_float64_and_strided_input_read_as_the_blocked_path_reads_it():
    base = np.random.default_rng(2).normal(size=(6000, 7))
    x = base[::2, 1:7:2]  # float64, both strides non-unit
    got = engine(x, 500, first=1)
    eager = engine(np.ascontiguousarray(x, dtype=np.float32), 500, first=1, path=BLOCKED, prune=False)
    np.testing.assert_array_equal(got[0], eager[0])
    np.testing.assert_array_equal(got[1], eager[1])


# ---------------------------------------------------------------- threads

def threads_used(x, k, threads):
    return _core.kcenter(x, k, 0, NO_SEL, threads, -1, False, True, SPATIAL)[3]


def test_one_and_two_threads_identical():
    # threads split the build, one per 2^16 rows at most: 140,000 rows take two
    x = clustered(140_000, 3, seed=9)
    assert threads_used(x, 1000, 2) == 2 and threads_used(x[:100_000], 1000, 2) == 1
    one = engine(x, 1000, first=0, threads=1)
    two = engine(x, 1000, first=0, threads=2)
    assert one[3]["path"] == two[3]["path"] == "spatial"
    np.testing.assert_array_equal(one[0], two[0])
    np.testing.assert_array_equal(one[1], two[1])
    assert one[2] == two[2]
    # the public call, automatic threads
    np.testing.assert_array_equal(kcenter(x, 1000, first=0), one[0])
    np.testing.assert_array_equal(kcenter(x, 1000, first=0, threads=2), one[0])


# ---------------------------------------------------------------- choice and errors

def test_training_sizes_keep_the_blocked_path():
    # k = 64 selections (the core-set batches) never pay for the sort
    for d in range(1, 9):
        for n in (256, 1024, 4096, 65536):
            assert _core.choose_path(n, d, 64) == "blocked"
    for d in (9, 32, 128):
        assert _core.choose_path(1 << 20, d, 1 << 14) == "blocked"
    assert _core.choose_path(100_000, 3, 4096) == "spatial"
    assert _core.choose_path(100_000, 2, 1024) == "spatial"


def test_spatial_path_refuses_many_columns():
    x = uniform(100, 33, seed=0)
    with pytest.raises(ValueError, match="the spatial path takes at most 32 columns, got d = 33"):
        engine(x, 5, first=0)


def test_bad_values_rejected_like_the_blocked_path():
    x = uniform(5000, 3, seed=1).astype(np.float64)
    x[4000, 2] = np.nan
    x[4500, 0] = np.inf
    with pytest.raises(ValueError, match=r"x contains 2 NaN or Inf value\(s\); the first is in row 4000"):
        kcenter(x, 1000, first=0)
