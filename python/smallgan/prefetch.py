"""The ordered prefetch engine behind the samplers (internal).

:mod:`smallgan.sampling` describes each batch by a *plan*: a function of the
batch number that makes every random draw of that batch and returns the
candidates, ``k`` and the first centre (:class:`Job`).  :class:`Selections`
runs the plans in batch order, ``prefetch`` batches ahead of the consumer,
and hands the k-center work to the engine's background pool
(:func:`smallgan.kcenter_async`, GIL released); ``next()`` returns the
finished batches in order.

Modelled on PyTorch's pin-memory thread
(``torch/utils/data/_utils/pin_memory.py``): a bounded number of batches
ahead, a done event, a failure carried to the batch it belongs to, a
liveness check while waiting, and shutdown by event, sentinel and join.
Interpreter exit (``atexit``) and ``fork`` are handled here for every live
stream.  A stream whose producer thread was started before ``fork()`` cannot
run in the child (the thread does not exist there): ``next()`` in the child
raises ``RuntimeError`` instead of waiting forever.

Two planners: ``"thread"`` (the default) plans on a producer thread, which
keeps the random draws and gathers off the training loop; ``"caller"`` plans
on the consumer's own thread inside ``next()`` and only the k-center work
runs elsewhere (the engine pool, GIL released).  A training loop that is
bound by Python (kernel launches on a fast GPU) holds the GIL nearly all the
time; a producer thread then costs it a GIL hand-over, and the wait for it,
at every numpy call the producer makes.  :data:`PLANNERS` names both.

Nothing here is public API; users build :class:`smallgan.sampling.PriorCoreset`
and :class:`smallgan.sampling.CoresetBatchSampler`.
"""
from __future__ import annotations

import atexit
import os
import queue
import threading
import time
import weakref
from concurrent.futures import Future
from concurrent.futures import wait as _wait_futures
from typing import Any, Callable, NamedTuple, Optional

import numpy as np

# Looked up at call time (module globals), so tests can substitute them.
from smallgan.coreset import kcenter, kcenter_async

__all__ = ["Selections", "SelectionsOwner", "Job", "WaitClock", "PLANNERS"]

#: Where batches are planned: a producer thread, or the consumer's thread.
PLANNERS = ("thread", "caller")


class WaitClock:
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


class Job(NamedTuple):
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
# Every Selections with a producer thread, so interpreter exit and fork can
# reach them (weak: they must not outlive their owners).
_LIVE: "weakref.WeakSet[Selections]" = weakref.WeakSet()


def _failed(exc: BaseException) -> Future:
    future: Future = Future()
    future.set_exception(exc)
    return future


def _produce(
    plan: Callable[[int], Job],
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


class Selections:
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
        plan: Callable[[int], Job],
        count: Optional[int],
        prefetch: int,
        threads: Optional[int],
        clock: WaitClock,
        finish: Callable[[Any, Any], Any],
        start: int = 0,
        planner: str = "thread",
    ) -> None:
        self._plan: Optional[Callable[[int], Job]] = plan
        # "thread": a producer thread plans (draws, gathers) and submits;
        # "caller": next() plans and submits on the consumer's thread, so no
        # other Python thread ever competes for the GIL (see PLANNERS)
        self._caller_plans = planner == "caller"
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
        if self._forked:
            # The producer thread and the pool jobs it submitted exist only in
            # the parent; waiting for them here would never end.
            raise RuntimeError(
                "this sampler's prefetch thread was started in the parent process before "
                "fork(); it cannot run in the child.  Create the sampler in the child "
                "(e.g. in a DataLoader worker_init_fn), or use prefetch=0 there"
            )
        if self._prefetch == 0:
            return self._next_sync()
        if self._thread is None and not self._caller_plans:
            self._start()
        t0 = time.perf_counter()
        b = -1
        try:
            if self._caller_plans:
                if self._out.empty():
                    self._fill()
                item = _END if self._out.empty() else self._out.get_nowait()
            else:
                item = self._take()
            if item is _END:
                self.close()
                raise StopIteration
            b, context, future = item
            # Lock waits are interruptible on POSIX: Ctrl-C lands here.
            idx = future.result()
            self._clock.add(time.perf_counter() - t0)
            batch = self._finish(context, idx)
            if self._caller_plans:
                # top up after the batch is finished: these selections then
                # run on the pool while the caller trains on it
                self._fill()
        except StopIteration:
            raise
        except BaseException as exc:
            self._annotate(exc, b)
            # Ctrl-C must not wait on anything; a failed job can afford to.
            self.close(wait=isinstance(exc, Exception))
            raise
        if not self._caller_plans:
            # Free the slot only now: the producer's planning holds the GIL in
            # short stretches, which would slow this thread down if they ran
            # while it is still busy here rather than back in the training step.
            self._slots.release()
        return batch

    def _fill(self) -> None:
        """Plan and submit batches on this thread until ``prefetch`` are in flight."""
        while self._out.qsize() < self._prefetch and (self._count is None or self._planned < self._count):
            b = self._planned
            self._planned += 1
            context = None
            try:
                job = self._plan(b)  # type: ignore[misc]
                context = job.context
                future = kcenter_async(job.x, job.k, first=job.first, threads=self._threads)
                del job
            except Exception as exc:
                # raised at batch b, in order; nothing after it is planned
                future = _failed(exc)
                self._count = self._planned
            _LIVE.add(self)  # jobs in the pool: fork must know
            self._out.put((b, context, future))

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

class SelectionsOwner:
    """Shutdown shared by the objects that own a :class:`Selections` stream."""

    _selections: Optional["Selections"]
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

