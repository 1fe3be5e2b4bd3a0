"""kcenter on CUDA tensors: the GPU kernel (csrc/cuda/kcenter.cu) and its routing.

The tests marked ``gpu`` need a CUDA GPU and are skipped elsewhere (CI has
none); the others check, on any machine, what the build reports and how
CUDA tensors are routed.
"""
from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import smallgan  # noqa: E402
from smallgan import _core, coreset, kcenter, kcenter_async  # noqa: E402
from kcenter_reference import assert_valid_greedy, reference_kcenter  # noqa: E402

HAVE_GPU = torch.cuda.is_available()


def gpu(test):
    """Needs a CUDA GPU and the kernel (a GPU machine builds with SMALLGAN_CUDA=ON)."""
    test = pytest.mark.skipif(not _core.cuda, reason="smallgan built without the CUDA kernel")(test)
    test = pytest.mark.skipif(not HAVE_GPU, reason="needs a CUDA GPU")(test)
    return pytest.mark.gpu(test)


def _randn(n, d, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=torch.float64).to(dtype)


def assert_same_picks(x, got, want, first=None, selected=()):
    """``got`` equals ``want`` (CPU engine or float64 reference), except after a near tie.

    Both must be valid greedy sequences (float64 replay with rounding
    tolerance); two valid sequences with the same prefix can first differ
    only where two candidates tie within rounding, which the design allows.
    """
    x = np.asarray(x, dtype=np.float64)
    assert_valid_greedy(x, got, first=first, selected=selected)
    if not np.array_equal(got, want):
        assert_valid_greedy(x, want, first=first, selected=selected)
        return False
    return True


def _plan_kind(n, d, blocks=0):
    p = _core.cuda_plan(n, d, torch.cuda.current_device(), blocks)
    if p["resident"]:
        return "resident"
    return "stream" if p["centre_in_shared"] else "stream-wide-d"


# --------------------------------------------------------------------------
# any machine: build report and routing
# --------------------------------------------------------------------------

def test_build_reports_cuda():
    assert isinstance(_core.cuda, bool)
    assert isinstance(_core.cuda_architectures, str)
    assert bool(_core.cuda_architectures) == _core.cuda
    info = smallgan._config.config()
    assert info["cuda_kernel"] is _core.cuda
    assert info["cuda_architectures"] == (_core.cuda_architectures or None)
    if _core.cuda:
        assert "90" in _core.cuda_architectures.split(",")
        assert info["cuda_runtime"] is not None
    assert _core.cuda_workspace_bytes(512, 128) >= 512 * 128 * 4


def test_without_kernel_cuda_entry_points_raise(monkeypatch):
    if _core.cuda:
        # not about a GPU: this checks builds made without the kernel
        # (SMALLGAN_CUDA=OFF or no nvcc), whose entry points must raise; a build
        # with the kernel has working entry points, tested by the gpu tests
        pytest.skip("the kernel is built here")
    with pytest.raises(RuntimeError, match="built without the CUDA kernel"):
        _core.cuda_kcenter(0, 1, 1, 1, 1, 0, 1, 0, 0, 0, 0, 0, True, 0, 0, 0, True, 0, 0)


@pytest.mark.parametrize("built", [False, True])
def test_routing(monkeypatch, built):
    """CUDA tensors go to the kernel only when it is built; else the torch traversal."""
    monkeypatch.setattr(coreset._core, "cuda", built)
    monkeypatch.setattr(coreset._core, "cuda_supported", lambda index: True)
    monkeypatch.setattr(coreset, "_KERNEL_DEVICES", {})
    assert coreset._use_kernel(torch.device("cuda", 0)) is built
    monkeypatch.setattr(coreset, "_KERNEL_DEVICES", {0: False})  # a GPU the build has no code for
    assert coreset._use_kernel(torch.device("cuda", 0)) is False
    assert coreset._use_kernel(torch.device("cpu")) is False
    assert coreset._use_kernel(torch.device("meta")) is False
    # kcenter's dispatch, end to end on a stand-in device tensor (meta: no data)
    monkeypatch.setattr(coreset, "_use_kernel", lambda device: built)
    monkeypatch.setattr(coreset, "_kcenter_cuda", lambda req: "kernel")
    monkeypatch.setattr(coreset, "_kcenter_torch", lambda req: "torch")
    x = torch.empty(10, 3, device="meta")
    want = "kernel" if built else "torch"
    assert kcenter(x, 2, first=0, check_finite=False) == want
    assert kcenter_async(x, 2, first=0, check_finite=False).result() == want


def test_fallback_path_check_finite(monkeypatch):
    monkeypatch.setattr(coreset._core, "cuda", False)
    x = _randn(40, 3)
    x[7, 1] = float("nan")
    x[20, 0] = float("inf")
    with pytest.raises(ValueError, match=r"x contains 2 NaN or Inf value\(s\); the first is in row 7"):
        coreset._Request(x, 5, 0, None, None, False, False, None, None, device_path=True)
    req = coreset._Request(x, 5, 0, None, None, False, False, None, None, check_finite=False, device_path=True)
    idx = coreset._kcenter_torch(req)
    assert len(set(idx.tolist())) == 5


def test_device_path_messages_match_cpu_path():
    for bad, kw in [(torch.zeros(0, 3), {}), (torch.zeros(3, 0), {}), (torch.zeros(4, 2), {"k": 5}),
                    (torch.zeros(4, 2), {"first": 4}), (torch.zeros(4, 2), {"selected": [1, 1]}),
                    (torch.zeros(4, 2), {"selected": [0, 1], "k": 3})]:
        k = kw.pop("k", 1)
        with pytest.raises(ValueError) as cpu_err:
            kcenter(bad, k, **kw)
        with pytest.raises(ValueError) as dev_err:
            coreset._Request(bad, k, kw.get("first"), None, kw.get("selected"), False, False, None, None,
                             device_path=True)
        assert str(cpu_err.value) == str(dev_err.value)


def test_check_finite_false_is_ignored_on_cpu():
    x = np.zeros((10, 2))
    x[3, 0] = np.nan
    with pytest.raises(ValueError, match=r"x contains 1 NaN or Inf value\(s\); the first is in row 3"):
        kcenter(x, 2, first=0, check_finite=False)
    fut = kcenter_async(np.eye(4), 2, first=0, check_finite=False)
    assert fut.result().tolist() == [0, 1]


# --------------------------------------------------------------------------
# GPU: exactness
# --------------------------------------------------------------------------

SHAPES = [
    (1, 1, 1), (2, 1, 2), (33, 3, 33), (100, 2, 50), (257, 64, 100), (513, 1, 200),
    (1000, 3, 300), (300, 2048, 40), (4099, 17, 256), (1024, 32, 128), (512, 128, 128),
]


@gpu
@pytest.mark.parametrize("n,d,k", SHAPES)
def test_matches_reference(n, d, k):
    x = _randn(n, d, seed=n * 7 + d)
    idx, r, dist = kcenter(x.cuda(), k, first=n // 3, return_radius=True, return_distances=True)
    assert idx.device.type == "cuda" and idx.dtype == torch.int64 and idx.shape == (k,)
    assert dist.device.type == "cuda" and dist.dtype == torch.float64
    picks = idx.cpu().numpy()
    radius = assert_valid_greedy(x.numpy(), picks, first=n // 3)
    assert r == pytest.approx(radius, rel=1e-5, abs=1e-6)
    ref_idx, _, ref_dist = reference_kcenter(x.numpy(), k, first=n // 3)
    if np.array_equal(picks, ref_idx):  # no near-tie flipped a pick: compare distances too
        np.testing.assert_allclose(dist.cpu().numpy(), ref_dist, rtol=1e-5, atol=1e-6)


@gpu
@pytest.mark.parametrize("n,d,k", [(1024, 32, 128), (512, 128, 128), (3000, 7, 500), (20000, 64, 200)])
def test_same_picks_as_cpu_engine(n, d, k):
    x = _randn(n, d, seed=1)
    want = kcenter(x.numpy(), k, first=5)
    got = kcenter(x.cuda(), k, first=5).cpu().numpy()
    assert_same_picks(x.numpy(), got, want, first=5)


@gpu
@pytest.mark.parametrize("n,d,k,sizes,kinds", [
    # resident slices, different grids (1 block = plain launch, more = cooperative)
    (2000, 16, 300, [0, 1, 2, 3, 7, 64], {"resident"}),
    # streaming (slices too large for shared memory with few blocks) vs resident
    (60000, 40, 64, [0, 1, 4, 37], {"resident", "stream"}),
    # d above the shared-memory centre limit: the centre read from global memory
    (64, 9000, 20, [0, 1, 3], {"resident", "stream-wide-d"}),
])
def test_grid_size_does_not_change_the_result(n, d, k, sizes, kinds):
    x = _randn(n, d, seed=3).cuda()
    results, seen = [], set()
    for b in sizes:
        seen.add(_plan_kind(n, d, b))
        idx, r, dist = kcenter(x, k, first=1, return_radius=True, return_distances=True, _cuda_blocks=b)
        results.append((idx.cpu().numpy(), r, dist.cpu().numpy()))
    assert seen == kinds
    for idx, r, dist in results[1:]:
        np.testing.assert_array_equal(idx, results[0][0])
        assert r == results[0][1]
        np.testing.assert_array_equal(dist, results[0][2])
    assert_valid_greedy(x.cpu().numpy(), results[0][0], first=1)


@gpu
def test_streaming_auto_plan_large():
    n, d, k = 300_000, 32, 48  # 38 MB: more than the SMs' shared memory holds
    x = _randn(n, d, seed=4)
    assert _plan_kind(n, d) == "stream"
    idx = kcenter(x.cuda(), k, first=0).cpu().numpy()
    assert_valid_greedy(x.numpy(), idx, first=0)


@gpu
def test_ties_and_duplicates_exact():
    # integer grid: every distance is exact in float32, so ties are real ties
    # and the picks must equal the float64 reference exactly (lowest index)
    g = torch.Generator().manual_seed(5)
    x = torch.randint(-3, 4, (3000, 4), generator=g).to(torch.float32)
    x[100:200] = x[0]
    for sel in (None, [0, 2999, 1500]):
        kw = {"selected": sel} if sel else {"first": 17}
        got = kcenter(x.cuda(), 200, **kw).cpu().numpy()
        np.testing.assert_array_equal(got, reference_kcenter(x.numpy(), 200, first=kw.get("first"),
                                                              selected=sel or ())[0])
    # every point picked, once: after the distinct ones, lowest unselected index first
    y = torch.zeros(6, 2, device="cuda")
    y[4] = 1.0
    assert kcenter(y, 6, first=2).tolist() == [2, 4, 0, 1, 3, 5]
    z = torch.zeros(700, 3, device="cuda")
    assert kcenter(z, 700, first=699).tolist() == [699] + list(range(699))


@gpu
def test_selected_and_first():
    x = _randn(2500, 9, seed=6)
    sel = [5, 700, 2499, 1234]
    for kw in ({"selected": sel}, {"selected": sel, "first": 42},
               {"selected": torch.tensor(sel, device="cuda")}, {"selected": np.array(sel, dtype=np.int32)}):
        idx, r, dist = kcenter(x.cuda(), 100, return_radius=True, return_distances=True, **kw)
        first = kw.get("first")
        ref_idx, ref_r, ref_dist = reference_kcenter(x.numpy(), 100, first=first, selected=sel)
        if assert_same_picks(x.numpy(), idx.cpu().numpy(), ref_idx, first=first, selected=sel):
            np.testing.assert_allclose(dist.cpu().numpy(), ref_dist, rtol=1e-5)
            assert r == pytest.approx(ref_r, rel=1e-5)
        assert not set(idx.tolist()) & set(sel)
    # k = n - len(selected): every remaining row, radius 0
    idx, r = kcenter(x[:50].cuda(), 46, selected=[1, 2, 3, 4], return_radius=True)
    assert sorted(idx.tolist()) == [0] + list(range(5, 50)) and r == 0.0


@gpu
def test_seed_draws_first_like_cpu():
    x = _randn(800, 5, seed=7)
    want = kcenter(x.numpy(), 30, seed=11)
    got = kcenter(x.cuda(), 30, seed=11).cpu().numpy()
    assert got[0] == want[0] == np.random.default_rng(11).integers(800)
    assert_same_picks(x.numpy(), got, want, first=int(want[0]))


@gpu
@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16, torch.int32, torch.uint8])
def test_dtypes(dtype):
    # small integers: exact in every dtype and every distance exact in
    # float32, so ties are real and both paths must break them alike
    g = torch.Generator().manual_seed(8)
    x = torch.randint(0, 41, (600, 5), generator=g).to(dtype)
    got = kcenter(x.cuda(), 60, first=3).cpu().numpy()
    np.testing.assert_array_equal(got, kcenter(x, 60, first=3).numpy())  # the CPU path's conversions
    np.testing.assert_array_equal(got, reference_kcenter(x.double().numpy(), 60, first=3)[0])


@gpu
def test_strided_inputs():
    base = _randn(1200, 90, seed=9).cuda()
    views = [base[::2, 1::3], base.t().contiguous().t(), base[100:700, 5:6], base[:, :64].double(),
             base[:, :1].expand(1200, 5), base[:90].t(), base[7]]
    views[-1] = views[-1].reshape(45, 2)
    for v in views:
        assert kcenter(v, 40, first=0).tolist() == kcenter(v.contiguous(), 40, first=0).tolist()
        assert_valid_greedy(v.cpu().numpy(), kcenter(v, 40, first=0).cpu().numpy(), first=0)
    x = base.clone().requires_grad_(True)
    kcenter(x, 5, first=0)
    assert x.grad is None


@gpu
def test_runs_on_the_current_stream():
    x = _randn(5000, 24, seed=10)
    want = kcenter(x.numpy(), 80, first=9)
    s = torch.cuda.Stream()
    with torch.cuda.stream(s):
        xd = torch.empty(5000, 24, device="cuda")
        torch.cuda._sleep(50_000_000)  # the copy below lands well after the call returns
        xd.copy_(x.pin_memory(), non_blocking=True)
        idx = kcenter(xd, 80, first=9, check_finite=False)
    torch.cuda.synchronize()
    assert_same_picks(x.numpy(), idx.cpu().numpy(), want, first=9)


# --------------------------------------------------------------------------
# GPU: asynchrony, graphs, errors
# --------------------------------------------------------------------------

@gpu
@pytest.mark.parametrize("selected", [None, [3, 4]])
def test_no_host_sync(selected):
    x = _randn(4096, 64, seed=12).cuda()
    kw = {"selected": selected} if selected else {"first": 0}
    kcenter(x, 8, check_finite=False, **kw)  # load the module, warm the allocators
    torch.cuda.synchronize()
    torch.cuda._sleep(400_000_000)  # ~0.2 s of GPU time queued ahead
    t0 = time.perf_counter()
    idx = kcenter(x, 64, check_finite=False, **kw)
    spent = time.perf_counter() - t0
    busy = not torch.cuda.current_stream().query()
    torch.cuda.synchronize()
    assert busy, f"kcenter waited for the GPU ({spent * 1e3:.1f} ms)"
    assert_valid_greedy(x.cpu().numpy(), idx.cpu().numpy(), first=kw.get("first"), selected=selected or ())


@gpu
@pytest.mark.parametrize("blocks", [1, 0])  # plain launch, cooperative launch
def test_cuda_graph_capture(blocks):
    x = _randn(2048, 32, seed=13).cuda()
    kcenter(x, 16, first=0, check_finite=False, _cuda_blocks=blocks)  # warm-up outside the capture
    torch.cuda.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        idx = kcenter(x, 16, first=0, check_finite=False, _cuda_blocks=blocks)
    graph.replay()
    torch.cuda.synchronize()
    xh = x.cpu().numpy()
    assert_same_picks(xh, idx.cpu().numpy(), kcenter(xh, 16, first=0), first=0)
    y = _randn(2048, 32, seed=14)
    x.copy_(y)
    graph.replay()
    torch.cuda.synchronize()
    assert_same_picks(y.numpy(), idx.cpu().numpy(), kcenter(y.numpy(), 16, first=0), first=0)


@gpu
def test_bad_values_raise_cpu_messages():
    x = _randn(3000, 8, seed=15).cuda()
    x[2500, 3] = float("nan")
    x[700, 0] = float("inf")
    x[700, 1] = float("-inf")
    with pytest.raises(ValueError, match=r"^x contains 3 NaN or Inf value\(s\); the first is in row 700$"):
        kcenter(x, 10, first=0)
    with pytest.raises(ValueError, match=r"the first is in row 700"):
        kcenter_async(x, 10, first=0).result()
    h = torch.ones(40, 3, dtype=torch.float16, device="cuda")
    h[39, 2] = float("inf")
    with pytest.raises(ValueError, match=r"x contains 1 NaN or Inf value\(s\); the first is in row 39"):
        kcenter(h, 2, first=0)
    big = torch.zeros(10, 2, dtype=torch.float64, device="cuda")
    big[4, 1] = -3e20
    with pytest.raises(ValueError, match=r"x has values up to 3e\+20 in magnitude"):
        kcenter(big, 2, first=0)
    # check_finite=False: no error, still valid distinct indices
    idx = kcenter(x, 50, first=0, check_finite=False)
    torch.cuda.synchronize()
    assert len(set(idx.tolist())) == 50 and all(0 <= i < 3000 for i in idx.tolist())


@gpu
def test_argument_errors_match_cpu():
    x = torch.zeros(4, 2)
    for kw in ({"k": 5}, {"k": 0}, {"first": 4}, {"selected": [1, 1]}, {"selected": [0, 9]},
               {"selected": [0, 1], "k": 3}, {"first": 1, "selected": [1]}):
        k = kw.pop("k", 1)
        with pytest.raises(ValueError) as cpu_err:
            kcenter(x, k, **kw)
        with pytest.raises(ValueError) as gpu_err:
            kcenter(x.cuda(), k, **kw)
        assert str(cpu_err.value) == str(gpu_err.value)
    with pytest.raises(TypeError, match="complex"):
        kcenter(torch.zeros(4, 2, dtype=torch.complex64, device="cuda"), 1)
    with pytest.raises(ValueError, match="at least one row"):
        kcenter(torch.zeros(0, 2, device="cuda"), 1)


@gpu
def test_async_future_and_input_untouched():
    x = _randn(900, 6, seed=16).cuda()
    before = x.clone()
    fut = kcenter_async(x, 20, first=1, return_distances=True)
    assert fut.done()
    idx, dist = fut.result()
    assert idx.device.type == "cuda" and dist.device.type == "cuda"
    assert torch.equal(x, before)
    assert_same_picks(x.cpu().numpy(), idx.cpu().numpy(), kcenter(x.cpu().numpy(), 20, first=1), first=1)


@gpu
def test_prior_coreset_on_gpu():
    from smallgan.sampling import PriorCoreset, _stream

    kw = dict(seed=4, device="cuda", select_on="device")
    with PriorCoreset(8, 16, **kw) as g, PriorCoreset(8, 16, **kw) as h:
        for b in range(3):
            zg, zh = next(g), next(h)
            assert zg.device.type == "cuda" and zg.shape == (16, 8) and zg.dtype == torch.float32
            assert torch.equal(zg, zh)
            # the documented recipe
            rng = _stream(4, 1, b)
            gen = torch.Generator(device="cuda")
            gen.manual_seed(int(rng.integers(2**63)))
            z = torch.rand((64, 8), generator=gen, device="cuda") * 2 - 1
            want = z[kcenter(z, 16, first=int(rng.integers(64)))]
            assert torch.equal(zg, want)
        assert g.position == 3
    with PriorCoreset(8, 16, start=2, **kw) as r:
        assert torch.equal(next(r), zg)
