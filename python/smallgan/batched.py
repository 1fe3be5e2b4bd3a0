"""Greedy k-center on a batch of point sets: ``kcenter_batched``.

The shape point-cloud users pass: ``x`` of shape ``(B, n, d)``, optionally
ragged through ``lengths``, ``k`` centres per set.  Each problem is exactly
``kcenter(x[b, :lengths[b]], k, ...)``, run as its own job on the engine's
background pool (one OpenMP thread each, GIL released), so ``B`` problems use
up to the pool's threads at once and the result is identical to ``B``
separate calls, for any thread count.

From other libraries:

- pytorch3d ``sample_farthest_points(points, lengths, K, random_start_point)``:
  ``kcenter_batched(points, K, lengths=lengths, seed=s)`` (or ``first=0``,
  pytorch3d's start without ``random_start_point``).  pytorch3d pads short
  clouds' rows with -1; here a cloud with fewer than ``K`` points is an error.
- torch_cluster ``fps(src, batch, ratio, random_start)``: ``src`` is flat
  with a ``batch`` vector; reshape to ``(B, n_max, d)`` with ``lengths`` equal
  to the counts of each batch value, and pass ``k = ceil(ratio * n)`` per
  cloud (one ``k`` for all: call once per distinct ``k``).  Indices are local
  to each cloud, not to ``src``.

Example
-------
>>> import numpy as np
>>> x = np.random.default_rng(0).normal(size=(3, 100, 3)).astype(np.float32)
>>> kcenter_batched(x, 8, lengths=[100, 50, 20], first=0).shape
(3, 8)
"""
from __future__ import annotations

from typing import Any, Optional, Sequence, Union

import numpy as np

from smallgan.checks import check_int
from smallgan.coreset import kcenter, kcenter_async

__all__ = ["kcenter_batched"]


def _is_torch(x: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is optional
        return False
    return isinstance(x, torch.Tensor)


def _check_lengths(lengths: Any, B: int, n: int, k: int) -> np.ndarray:
    if lengths is None:
        out = np.full(B, n, dtype=np.int64)
    else:
        if _is_torch(lengths):
            lengths = lengths.detach().cpu().numpy()
        arr = np.asarray(lengths)
        if arr.dtype.kind not in "iu" or arr.dtype == np.bool_:
            raise TypeError(f"lengths must hold integers, got dtype {arr.dtype}")
        if arr.shape != (B,):
            raise ValueError(f"lengths must have shape (B,) = ({B},), got {arr.shape}")
        out = arr.astype(np.int64)
        bad = np.flatnonzero((out < 0) | (out > n))
        if bad.size:
            raise ValueError(f"lengths[{bad[0]}] = {out[bad[0]]} is outside [0, n = {n}]")
    short = np.flatnonzero(out < k)
    if short.size:
        b = int(short[0])
        raise ValueError(f"k = {k} is larger than lengths[{b}] = {out[b]}: every set needs at "
                         f"least k points (pass a smaller k for short sets)")
    return out


def kcenter_batched(x: Any, k: int, *, lengths: Optional[Any] = None,
                    first: Union[None, int, Sequence[int]] = None, seed: Optional[int] = None,
                    threads: Optional[int] = None) -> Any:
    """``k`` greedy k-center picks in each of ``B`` point sets.

    Parameters
    ----------
    x : array, shape (B, n, d)
        numpy array or torch tensor (CPU or CUDA), any real dtype, as
        :func:`smallgan.kcenter` takes; set ``b`` is ``x[b, :lengths[b]]``.
    k : int
        Centres per set, ``1 <= k <= lengths[b]`` for every ``b``.
    lengths : array of int, shape (B,), optional
        Rows of each set (ragged sets padded to ``n``); default ``n`` for all.
        The padding rows are never read.
    first : int or sequence of B ints, optional
        First centre of every set (one int for all, or one per set).
    seed : int, optional
        As ``kcenter``'s ``seed``, for every set: set ``b`` gets exactly the
        picks of ``kcenter(x[b, :lengths[b]], k, seed=seed)``.
    threads : int, optional
        OpenMP threads per set (default one: the sets already run side by
        side on the engine's pool, ``SMALLGAN_POOL_THREADS`` of them).

    Returns
    -------
    indices : np.ndarray[int64] or torch.LongTensor, shape (B, k)
        Row indices within each set, in selection order; torch on ``x.device``
        for torch input.

    Raises
    ------
    ValueError, TypeError
        Before any work: ``x`` not 3-D or empty, bad ``lengths`` (shape,
        dtype, a value outside ``[0, n]``), a set shorter than ``k``, a bad
        ``first``; and whatever ``kcenter`` raises for a set (NaN, ...),
        naming the set.

    Thread safety: may be called from any thread (as ``kcenter``).
    """
    shape = tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
    if len(shape) != 3:
        raise ValueError(f"x must be 3-D (B sets, n points, d features), got shape {shape}")
    B, n, d = (int(v) for v in shape)
    if B == 0 or n == 0 or d == 0:
        raise ValueError(f"x must have at least one set, point and feature, got shape {shape}")
    k = check_int("k", k, 1)
    lens = _check_lengths(lengths, B, n, k)
    if first is None or isinstance(first, (int, np.integer)) and not isinstance(first, bool):
        firsts = [first] * B
    else:
        firsts = list(first)
        if len(firsts) != B:
            raise ValueError(f"first must be one int or B = {B} ints, got {len(firsts)}")
    for b, f in enumerate(firsts):
        if f is not None:
            f = check_int("first", f)
            if not 0 <= f < lens[b]:
                raise ValueError(f"first = {f} is out of range for set {b} of lengths[{b}] = {lens[b]}")
    if not _is_torch(x):
        x = np.asarray(x)
    sets = [x[b, : lens[b]] for b in range(B)]
    kw = dict(seed=seed, threads=1 if threads is None else threads)
    if _is_torch(x) and x.is_cuda:
        # the CUDA kernel (or fallback) runs each set on the current stream
        picks = [kcenter(s, k, first=f, **kw) for s, f in zip(sets, firsts)]
    else:
        futures = [kcenter_async(s, k, first=f, **kw) for s, f in zip(sets, firsts)]
        picks = []
        for b, fut in enumerate(futures):
            try:
                picks.append(fut.result())
            except (ValueError, TypeError) as exc:
                for other in futures[b + 1:]:
                    other.cancel()
                raise type(exc)(f"set {b}: {exc}") from exc
    if _is_torch(x):
        import torch

        return torch.stack(picks)
    return np.stack(picks)
