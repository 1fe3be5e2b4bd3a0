"""Greedy k-center core-sets: ``kcenter`` and ``kcenter_async``.

Array dispatch and validation in front of the compiled engine
(``smallgan._core``).  Everything a user can get wrong is checked here, before
any work starts, with an error that names the argument and the value; the
engine itself only sees well-formed float32/float64 arrays.
"""
from __future__ import annotations

import atexit
import math
import os
import sys
from concurrent.futures import Future
from typing import Any, Callable, Optional, Sequence, Tuple, Union

import numpy as np

from smallgan import _core
from smallgan.checks import check_int

__all__ = ["kcenter", "kcenter_async"]

ArrayLike = Any  # numpy array, torch tensor, or anything np.asarray accepts

# Cancel queued jobs and join the pool before the interpreter tears down: a
# worker that wanted the GIL during finalisation would hang or crash.
atexit.register(_core.shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_core._after_fork_child)


# --------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------

def _torch_module():
    return sys.modules.get("torch")


def _is_torch(x: Any) -> bool:
    torch = _torch_module()
    return torch is not None and isinstance(x, torch.Tensor)


def _as_int(name: str, value: Any) -> int:
    # smallgan.checks' rule (TypeError for a non-integer), plus one-element
    # integer tensors, which users pass for k and first
    if _is_torch(value) and value.numel() == 1 and not value.dtype.is_floating_point \
            and value.dtype != _torch_module().bool:
        return int(value.item())
    return check_int(name, value)


def _check_dtype(kind: str, dtype: Any) -> None:
    if kind == "c":
        raise TypeError(f"x must be real-valued, got complex dtype {dtype}")
    if kind not in "fiub":
        raise TypeError(f"x must be a real numeric array, got dtype {dtype}")


# Squared distances are summed in float32, so the bound on |x| depends on d:
# |x| < sqrt(FLT_MAX / d) / 4 keeps the largest squared distance x allows,
# d * (2 max|x|)^2, at most FLT_MAX / 4 (the 4 covers float32 rounding; past
# d = 2.3e7 columns the bound tightens to cover it).  The engine checks NaN/Inf
# and this bound while it copies x into its layout (csrc/kcenter.cpp), the
# CUDA kernel in its packing pass (csrc/cuda/kcenter.cu, reported through a
# status buffer), both with csrc/float_limits.hpp's max_abs_for (the same
# formula); the torch device fallback checks here.  Same messages everywhere.
_FLT_MAX = float(np.finfo(np.float32).max)


def _max_abs(d: int) -> float:
    """Largest |x| accepted for ``d`` columns (exclusive)."""
    growth = max(4.0, math.exp((d + 8) * 2.0 ** -24))
    return 0.5 * math.sqrt(_FLT_MAX / (d * growth))


def _nonfinite_message(count: int, row: int) -> str:
    return f"x contains {count} NaN or Inf value(s); the first is in row {row}"


def _too_large_message(largest: float, d: int) -> str:
    return (f"x has values up to {largest:.4g} in magnitude; distances are computed in "
            f"float32, so for d = {d} columns |x| must stay below {_max_abs(d):.4g}: rescale x")


def _to_numpy_2d(x: Any) -> np.ndarray:
    """numpy view or converted copy of ``x`` in float32/float64, any strides."""
    if _is_torch(x):
        t = x.detach()
        if t.is_complex():
            raise TypeError(f"x must be real-valued, got complex dtype {t.dtype}")
        if t.dtype not in (_torch_module().float32, _torch_module().float64):
            # float16/bfloat16/ints: the engine computes in float32 anyway
            t = t.to(_torch_module().float32 if t.is_floating_point() else _torch_module().float64)
        xn = t.numpy()  # zero copy; keeps the tensor alive through .base
    else:
        xn = x if isinstance(x, np.ndarray) else np.asarray(x)
        _check_dtype(xn.dtype.kind, xn.dtype)
        if xn.dtype not in (np.float32, np.float64):
            xn = xn.astype(np.float64 if xn.dtype.kind in "iub" else np.float32)
    if xn.ndim != 2:
        raise ValueError(f"x must be 2-D (n points, d features), got shape {tuple(xn.shape)}")
    n, d = xn.shape
    if n == 0:
        raise ValueError(f"x must have at least one row, got shape {tuple(xn.shape)}")
    if d == 0:
        raise ValueError(f"x must have at least one column, got shape {tuple(xn.shape)}")
    item = xn.itemsize
    if xn.strides[0] % item or xn.strides[1] % item:
        xn = np.ascontiguousarray(xn)  # byte-misaligned view: the engine walks whole elements
    return xn


def _check_selection(n: int, k: Any, first: Any, selected: Any) -> Tuple[int, Optional[int], np.ndarray]:
    k = _as_int("k", k)
    if selected is None:
        sel = np.empty(0, dtype=np.int64)
    else:
        if _is_torch(selected):
            selected = selected.detach().cpu().numpy()
        sel_raw = np.asarray(selected)
        if sel_raw.size and sel_raw.dtype.kind not in "iu":
            raise TypeError(f"selected must hold integer indices, got dtype {sel_raw.dtype}")
        if sel_raw.ndim > 1:
            raise ValueError(f"selected must be 1-D, got shape {sel_raw.shape}")
        sel = sel_raw.astype(np.int64, copy=True).reshape(-1)
        if sel.size:
            bad = (sel < 0) | (sel >= n)
            if bad.any():
                raise ValueError(f"selected contains index {int(sel[bad][0])}, out of range for n = {n}")
            uniq, counts = np.unique(sel, return_counts=True)
            if (counts > 1).any():
                raise ValueError(f"selected contains duplicate index {int(uniq[counts > 1][0])}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got k = {k}")
    available = n - sel.size
    if k > available:
        if sel.size:
            raise ValueError(f"k = {k} is larger than the {available} rows not already in selected (n = {n})")
        raise ValueError(f"k = {k} is larger than the number of points n = {n}")
    if first is not None:
        first = _as_int("first", first)
        if not 0 <= first < n:
            raise ValueError(f"first = {first} is out of range for n = {n}")
        if sel.size and (sel == first).any():
            raise ValueError(f"first = {first} is already in selected")
    return k, first, sel


def _check_threads(threads: Any) -> int:
    if threads is None:
        return 0
    t = _as_int("threads", threads)
    if t < 1:
        raise ValueError(f"threads must be >= 1 or None, got {t}")
    return t


# device index -> whether the kernel has code for that GPU (asked once each)
_KERNEL_DEVICES: dict = {}


def _use_kernel(device) -> bool:
    """Whether a tensor on ``device`` goes to the CUDA kernel (else the torch traversal).

    The kernel is built for some architectures (``_core.cuda_architectures``);
    a GPU it has no code for (e.g. older than sm_80 by default) keeps the
    torch traversal.
    """
    if not (_core.cuda and device.type == "cuda"):
        return False
    index = device.index if device.index is not None else _torch_module().cuda.current_device()
    ok = _KERNEL_DEVICES.get(index)
    if ok is None:
        ok = _KERNEL_DEVICES[index] = bool(_core.cuda_supported(index))
    return ok


class _Request:
    """A validated call: what the engine needs and how to shape its answer."""

    __slots__ = ("x", "k", "first", "selected", "threads", "simd", "want_dist",
                 "return_radius", "torch_device", "cuda_tensor", "check_finite", "use_kernel",
                 "cuda_blocks")

    def __init__(self, x, k, first, seed, selected, return_radius, return_distances, threads, simd,
                 check_finite=True, cuda_blocks=0, device_path=False):
        # device_path: treat a CPU tensor as a device tensor (tests of that path)
        self.return_radius = bool(return_radius)
        self.want_dist = bool(return_distances)
        self.check_finite = bool(check_finite)
        self.cuda_blocks = int(cuda_blocks)
        self.use_kernel = False
        self.threads = _check_threads(threads)
        self.simd = -1 if simd is None else int(_core.simd_level_id(simd))
        self.torch_device = None
        self.cuda_tensor = None
        if _is_torch(x):
            self.torch_device = x.device
            if x.device.type != "cpu" or device_path:
                self._init_device_tensor(x, k, first, seed, selected)
                return
        xn = _to_numpy_2d(x)
        n = xn.shape[0]
        self.k, self.first, self.selected = _check_selection(n, k, first, selected)
        # NaN/Inf and magnitude are checked by the engine in its packing pass
        if self.first is None and self.selected.size == 0:
            self.first = int(np.random.default_rng(seed).integers(n))
        self.x = xn

    def _init_device_tensor(self, x, k, first, seed, selected):
        torch = _torch_module()
        if x.is_complex():
            raise TypeError(f"x must be real-valued, got complex dtype {x.dtype}")
        if x.dim() != 2:
            raise ValueError(f"x must be 2-D (n points, d features), got shape {tuple(x.shape)}")
        n, d = x.shape
        if n == 0:
            raise ValueError(f"x must have at least one row, got shape {tuple(x.shape)}")
        if d == 0:
            raise ValueError(f"x must have at least one column, got shape {tuple(x.shape)}")
        # a CUDA tensor for `selected` is copied to the host here (one sync)
        self.k, self.first, self.selected = _check_selection(n, k, first, selected)
        xt = x.detach()
        self.use_kernel = _use_kernel(xt.device)
        if self.check_finite and not self.use_kernel:
            # torch fallback: the kernel checks in its packing pass instead
            finite = torch.isfinite(xt)
            if not bool(finite.all()):  # one host sync, for the error message's sake
                bad = ~finite
                row = int(torch.nonzero(bad.any(dim=1))[0, 0])
                raise ValueError(_nonfinite_message(int(bad.sum()), row))
            largest = float(xt.abs().max())
            if largest >= _max_abs(d):
                raise ValueError(_too_large_message(largest, d))
        if self.first is None and self.selected.size == 0:
            self.first = int(np.random.default_rng(seed).integers(n))
        self.cuda_tensor = xt
        self.x = None

    def shape(self, indices: np.ndarray, distances: Optional[np.ndarray], radius: float):
        if self.torch_device is not None:
            torch = _torch_module()
            indices = torch.from_numpy(indices)
            if distances is not None:
                distances = torch.from_numpy(distances)
        return self.pack(indices, radius, distances)

    def pack(self, indices, radius, distances):
        """``indices``, then the radius and distances the caller asked for."""
        out = [indices]
        if self.return_radius:
            out.append(float(radius))
        if self.want_dist:
            out.append(distances)
        return out[0] if len(out) == 1 else tuple(out)


# --------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------

def kcenter(
    x: ArrayLike,
    k: int,
    *,
    first: Optional[int] = None,
    seed: Union[None, int, np.random.SeedSequence, np.random.Generator] = None,
    selected: Optional[Sequence[int]] = None,
    return_radius: bool = False,
    return_distances: bool = False,
    threads: Optional[int] = None,
    check_finite: bool = True,
    _simd: Optional[str] = None,
    _cuda_blocks: int = 0,
):
    """Greedy k-center (farthest-first traversal) selection of ``k`` rows.

    Implements Alg. 1 of Sinha et al., "Small-GAN" (ICML 2020): start from one
    centre, then repeatedly add the point farthest (L2) from all centres chosen
    so far.  The result is a 2-approximation of the k-center objective.

    Parameters
    ----------
    x : array of shape (n, d)
        numpy array of any real dtype (float32 is used as is, float64 is
        converted row by row inside the engine, ints/float16 are converted
        first), any strides; or a torch tensor: on CPU zero-copy when float32
        or float64; on CUDA the GPU kernel (float32, float64, float16 and
        bfloat16 read in place with any strides, converted to float32 in its
        packing pass; ints are converted to float64 first) when
        ``smallgan._core.cuda`` is true, else a torch implementation on the
        same device.  ``requires_grad`` tensors are fine (read only).  Squared
        distances are summed in float32, so ``|x|`` must stay below
        ``sqrt(FLT_MAX / d) / 4`` (about ``4.6e18 / sqrt(d)``: 4.07e17 at
        d = 128, 1.02e17 at d = 2048), which keeps the largest squared
        distance, ``d * (2 * max|x|)**2``, finite with a margin for rounding.
    k : int
        Number of new centres, ``1 <= k <= n - len(selected)``.
    first : int, optional
        Index of the first new centre.  Default: drawn with
        ``numpy.random.default_rng(seed)``, or, when ``selected`` is given,
        the point farthest from ``selected`` (no random draw).
    seed : int, SeedSequence or Generator, optional
        Seed for the first centre; the same seed gives the same result.
    selected : sequence of int, optional
        Indices already chosen (e.g. a labelled pool); the ``k`` new points
        extend them, and only the new ones are returned.
    return_radius : bool
        Also return the k-center objective of the result: the largest distance
        from any point to its nearest centre (``selected`` included), a float.
    return_distances : bool
        Also return, in selection order, the distance at which each point was
        picked (``inf`` for the very first when ``selected`` is empty); the
        sequence is non-increasing after the first.
    threads : int, optional
        OpenMP threads for this call (honoured, up to one thread per 16
        rows).  Default: the OpenMP maximum (honours ``OMP_NUM_THREADS``),
        reduced so each thread has at least 2**17 values of ``x``: the
        training sizes (e.g. 512 x 128, 1024 x 32) run on one thread, where a
        per-step barrier would cost more than the split saves.  On the
        low-dimensional path (see Notes) only the sort and packing are split,
        one thread per 2**16 rows at most, and only when ``threads`` is
        given.  Ignored for CUDA tensors.
    check_finite : bool, default True
        Refuse ``x`` holding NaN or Inf (or values too large for float32
        distances) with a ``ValueError``, as ``scipy.linalg`` does.  Free on
        the CPU, where the engine checks while it copies ``x`` and this flag
        is ignored.  On CUDA the check costs one device-to-host
        synchronisation (the call returns once the selection has run);
        ``check_finite=False`` skips it, so the call only enqueues work on
        the current stream and returns at once (for CUDA graphs and
        asynchronous training loops).  Non-finite input then gives
        unspecified, but still valid and distinct, indices.

    Returns
    -------
    indices : ndarray of int64, shape (k,), or torch.LongTensor on x.device
        The selected rows in selection order, all distinct (once every other
        point is at distance 0, the lowest unselected index is taken).
    radius : float
        Only with ``return_radius=True``.
    distances : ndarray of float64 (or torch tensor), shape (k,)
        Only with ``return_distances=True``.  Returned as
        ``(indices, radius, distances)`` when both are asked for.

    Raises
    ------
    ValueError
        x not 2-D or empty, NaN/Inf in x, ``|x|`` at or above the float32
        bound for its ``d`` (the message gives the largest value, ``d`` and
        the bound), k out of range, ``first`` or ``selected`` out of range or
        duplicated.
    TypeError
        Complex or object dtype, non-integer k/first/threads.

    Notes
    -----
    Thread safety: safe to call from several Python threads at once; the GIL
    is released while the engine runs.  The input is never modified.  Extra
    memory: a float32 copy of ``x`` in the engine's blocked layout plus O(n)
    (on CUDA: a float32 copy transposed to (d, n) plus O(n), allocated with
    torch's caching allocator on ``x.device``).

    Low-dimensional ``x`` (point clouds: ``d <= 8``) with many centres
    (``k + len(selected)`` from 128 at ``d <= 2`` up to 2048 at ``d = 8``)
    takes an exact spatial path on the CPU: rows sorted along a Morton
    curve, a tree of bounding boxes over 16-row blocks, and each step updates
    only the blocks the new centre can bring closer.  It computes every
    distance with the same kernel and breaks ties by the same rule, so the
    result is identical whichever path runs.

    CUDA tensors: the kernel runs on the current stream
    (``torch.cuda.current_stream(x.device)``) and ``kcenter`` returns without
    waiting for it: the indices are a CUDA tensor that later work on that
    stream can use at once.  Exceptions, which wait for the GPU:
    ``check_finite=True`` (the default; one sync), ``return_radius=True``
    (the radius is a Python float; one sync), and ``selected`` given as a
    CUDA tensor (copied to the host for its range and duplicate checks).
    ``first`` is drawn on the host, as on the CPU.  With
    ``check_finite=False`` and ``selected`` absent or on the host, the call
    can be captured in a CUDA graph.

    Examples
    --------
    >>> import numpy as np
    >>> from smallgan import kcenter
    >>> x = np.random.default_rng(0).normal(size=(1000, 16))
    >>> idx, r = kcenter(x, 50, seed=0, return_radius=True)
    >>> len(set(idx.tolist())), r > 0
    (50, True)
    """
    req = _Request(x, k, first, seed, selected, return_radius, return_distances, threads, _simd,
                   check_finite, _cuda_blocks)
    if req.cuda_tensor is not None:
        return _kcenter_cuda(req) if req.use_kernel else _kcenter_torch(req)
    idx, dist, radius, _ = _core.kcenter(req.x, req.k, -1 if req.first is None else req.first,
                                         req.selected, req.threads, req.simd, req.want_dist)
    return req.shape(idx, dist, radius)


class _EngineFuture(Future):
    """A Future whose raw engine tuple is shaped (numpy/torch, radius...) on arrival."""

    def __init__(self, shape: Callable):
        super().__init__()
        self._shape = shape

    def set_result(self, result) -> None:  # called by the engine's worker, GIL held
        idx, dist, radius, _threads = result
        try:
            value = self._shape(idx, dist, radius)
        except BaseException as exc:  # pragma: no cover - shaping only wraps arrays
            super().set_exception(exc)
            return
        super().set_result(value)


def kcenter_async(x: ArrayLike, k: int, **kwargs) -> Future:
    """Run :func:`kcenter` on the engine's background thread pool.

    Takes the same arguments as :func:`kcenter` and returns a
    :class:`concurrent.futures.Future` whose ``result()`` is what ``kcenter``
    would have returned.

    Validation happens at once, on the calling thread, but a bad argument does
    not raise here: the returned Future holds the exception and ``result()``
    raises it, so every error surfaces at the same place.  ``cancel()`` works
    while the job is still queued.  The input is kept alive until the job is
    done; do not write to it before then.  Pool size: ``SMALLGAN_POOL_THREADS``
    (default min(4, CPUs)); the pool is shut down at interpreter exit, queued
    jobs are cancelled.  A shutdown (or a resize) cancels only the jobs of the
    pool it shuts down that have not started; jobs submitted meanwhile go to
    the next pool and run.

    Thread safety: may be called from any thread.  CUDA tensors are handled on
    the calling thread (the GPU kernel is enqueued on the current stream, or
    the torch fallback runs) and the returned Future is already done.
    """
    unknown = set(kwargs) - {"first", "seed", "selected", "return_radius", "return_distances", "threads",
                             "check_finite", "_simd", "_cuda_blocks"}
    if unknown:
        raise TypeError(f"kcenter_async() got unexpected keyword argument(s): {sorted(unknown)}")
    try:
        req = _Request(x, k, kwargs.get("first"), kwargs.get("seed"), kwargs.get("selected"),
                       kwargs.get("return_radius", False), kwargs.get("return_distances", False),
                       kwargs.get("threads", 1), kwargs.get("_simd"), kwargs.get("check_finite", True),
                       kwargs.get("_cuda_blocks", 0))
    except (ValueError, TypeError) as exc:
        fut: Future = Future()
        fut.set_exception(exc)
        return fut
    if req.cuda_tensor is not None:
        fut = Future()
        try:
            fut.set_result(_kcenter_cuda(req) if req.use_kernel else _kcenter_torch(req))
        except Exception as exc:  # NaN found by the kernel, device errors
            fut.set_exception(exc)
        return fut
    fut = _EngineFuture(req.shape)
    _core.submit(req.x, req.k, -1 if req.first is None else req.first, req.selected,
                 req.threads, req.simd, req.want_dist, fut)
    return fut


# --------------------------------------------------------------------------
# CUDA kernel (csrc/cuda/kcenter.cu) for tensors on an NVIDIA GPU
# --------------------------------------------------------------------------

def _cuda_dtype_code(torch, dtype) -> Optional[int]:
    # the dtypes the kernel's packing pass reads (kcenter_cuda.hpp XType)
    return {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3}.get(dtype)


def _kcenter_cuda(req: _Request):
    """Enqueue the kernel on the current stream of ``x``'s device.

    Every buffer is a torch tensor on ``x.device`` (the caching allocator is
    stream-ordered, so they may be freed as soon as the launch is enqueued);
    the extension only launches.  Syncs only for ``check_finite`` (the status
    buffer, to raise the CPU path's errors) and ``return_radius``.
    """
    torch = _torch_module()
    x = req.cuda_tensor
    code = _cuda_dtype_code(torch, x.dtype)
    if code is None:  # ints/bool like the CPU path (float64), other floats to float32
        x = x.to(torch.float32 if x.is_floating_point() else torch.float64)
        code = _cuda_dtype_code(torch, x.dtype)
    n, d = x.shape
    dev = x.device
    stream = torch.cuda.current_stream(dev)
    workspace = torch.empty(_core.cuda_workspace_bytes(n, d), dtype=torch.uint8, device=dev)
    aux = torch.empty(_core.cuda_aux_len, dtype=torch.int64, device=dev)
    out = torch.empty(req.k, dtype=torch.int64, device=dev)
    dist = torch.empty(req.k, dtype=torch.float64, device=dev) if req.want_dist else None
    sel = None
    if req.selected.size:
        # pinned + non_blocking: an ordinary host-to-device copy would sync
        sel = torch.from_numpy(req.selected).pin_memory().to(dev, non_blocking=True)
    _core.cuda_kcenter(
        x=x.data_ptr(), n=n, d=d, row_stride=x.stride(0), col_stride=x.stride(1), dtype=code,
        k=req.k, first=-1 if req.first is None else req.first,
        selected=0 if sel is None else sel.data_ptr(), n_selected=int(req.selected.size),
        indices=out.data_ptr(), distances=0 if dist is None else dist.data_ptr(), distances_f64=True,
        workspace=workspace.data_ptr(), workspace_bytes=workspace.numel(), aux=aux.data_ptr(),
        skip_if_bad=req.check_finite, device=dev.index, stream=stream.cuda_stream, blocks=req.cuda_blocks)
    radius = None
    if req.check_finite or req.return_radius:
        status = aux.cpu().numpy()  # waits for the kernel
        if req.check_finite:
            if status[0] > 0:
                raise ValueError(_nonfinite_message(int(status[0]), int(status[1])))
            if status[2] != 0:
                raise ValueError(_too_large_message(float(status[2:3].view(np.float64)[0]), d))
        radius = float(status[3:4].view(np.float64)[0])
    return req.pack(out, radius, dist)


# --------------------------------------------------------------------------
# torch implementation for tensors on other accelerators (or no kernel)
# --------------------------------------------------------------------------

def _kcenter_torch(req: _Request):
    """Farthest-first traversal in torch on ``x``'s device, no host round trip.

    The same algorithm and tie rule as the engine (argmax returns the first
    maximum; centres are marked -1 so they never win).  Distances are computed
    from differences in float32, like the engine.  Indices stay on the device;
    the only host syncs are the NaN check and ``return_radius``'s float.
    """
    torch = _torch_module()
    x = req.cuda_tensor.float()
    n = x.shape[0]
    dev = x.device
    mind = torch.full((n,), float("inf"), device=dev, dtype=torch.float32)

    def update(center):  # center: 0-d long tensor on dev
        c = x.index_select(0, center.reshape(1))
        mind.index_fill_(0, center.reshape(1), -1.0)
        d2 = (x - c).square_().sum(dim=1)
        torch.fmin(mind, d2, out=mind)  # fmin: a NaN distance (check_finite=False) never wins
        mind.index_fill_(0, center.reshape(1), -1.0)

    sel = torch.as_tensor(req.selected, device=dev, dtype=torch.long)
    for s in sel:
        update(s)
    out = torch.empty(req.k, device=dev, dtype=torch.long)
    dist = torch.empty(req.k, device=dev, dtype=torch.float64) if req.want_dist else None
    if req.first is not None:
        center = torch.tensor(req.first, device=dev, dtype=torch.long)
    else:
        center = torch.argmax(mind)
    for t in range(req.k):
        out[t] = center
        if dist is not None:
            dist[t] = mind[center].clamp_min(0).double().sqrt()
        update(center)
        center = torch.argmax(mind)
    radius = mind.max().clamp_min(0).sqrt()
    return req.pack(out, radius, dist)
