"""Tests for smallgan.sampling: PriorCoreset and CoresetBatchSampler."""
from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
import torch

import smallgan
from smallgan import prefetch as engine
from smallgan import sampling
from smallgan.sampling import CoresetBatchSampler, PriorCoreset

PYTHON_DIR = Path(sampling.__file__).resolve().parents[1]


def _emb(n=2000, d=8, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def _stream(seed, *key):
    # The documented recipe, written out independently of the module.
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _producer_threads():
    return [t for t in threading.enumerate() if t.name == "smallgan-prefetch"]


@pytest.fixture(autouse=True)
def _no_thread_leaks():
    # Every test must leave no producer thread behind.
    yield
    deadline = time.monotonic() + 5
    while _producer_threads() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert _producer_threads() == []


class _Recorder:
    """Wraps kcenter/kcenter_async: counts calls, keeps futures, fails on demand."""

    def __init__(self, monkeypatch, fail_at=None, fail_sync_raise=False):
        self.futures = []
        self.calls = 0
        self.fail_at = fail_at
        self.fail_sync_raise = fail_sync_raise
        real_async, real_sync = engine.kcenter_async, engine.kcenter

        def fake_async(x, k, **kw):
            call = self.calls
            self.calls += 1
            if call == self.fail_at:
                if self.fail_sync_raise:
                    raise RuntimeError(f"injected failure at call {call}")
                f = concurrent.futures.Future()
                f.set_exception(RuntimeError(f"injected failure at call {call}"))
            else:
                f = real_async(x, k, **kw)
            self.futures.append(f)
            return f

        def fake_sync(x, k, **kw):
            call = self.calls
            self.calls += 1
            if call == self.fail_at:
                raise RuntimeError(f"injected failure at call {call}")
            return real_sync(x, k, **kw)

        monkeypatch.setattr(engine, "kcenter_async", fake_async)
        monkeypatch.setattr(engine, "kcenter", fake_sync)


# --------------------------------------------------------------------------
# CoresetBatchSampler: batches
# --------------------------------------------------------------------------

@pytest.mark.parametrize("drop_last", [True, False])
def test_sampler_batches_do_not_depend_on_prefetch(drop_last):
    emb = _emb(1000)
    runs = {}
    for prefetch in (0, 1, 4):
        s = CoresetBatchSampler(emb, 48, factor=4, seed=7, prefetch=prefetch, drop_last=drop_last)
        runs[prefetch] = [list(s), list(s)]  # epochs 0 and 1
    assert runs[0] == runs[1] == runs[4]
    assert runs[0][0] != runs[0][1]


def test_sampler_batches_are_distinct_valid_python_ints():
    n = 1500
    s = CoresetBatchSampler(_emb(n), 32, factor=8, seed=1)
    batches = list(s)
    assert len(batches) == len(s) == n // 32
    for b in batches:
        assert len(b) == 32 and len(set(b)) == 32
        assert all(type(i) is int and 0 <= i < n for i in b)


def test_sampler_batch_is_kcenter_of_documented_candidates():
    # Batch b of epoch e: candidates from spawn key (3, e, rank, b), sorted;
    # first centre drawn next; then k-center on their embedding rows.
    emb, k, factor, seed = _emb(900), 16, 4, 11
    s = CoresetBatchSampler(emb, k, factor=factor, seed=seed)
    s.set_epoch(2)
    got = list(s)[:3]
    for b in range(3):
        rng = _stream(seed, 3, 2, 0, b)
        rows = np.sort(rng.choice(900, k * factor, replace=False))
        first = int(rng.integers(k * factor))
        idx = smallgan.kcenter(emb[rows], k, first=first)
        assert got[b] == rows[idx].tolist()


def test_sampler_accepts_numpy_memmap_and_torch(tmp_path):
    emb = _emb(800)
    np.save(tmp_path / "emb.npy", emb)
    mm = np.load(tmp_path / "emb.npy", mmap_mode="r")
    sources = [emb, mm, torch.from_numpy(emb.copy()), torch.from_numpy(emb.copy()).requires_grad_()]
    runs = [list(CoresetBatchSampler(e, 20, factor=4, seed=3)) for e in sources]
    assert all(r == runs[0] for r in runs[1:])


def _clustered(n_clusters=300, d=16, seed=0):
    """Hundreds of well-separated clusters of very unequal (Zipf-like) sizes."""
    rng = np.random.default_rng(seed)
    sizes = np.maximum(2, (3000 / np.arange(1, n_clusters + 1) ** 1.2)).astype(int)
    labels = np.repeat(np.arange(n_clusters), sizes)
    centres = rng.normal(size=(n_clusters, d)) * 10.0
    emb = centres[labels] + rng.normal(size=(labels.size, d)) * 0.05
    return emb.astype(np.float32), labels


def test_coreset_batches_cover_far_more_clusters_than_random():
    emb, labels = _clustered()
    k = 32
    s = CoresetBatchSampler(emb, k, factor=8, seed=0)
    core = [len(set(labels[b].tolist())) for b in s]
    rng = np.random.default_rng(0)
    rand = [len(set(labels[rng.choice(labels.size, k, replace=False)].tolist())) for _ in core]
    # Random batches mostly repeat the few big clusters (~18 of 32 distinct);
    # k-center on 8x candidates hits a new cluster with nearly every pick.
    assert np.mean(core) >= 1.5 * np.mean(rand)
    assert np.mean(core) >= 0.9 * k


def test_len_and_last_batch():
    n, k = 1000, 64
    keep = CoresetBatchSampler(_emb(n), k, factor=2, seed=0)
    full = CoresetBatchSampler(_emb(n), k, factor=2, seed=0, drop_last=False)
    assert len(keep) == 1000 // 64 == 15
    assert len(full) == 16
    sizes = [len(b) for b in full]
    assert sizes == [64] * 15 + [1000 - 15 * 64]
    assert [len(b) for b in keep] == [64] * 15
    # with ranks: each rank's share is N // R rows
    s = CoresetBatchSampler(_emb(1001), 10, factor=2, seed=0, num_replicas=3, rank=2)
    assert len(s) == (1001 // 3) // 10 == 33
    assert len(list(s)) == 33


def test_set_epoch_and_automatic_epoch_advance():
    emb = _emb(600)

    def epoch(e):
        s = CoresetBatchSampler(emb, 16, factor=4, seed=5)
        s.set_epoch(e)
        return list(s)

    auto = CoresetBatchSampler(emb, 16, factor=4, seed=5)
    assert auto.epoch == 0
    first, second = list(auto), list(auto)
    assert auto.epoch == 2
    assert first == epoch(0) and second == epoch(1) and first != second
    auto.set_epoch(7)
    assert list(auto) == epoch(7)
    # An iterator that never yields does not use up an epoch (multi-worker
    # DataLoaders call iter() twice per epoch).
    auto.set_epoch(3)
    unused = iter(auto)
    assert list(auto) == epoch(3)
    del unused
    with pytest.raises(ValueError, match="epoch must be >= 0, got -1"):
        auto.set_epoch(-1)


def test_ranks_split_each_epoch_disjointly():
    n = 1200
    emb = _emb(n)
    per_rank = [list(CoresetBatchSampler(emb, 20, factor=4, seed=9, num_replicas=2, rank=r)) for r in (0, 1)]
    assert per_rank[0] != per_rank[1]
    rows = [set(i for b in batches for i in b) for batches in per_rank]
    assert rows[0].isdisjoint(rows[1])
    assert all(0 <= i < n for r in rows for i in r)


def test_wait_time_is_recorded():
    s = CoresetBatchSampler(_emb(800), 16, factor=4, seed=0, prefetch=0)
    assert s.wait_s == 0.0
    batches = list(s)
    assert s.last_wait_s > 0.0
    assert s.wait_s >= s.last_wait_s * 1.0
    assert s.wait_s > s.last_wait_s  # accumulated over len(s) batches
    assert len(batches) == len(s)


@pytest.mark.timeout(120)
# Python >= 3.12 warns on fork() from a multi-threaded process (our pool and
# producer threads exist).  The forked workers only index the dataset; they
# never touch the sampler or the engine (whose pool resets itself after fork).
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_dataloader_with_workers_matches_sampler():
    n = 640
    emb = _emb(n)
    data = torch.utils.data.TensorDataset(torch.arange(n))
    ref = CoresetBatchSampler(emb, 16, factor=4, seed=2, prefetch=0)
    want = [list(ref), list(ref)]
    sampler = CoresetBatchSampler(emb, 16, factor=4, seed=2, prefetch=2)
    loader = torch.utils.data.DataLoader(
        data, batch_sampler=sampler, num_workers=2,
        multiprocessing_context="fork" if sys.platform.startswith("linux") else None,
    )
    got = [[b[0].tolist() for b in loader] for _ in range(2)]
    assert got == want
    assert sampler.epoch == 2


# --------------------------------------------------------------------------
# PriorCoreset
# --------------------------------------------------------------------------

def test_prior_batches_do_not_depend_on_prefetch():
    runs = []
    for prefetch in (0, 1, 4):
        with PriorCoreset(16, 32, factor=4, seed=3, prefetch=prefetch) as p:
            runs.append([next(p) for _ in range(5)])
    for other in runs[1:]:
        assert all(torch.equal(a, b) for a, b in zip(runs[0], other))


def test_prior_shape_dtype_range_and_recipe():
    dim, k, factor, seed = 6, 10, 4, 21
    with PriorCoreset(dim, k, factor=factor, seed=seed) as p:
        got = [next(p) for _ in range(3)]
    for b, z in enumerate(got):
        assert z.shape == (k, dim) and z.dtype == torch.float32 and z.device.type == "cpu"
        assert float(z.abs().max()) <= 1.0
        rng = _stream(seed, 1, b)
        draws = rng.random((k * factor, dim), dtype=np.float32) * 2 - 1
        idx = smallgan.kcenter(draws, k, first=int(rng.integers(k * factor)))
        assert np.array_equal(z.numpy(), draws[idx])


@pytest.mark.parametrize("prefetch", [0, 2])
def test_prior_resumes_from_position(prefetch):
    with PriorCoreset(5, 8, seed=2, prefetch=prefetch) as p:
        stream = [next(p) for _ in range(6)]
        assert p.position == 6
    with PriorCoreset(5, 8, seed=2, prefetch=prefetch, start=4) as q:
        assert q.position == 4
        assert torch.equal(next(q), stream[4]) and torch.equal(next(q), stream[5])
        assert q.position == 6


def test_prior_normal_and_fresh_seed():
    p = PriorCoreset(4, 64, distribution="normal", prefetch=0)
    z = next(p)
    assert float(z.abs().max()) > 1.0  # not the uniform cube
    again = PriorCoreset(4, 64, distribution="normal", seed=p.seed, prefetch=0)
    assert torch.equal(next(again), z)
    assert not torch.equal(next(PriorCoreset(4, 64, distribution="normal", prefetch=0)), z)
    p.close()
    again.close()


def _mean_nn_distance(z):
    d = torch.cdist(z, z)
    d.fill_diagonal_(float("inf"))
    return float(d.min(dim=1).values.mean())


def test_prior_coresets_are_more_spread_out_than_plain_draws():
    dim, k = 2, 64
    with PriorCoreset(dim, k, factor=4, seed=0) as p:
        core = np.mean([_mean_nn_distance(next(p)) for _ in range(20)])
    g = torch.Generator().manual_seed(0)
    plain = np.mean([_mean_nn_distance(torch.rand(k, dim, generator=g) * 2 - 1) for _ in range(20)])
    assert core > 1.3 * plain


def test_prior_iterator_protocol_and_close():
    p = PriorCoreset(3, 4, seed=0)
    assert iter(p) is p
    for i, z in enumerate(p):
        if i == 2:
            break
    assert next(p).shape == (4, 3)
    p.close()
    with pytest.raises(StopIteration):
        next(p)
    with PriorCoreset(3, 4, seed=0) as q:
        next(q)
    with pytest.raises(StopIteration):
        next(q)
    assert q.wait_s >= q.last_wait_s >= 0.0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_prior_on_cuda_matches_cpu():
    with PriorCoreset(8, 16, seed=4, device="cuda") as g, PriorCoreset(8, 16, seed=4) as c:
        for _ in range(3):
            zg = next(g)
            assert zg.device.type == "cuda"
            assert torch.equal(zg.cpu(), next(c))


# --------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(dim=0, batch_size=4), ValueError, r"dim must be >= 1, got 0"),
        (dict(dim=2.0, batch_size=4), TypeError, r"dim must be an int, got 2.0"),
        (dict(dim=2, batch_size=0), ValueError, r"batch_size must be >= 1, got 0"),
        (dict(dim=2, batch_size=4, factor=0), ValueError, r"factor must be >= 1, got 0"),
        (dict(dim=2, batch_size=4, distribution="gauss"), ValueError, r"distribution must be .*'gauss'"),
        (dict(dim=2, batch_size=4, seed=-1), ValueError, r"seed must be >= 0, got -1"),
        (dict(dim=2, batch_size=4, prefetch=-1), ValueError, r"prefetch must be >= 0, got -1"),
        (dict(dim=2, batch_size=4, prefetch=True), TypeError, r"prefetch must be an int, got True"),
        (dict(dim=2, batch_size=4, threads=0), ValueError, r"threads must be >= 1, got 0"),
        (dict(dim=2, batch_size=4, start=-3), ValueError, r"start must be >= 0, got -3"),
        (dict(dim=2, batch_size=4, device="nonsense"), ValueError, r"device must name a torch device, got 'nonsense'"),
    ],
)
def test_prior_argument_errors(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        PriorCoreset(**kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_prior_cuda_without_cuda_is_an_error():
    with pytest.raises(ValueError, match=r"device='cuda' but CUDA is not available"):
        PriorCoreset(2, 4, device="cuda")


@pytest.mark.parametrize(
    "args, kwargs, exc, match",
    [
        ((np.zeros(10),), {}, ValueError, r"embeddings must be 2-D \(rows, dim\), got shape \(10,\)"),
        ((np.zeros((0, 3)),), {}, ValueError, r"at least one row and column, got shape \(0, 3\)"),
        ((np.zeros((10, 2), dtype=complex),), {}, TypeError, r"embeddings must be real numbers, got dtype complex128"),
        ((np.array([["a", "b"]]),), {}, TypeError, r"embeddings must be real numbers, got dtype <U1"),
        ((torch.zeros(10, 2, dtype=torch.bool),), {}, TypeError, r"embeddings must be numeric, got dtype torch.bool"),
        ((torch.zeros(10, 2, dtype=torch.complex64),), {}, TypeError, r"embeddings must be real, got dtype torch.complex64"),
        ((np.zeros((100, 2)),), dict(batch_size=0), ValueError, r"batch_size must be >= 1, got 0"),
        ((np.zeros((100, 2)),), dict(factor=-2), ValueError, r"factor must be >= 1, got -2"),
        ((np.zeros((100, 2)),), dict(factor=8), ValueError,
         r"factor \* batch_size = 8 \* 16 = 128 candidates per batch, but each of the num_replicas=1 ranks has only 100 of the 100"),
        ((np.zeros((200, 2)),), dict(num_replicas=2, rank=0, seed=0, factor=8), ValueError,
         r"= 128 candidates per batch, but each of the num_replicas=2 ranks has only 100 of the 200"),
        ((np.zeros((100, 2)),), dict(num_replicas=2, rank=2, seed=0, factor=1), ValueError,
         r"rank must be in \[0, num_replicas=2\), got 2"),
        ((np.zeros((100, 2)),), dict(num_replicas=0, factor=1), ValueError, r"num_replicas must be >= 1, got 0"),
        ((np.zeros((100, 2)),), dict(num_replicas=2, rank=1, factor=1), ValueError,
         r"seed=None with num_replicas=2: pass the same integer seed on every rank"),
        ((np.zeros((100, 2)),), dict(factor=1, drop_last="yes"), TypeError, r"drop_last must be a bool, got 'yes'"),
        ((np.zeros((100, 2)),), dict(factor=1, prefetch=1.5), TypeError, r"prefetch must be an int, got 1.5"),
        ((np.zeros((100, 2)),), dict(factor=1, seed="x"), TypeError, r"seed must be an int, got 'x'"),
    ],
)
def test_sampler_argument_errors(args, kwargs, exc, match):
    kwargs = {"batch_size": 16, **kwargs}
    with pytest.raises(exc, match=match):
        CoresetBatchSampler(*args, **kwargs)


# --------------------------------------------------------------------------
# errors in background jobs surface at their batch
# --------------------------------------------------------------------------

@pytest.mark.parametrize("prefetch, planner", [(0, "thread"), (1, "thread"), (4, "thread"),
                                               (1, "caller"), (4, "caller")])
@pytest.mark.parametrize("sync_raise", [False, True])
def test_injected_job_failure_surfaces_at_its_batch(monkeypatch, prefetch, planner, sync_raise):
    emb = _emb(800)
    want = list(CoresetBatchSampler(emb, 16, factor=4, seed=0))[:3]
    rec = _Recorder(monkeypatch, fail_at=3, fail_sync_raise=sync_raise)
    it = iter(CoresetBatchSampler(emb, 16, factor=4, seed=0, prefetch=prefetch, planner=planner))
    assert [next(it) for _ in range(3)] == want
    with pytest.raises(RuntimeError, match="injected failure at call 3") as info:
        next(it)
    if sys.version_info >= (3, 11):
        assert info.value.__notes__ == ["(raised by the k-center selection of batch 3)"]
    with pytest.raises(StopIteration):  # the stream is closed after a failure
        next(it)
    concurrent.futures.wait(rec.futures, timeout=10)
    assert all(f.done() for f in rec.futures)


def test_prior_job_failure_surfaces_at_its_batch(monkeypatch):
    want = [next(PriorCoreset(4, 8, seed=1, prefetch=0)) for _ in range(1)]
    _Recorder(monkeypatch, fail_at=2)
    p = PriorCoreset(4, 8, seed=1, prefetch=3)
    assert torch.equal(next(p), want[0])
    next(p)
    with pytest.raises(RuntimeError, match="injected failure at call 2"):
        next(p)
    with pytest.raises(StopIteration):
        next(p)


def test_nan_embedding_row_raises_at_the_first_batch_that_draws_it():
    emb = _emb(3000)
    k, factor = 8, 4
    # Pick a NaN row whose first candidate draw is a few batches in, using
    # the synchronous sampler as the reference for where it must surface.

    def until_error(sampler):
        batches = []
        try:
            for b in sampler:
                batches.append(b)
        except ValueError as exc:
            return batches, exc
        return batches, None

    for row in range(0, 3000, 37):
        bad = emb.copy()
        bad[row, 1] = np.nan
        ref, err = until_error(CoresetBatchSampler(bad, k, factor=factor, seed=0, prefetch=0))
        if err is not None and len(ref) >= 3:
            break
    assert err is not None and len(ref) >= 3
    for prefetch in (1, 4):
        got, err = until_error(CoresetBatchSampler(bad, k, factor=factor, seed=0, prefetch=prefetch))
        assert got == ref
        assert err is not None and "NaN or Inf" in str(err)


# --------------------------------------------------------------------------
# shutdown: break, close, gc, context manager; pending jobs cancelled
# --------------------------------------------------------------------------

class _GatedEngine:
    """A one-thread stand-in for the engine pool whose jobs wait for permits."""

    def __init__(self, monkeypatch):
        self.pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gated-engine")
        self.permits = threading.Semaphore(0)
        self.futures = []
        real = smallgan.kcenter

        def job(x, k, kw):
            self.permits.acquire()
            return real(x, k, **kw)

        def fake_async(x, k, **kw):
            f = self.pool.submit(job, x, k, kw)
            self.futures.append(f)
            return f

        monkeypatch.setattr(engine, "kcenter_async", fake_async)

    def wait_submitted(self, n, timeout=10):
        deadline = time.monotonic() + timeout
        while len(self.futures) < n and time.monotonic() < deadline:
            time.sleep(0.005)
        return len(self.futures)

    def shutdown(self):
        for _ in range(100):
            self.permits.release()
        self.pool.shutdown(wait=True)


@pytest.mark.parametrize("how", ["close", "break", "del", "sampler-close", "with"])
def test_shutdown_cancels_pending_jobs_and_stops_the_thread(monkeypatch, how):
    engine = _GatedEngine(monkeypatch)
    emb = _emb(800)
    sampler = CoresetBatchSampler(emb, 16, factor=4, seed=0, prefetch=4)
    try:
        engine.permits.release()  # only batch 0 may finish
        if how == "break":
            for _ in sampler:
                assert engine.wait_submitted(5) == 5  # batches 0..4
                break
        elif how == "with":
            with sampler:
                it = iter(sampler)
                next(it)
                assert engine.wait_submitted(5) == 5  # batches 0..4
                threading.Timer(0.2, engine.permits.release).start()
            assert not _producer_threads()
            del it
        else:
            it = iter(sampler)
            ref = weakref.ref(it)
            next(it)
            assert engine.wait_submitted(5) == 5  # batches 0..4
            assert len(_producer_threads()) == 1
            if how == "close":
                # close() waits for the running job: let it finish shortly.
                threading.Timer(0.2, engine.permits.release).start()
                it.close()
                assert engine.futures[1].done()
            elif how == "sampler-close":
                threading.Timer(0.2, engine.permits.release).start()
                sampler.close()
            else:
                del it  # reference counting alone must stop it: no cycles
                assert ref() is None
        # No producer thread; the queued jobs (batches 2..4) were cancelled,
        # not run: only batch 1 could have reached the one-thread pool.
        assert not _producer_threads()
        assert engine.futures[0].done() and not engine.futures[0].cancelled()
        assert all(f.cancelled() for f in engine.futures[2:])
        assert len(engine.futures) == 5  # nothing submitted after shutdown
    finally:
        engine.shutdown()


def test_prior_garbage_collection_stops_its_thread():
    p = PriorCoreset(8, 16, seed=0, prefetch=3)
    next(p)
    assert len(_producer_threads()) == 1
    ref = weakref.ref(p)
    del p
    assert ref() is None
    assert not _producer_threads()


def test_no_threads_before_first_batch_and_none_for_prefetch_zero():
    s = CoresetBatchSampler(_emb(500), 8, factor=2, seed=0)
    it = iter(s)
    p = PriorCoreset(4, 4, seed=0)
    assert not _producer_threads()
    sync = iter(CoresetBatchSampler(_emb(500), 8, factor=2, seed=0, prefetch=0))
    next(sync)
    assert not _producer_threads()
    next(it), next(p)
    assert len(_producer_threads()) == 2
    p.close(), it.close()


def test_a_waiting_consumer_is_never_made_to_wait_out_the_deferral(monkeypatch):
    # The producer defers planning after a slot frees, except when the
    # consumer is waiting; with a 1 s deferral, a tight loop of 30 batches
    # would take 30 s if that exception did not work.
    monkeypatch.setattr(engine, "_DEFER_S", 1.0)
    s = CoresetBatchSampler(_emb(600), 20, factor=1, seed=0, prefetch=2)
    t0 = time.monotonic()
    assert len(list(s)) == 30
    assert time.monotonic() - t0 < 10.0


def test_exhausted_epoch_leaves_no_thread():
    s = CoresetBatchSampler(_emb(500), 50, factor=2, seed=0, prefetch=8)
    it = iter(s)
    assert len(list(it)) == 10
    assert not _producer_threads()
    with pytest.raises(StopIteration):
        next(it)


# --------------------------------------------------------------------------
# subprocesses: Ctrl-C and interpreter exit
# --------------------------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import signal, sys, time
    # the child must not inherit a blocked or ignored SIGINT from the process
    # that starts it (a test runner's state): the subject here is the samplers
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
    signal.signal(signal.SIGINT, signal.default_int_handler)
    import numpy as np
    from smallgan.sampling import CoresetBatchSampler, PriorCoreset
    emb = np.random.default_rng(0).normal(size=(20000, 32)).astype(np.float32)
    sampler = CoresetBatchSampler(emb, 128, factor=8, seed=0, prefetch=4)
    prior = PriorCoreset(128, 128, seed=0, prefetch=4)
    step = 0
    mode = sys.argv[1]
    while True:
        for batch in sampler:
            z = next(prior)
            step += 1
            if step == 20:
                print("ready", flush=True)
                if mode == "exit":
                    sys.exit(3)  # streams still open, jobs in flight
            time.sleep(0.001)
    """
)


def _run_child(tmp_path, mode):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = dict(os.environ, PYTHONPATH=str(PYTHON_DIR), OMP_NUM_THREADS="1")
    proc = subprocess.Popen(
        # faulthandler: if the child hangs, SIGABRT below dumps every thread's stack
        [sys.executable, "-X", "faulthandler", str(script), mode], env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "ready"
        if mode == "sigint":
            proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGABRT)
            _, err = proc.communicate(timeout=30)
            pytest.fail(f"the child did not exit within 30 s; its threads:\n{err}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, err


@pytest.mark.timeout(120)
def test_sigint_stops_a_training_loop_without_hanging(tmp_path):
    rc, err = _run_child(tmp_path, "sigint")
    assert "KeyboardInterrupt" in err
    assert rc != 0


@pytest.mark.timeout(120)
def test_interpreter_exit_with_open_streams_does_not_hang(tmp_path):
    rc, err = _run_child(tmp_path, "exit")
    assert rc == 3, err
    assert "Traceback" not in err


# ---------------------------------------------------------- plain samplers


def test_select_on_device_needs_a_cuda_device():
    with pytest.raises(ValueError, match="select_on='device' needs a CUDA device, got device='cpu'"):
        PriorCoreset(4, 2, device="cpu", select_on="device")
    with pytest.raises(ValueError, match="select_on must be one of 'host', 'device'; got 'gpu'"):
        PriorCoreset(4, 2, select_on="gpu")


def test_random_prior_is_the_first_rows_of_the_coreset_candidates():
    # documented pairing: plain batch b = first batch_size of the candidates
    # PriorCoreset draws for batch b (same seed), i.e. i.i.d. prior draws
    for dist, draw in (("uniform", lambda r, s: r.random(s, dtype=np.float32) * 2 - 1),
                       ("normal", lambda r, s: r.standard_normal(s, dtype=np.float32))):
        plain = sampling.RandomPrior(5, 8, distribution=dist, seed=11, start=2)
        for b in (2, 3, 4):
            rng = np.random.default_rng(np.random.SeedSequence(11, spawn_key=(1, b)))
            np.testing.assert_array_equal(next(plain).numpy(), draw(rng, (32, 5))[:8])
        assert plain.position == 5 and plain.last_wait_s >= 0


def test_random_batch_sampler_epochs_are_shuffled_passes_and_start_skips():
    s = sampling.RandomBatchSampler(103, 10, seed=4)
    assert len(s) == 10
    e0, e1 = list(s), list(s)  # no set_epoch: the next epoch each time
    for epoch in (e0, e1):
        rows = [i for b in epoch for i in b]
        assert len(rows) == len(set(rows)) == 100 and all(0 <= i < 103 for i in rows)
    assert e0 != e1
    s.set_epoch(0, start=7)
    assert list(s) == e0[7:]
    with pytest.raises(ValueError, match="start must be <= 10, got 11"):
        s.set_epoch(0, start=11)
    with pytest.raises(TypeError, match="n must be an int, got 10.0"):
        sampling.RandomBatchSampler(10.0, 2)


def test_coreset_batch_sampler_start_equals_the_tail_without_selecting_the_head(monkeypatch):
    emb = np.random.default_rng(0).normal(size=(400, 4)).astype(np.float32)
    full = list(CoresetBatchSampler(emb, 10, factor=4, seed=2, prefetch=2))
    calls = []
    real = engine.kcenter_async
    monkeypatch.setattr(engine, "kcenter_async", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
    s = CoresetBatchSampler(emb, 10, factor=4, seed=2, prefetch=2)
    s.set_epoch(0, start=30)
    assert list(s) == full[30:]
    assert len(calls) == len(full) - 30  # no selection for the skipped batches


_FORK_CHILD = textwrap.dedent(
    """
    import os, sys
    from smallgan.sampling import PriorCoreset
    prior = PriorCoreset(4, 8, seed=0, prefetch=2)
    next(prior)  # the producer thread runs in the parent
    pid = os.fork()
    if pid == 0:
        try:
            next(prior)
        except RuntimeError as exc:
            print("CHILD", exc, flush=True)
            os._exit(0)
        os._exit(3)
    _, status = os.waitpid(pid, 0)
    next(prior)  # the parent's stream is unaffected
    prior.close()
    sys.exit(os.waitstatus_to_exitcode(status))
    """
)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_sampler_started_before_fork_raises_in_the_child_instead_of_hanging():
    p = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", _FORK_CHILD],
                       capture_output=True, text=True, timeout=60,
                       env=dict(os.environ, PYTHONPATH=str(PYTHON_DIR)))
    assert p.returncode == 0, p.stderr
    assert "CHILD this sampler's prefetch thread was started in the parent process" in p.stdout


def test_the_caller_planner_gives_the_same_batches_without_a_thread():
    emb = _emb(2000)
    before = {t.name for t in threading.enumerate()}
    for prefetch in (1, 3):
        with PriorCoreset(6, 16, seed=3, prefetch=prefetch, planner="caller") as a, \
                PriorCoreset(6, 16, seed=3, prefetch=0) as b:
            for _ in range(7):
                assert torch.equal(next(a), next(b))
            assert "smallgan-prefetch" not in {t.name for t in threading.enumerate()} - before
        s_caller = CoresetBatchSampler(emb, 20, factor=4, seed=1, prefetch=prefetch, planner="caller")
        s_sync = CoresetBatchSampler(emb, 20, factor=4, seed=1, prefetch=0)
        for epoch in (0, 1):
            assert list(s_caller) == list(s_sync)
        s_caller.set_epoch(0, start=90)
        s_sync.set_epoch(0, start=90)
        assert list(s_caller) == list(s_sync)  # end of the epoch: nothing planned past it
    with pytest.raises(ValueError, match="planner must be one of 'thread', 'caller'; got 'gpu'"):
        PriorCoreset(4, 2, planner="gpu")


def test_the_caller_planner_cancels_its_pending_jobs_on_close(monkeypatch):
    rec = _Recorder(monkeypatch)
    prior = PriorCoreset(4, 8, seed=0, prefetch=4, planner="caller")
    next(prior)
    assert len(rec.futures) == 5  # batch 0, then 4 in flight
    prior.close()
    assert all(f.done() for f in rec.futures)
    with pytest.raises(StopIteration):
        next(prior)
