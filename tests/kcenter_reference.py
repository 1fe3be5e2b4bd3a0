"""Independent float64 brute-force greedy k-center, written plainly for tests.

Nothing here shares code with the engine: O(n * d) numpy per step on float64
copies, the textbook farthest-first traversal.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np


def sqdist_to(x: np.ndarray, i: int) -> np.ndarray:
    diff = x - x[i]
    return np.einsum("ij,ij->i", diff, diff)


def reference_kcenter(x, k: int, first: Optional[int] = None, selected: Sequence[int] = ()):
    """Returns (picks, radius, pick_distances) computed in float64.

    Ties: lowest index (np.argmax returns the first maximum); centres never
    re-picked (they are masked with -1).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    mind = np.full(n, np.inf)
    for s in selected:
        mind = np.minimum(mind, sqdist_to(x, s))
        mind[s] = -1.0
    picks, dists = [], []
    c = first if first is not None else int(np.argmax(mind))
    for _ in range(k):
        picks.append(c)
        dists.append(np.sqrt(max(mind[c], 0.0)))
        mind = np.minimum(mind, sqdist_to(x, c))
        mind[c] = -1.0
        c = int(np.argmax(mind))
    radius = np.sqrt(max(mind.max(), 0.0))
    return np.array(picks, dtype=np.int64), float(radius), np.array(dists)


def objective(x, centres: Sequence[int]) -> float:
    """k-center objective: max over rows of the distance to the nearest centre."""
    x = np.asarray(x, dtype=np.float64)
    mind = np.full(x.shape[0], np.inf)
    for c in centres:
        mind = np.minimum(mind, sqdist_to(x, c))
    return float(np.sqrt(mind.max()))


def assert_valid_greedy(x, picks, first=None, selected=()):
    """Replays ``picks`` in float64: each must be a farthest remaining point.

    Where two candidates' distances tie within float32 rounding the engine may
    pick either; everywhere else the pick must be exactly the reference's.
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    picks = np.asarray(picks)
    assert len(set(picks.tolist())) == len(picks), "indices repeat"
    assert not set(picks.tolist()) & set(int(s) for s in selected), "re-picked a selected index"
    mind = np.full(n, np.inf)
    for s in selected:
        mind = np.minimum(mind, sqdist_to(x, s))
        mind[s] = -1.0
    d = x.shape[1]
    eps = float(np.finfo(np.float32).eps)
    maxabs = float(np.abs(x).max())
    for t, p in enumerate(picks):
        if t == 0 and first is not None:
            assert p == first
        elif not (t == 0 and len(selected) == 0):
            best = mind.max()
            # float32 rounding: d terms summed, and x itself rounded to float32;
            # plus underflow: a squared difference below float32's smallest
            # normal number (|diff| < 1.1e-19) is subnormal or 0 in float32, an
            # absolute error of up to `tiny` per term (hypothesis found
            # x = [[1.2e-38], [1.2e-38], [0]]: float64 1.4e-76, float32 0)
            tiny = float(np.finfo(np.float32).tiny)
            tol = ((1e-5 + 4 * d * eps) * best + 8 * eps * maxabs * np.sqrt(max(best, 0.0) * d)
                   + 2 * d * tiny)
            assert mind[p] >= best - tol, f"step {t}: picked {p} at {mind[p]}, farthest is {best} (row {np.argmax(mind)})"
            if best > 0:
                close = np.flatnonzero(mind >= best - tol)
                if len(close) == 1:
                    assert p == close[0]
            else:
                # every remaining point coincides with a centre: lowest unselected index
                assert p == np.flatnonzero(mind >= 0)[0], f"step {t}: expected lowest unselected index"
        mind = np.minimum(mind, sqdist_to(x, p))
        mind[p] = -1.0
    return np.sqrt(max(mind.max(), 0.0))


def float32_distance_bound(d: int) -> float:
    """The documented largest |x| for d columns: sqrt(FLT_MAX / d) / 4, so that
    the largest squared distance, d * (2 * max|x|)^2, is at most FLT_MAX / 4."""
    return float(np.sqrt(float(np.finfo(np.float32).max) / d) / 4)


def box_points(n: int, d: int, magnitude: float, dtype=np.float64, seed: int = 0) -> np.ndarray:
    """n points uniform in [-magnitude, magnitude]^d, rows 3 and 7 at opposite
    corners: the largest squared distance the box allows, d * (2 * magnitude)^2."""
    x = np.random.default_rng(seed).uniform(-1.0, 1.0, size=(n, d)) * magnitude
    x[3] = magnitude
    x[7] = -magnitude
    return x.astype(dtype)
