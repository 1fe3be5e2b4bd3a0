"""Core-set mini-batches for GAN training, selected ahead of the training loop.

Small-GAN (Sinha et al., ICML 2020, Sec. 3) replaces each uniform mini-batch
by the greedy k-center core-set of a larger uniform draw: ``factor * k``
candidates in, ``k`` out.  It does this for the prior (``z``) and for the real
data (through fixed, low-dimensional embeddings of the images).  The paper's
footnote notes that the selection runs on the CPU and could overlap the GPU's
forward and backward pass; this module makes that overlap the default:

* :class:`PriorCoreset` is an endless iterator of core-set prior batches.
* :class:`CoresetBatchSampler` is a ``torch.utils.data.Sampler[list[int]]``
  for ``DataLoader(dataset, batch_sampler=...)``.

Both keep ``prefetch`` batches ahead of the training loop: one producer
thread per stream makes the random draws and gathers the candidates, and the
k-center selections run on the engine's background C++ pool
(:func:`smallgan.kcenter_async`, GIL released).  The training loop itself only
takes finished batches, so its cost per step is tens of microseconds.

Determinism
-----------
Every random draw of batch ``b`` comes from its own generator,
``numpy.random.default_rng(numpy.random.SeedSequence(seed, spawn_key=key))``,
and the first k-center is drawn from it and passed as ``first=``.  The keys
are ``(1, b)`` for :class:`PriorCoreset`, ``(3, epoch, rank, b)`` for the
candidates of :class:`CoresetBatchSampler` and ``(2, epoch)`` for its
epoch-wide split between ranks.  Batches therefore depend only on
``(seed, rank, epoch, b)``, never on the prefetch depth, the number of engine
threads or thread timing.  The keys have a fixed length per kind because
``SeedSequence`` pads short keys with zeros (``(2, 5)`` and ``(2, 5, 0)``
would collide).

Shutdown
--------
Modelled on PyTorch's pin-memory thread: finishing an iteration, ``close()``,
leaving a ``with`` block, garbage collection, an exception in a selection job
and ``KeyboardInterrupt`` all stop and join the producer thread, cancel the
pending jobs and drop the references to the inputs; an ``atexit`` hook does
the same for streams still open at interpreter exit, before the engine's own
shutdown.  The producer thread starts at the first ``next()`` (so building a
sampler costs nothing) and holds no reference to its iterator, so garbage
collection can reach it.  The engine's pool threads belong to
:mod:`smallgan.coreset`.  An exception raised by a selection job (for example NaN in
the embeddings) is re-raised by ``next()`` at the batch it belongs to, with
its original type and a note naming the batch; the iterator is closed
afterwards.

Oversubscription
----------------
Each open stream adds one producer thread (mostly idle, or inside numpy
with the GIL released) and uses the engine's pool, one OpenMP thread per
selection by default (``threads=1``; see the parameter).
The samplers live in the main process; ``DataLoader`` workers never run a
selection, so ``num_workers > 0`` does not multiply engine threads.

Examples
--------
>>> import numpy as np, torch
>>> from smallgan.sampling import CoresetBatchSampler, PriorCoreset
>>> emb = np.random.default_rng(0).normal(size=(4096, 32)).astype(np.float32)
>>> data = torch.utils.data.TensorDataset(torch.arange(4096))
>>> sampler = CoresetBatchSampler(emb, batch_size=64, factor=8, seed=0)
>>> loader = torch.utils.data.DataLoader(data, batch_sampler=sampler)
>>> with PriorCoreset(dim=128, batch_size=64, seed=0) as prior:
...     for (x,), z in zip(loader, prior):
...         pass  # train on real batch x and prior batch z
>>> x.shape, z.shape, len(loader)
(torch.Size([64]), torch.Size([64, 128]), 64)
"""
from __future__ import annotations

import atexit
import math
import numbers
import os
import queue
import threading
import time
import weakref
from concurrent.futures import Future
from concurrent.futures import wait as _wait_futures
from typing import Any, Callable, Iterator, NamedTuple, Optional, Union

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

# Looked up at call time (module globals), so tests can substitute them.
from smallgan.coreset import _use_kernel, kcenter, kcenter_async

__all__ = ["PriorCoreset", "CoresetBatchSampler"]

# First word of every spawn key: keeps the three kinds of streams apart.
_KEY_PRIOR = 1
_KEY_EPOCH_SPLIT = 2
_KEY_BATCH = 3


def _stream(seed: int, *key: int) -> np.random.Generator:
    """The generator for one spawn key (see the module docstring)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _check_int(name: str, value: Any, minimum: int) -> int:
    # bool is an Integral but never a sensible size; numpy ints are welcome.
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def _check_seed(seed: Any) -> int:
    if seed is None:
        # Fresh entropy, kept so the stream can be reproduced (see `.seed`).
        return int(np.random.SeedSequence().entropy)
    return _check_int("seed", seed, 0)


def _check_threads(threads: Any) -> Optional[int]:
    return None if threads is None else _check_int("threads", threads, 1)


class _WaitClock:
    """How long the consumer blocked on selections (shared, never a cycle)."""

    __slots__ = ("last_s", "total_s", "batches")

    def __init__(self) -> None:
        self.last_s = 0.0
        self.total_s = 0.0
        self.batches = 0

    def add(self, seconds: float) -> None:
        self.last_s = seconds
        self.total_s += seconds
        self.batches += 1


class _Job(NamedTuple):
    x: np.ndarray  # (n, d) candidates
    k: int
    first: int
    context: Any  # what the caller needs to turn k indices into a batch


# How often a blocked wait wakes to check that the other side is still there.
_POLL_S = 0.1
# Longest close() waits for the producer to finish the batch it is planning.
_JOIN_S = 30.0
# How long the producer lets the consumer go first after a slot frees (see
# _produce); skipped whenever the consumer is waiting for a batch.
_DEFER_S = 0.002
# Marks the end of a finite stream in the producer's queue.
_END = object()
# Every _Selections with a producer thread, so interpreter exit and fork can
# reach them (weak: they must not outlive their owners).
_LIVE: "weakref.WeakSet[_Selections]" = weakref.WeakSet()


def _failed(exc: BaseException) -> Future:
    future: Future = Future()
    future.set_exception(exc)
    return future


def _produce(
    plan: Callable[[int], _Job],
    count: Optional[int],
    threads: Optional[int],
    slots: threading.Semaphore,
    out: "queue.SimpleQueue[Any]",
    done: threading.Event,
    start: int,
    hungry: threading.Event,
) -> None:
    """Producer thread: plan batches in order and submit them to the engine.

    A module-level function holding no reference to the iterator that owns
    it, so that dropping the iterator (garbage collection) can stop it.
    """
    b = start
    try:
        while count is None or b < count:
            while not slots.acquire(timeout=_POLL_S):
                if done.is_set():
                    return
            # A slot frees when the consumer takes a batch, which is when the
            # training loop does its own Python work (the other stream,
            # gathering, launching kernels).  Planning holds the GIL in short
            # stretches; interleaved with that work, each hand-over costs
            # the loop tens of microseconds (measured: +0.4 ms per step on
            # 2 cores).  So wait a moment, unless the consumer is already
            # waiting for a batch.
            hungry.wait(_DEFER_S)
            hungry.clear()
            if done.is_set():
                return
            context = None
            try:
                job = plan(b)
                context = job.context
                future = kcenter_async(job.x, job.k, first=job.first, threads=threads)
                del job
            except Exception as exc:
                # Whether the engine validates at submission or in the job,
                # the error belongs to batch b.  Nothing after it is planned:
                # the consumer raises at b and closes.
                out.put((b, context, _failed(exc)))
                return
            out.put((b, context, future))
            del context, future
            b += 1
        out.put(_END)
    except BaseException as exc:  # pragma: no cover - queue/lock failures only
        out.put((b, None, _failed(exc)))


class _Selections:
    """In-order k-center selections, ``prefetch`` of them ahead of the consumer.

    ``plan(b)`` makes every random draw of batch ``b`` and runs in batch order
    on a single thread: the consumer's when ``prefetch == 0``, else one
    producer thread, which submits the deterministic k-center work to the
    engine pool (:func:`smallgan.kcenter_async`).  That is what makes the
    batches independent of the prefetch depth, and it keeps the drawing and
    gathering (a few hundred microseconds per batch) off the training loop.

    The producer follows PyTorch's pin-memory thread: a bounded number of
    batches ahead (a semaphore with ``prefetch`` slots, one freed each time
    the consumer has finished taking a batch), a done event, failures
    carried in the queue to the batch they belong to, a liveness check while
    waiting, and shutdown by event then join.  It starts planning a freed
    slot ``_DEFER_S`` later, or at once when the consumer is waiting.  Not
    thread-safe: one consumer thread.
    """

    def __init__(
        self,
        plan: Callable[[int], _Job],
        count: Optional[int],
        prefetch: int,
        threads: Optional[int],
        clock: _WaitClock,
        finish: Callable[[Any, Any], Any],
        start: int = 0,
    ) -> None:
        self._plan: Optional[Callable[[int], _Job]] = plan
        self._finish = finish  # (context, indices) -> batch, on the consumer
        self._count = count  # None: endless
        self._prefetch = prefetch
        self._threads = threads
        self._clock = clock
        self._start_at = start  # number of the first batch
        self._planned = start  # synchronous mode: next batch to plan
        self._thread: Optional[threading.Thread] = None
        self._out: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._done = threading.Event()
        self._hungry = threading.Event()  # set while the consumer waits for a batch
        self._slots = threading.Semaphore(prefetch)
        self._forked = False
        self.closed = False

    def _start(self) -> None:
        self._thread = threading.Thread(
            target=_produce,
            args=(self._plan, self._count, self._threads, self._slots, self._out, self._done,
                  self._start_at, self._hungry),
            name="smallgan-prefetch",
            # Daemon only as a last resort: close(), garbage collection and
            # the atexit hook below all stop and join it first.
            daemon=True,
        )
        _LIVE.add(self)
        self._thread.start()

    @staticmethod
    def _annotate(exc: BaseException, b: int) -> None:
        if isinstance(exc, Exception) and hasattr(exc, "add_note"):  # Python >= 3.11
            exc.add_note(f"(raised by the k-center selection of batch {b})")

    def _next_sync(self) -> Any:
        if self._count is not None and self._planned >= self._count:
            self.close()
            raise StopIteration
        b = self._planned
        self._planned += 1
        try:
            job = self._plan(b)  # type: ignore[misc]
            t0 = time.perf_counter()
            try:
                idx = kcenter(job.x, job.k, first=job.first, threads=self._threads)
            finally:
                self._clock.add(time.perf_counter() - t0)
        except BaseException as exc:
            self._annotate(exc, b)
            self.close()
            raise
        return self._finish(job.context, idx)

    def _take(self) -> Any:
        """The producer's next item, checking it is alive while waiting."""
        if self._out.empty():
            self._hungry.set()
        while True:
            try:
                return self._out.get(timeout=_POLL_S)
            except queue.Empty:
                thread = self._thread
                if thread is not None and not thread.is_alive() and self._out.empty():
                    raise RuntimeError(
                        "smallgan prefetch thread exited without a result"
                    ) from None

    def next(self) -> Any:
        """The next finished batch; StopIteration at the end."""
        if self.closed:
            raise StopIteration
        if self._prefetch == 0:
            return self._next_sync()
        if self._thread is None:
            self._start()
        t0 = time.perf_counter()
        b = -1
        try:
            item = self._take()
            if item is _END:
                self.close()
                raise StopIteration
            b, context, future = item
            # Lock waits are interruptible on POSIX: Ctrl-C lands here.
            idx = future.result()
            self._clock.add(time.perf_counter() - t0)
            batch = self._finish(context, idx)
        except StopIteration:
            raise
        except BaseException as exc:
            self._annotate(exc, b)
            # Ctrl-C must not wait on anything; a failed job can afford to.
            self.close(wait=isinstance(exc, Exception))
            raise
        # Free the slot only now: the producer's planning holds the GIL in
        # short stretches, which would slow this thread down if they ran
        # while it is still busy here rather than back in the training step.
        self._slots.release()
        return batch

    def close(self, wait: bool = True) -> None:
        """Stop the producer, cancel queued jobs, drop all references to inputs.

        With ``wait``, also wait for jobs already running on the engine pool
        (each well under a millisecond at batch sizes), so that nothing of
        this stream runs after ``close()`` returns.
        """
        if self.closed:
            return
        self.closed = True
        self._plan = None
        thread, self._thread = self._thread, None
        _LIVE.discard(self)
        if self._forked:
            return  # fork child: the producer and its locks belong to the parent
        self._done.set()
        self._hungry.set()  # wake a producer deferring
        self._slots.release()  # wake a producer waiting for a slot
        if thread is not None and thread is not threading.current_thread():
            thread.join(_JOIN_S)
        running = []
        while True:
            try:
                item = self._out.get_nowait()
            except queue.Empty:
                break
            if item is not _END and not item[2].cancel():
                running.append(item[2])
        if wait and running:
            _wait_futures(running, timeout=_JOIN_S)


def _close_all_at_exit() -> None:
    # Registered after smallgan.coreset's engine shutdown, so it runs before
    # it (atexit is last in, first out): producers stop submitting first.
    for selections in list(_LIVE):
        selections.close(wait=False)


def _forget_all_in_child() -> None:
    # A fork child has no producer threads; their locks may be held forever.
    for selections in list(_LIVE):
        selections._forked = True


atexit.register(_close_all_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_all_in_child)


def _prior_finisher(device: torch.device, k: int, dim: int) -> Callable[[np.ndarray, Any], torch.Tensor]:
    # Plain values only: the owner holds the _Selections holding this, and a
    # reference back to the owner would leave its closing to the cycle
    # collector instead of the moment the owner is dropped.
    def finish(z: np.ndarray, idx: Any) -> torch.Tensor:
        idx = np.asarray(idx, dtype=np.int64)
        if device.type == "cuda":
            # Pinned staging buffer from torch's caching host allocator, which
            # keeps it alive until the asynchronous copy has finished.
            staged = torch.empty((k, dim), dtype=torch.float32, pin_memory=True)
            np.take(z, idx, axis=0, out=staged.numpy())
            return staged.to(device, non_blocking=True)
        # numpy's gather, not torch.index_select: a 64 KiB copy is not worth
        # waking torch's intra-op thread pool on a busy machine.
        out = torch.from_numpy(np.take(z, idx, axis=0))
        return out if device.type == "cpu" else out.to(device)

    return finish


def _rows_of_selection(rows: np.ndarray, idx: Any) -> list[int]:
    return rows[np.asarray(idx, dtype=np.int64)].tolist()


def _check_prefetch(prefetch: Any) -> int:
    return _check_int("prefetch", prefetch, 0)


class _SelectionsOwner:
    """Shutdown shared by the objects that own a :class:`_Selections` stream."""

    _selections: Optional["_Selections"]
    _closed: bool

    def _close_selections(self) -> None:
        self._closed = True
        selections, self._selections = self._selections, None
        if selections is not None:
            selections.close()

    def __del__(self) -> None:
        # Garbage collection (possibly during interpreter exit): cancel only,
        # never wait on a pool that may already be shutting down.
        try:
            selections = self.__dict__.get("_selections")
            if selections is not None:
                selections.close(wait=False)
        except Exception:
            pass


class PriorCoreset(_SelectionsOwner):
    """Endless iterator of core-set prior batches (Small-GAN's sampled ``z``).

    Each batch is the greedy k-center core-set of ``factor * batch_size`` i.i.d.
    prior draws: ``batch_size`` of the draws, in selection order.

    Parameters
    ----------
    dim : int
        Dimension of ``z``.
    batch_size : int
        Rows per batch (``k``).
    factor : int, default 4
        Candidates per selected row (the paper's prior factor); ``factor=1``
        gives plain i.i.d. batches (reordered).
    distribution : {"uniform", "normal"}, default "uniform"
        ``"uniform"`` draws from U[-1, 1)^dim, as in the paper; ``"normal"``
        from N(0, I).
    seed : int, optional
        Non-negative seed.  ``None`` draws fresh entropy, stored in
        :attr:`seed` so the run can be repeated.
    device : str or torch.device, optional
        Where the batches go (default CPU).  For a CUDA device with the CUDA
        kernel built for that GPU (``smallgan._core.cuda``), each batch is drawn and
        selected on the GPU by ``next()``, on the current stream, without
        waiting for it (no producer thread; ``prefetch`` and ``threads`` are
        unused).  Otherwise (CPU, or no kernel) batches are drawn and
        selected on the CPU ahead of time; for a CUDA device each is then
        gathered into pinned host memory and copied with
        ``non_blocking=True``, so the copy overlaps the running kernels.
    prefetch : int, default 2
        Batches prepared ahead by the producer thread and the engine pool;
        0 draws and selects synchronously in ``next()``, with no thread.
        Does not change the batches.
    threads : int or None, default 1
        OpenMP threads per selection; ``None`` leaves it to the engine.  One
        is right for batch-sized problems: the pool already runs several
        selections at once, and fanning a sub-millisecond job out to OpenMP
        threads costs barrier latency (milliseconds when the training step
        keeps the cores busy) and takes cores from the training step.
    start : int, default 0
        Number of the first batch: ``start=position`` of an earlier stream
        with the same seed resumes it exactly, without replaying it.

    Yields
    ------
    z : torch.Tensor, shape (batch_size, dim), float32, on ``device``

    Attributes
    ----------
    seed : int
        The seed in use.
    position : int
        Number of the next batch (``start`` plus the batches yielded); save
        it with a checkpoint.
    last_wait_s, wait_s : float
        Seconds the last ``next()`` / all ``next()`` calls blocked on the
        selection (with ``prefetch=0``: the k-center call itself).

    Notes
    -----
    Batch ``b`` is ``z[kcenter(z, batch_size, first=f)]`` where ``z`` (then
    ``f``) are drawn from
    ``default_rng(SeedSequence(seed, spawn_key=(1, b)))``:
    ``rng.random((n, dim), dtype=float32) * 2 - 1`` (uniform) or
    ``rng.standard_normal((n, dim), dtype=float32)`` (normal), then
    ``f = rng.integers(n)``, with ``n = factor * batch_size``.  Drawn on the
    GPU (see ``device``), ``z`` comes instead from a CUDA ``torch.Generator``
    seeded with ``rng.integers(2**63)`` (``torch.rand(...) * 2 - 1`` or
    ``torch.randn``), then ``f = rng.integers(n)``: reproducible from the
    seed on a given GPU and torch version, but not the CPU stream's values.

    Thread safety: not thread-safe; call ``next()`` from one thread.
    ``close()`` may be called from any thread once that thread has stopped.

    Examples
    --------
    >>> prior = PriorCoreset(dim=8, batch_size=4, seed=0)
    >>> z = next(prior)
    >>> z.shape, z.dtype
    (torch.Size([4, 8]), torch.float32)
    >>> prior.close()
    """

    def __init__(
        self,
        dim: int,
        batch_size: int,
        factor: int = 4,
        distribution: str = "uniform",
        seed: Optional[int] = None,
        device: Union[str, torch.device, None] = None,
        prefetch: int = 2,
        *,
        threads: Optional[int] = 1,
        start: int = 0,
    ) -> None:
        self.dim = _check_int("dim", dim, 1)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.factor = _check_int("factor", factor, 1)
        if distribution not in ("uniform", "normal"):
            raise ValueError(f"distribution must be 'uniform' or 'normal', got {distribution!r}")
        self.distribution = distribution
        self.seed = _check_seed(seed)
        try:
            self.device = torch.device("cpu" if device is None else device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must name a torch device, got {device!r}") from exc
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available")
        self.prefetch = _check_prefetch(prefetch)
        self.threads = _check_threads(threads)
        self.position = _check_int("start", start, 0)
        self._on_gpu: Optional[bool] = None  # decided at the first next(): asking CUDA costs
        self._clock = _WaitClock()
        self._selections: Optional[_Selections] = None
        self._closed = False

    @property
    def last_wait_s(self) -> float:
        return self._clock.last_s

    @property
    def wait_s(self) -> float:
        return self._clock.total_s

    def _make_plan(self) -> Callable[[int], _Job]:
        # A closure over plain values, not `self`: the pending jobs must not
        # keep the iterator alive, or garbage collection could never close it.
        seed, dim, k, n = self.seed, self.dim, self.batch_size, self.factor * self.batch_size
        uniform = self.distribution == "uniform"

        def plan(b: int) -> _Job:
            rng = _stream(seed, _KEY_PRIOR, b)
            if uniform:
                z = rng.random((n, dim), dtype=np.float32)
                z *= 2.0
                z -= 1.0
            else:
                z = rng.standard_normal((n, dim), dtype=np.float32)
            return _Job(z, k, int(rng.integers(n)), z)

        return plan

    def __iter__(self) -> "PriorCoreset":
        return self

    def _next_on_gpu(self) -> torch.Tensor:
        # Draw, select and gather on the current CUDA stream; nothing waits.
        n = self.factor * self.batch_size
        rng = _stream(self.seed, _KEY_PRIOR, self.position)
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(rng.integers(2**63)))
        if self.distribution == "uniform":
            z = torch.rand((n, self.dim), generator=gen, device=self.device).mul_(2.0).sub_(1.0)
        else:
            z = torch.randn((n, self.dim), generator=gen, device=self.device)
        idx = kcenter(z, self.batch_size, first=int(rng.integers(n)), check_finite=False)
        self.position += 1
        return z.index_select(0, idx)

    def __next__(self) -> torch.Tensor:
        if self._closed:
            raise StopIteration
        if self._on_gpu is None:
            self._on_gpu = self.device.type == "cuda" and _use_kernel(self.device)
        if self._on_gpu:
            return self._next_on_gpu()
        if self._selections is None:
            # Started lazily: constructing a prior costs nothing.
            self._selections = _Selections(
                self._make_plan(), None, self.prefetch, self.threads, self._clock,
                _prior_finisher(self.device, self.batch_size, self.dim), self.position,
            )
        try:
            z = self._selections.next()
        except BaseException:  # a failed job or Ctrl-C ends the stream
            self.close()
            raise
        self.position += 1
        return z

    def close(self) -> None:
        """Cancel pending selections; later ``next()`` calls raise StopIteration."""
        self._close_selections()

    def __enter__(self) -> "PriorCoreset":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"PriorCoreset(dim={self.dim}, batch_size={self.batch_size}, factor={self.factor}, "
            f"distribution={self.distribution!r}, seed={self.seed}, device={str(self.device)!r}, "
            f"prefetch={self.prefetch})"
        )


def _as_embedding_array(embeddings: Any) -> np.ndarray:
    """A 2-D numpy view of the embeddings, copying only where unavoidable."""
    if isinstance(embeddings, torch.Tensor):
        t = embeddings.detach()
        if t.is_cuda or t.device.type != "cpu":
            # Selection runs on the CPU engine in the background; gathering on
            # the device every batch would synchronise with the training step.
            t = t.cpu()
        if t.is_complex():
            raise TypeError(f"embeddings must be real, got dtype {t.dtype}")
        if t.dtype not in (torch.float16, torch.float32, torch.float64) and t.is_floating_point():
            t = t.float()  # bfloat16 and friends have no numpy dtype
        if t.dtype == torch.bool:
            raise TypeError(f"embeddings must be numeric, got dtype {t.dtype}")
        arr = t.numpy()  # shares memory with the tensor
    elif isinstance(embeddings, np.ndarray):
        arr = embeddings  # memory maps stay memory maps
    else:
        try:
            arr = np.asarray(embeddings)
        except Exception as exc:
            raise TypeError(
                f"embeddings must be a numpy array, memory-mapped .npy or torch tensor, "
                f"got {type(embeddings).__name__}"
            ) from exc
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"embeddings must be real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (rows, dim), got shape {tuple(arr.shape)}")
    if arr.shape[0] < 1 or arr.shape[1] < 1:
        raise ValueError(f"embeddings must have at least one row and column, got shape {arr.shape}")
    return arr


class CoresetBatchSampler(Sampler[list[int]]):
    """Batch sampler yielding k-center core-set batches of dataset indices.

    For each batch, draws ``factor * batch_size`` distinct candidate rows
    uniformly from this rank's share of the epoch, selects ``batch_size`` of
    them by greedy k-center on their embedding rows, and yields their dataset
    indices.  Pass it as ``DataLoader(dataset, batch_sampler=sampler)``.

    Parameters
    ----------
    embeddings : numpy.ndarray, numpy.memmap or torch.Tensor, shape (N, d)
        One row per dataset item (row ``i`` embeds ``dataset[i]``), any real
        dtype.  Read only at the candidate rows of each batch, so a
        memory-mapped ``.npy`` (``numpy.load(path, mmap_mode="r")``) is never
        read whole.  A CUDA tensor is copied to host memory once, here.
        NaN or Inf is not checked up front; it raises at the first batch whose
        candidates include such a row.
    batch_size : int
        Indices per batch (``k``).
    factor : int, default 8
        Candidates per selected index (the paper's target factor).
    seed : int, optional
        Non-negative seed shared by all ranks.  ``None`` draws fresh entropy
        (stored in :attr:`seed`); not allowed with ``num_replicas > 1``,
        where ranks must agree on the epoch's split.
    num_replicas, rank : int, optional
        Number of processes and this one's rank; default from
        ``torch.distributed`` when it is initialised, else 1 and 0.
    drop_last : bool, default True
        Whether each epoch ends with full batches only (see Notes).
    prefetch : int, default 2
        Batches prepared ahead by the producer thread and the engine pool;
        0 draws and selects synchronously in ``next()``, with no thread.
        Does not change the batches.
    threads : int or None, default 1
        OpenMP threads per selection; ``None`` leaves it to the engine.  One
        is right for batch-sized problems: the pool already runs several
        selections at once, and fanning a sub-millisecond job out to OpenMP
        threads costs barrier latency (milliseconds when the training step
        keeps the cores busy) and takes cores from the training step.

    Yields
    ------
    batch : list of int
        ``batch_size`` distinct dataset indices (fewer only in the last batch
        of an epoch with ``drop_last=False``), in k-center selection order.

    Attributes
    ----------
    seed : int
    epoch : int
        The epoch number the next iteration will use.
    last_wait_s, wait_s : float
        Seconds the last / all ``next()`` calls blocked on selection.

    Notes
    -----
    **Epochs.**  Each epoch, a permutation of the ``N`` rows drawn from
    ``(seed, epoch)`` (the same on every rank) gives rank ``r`` the rows at
    positions ``r, r + R, r + 2R, ...`` of its first ``S * R`` entries:
    ``S = N // R`` rows each, disjoint across ranks (with ``R = 1`` the share
    is simply all ``N`` rows).  An epoch is ``len(sampler)`` batches:
    ``S // batch_size`` with ``drop_last=True``, ``ceil(S / batch_size)``
    otherwise, the last batch then holding ``S - (len - 1) * batch_size``
    indices selected from ``factor`` times as many candidates.  Candidates
    are distinct within a batch and drawn independently, with replacement,
    across batches: an epoch is a number of batches, not a pass over the
    data (k-center picks outliers and cluster representatives, so a
    without-replacement pass would bias the later batches).

    **Epoch numbers.**  As with ``DistributedSampler``, ``set_epoch(e)`` makes
    the next iteration use epoch ``e``.  Unlike it, an iteration without a
    ``set_epoch`` call uses the previous epoch plus one (0 first), so a
    loop that never calls ``set_epoch`` does not repeat its batches.  The
    epoch is claimed when an iteration yields its first batch, because a
    multi-worker ``DataLoader`` calls ``iter()`` on its sampler twice per
    epoch.

    **Stream.**  Batch ``b`` of epoch ``e`` on rank ``r`` draws, from
    ``default_rng(SeedSequence(seed, spawn_key=(3, e, r, b)))``, the candidate
    positions ``rng.choice(S, m, replace=False)`` and then the first center
    ``rng.integers(m)`` (an index into the candidates sorted by row).

    Thread safety: not thread-safe; consume each iteration from one thread
    (``DataLoader`` does this in the main process, also with
    ``num_workers > 0``).  ``close()`` cancels all live iterations.
    """

    def __init__(
        self,
        embeddings: Any,
        batch_size: int,
        factor: int = 8,
        seed: Optional[int] = None,
        num_replicas: Optional[int] = None,
        rank: Optional[int] = None,
        drop_last: bool = True,
        prefetch: int = 2,
        *,
        threads: Optional[int] = 1,
    ) -> None:
        self.embeddings = _as_embedding_array(embeddings)
        self.batch_size = _check_int("batch_size", batch_size, 1)
        self.factor = _check_int("factor", factor, 1)
        distributed = dist.is_available() and dist.is_initialized()
        if num_replicas is None:
            num_replicas = dist.get_world_size() if distributed else 1
        if rank is None:
            rank = dist.get_rank() if distributed else 0
        self.num_replicas = _check_int("num_replicas", num_replicas, 1)
        self.rank = _check_int("rank", rank, 0)
        if self.rank >= self.num_replicas:
            raise ValueError(f"rank must be in [0, num_replicas={self.num_replicas}), got {rank!r}")
        if seed is None and self.num_replicas > 1:
            raise ValueError(
                f"seed=None with num_replicas={self.num_replicas}: pass the same integer seed on "
                "every rank, so that the ranks agree on how each epoch is split"
            )
        self.seed = _check_seed(seed)
        if not isinstance(drop_last, (bool, np.bool_)):
            raise TypeError(f"drop_last must be a bool, got {drop_last!r}")
        self.drop_last = bool(drop_last)
        self.prefetch = _check_prefetch(prefetch)
        self.threads = _check_threads(threads)
        n = self.embeddings.shape[0]
        self.rows_per_rank = n // self.num_replicas
        m = self.factor * self.batch_size
        if m > self.rows_per_rank:
            raise ValueError(
                f"factor * batch_size = {self.factor} * {self.batch_size} = {m} candidates per "
                f"batch, but each of the num_replicas={self.num_replicas} ranks has only "
                f"{self.rows_per_rank} of the {n} embedding rows"
            )
        self.epoch = 0
        self._clock = _WaitClock()
        self._live: "weakref.WeakSet[_EpochIterator]" = weakref.WeakSet()

    def __len__(self) -> int:
        if self.drop_last:
            return self.rows_per_rank // self.batch_size
        return math.ceil(self.rows_per_rank / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Use epoch number ``epoch`` for the next iteration (as ``DistributedSampler``)."""
        self.epoch = _check_int("epoch", epoch, 0)

    @property
    def last_wait_s(self) -> float:
        return self._clock.last_s

    @property
    def wait_s(self) -> float:
        return self._clock.total_s

    def _claim_epoch(self) -> int:
        epoch = self.epoch
        self.epoch = epoch + 1
        return epoch

    def _make_plan(self, epoch: int) -> Callable[[int], _Job]:
        # Plain values only (see PriorCoreset._make_plan).
        emb, seed, rank, factor = self.embeddings, self.seed, self.rank, self.factor
        share_size, k_full, n_batches = self.rows_per_rank, self.batch_size, len(self)
        if self.num_replicas > 1:
            perm = _stream(seed, _KEY_EPOCH_SPLIT, epoch).permutation(emb.shape[0])
            share: Optional[np.ndarray] = perm[: share_size * self.num_replicas][rank :: self.num_replicas]
        else:
            share = None  # identity: every row, no O(N) permutation per epoch

        def plan(b: int) -> _Job:
            k = k_full if b < n_batches - 1 else share_size - (n_batches - 1) * k_full
            k = min(k, k_full)
            m = factor * k
            rng = _stream(seed, _KEY_BATCH, epoch, rank, b)
            pos = rng.choice(share_size, m, replace=False)
            rows = pos if share is None else share[pos]
            # Sorted rows read a memory map front to back, page by page.
            rows.sort()
            x = np.ascontiguousarray(emb[rows])
            return _Job(x, k, int(rng.integers(m)), rows)

        return plan

    def __iter__(self) -> Iterator[list[int]]:
        it = _EpochIterator(self)
        self._live.add(it)
        return it

    def close(self) -> None:
        """Cancel every live iteration's pending selections."""
        for it in list(self._live):
            it.close()

    def __enter__(self) -> "CoresetBatchSampler":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"CoresetBatchSampler(rows={self.embeddings.shape[0]}, dim={self.embeddings.shape[1]}, "
            f"batch_size={self.batch_size}, factor={self.factor}, seed={self.seed}, "
            f"num_replicas={self.num_replicas}, rank={self.rank}, drop_last={self.drop_last}, "
            f"prefetch={self.prefetch})"
        )


class _EpochIterator(_SelectionsOwner):
    """One pass (epoch) of a CoresetBatchSampler; closes itself when done."""

    def __init__(self, sampler: CoresetBatchSampler) -> None:
        self._sampler: Optional[CoresetBatchSampler] = sampler
        self._selections: Optional[_Selections] = None
        self._closed = False
        self.epoch: Optional[int] = None

    def __iter__(self) -> "_EpochIterator":
        return self

    def __next__(self) -> list[int]:
        if self._closed:
            raise StopIteration
        if self._selections is None:
            s = self._sampler  # set until closed, and closed returned above
            self.epoch = s._claim_epoch()
            self._selections = _Selections(
                s._make_plan(self.epoch), len(s), s.prefetch, s.threads, s._clock,
                _rows_of_selection,
            )
        try:
            return self._selections.next()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._sampler = None
        self._close_selections()
