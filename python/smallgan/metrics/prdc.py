"""Precision, recall, density and coverage of generated samples in a feature space.

Each real sample ``r_i`` gets a ball whose radius ``rad_r(i)`` is the
distance to its k-th nearest *other* real sample; each fake sample ``f_j``
likewise ``rad_f(j)`` among the fakes.  With ``d(i, j) = |r_i - f_j|``:

- precision (Kynkäänniemi et al. 2019): fraction of fakes inside at least
  one real ball, ``mean_j [exists i: d(i, j) < rad_r(i)]``;
- recall (same paper): fraction of reals inside at least one fake ball,
  ``mean_i [exists j: d(i, j) < rad_f(j)]``;
- density (Naeem et al. 2020): how many real balls hold each fake, over k,
  ``mean_j sum_i [d(i, j) < rad_r(i)] / k`` (about 1 when the distributions
  match; above 1 when fakes crowd dense real regions);
- coverage (same paper): fraction of real balls holding at least one fake,
  ``mean_i [exists j: d(i, j) < rad_r(i)]``.

This follows the authors' reference code (the ``prdc`` package): strict
``<``; radii from the (k+1)-th smallest distance of each row *including*
the point itself, so a duplicate of a point counts as one of its
neighbours at distance 0; ``nearest_k`` 5 by default (Naeem et al.'s
choice; Kynkäänniemi et al. used 3).

How it scales (50k x 50k and more) and stays exact: the k-NN searches
that give the radii run on faiss (``IndexFlatL2``: exhaustive, float32,
multi-threaded BLAS) for k + 9 candidates per point, whose distances are
then recomputed in float64; a row where a point the search left out could
still be nearer, by a rigorous bound on float32 rounding, is redone by
brute force.  The real x fake comparisons run in blocks of float32 matrix
products, never holding the n x m matrix, and every comparison that float32
rounding could decide wrongly (same bound) is redone in float64.  So the
result equals a float64 brute force by direct differences, ties included.
Memory is O((n + m) d) plus one block; time is O((n + m)^2 d), as for any
exact method (20k x 20k at d = 64: about 8 s on two busy cores).

Features can come from anything: Inception pool3 (:mod:`smallgan.inception`,
with local weights), the project's MNIST classifier
(:class:`smallgan.metrics.classifier.DigitFeatures`), or any array.

Example
-------
>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(200, 8))
>>> r = prdc(x, x, nearest_k=5)
>>> (r.precision, r.recall, r.coverage)
(1.0, 1.0, 1.0)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional

import numpy as np

from smallgan.checks import check_int
from smallgan.metrics.threads import limit_threads

__all__ = ["PRDC", "prdc", "knn_radii", "DEFAULT_K"]

#: Naeem et al. (2020) recommend k = 5 (with 10,000 samples a side).
DEFAULT_K = 5
# float32 unit roundoff
_U32 = 2.0 ** -24
# Target size of one real x fake block, in entries (64 MB of float32).
_BLOCK_ENTRIES = 1 << 24


def _faiss():
    try:
        import faiss
    except ModuleNotFoundError as exc:  # pragma: no cover - faiss is in the train/test extras
        raise ModuleNotFoundError(
            "precision/recall/density/coverage need faiss for their k-NN radii: "
            "pip install faiss-cpu (or 'smallgan[train]')", name=exc.name) from exc
    return faiss


def _features(name: str, x: Any) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype == object or np.iscomplexobj(a) or not (np.issubdtype(a.dtype, np.number)
                                                       or a.dtype == np.bool_):
        raise TypeError(f"{name} must be a real numeric array, got dtype {a.dtype}")
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (n, d), got shape {a.shape}")
    a = a.astype(np.float64)
    bad = ~np.isfinite(a)
    if bad.any():
        rows = bad.any(axis=1)
        raise ValueError(f"{name} contains {int(rows.sum())} rows with NaN or Inf "
                         f"(first at row {int(np.argmax(rows))})")
    return a


def _sq_dist_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact float64 squared distances between rows of a and b, pairwise
    along the first axes (broadcast), by direct differences."""
    diff = a - b
    return np.einsum("...d,...d->...", diff, diff)


def _power_of_two_scaled(*arrays: np.ndarray) -> list:
    """The arrays times one power of two that brings their largest entry into
    [0.5, 1): exact in float64, so every comparison is unchanged, and it keeps
    the float32 passes clear of overflow and of underflow whatever the
    features' magnitude.  The last item is the factor."""
    top = max(float(np.abs(a).max()) for a in arrays)
    scale = np.ldexp(1.0, -int(np.frexp(top)[1])) if top > 0 else 1.0
    return [a * scale for a in arrays] + [scale]


def _error_scale(d: int) -> float:
    """c such that c (|a|^2 + |b|^2) bounds the error of a float32 squared
    distance |a|^2 + |b|^2 - 2 a.b between d-dimensional float64 vectors a, b
    (already centred): rounding the inputs to float32 (about 3u), a d-term
    dot product and the norms (gamma_d each, any summation order, FMA or
    not; the dot product's terms sum to at most (|a|^2 + |b|^2) / 2) and the
    final additions, plus the centring itself (4u).  Generous on purpose:
    every value within the bound of a decision is recomputed exactly, so the
    bound only has to be valid, not tight."""
    return (2 * d + 24) * _U32


def _exact_rows_kth(x: np.ndarray, rows: np.ndarray, k: int) -> np.ndarray:
    """(k+1)-th smallest exact squared distance from x[rows] to all of x (itself included)."""
    n, d = x.shape
    out = np.empty(rows.size, dtype=np.float64)
    step = max(1, (1 << 22) // (n * d))  # bound the (rows, n, d) temporary
    for s in range(0, rows.size, step):
        r = rows[s:s + step]
        full = np.empty((r.size, n))
        inner = max(1, (1 << 22) // max(1, r.size * d))
        for t in range(0, n, inner):
            full[:, t:t + inner] = _sq_dist_rows(x[r][:, None, :], x[None, t:t + inner, :])
        out[s:s + step] = np.partition(full, k, axis=1)[:, k]
    return out


#: Candidates beyond the k + 1 nearest that the search returns, so that
#: neighbours tied within float32 rounding are still measured exactly.
_EXTRA = 8


def _knn_sq_radii(x: np.ndarray, k: int, threads: Optional[int]) -> np.ndarray:
    """Squared distance of each row of x to its (k+1)-th nearest row of x,
    itself included (i.e. its k-th nearest other row), float64, equal to the
    float64 brute force by direct differences."""
    faiss = _faiss()
    n, d = x.shape
    # Centred for the float32 search: distances do not change, but the
    # cancellation in |a|^2 + |b|^2 - 2ab shrinks with the norms (features
    # far from the origin, e.g. all-positive ReLU outputs, would otherwise
    # lose most of their digits).
    xc = x - x.mean(axis=0)
    x32 = np.ascontiguousarray(xc, dtype=np.float32)
    # k + 1: each point finds itself (or a duplicate) at distance 0 first.
    q = min(n, k + 1 + _EXTRA)
    old = faiss.omp_get_max_threads()
    if threads is not None:
        faiss.omp_set_num_threads(threads)
    try:
        index = faiss.IndexFlatL2(d)
        index.add(x32)
        dist32, nbr = index.search(x32, q)
    finally:
        faiss.omp_set_num_threads(old)
    # faiss ranks in float32; measure the q candidates it found exactly and
    # take the (k+1)-th smallest.
    out = np.empty(n, dtype=np.float64)
    step = max(1, (1 << 22) // (q * d))  # bound the (rows, q, d) temporary
    for s in range(0, n, step):
        exact = _sq_dist_rows(x[s:s + step, None, :], x[nbr[s:s + step]])
        out[s:s + step] = np.partition(exact, k, axis=1)[:, k]
    if q < n:
        # A point the search left out is at float32 distance >= the last
        # candidate's, so its exact one is >= that minus the error bound.
        # Where that floor is not above the radius found, a left-out point
        # might be nearer (a near-tie, or many duplicates): do that row by
        # brute force.
        norms = np.einsum("ij,ij->i", xc, xc)
        floor = dist32[:, -1].astype(np.float64) - _error_scale(d) * (norms + norms.max())
        doubtful = np.flatnonzero(floor < out)
        if doubtful.size:
            out[doubtful] = _exact_rows_kth(x, doubtful, k)
    return out


def knn_radii(features: Any, k: int = DEFAULT_K, *, threads: Optional[int] = None) -> np.ndarray:
    """Distance from each row to its k-th nearest other row (faiss search,
    float64 distances).

    Parameters
    ----------
    features : array, shape (n, d), n > k
    k : int
        Neighbour rank; a duplicate of a row counts as a neighbour at 0.
    threads : int, optional
        faiss (OpenMP) threads for the search; default: faiss's setting.

    Returns
    -------
    ndarray, shape (n,), float64
    """
    x = _features("features", features)
    check_int("k", k, 1, x.shape[0] - 1)
    if threads is not None:
        check_int("threads", threads, 1)
    x, scale = _power_of_two_scaled(x)
    return np.sqrt(_knn_sq_radii(x, k, threads)) / scale


@dataclass(frozen=True)
class PRDC:
    """Precision, recall, density and coverage with the protocol that made them.

    Attributes
    ----------
    precision, recall, density, coverage : float
    nearest_k : int
    n_real, n_fake : int
    feature : str
        What the features were (e.g. ``"inception"``, ``"mnist-cnn"``);
        values from different feature spaces are not comparable.
    """

    precision: float
    recall: float
    density: float
    coverage: float
    nearest_k: int
    n_real: int
    n_fake: int
    feature: str = "features"

    @property
    def protocol(self) -> str:
        return f"k={self.nearest_k}, {_count(self.n_real)} real / {_count(self.n_fake)} fake, {self.feature}"

    def __str__(self) -> str:
        return (f"precision {self.precision:.3f} recall {self.recall:.3f} density "
                f"{self.density:.3f} coverage {self.coverage:.3f} ({self.protocol})")

    def as_dict(self) -> Dict[str, Any]:
        return {"precision": self.precision, "recall": self.recall, "density": self.density,
                "coverage": self.coverage, "prdc_k": self.nearest_k, "prdc_n_real": self.n_real,
                "prdc_n_fake": self.n_fake, "prdc_feature": self.feature}


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def prdc(real_features: Any, fake_features: Any, nearest_k: int = DEFAULT_K, *,
         feature: str = "features", threads: Optional[int] = None,
         block: Optional[int] = None) -> PRDC:
    """Precision, recall, density and coverage (see the module docstring).

    Parameters
    ----------
    real_features : array, shape (n, d)
    fake_features : array, shape (m, d)
        Any real dtype (numpy or torch); compared in float64.  Both need
        more than ``nearest_k`` rows.
    nearest_k : int
        k of the k-NN radii (default 5).
    feature : str
        Name of the feature space, carried into the result.
    threads : int, optional
        Threads for faiss's search and numpy's block products (see
        :func:`smallgan.metrics.threads.limit_threads`); default: unchanged.
    block : int, optional
        Fakes per block of the real x fake pass (default: about 16M entries
        per block).  Does not change the result.

    Returns
    -------
    PRDC

    Raises
    ------
    ValueError
        Not 2-D, empty, NaN/Inf, different widths, ``nearest_k`` out of
        ``[1, min(n, m) - 1]``.
    TypeError
        Non-numeric arrays, a non-integer ``nearest_k``.

    Thread safety: safe to call from several threads, except that a
    ``threads`` argument sets the process's BLAS/OpenMP thread counts while
    it runs.
    """
    real = _features("real_features", real_features)
    fake = _features("fake_features", fake_features)
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"real_features and fake_features must have the same width, got "
                         f"{real.shape[1]} and {fake.shape[1]}")
    n, m = real.shape[0], fake.shape[0]
    k = check_int("nearest_k", nearest_k, 1)
    if k >= min(n, m):
        raise ValueError(f"nearest_k must be < the number of samples on each side, got "
                         f"nearest_k={k} with {n} real and {m} fake")
    if threads is not None:
        check_int("threads", threads, 1)
    if not isinstance(feature, str):
        raise TypeError(f"feature must be a str, got {feature!r}")
    if block is None:
        block = max(1, _BLOCK_ENTRIES // n)
    block = check_int("block", block, 1)
    with limit_threads(threads):
        return _prdc(real, fake, k, feature, threads, block)


def _prdc(real: np.ndarray, fake: np.ndarray, k: int, feature: str, threads: Optional[int],
          block: int) -> PRDC:
    n, m = real.shape[0], fake.shape[0]
    real, fake, _ = _power_of_two_scaled(real, fake)

    r2_real = _knn_sq_radii(real, k, threads)  # (n,)
    r2_fake = _knn_sq_radii(fake, k, threads)  # (m,)

    # The float32 pass works on centred copies (less cancellation, as in
    # the search); exact recomputations use the features themselves.
    mu = (real.sum(axis=0) + fake.sum(axis=0)) / (n + m)
    real_c, fake_c = real - mu, fake - mu
    nr = np.einsum("ij,ij->i", real_c, real_c)  # squared norms, float64
    nf = np.einsum("ij,ij->i", fake_c, fake_c)
    d = real.shape[1]
    # One float32 product gives a block of squared distances directly:
    # [r, |r|^2, 1] . [-2 f, 1, |f|^2] = |r|^2 + |f|^2 - 2 r.f.
    real_aug = np.empty((n, d + 2), dtype=np.float32)
    real_aug[:, :d], real_aug[:, d], real_aug[:, d + 1] = real_c, nr, 1.0
    # float32 error bound (see _error_scale), per |r|^2 + |f|^2
    c = _error_scale(d)
    nr_max = float(nr.max())

    in_real_balls = np.zeros(m, dtype=np.int64)  # per fake: real balls holding it
    covered = np.zeros(n, dtype=bool)             # per real: its ball holds a fake
    recalled = np.zeros(n, dtype=bool)            # per real: inside some fake ball
    for s in range(0, m, block):
        f64, nf_b, r2f_b = fake[s:s + block], nf[s:s + block], r2_fake[s:s + block]
        fake_aug = np.empty((f64.shape[0], d + 2), dtype=np.float32)
        fake_aug[:, :d], fake_aug[:, d], fake_aug[:, d + 1] = -2.0 * fake_c[s:s + block], 1.0, nf_b
        dist = real_aug @ fake_aug.T  # (n, b) float32
        # real balls: one threshold per row; fake balls: one per column
        tol_rows = c * (nr + float(nf_b.max()))
        tol_cols = c * (nr_max + nf_b)
        inside_real = _inside(dist, r2_real, tol_rows, real, f64, axis=1)
        inside_fake = _inside(dist, r2f_b, tol_cols, real, f64, axis=0)
        in_real_balls[s:s + block] = np.count_nonzero(inside_real, axis=0)
        covered |= inside_real.any(axis=1)
        recalled |= inside_fake.any(axis=1)
    return PRDC(precision=float(np.mean(in_real_balls > 0)),
                recall=float(np.mean(recalled)),
                density=float(in_real_balls.sum() / (k * m)),
                coverage=float(np.mean(covered)),
                nearest_k=k, n_real=n, n_fake=m, feature=feature)


def _inside(dist: np.ndarray, r2: np.ndarray, tol: np.ndarray, real: np.ndarray,
            fake: np.ndarray, axis: int) -> np.ndarray:
    """``exact squared distance < r2`` for a block, ``r2`` and ``tol`` one
    per row (axis=1) or per column (axis=0).  Decided from the float32
    ``dist`` outside ``r2 +- tol``, recomputed in float64 inside that band."""
    # float32 thresholds rounded outwards, so the band only grows
    lo = np.nextafter((r2 - tol).astype(np.float32), np.float32(-np.inf))
    hi = np.nextafter((r2 + tol).astype(np.float32), np.float32(np.inf))
    shape = (-1, 1) if axis == 1 else (1, -1)
    inside = dist < lo.reshape(shape)          # surely inside
    unsure = dist < hi.reshape(shape)          # maybe inside ...
    unsure ^= inside                           # ... but not surely
    rows = np.flatnonzero(unsure.any(axis=1))
    if rows.size:
        # nonzero on the few rows with an unsure entry, not the whole block
        sub, j = np.nonzero(unsure[rows])
        i = rows[sub]
        thresh = r2[i] if axis == 1 else r2[j]
        step = max(1, (1 << 20) // real.shape[1])  # bound the (entries, d) temporaries
        for t in range(0, i.size, step):
            it, jt = i[t:t + step], j[t:t + step]
            inside[it, jt] = _sq_dist_rows(real[it], fake[jt]) < thresh[t:t + step]
    return inside
