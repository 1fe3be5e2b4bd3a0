"""kcenter on torch tensors: parity with numpy, zero copy, the device fallback."""
from __future__ import annotations

import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # torch is an optional dependency of the engine

from smallgan import coreset, kcenter  # noqa: E402
from kcenter_reference import box_points, float32_distance_bound, reference_kcenter  # noqa: E402


def test_numpy_torch_parity():
    x = torch.randn(777, 19, generator=torch.Generator().manual_seed(0))
    idx, r, dist = kcenter(x, 64, first=3, return_radius=True, return_distances=True)
    nidx, nr, ndist = kcenter(x.numpy(), 64, first=3, return_radius=True, return_distances=True)
    assert isinstance(idx, torch.Tensor) and idx.dtype == torch.int64 and idx.device.type == "cpu"
    np.testing.assert_array_equal(idx.numpy(), nidx)
    assert r == nr
    assert isinstance(dist, torch.Tensor)
    np.testing.assert_array_equal(dist.numpy(), ndist)


def test_requires_grad_and_views_are_fine():
    base = torch.randn(600, 30, requires_grad=True)
    x = base[::2, 1::3]  # non-contiguous view of a grad-requiring tensor
    idx = kcenter(x, 40, first=0)
    np.testing.assert_array_equal(idx.numpy(), reference_kcenter(x.detach().numpy(), 40, first=0)[0])
    assert base.grad is None


def test_zero_copy_float32(monkeypatch):
    x = torch.randn(128, 8)
    seen = {}
    real = coreset._core.kcenter

    def spy(xn, *args):
        seen["ptr"] = xn.__array_interface__["data"][0]
        return real(xn, *args)

    monkeypatch.setattr(coreset._core, "kcenter", spy)
    kcenter(x, 4, first=0)
    assert seen["ptr"] == x.data_ptr()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64, torch.int32, torch.uint8])
def test_other_dtypes(dtype):
    x = (torch.rand(200, 5) * 20).to(dtype)
    idx = kcenter(x, 30, first=1)
    ref = kcenter(x.to(torch.float64).numpy(), 30, first=1)
    np.testing.assert_array_equal(idx.numpy(), ref)


def test_complex_tensor_rejected():
    with pytest.raises(TypeError, match="x must be real-valued, got complex dtype torch.complex64"):
        kcenter(torch.zeros(4, 2, dtype=torch.complex64), 1)


def test_nan_tensor_rejected():
    x = torch.randn(50, 3)
    x[9, 1] = float("nan")
    with pytest.raises(ValueError, match=r"x contains 1 NaN or Inf value\(s\); the first is in row 9"):
        kcenter(x, 2, first=0)


# The CUDA path uses a pure-torch traversal on the tensor's device.  It is
# exercised here on CPU tensors (same code, device-agnostic) against the
# float64 reference, so it is tested on machines without a GPU too.

def _device_path(x, k, **kw):
    req = coreset._Request(x, k, kw.get("first"), kw.get("seed"), kw.get("selected"),
                           kw.get("return_radius", False), kw.get("return_distances", False), None, None)
    # the device path's own validation, then its traversal (as for a CUDA tensor)
    req._init_device_tensor(x, k, kw.get("first"), kw.get("seed"), kw.get("selected"))
    return coreset._kcenter_torch(req)


@pytest.mark.parametrize("n,d,k,sel", [(1, 1, 1, None), (300, 7, 40, None), (500, 64, 100, [3, 99]),
                                       (64, 2, 64, None)])
def test_torch_device_path_matches_reference(n, d, k, sel):
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(n))
    kw = {"selected": sel} if sel else {"first": 0}
    idx, r, dist = _device_path(x, k, return_radius=True, return_distances=True, **kw)
    ref_idx, ref_r, ref_dist = reference_kcenter(x.numpy(), k, first=kw.get("first"), selected=sel or ())
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    assert r == pytest.approx(ref_r, rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=1e-5, atol=1e-6)


def test_torch_device_path_duplicates():
    x = torch.zeros(6, 2)
    x[4] = 1.0
    np.testing.assert_array_equal(_device_path(x, 6, first=2).numpy(), [2, 4, 0, 1, 3, 5])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("d", [128, 2048])
def test_torch_device_path_float32_distance_bound(d, dtype):
    # the same d-dependent bound and message as the engine's
    bound = float32_distance_bound(d)
    for magnitude in (1.01 * bound, 9e17):
        x = torch.from_numpy(box_points(48, d, magnitude)).to(dtype)
        largest = float(x.abs().max())
        with pytest.raises(ValueError, match=rf"x has values up to {re.escape(f'{largest:.4g}')} in magnitude; "
                                             rf".* for d = {d} columns \|x\| must stay below "
                                             rf"{re.escape(f'{bound:.4g}')}: rescale x"):
            _device_path(x, 5, first=0)
    x = torch.from_numpy(box_points(48, d, 0.99 * bound)).to(dtype)
    idx, r, dist = _device_path(x, 12, first=0, return_radius=True, return_distances=True)
    ref_idx, ref_r, ref_dist = reference_kcenter(x.numpy(), 12, first=0)
    np.testing.assert_array_equal(idx.numpy(), ref_idx)
    np.testing.assert_allclose(dist.numpy(), ref_dist, rtol=1e-5)
    assert r == pytest.approx(ref_r, rel=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_tensor_stays_on_device():
    x = torch.randn(2048, 32, device="cuda")
    idx = kcenter(x, 128, first=0)
    assert idx.device == x.device and idx.dtype == torch.int64
    np.testing.assert_array_equal(idx.cpu().numpy(), reference_kcenter(x.cpu().numpy(), 128, first=0)[0])
