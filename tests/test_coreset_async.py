"""kcenter_async and the engine's background pool."""
from __future__ import annotations

import gc
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import CancelledError, Future

import numpy as np
import pytest

from smallgan import _core, kcenter, kcenter_async
from kcenter_reference import box_points, float32_distance_bound, reference_kcenter


def gaussian(n, d, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)


def test_async_equals_sync():
    x = gaussian(2000, 16)
    fut = kcenter_async(x, 100, seed=3, return_radius=True, return_distances=True)
    assert isinstance(fut, Future)
    idx, r, dist = fut.result(timeout=30)
    sidx, sr, sdist = kcenter(x, 100, seed=3, return_radius=True, return_distances=True)
    np.testing.assert_array_equal(idx, sidx)
    assert r == sr
    np.testing.assert_array_equal(dist, sdist)


def test_async_torch_returns_tensor():
    torch = pytest.importorskip("torch")
    x = torch.randn(300, 4)
    out = kcenter_async(x, 10, first=0).result(timeout=30)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.int64
    np.testing.assert_array_equal(out.numpy(), kcenter(x.numpy(), 10, first=0))


def test_validation_error_surfaces_from_result():
    fut = kcenter_async(np.zeros((3, 2)), 5)
    with pytest.raises(ValueError, match="k = 5 is larger than the number of points n = 3"):
        fut.result(timeout=5)
    with pytest.raises(TypeError, match="unexpected keyword"):
        kcenter_async(np.zeros((3, 2)), 1, bogus=1)


def test_many_jobs_in_order_and_correct():
    xs = [gaussian(500, 8, seed=s) for s in range(40)]
    futs = [kcenter_async(x, 20, first=0) for x in xs]
    for x, f in zip(xs, futs):
        np.testing.assert_array_equal(f.result(timeout=30), kcenter(x, 20, first=0))


def test_input_kept_alive_until_done():
    futs = []
    expected = []
    for s in range(8):
        x = gaussian(20000, 32, seed=s)
        expected.append(kcenter(x, 50, first=0))
        futs.append(kcenter_async(x, 50, first=0))
        del x
    gc.collect()
    for e, f in zip(expected, futs):
        np.testing.assert_array_equal(f.result(timeout=60), e)


@pytest.fixture
def one_worker():
    """A pool of one worker, so that a long job keeps every later job queued."""
    size = _core.pool_size()
    _core.set_pool_size(1)
    yield
    _core.set_pool_size(size)


def long_job_input():
    # ~0.6 s on one thread of the 2-core dev machine: far longer than the few
    # Python statements between submitting and cancelling below
    return gaussian(200000, 64)


def test_cancel_pending_job(one_worker):
    big = long_job_input()
    blocker = kcenter_async(big, 3000, first=0)
    victim = kcenter_async(big, 3000, first=0)
    assert victim.cancel()
    with pytest.raises(CancelledError):
        victim.result()
    assert len(blocker.result(timeout=120)) == 3000


def test_shutdown_cancels_queued_and_finishes_running(one_worker):
    big = long_job_input()
    first = kcenter_async(big, 3000, first=0)
    queued = [kcenter_async(big, 3000, first=0) for _ in range(3)]
    _core.shutdown()
    assert not _core.pool_started()
    assert all(f.done() for f in [first] + queued)
    assert all(f.cancelled() for f in queued)
    if not first.cancelled():  # it had started: it ran to the end and delivered
        assert len(first.result()) == 3000
    # the pool restarts on demand
    assert len(kcenter_async(big[:100], 5, first=0).result(timeout=30)) == 5


class _HeldAtStart(Future):
    """A Future whose job waits at its start (in the worker) until released,
    so the pool's only worker is busy and later jobs stay queued."""

    def __init__(self):
        super().__init__()
        self.started = threading.Event()
        self.release = threading.Event()

    def set_running_or_notify_cancel(self):
        self.started.set()
        self.release.wait(30)  # releases the GIL while it waits
        return super().set_running_or_notify_cancel()


def _submit_raw(x, k, future):
    _core.submit(x, k, 0, np.empty(0, dtype=np.int64), 1, -1, False, future)


def test_shutdown_of_one_pool_never_cancels_another_pools_jobs(one_worker):
    # Pool A's shutdown is cancelling its queued job (the cancel callback
    # blocks, as any slow callback could) while another thread submits to the
    # pool that replaces it.  The new job must run: only its own pool's
    # shutdown may cancel it.
    x = gaussian(300, 8)
    held = _HeldAtStart()
    _submit_raw(x, 5, held)
    assert held.started.wait(30)
    queued = kcenter_async(x, 5, first=0)
    in_cancel, resume = threading.Event(), threading.Event()

    def slow_callback(fut):
        in_cancel.set()
        resume.wait(30)

    queued.add_done_callback(slow_callback)
    shutting = threading.Thread(target=_core.shutdown)
    shutting.start()
    try:
        assert in_cancel.wait(30)
        fresh = kcenter_async(x, 5, first=1)  # starts pool B while A shuts down
        assert fresh.exception(timeout=30) is None, "pool A's shutdown cancelled pool B's job"
        np.testing.assert_array_equal(fresh.result(), reference_kcenter(x, 5, first=1)[0])
    finally:
        resume.set()
        held.release.set()
        shutting.join(60)
    assert not shutting.is_alive()
    assert queued.cancelled()
    # the job that had started when its pool shut down ran to the end
    np.testing.assert_array_equal(held.result(timeout=30)[0], reference_kcenter(x, 5, first=0)[0])


def test_resize_applies_to_a_pool_started_while_the_old_one_drains(one_worker):
    # set_pool_size(3) waits for pool A's running job; a job submitted
    # meanwhile starts the next pool, which must already have the new size.
    x = gaussian(300, 8)
    held = _HeldAtStart()
    _submit_raw(x, 5, held)
    assert held.started.wait(30)
    resizing = threading.Thread(target=_core.set_pool_size, args=(3,))
    resizing.start()
    try:
        deadline = time.monotonic() + 30
        while _core.pool_started() and time.monotonic() < deadline:
            time.sleep(0.001)  # until A has left: the resize now waits in its join
        assert not _core.pool_started()
        fut = kcenter_async(x, 5, first=1)
        assert _core.pool_size() == 3
    finally:
        held.release.set()
        resizing.join(60)
    np.testing.assert_array_equal(fut.result(timeout=30), reference_kcenter(x, 5, first=1)[0])
    assert _core.pool_size() == 3


def test_concurrent_resize_and_submit_from_threads():
    # Every future ends with the right result or cancelled (by the shutdown
    # of the pool it was queued on); none hangs, none gets another's result.
    size = _core.pool_size()
    xs = [gaussian(300, 6, seed=s) for s in range(4)]
    expected = [reference_kcenter(x, 8, first=s)[0] for s, x in enumerate(xs)]
    submitted, errors = [], []
    start = threading.Barrier(5)

    def submitter(i):
        start.wait()
        try:
            for _ in range(60):
                submitted.append((i, kcenter_async(xs[i], 8, first=i)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    def resizer():
        start.wait()
        try:
            for s in [1, 3, 2, 1, 4, 2, 1, 3] * 3:
                _core.set_pool_size(s)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=submitter, args=(i,)) for i in range(4)]
    threads.append(threading.Thread(target=resizer))
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
        assert len(submitted) == 240
        done = 0
        for i, fut in submitted:
            try:
                got = fut.result(timeout=60)
            except CancelledError:
                continue
            np.testing.assert_array_equal(got, expected[i])
            done += 1
        assert done > 0
        assert _core.pool_size() == 3  # the last resize wins
    finally:
        _core.set_pool_size(size)
    # after the resizing stops, every job runs
    assert all(len(kcenter_async(x, 8, first=0).result(timeout=30)) == 8 for x in xs)


def test_done_callbacks_run():
    seen = []
    f = kcenter_async(gaussian(100, 3), 5, first=0)
    f.add_done_callback(lambda fut: seen.append(len(fut.result())))
    f.result(timeout=30)
    time.sleep(0.01)
    assert seen == [5]


def test_interpreter_exit_with_jobs_in_flight_does_not_hang():
    code = (
        "import numpy as np, smallgan\n"
        "x = np.random.default_rng(0).normal(size=(60000, 64)).astype(np.float32)\n"
        "futs = [smallgan.kcenter_async(x, 500, first=0) for _ in range(6)]\n"
        "print('submitted', flush=True)\n"
    )
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "submitted" in out.stdout
    assert time.monotonic() - t0 < 120


def test_no_thread_leak_on_python_side():
    before = threading.active_count()
    for _ in range(20):
        kcenter_async(gaussian(64, 4), 4, first=0).result(timeout=30)
    assert threading.active_count() == before  # the pool is C++ threads, not Python threads


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_nan_in_background_job_raises_from_result(dtype):
    x = gaussian(500, 6).astype(dtype)
    x[123, 4] = np.nan
    x[400, 0] = np.inf
    fut = kcenter_async(x, 10, first=0)
    with pytest.raises(ValueError, match=r"x contains 2 NaN or Inf value\(s\); the first is in row 123"):
        fut.result(timeout=30)


@pytest.mark.parametrize("d", [128, 2048])
def test_float32_distance_bound_in_background_jobs(d):
    # the same d-dependent bound as kcenter(): rejected above it (from
    # result()), exact just below it
    bound = float32_distance_bound(d)
    bad = kcenter_async(box_points(48, d, 9e17), 5, first=0)
    with pytest.raises(ValueError, match=rf"for d = {d} columns \|x\| must stay below "
                                         rf"{re.escape(f'{bound:.4g}')}: rescale x"):
        bad.result(timeout=30)
    x = box_points(48, d, 0.99 * bound)
    idx, dists = kcenter_async(x, 12, first=0, return_distances=True).result(timeout=30)
    ref_idx, _, ref_dists = reference_kcenter(x, 12, first=0)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dists, ref_dists, rtol=1e-5)
