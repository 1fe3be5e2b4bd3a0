"""Where every training step's prior and real batches come from.

Small-GAN (Sinha et al., ICML 2020, Sec. 3) replaces each uniform mini-batch
by the greedy k-center core-set of a larger uniform draw: ``factor * k``
candidates in, ``k`` out.  It does this for the prior (``z``) and for the real
data (through fixed, low-dimensional embeddings of the images).  A plain GAN
draws its batches uniformly.  The two are side by side here, behind one
interface, so that a GAN and a Small-GAN run differ only in which class is
built:

==============================  ====================================  =====================================
                                plain (GAN)                           core-set (Small-GAN)
==============================  ====================================  =====================================
prior batches, an iterator      :class:`RandomPrior`                  :class:`PriorCoreset`
real batches, a batch sampler   :class:`RandomBatchSampler`           :class:`CoresetBatchSampler`
==============================  ====================================  =====================================

Each pair takes the same arguments (the core-set side adds ``factor``,
``prefetch`` and ``threads``) and offers the same attributes: ``seed``,
``rank``, ``num_replicas``, ``last_wait_s`` and ``wait_s``, ``close()`` and
the context-manager protocol; the priors have ``position`` and ``start=``, the
batch samplers ``len()`` and ``set_epoch(epoch, start=0)``.

The core-set classes keep ``prefetch`` batches ahead of the training loop:
one producer thread per stream makes the random draws and gathers the
candidates, and the k-center selections run on the engine's background C++
pool (:func:`smallgan.kcenter_async`, GIL released); the engine that does
this is :mod:`smallgan.prefetch`.  The training loop itself only takes
finished batches, so its cost per step is tens of microseconds.

Determinism
-----------
Every random draw of batch ``b`` comes from its own generator,
``numpy.random.default_rng(numpy.random.SeedSequence(seed, spawn_key=key))``,
and the first k-center is drawn from it and passed as ``first=``.  The keys:

* priors, batch ``b`` on rank ``r``: ``(1, b)`` on rank 0 (so rank 0 of a
  distributed job draws exactly what a single process draws) and
  ``(1, b, r)`` on every other rank.  :class:`RandomPrior`'s batch ``b`` is
  the first ``batch_size`` of the ``factor * batch_size`` candidates that
  :class:`PriorCoreset` draws for its batch ``b``: GAN and Small-GAN runs
  with one seed see paired draws.
* real batches: ``(2, epoch)`` for the epoch-wide permutation that splits the
  rows between ranks (and orders :class:`RandomBatchSampler`'s epoch), and
  ``(3, epoch, r, b)`` for the candidates of :class:`CoresetBatchSampler`.

Batches therefore depend only on ``(seed, rank, epoch, b)``, never on the
prefetch depth, the number of engine threads or thread timing, and a stream
can start at any batch (``start=``) without replaying the earlier ones.
Under ``torch.distributed`` every sampler reads rank and world size from the
process group (``rank=`` and ``num_replicas=`` override), so each rank draws
its own stream.

Shutdown
--------
Modelled on PyTorch's pin-memory thread: finishing an iteration, ``close()``,
leaving a ``with`` block, garbage collection, an exception in a selection job
and ``KeyboardInterrupt`` all stop and join the producer thread, cancel the
pending jobs and drop the references to the inputs; an ``atexit`` hook does
the same for streams still open at interpreter exit, before the engine's own
shutdown.  The producer thread starts at the first ``next()`` (so building a
sampler costs nothing) and holds no reference to its iterator, so garbage
collection can reach it.  An exception raised by a selection job (for
example NaN in the embeddings) is re-raised by ``next()`` at the batch it
belongs to, with its original type and a note naming the batch; the
iterator is closed afterwards.  A stream started before ``fork()`` raises
``RuntimeError`` if used in the child.

Oversubscription
----------------
Each open core-set stream adds one producer thread (mostly idle, or inside
numpy with the GIL released) and uses the engine's pool, one OpenMP thread
per selection by default (``threads=1``; see the parameter).  The samplers
live in the main process; ``DataLoader`` workers never run a selection, so
``num_workers > 0`` does not multiply engine threads.

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

import math
import time
import weakref
from typing import Any, Callable, Iterator, Optional, Tuple, Union

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from smallgan.checks import check_bool, check_choice, check_int, check_seed
from smallgan.coreset import kcenter
from smallgan.prefetch import PLANNERS, Job, Selections, SelectionsOwner, WaitClock

__all__ = ["PriorCoreset", "RandomPrior", "CoresetBatchSampler", "RandomBatchSampler"]

# First word of every spawn key: keeps the kinds of streams apart.
_KEY_PRIOR = 1
_KEY_EPOCH_SPLIT = 2
_KEY_BATCH = 3

DISTRIBUTIONS = ("uniform", "normal")


def _stream(seed: int, *key: int) -> np.random.Generator:
    """The generator for one spawn key (see the module docstring)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _prior_key(b: int, rank: int) -> Tuple[int, ...]:
    # rank 0 keeps the single-process key, so a single process and rank 0
    # of a distributed job draw the same stream
    return (_KEY_PRIOR, b) if rank == 0 else (_KEY_PRIOR, b, rank)


def _draw_prior(rng: np.random.Generator, n: int, dim: int, uniform: bool) -> np.ndarray:
    # numpy fills C order from one stream: the first k rows of an (n, dim)
    # draw equal a (k, dim) draw, which pairs RandomPrior with PriorCoreset
    if uniform:
        z = rng.random((n, dim), dtype=np.float32)
        z *= 2.0
        z -= 1.0
        return z
    return rng.standard_normal((n, dim), dtype=np.float32)


def _check_threads(threads: Any) -> Optional[int]:
    return None if threads is None else check_int("threads", threads, 1)


def _check_device(device: Any) -> torch.device:
    try:
        dev = torch.device("cpu" if device is None else device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must name a torch device, got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available")
    return dev


def _ranks(num_replicas: Any, rank: Any) -> Tuple[int, int]:
    """(num_replicas, rank): the arguments, else torch.distributed's, else (1, 0)."""
    distributed = dist.is_available() and dist.is_initialized()
    if num_replicas is None:
        num_replicas = dist.get_world_size() if distributed else 1
    if rank is None:
        rank = dist.get_rank() if distributed else 0
    num_replicas = check_int("num_replicas", num_replicas, 1)
    rank = check_int("rank", rank, 0)
    if rank >= num_replicas:
        raise ValueError(f"rank must be in [0, num_replicas={num_replicas}), got {rank}")
    return num_replicas, rank


def _to_device(z: np.ndarray, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":
        # Pinned staging buffer from torch's caching host allocator, which
        # keeps it alive until the asynchronous copy has finished.
        staged = torch.empty(z.shape, dtype=torch.float32, pin_memory=True)
        staged.numpy()[...] = z
        return staged.to(device, non_blocking=True)
    out = torch.from_numpy(z)
    return out if device.type == "cpu" else out.to(device)


class _Source:
    """What the four samplers share: wait clocks and ``with`` closing them."""

    _clock: WaitClock

    @property
    def last_wait_s(self) -> float:
        """Seconds the last ``next()`` blocked on its batch (selection or draw)."""
        return self._clock.last_s

    @property
    def wait_s(self) -> float:
        """Seconds all ``next()`` calls blocked."""
        return self._clock.total_s

    def _init_prior(self, dim: Any, batch_size: Any, distribution: Any, seed: Any, device: Any,
                    start: Any, num_replicas: Any, rank: Any) -> None:
        # the arguments both priors take, checked the same way
        self.dim = check_int("dim", dim, 1)
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.distribution = check_choice("distribution", distribution, DISTRIBUTIONS)
        self.seed = check_seed(seed)
        self.device = _check_device(device)
        self.position = check_int("start", start, 0)
        self.num_replicas, self.rank = _ranks(num_replicas, rank)
        self._clock = WaitClock()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def _prior_finisher(device: torch.device, k: int, dim: int) -> Callable[[np.ndarray, Any], torch.Tensor]:
    # Plain values only: the owner holds the Selections holding this, and a
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


class PriorCoreset(SelectionsOwner, _Source):
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
        Where the batches go (default CPU).  By default batches are drawn and
        selected on the host ahead of time (see ``select_on``); for a CUDA
        device each is then gathered into pinned host memory and copied with
        ``non_blocking=True``, so the copy overlaps the running kernels and
        the batches equal the CPU stream's exactly.
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
    planner : {"thread", "caller"}, default "thread"
        Where each batch's random draws and gathering run: a producer thread
        (off the training loop), or the caller's thread inside ``next()``,
        with only the k-center selection on the engine pool.  Same batches
        either way.  Measured on an H200 with the SN-GAN update (bound by
        Python on the host), ``"caller"`` cost more than the thread's GIL
        hand-overs (README, Table 5): keep the default unless you measure
        otherwise.
    start : int, default 0
        Number of the first batch: ``start=position`` of an earlier stream
        with the same seed resumes it exactly, without replaying it.
    num_replicas, rank : int, optional
        Number of processes and this one's rank; default from
        ``torch.distributed`` when it is initialised, else 1 and 0.  Each
        rank draws its own stream (see Notes).
    select_on : {"host", "device"}, default "host"
        ``"host"``: the engine's background pool selects ``prefetch`` batches
        ahead, off the training stream, and the batches are the same on every
        machine.  ``"device"`` (a CUDA ``device`` only): each ``next()`` draws,
        selects (the CUDA kernel when built, ``smallgan._core.cuda``, else
        the torch fallback) and gathers on the current CUDA stream without
        waiting; no producer thread, ``prefetch`` and ``threads`` unused; the
        selection then runs on the GPU between the training kernels.

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
    ``default_rng(SeedSequence(seed, spawn_key=key))`` with ``key = (1, b)``
    on rank 0 and ``(1, b, rank)`` on other ranks:
    ``rng.random((n, dim), dtype=float32) * 2 - 1`` (uniform) or
    ``rng.standard_normal((n, dim), dtype=float32)`` (normal), then
    ``f = rng.integers(n)``, with ``n = factor * batch_size``.  A single
    process and rank 0 of a distributed job therefore draw the same stream.
    With ``select_on="device"``, ``z`` comes instead from a CUDA
    ``torch.Generator`` seeded with ``rng.integers(2**63)`` (``torch.rand(...)
    * 2 - 1`` or ``torch.randn``), then ``f = rng.integers(n)``: reproducible
    from the seed on a given GPU and torch version, but not the host stream's
    values.

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
        planner: str = "thread",
        start: int = 0,
        num_replicas: Optional[int] = None,
        rank: Optional[int] = None,
        select_on: str = "host",
    ) -> None:
        self.factor = check_int("factor", factor, 1)
        self.prefetch = check_int("prefetch", prefetch, 0)
        self.threads = _check_threads(threads)
        self.planner = check_choice("planner", planner, PLANNERS)
        self.select_on = check_choice("select_on", select_on, ("host", "device"))
        self._init_prior(dim, batch_size, distribution, seed, device, start, num_replicas, rank)
        if self.select_on == "device" and self.device.type != "cuda":
            raise ValueError(f"select_on='device' needs a CUDA device, got device={device!r}")
        self._selections: Optional[Selections] = None
        self._closed = False

    def _make_plan(self) -> Callable[[int], Job]:
        # A closure over plain values, not `self`: the pending jobs must not
        # keep the iterator alive, or garbage collection could never close it.
        seed, dim, k, n = self.seed, self.dim, self.batch_size, self.factor * self.batch_size
        uniform, rank = self.distribution == "uniform", self.rank

        def plan(b: int) -> Job:
            rng = _stream(seed, *_prior_key(b, rank))
            z = _draw_prior(rng, n, dim, uniform)
            return Job(z, k, int(rng.integers(n)), z)

        return plan

    def __iter__(self) -> "PriorCoreset":
        return self

    def _next_on_device(self) -> torch.Tensor:
        # Draw, select and gather on the current CUDA stream; nothing waits.
        n = self.factor * self.batch_size
        rng = _stream(self.seed, *_prior_key(self.position, self.rank))
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
        if self.select_on == "device":
            return self._next_on_device()
        if self._selections is None:
            # Started lazily: constructing a prior costs nothing.
            self._selections = Selections(
                self._make_plan(), None, self.prefetch, self.threads, self._clock,
                _prior_finisher(self.device, self.batch_size, self.dim), self.position,
                self.planner,
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

    def __repr__(self) -> str:
        return (
            f"PriorCoreset(dim={self.dim}, batch_size={self.batch_size}, factor={self.factor}, "
            f"distribution={self.distribution!r}, seed={self.seed}, device={str(self.device)!r}, "
            f"prefetch={self.prefetch}, rank={self.rank})"
        )




class RandomPrior(_Source):
    """Endless iterator of plain prior batches: what a standard GAN uses.

    The counterpart of :class:`PriorCoreset` with the same arguments (less
    the selection's ``factor``, ``prefetch`` and ``threads``) and attributes.
    Batch ``b`` is the first ``batch_size`` rows of the candidates
    :class:`PriorCoreset` draws for its batch ``b`` with the same seed and
    rank (see the module docstring), i.e. ``batch_size`` i.i.d. draws.

    Parameters
    ----------
    dim, batch_size, distribution, seed, device, start, num_replicas, rank
        As for :class:`PriorCoreset`.

    Yields
    ------
    z : torch.Tensor, shape (batch_size, dim), float32, on ``device``

    Thread safety: not thread-safe; call ``next()`` from one thread.

    Examples
    --------
    >>> prior = RandomPrior(dim=8, batch_size=4, seed=0)
    >>> next(prior).shape
    torch.Size([4, 8])
    """

    def __init__(
        self,
        dim: int,
        batch_size: int,
        distribution: str = "uniform",
        seed: Optional[int] = None,
        device: Union[str, torch.device, None] = None,
        *,
        start: int = 0,
        num_replicas: Optional[int] = None,
        rank: Optional[int] = None,
    ) -> None:
        self._init_prior(dim, batch_size, distribution, seed, device, start, num_replicas, rank)
        self._closed = False

    def __iter__(self) -> "RandomPrior":
        return self

    def __next__(self) -> torch.Tensor:
        if self._closed:
            raise StopIteration
        t0 = time.perf_counter()
        rng = _stream(self.seed, *_prior_key(self.position, self.rank))
        z = _draw_prior(rng, self.batch_size, self.dim, self.distribution == "uniform")
        self._clock.add(time.perf_counter() - t0)
        self.position += 1
        return _to_device(z, self.device)

    def close(self) -> None:
        """Later ``next()`` calls raise StopIteration."""
        self._closed = True

    def __repr__(self) -> str:
        return (
            f"RandomPrior(dim={self.dim}, batch_size={self.batch_size}, "
            f"distribution={self.distribution!r}, seed={self.seed}, device={str(self.device)!r}, "
            f"rank={self.rank})"
        )


class _EpochBatches(Sampler[list[int]], _Source):
    """What both batch samplers share: the rank split, epochs, ``len``."""

    def _init_epochs(self, n: int, batch_size: Any, seed: Any, num_replicas: Any, rank: Any,
                     drop_last: Any) -> None:
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.num_replicas, self.rank = _ranks(num_replicas, rank)
        if seed is None and self.num_replicas > 1:
            raise ValueError(
                f"seed=None with num_replicas={self.num_replicas}: pass the same integer seed on "
                "every rank, so that the ranks agree on how each epoch is split"
            )
        self.seed = check_seed(seed)
        self.drop_last = check_bool("drop_last", drop_last)
        self.rows_per_rank = n // self.num_replicas
        self.epoch = 0
        self._start = 0
        self._clock = WaitClock()

    def __len__(self) -> int:
        if self.drop_last:
            return self.rows_per_rank // self.batch_size
        return math.ceil(self.rows_per_rank / self.batch_size)

    def set_epoch(self, epoch: int, *, start: int = 0) -> None:
        """Use epoch number ``epoch`` for the next iteration (as ``DistributedSampler``).

        ``start`` skips to batch ``start`` of that epoch without selecting
        or drawing the earlier ones (resuming a run mid-epoch).
        """
        self.epoch = check_int("epoch", epoch, 0)
        self._start = check_int("start", start, 0, len(self))

    def _claim_epoch(self) -> Tuple[int, int]:
        epoch, start = self.epoch, self._start
        self.epoch, self._start = epoch + 1, 0
        return epoch, start

    def _share(self, n: int, epoch: int) -> np.ndarray:
        """This rank's rows of the epoch's permutation (key ``(2, epoch)``)."""
        perm = _stream(self.seed, _KEY_EPOCH_SPLIT, epoch).permutation(n)
        return perm[: self.rows_per_rank * self.num_replicas][self.rank :: self.num_replicas]


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


class CoresetBatchSampler(_EpochBatches):
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
    planner : {"thread", "caller"}, default "thread"
        As for :class:`PriorCoreset`.

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
        planner: str = "thread",
    ) -> None:
        self.embeddings = _as_embedding_array(embeddings)
        self.factor = check_int("factor", factor, 1)
        self._init_epochs(self.embeddings.shape[0], batch_size, seed, num_replicas, rank, drop_last)
        self.prefetch = check_int("prefetch", prefetch, 0)
        self.threads = _check_threads(threads)
        self.planner = check_choice("planner", planner, PLANNERS)
        n = self.embeddings.shape[0]
        m = self.factor * self.batch_size
        if m > self.rows_per_rank:
            raise ValueError(
                f"factor * batch_size = {self.factor} * {self.batch_size} = {m} candidates per "
                f"batch, but each of the num_replicas={self.num_replicas} ranks has only "
                f"{self.rows_per_rank} of the {n} embedding rows"
            )
        self._live: "weakref.WeakSet[_EpochIterator]" = weakref.WeakSet()

    def _make_plan(self, epoch: int) -> Callable[[int], Job]:
        # Plain values only (see PriorCoreset._make_plan).
        emb, seed, rank, factor = self.embeddings, self.seed, self.rank, self.factor
        share_size, k_full, n_batches = self.rows_per_rank, self.batch_size, len(self)
        if self.num_replicas > 1:
            share: Optional[np.ndarray] = self._share(emb.shape[0], epoch)
        else:
            share = None  # identity: every row, no O(N) permutation per epoch

        def plan(b: int) -> Job:
            k = k_full if b < n_batches - 1 else share_size - (n_batches - 1) * k_full
            k = min(k, k_full)
            m = factor * k
            rng = _stream(seed, _KEY_BATCH, epoch, rank, b)
            pos = rng.choice(share_size, m, replace=False)
            rows = pos if share is None else share[pos]
            # Sorted rows read a memory map front to back, page by page.
            rows.sort()
            x = np.ascontiguousarray(emb[rows])
            return Job(x, k, int(rng.integers(m)), rows)

        return plan

    def __iter__(self) -> Iterator[list[int]]:
        it = _EpochIterator(self)
        self._live.add(it)
        return it

    def close(self) -> None:
        """Cancel every live iteration's pending selections."""
        for it in list(self._live):
            it.close()

    def __repr__(self) -> str:
        return (
            f"CoresetBatchSampler(rows={self.embeddings.shape[0]}, dim={self.embeddings.shape[1]}, "
            f"batch_size={self.batch_size}, factor={self.factor}, seed={self.seed}, "
            f"num_replicas={self.num_replicas}, rank={self.rank}, drop_last={self.drop_last}, "
            f"prefetch={self.prefetch})"
        )


class _EpochIterator(SelectionsOwner):
    """One pass (epoch) of a CoresetBatchSampler; closes itself when done."""

    def __init__(self, sampler: CoresetBatchSampler) -> None:
        self._sampler: Optional[CoresetBatchSampler] = sampler
        self._selections: Optional[Selections] = None
        self._closed = False
        self.epoch: Optional[int] = None

    def __iter__(self) -> "_EpochIterator":
        return self

    def __next__(self) -> list[int]:
        if self._closed:
            raise StopIteration
        if self._selections is None:
            s = self._sampler  # set until closed, and closed returned above
            self.epoch, start = s._claim_epoch()
            self._selections = Selections(
                s._make_plan(self.epoch), len(s), s.prefetch, s.threads, s._clock,
                _rows_of_selection, start, s.planner,
            )
        try:
            return self._selections.next()
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        self._sampler = None
        self._close_selections()


class RandomBatchSampler(_EpochBatches):
    """Plain random batches of dataset indices: what a standard GAN uses.

    The counterpart of :class:`CoresetBatchSampler` with the same arguments
    (a row count instead of the embeddings; no ``factor``, ``prefetch`` or
    ``threads``), the same rank split and epoch conventions, ``len()`` and
    ``set_epoch(epoch, start=0)``.  Each epoch, the permutation of the ``N``
    rows drawn from ``(seed, epoch)`` gives rank ``r`` the rows at positions
    ``r, r + R, ...`` of its first ``S * R`` entries (``S = N // R``), and
    the batches are consecutive runs of ``batch_size`` of them: a shuffled
    pass without replacement, as ``DistributedSampler`` plus ``BatchSampler``.

    Parameters
    ----------
    n : int
        Number of dataset rows.
    batch_size, seed, num_replicas, rank, drop_last
        As for :class:`CoresetBatchSampler`.

    Thread safety: as :class:`CoresetBatchSampler`.

    Examples
    --------
    >>> s = RandomBatchSampler(10, batch_size=4, seed=0)
    >>> [len(b) for b in s], len(s)
    ([4, 4], 2)
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: Optional[int] = None,
        num_replicas: Optional[int] = None,
        rank: Optional[int] = None,
        drop_last: bool = True,
    ) -> None:
        self.n = check_int("n", n, 1)
        self._init_epochs(self.n, batch_size, seed, num_replicas, rank, drop_last)
        if self.rows_per_rank < self.batch_size and self.drop_last:
            raise ValueError(
                f"batch_size={self.batch_size} is larger than the {self.rows_per_rank} rows of "
                f"each of the num_replicas={self.num_replicas} ranks (n={self.n}, drop_last=True)"
            )

    def __iter__(self) -> Iterator[list[int]]:
        epoch, start = self._claim_epoch()
        t0 = time.perf_counter()
        share = self._share(self.n, epoch)
        self._clock.add(time.perf_counter() - t0)
        k = self.batch_size
        for b in range(start, len(self)):
            yield share[b * k:(b + 1) * k].tolist()

    def close(self) -> None:
        """Nothing runs in the background; for symmetry with :class:`CoresetBatchSampler`."""

    def __repr__(self) -> str:
        return (
            f"RandomBatchSampler(n={self.n}, batch_size={self.batch_size}, seed={self.seed}, "
            f"num_replicas={self.num_replicas}, rank={self.rank}, drop_last={self.drop_last})"
        )
