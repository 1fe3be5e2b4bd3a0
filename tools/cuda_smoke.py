"""Small runs of every launch mode of the CUDA kernel, checked against the CPU engine.

Meant to run under compute-sanitizer (memcheck, racecheck, synccheck) from
tools/device_run.sh, so the problems are tiny.  Prints one line per
case and ``SMOKE OK`` at the end; raises on the first mismatch.
"""
from __future__ import annotations

import numpy as np
import torch

from smallgan import _core, kcenter

# (n, d, k, blocks, kwargs): blocks=0 is the automatic plan
CASES = [
    (1, 1, 1, 0, {"first": 0}),
    (300, 8, 40, 1, {"first": 5}),                       # resident, one block (plain launch)
    (2000, 16, 60, 0, {"first": 1}),                     # resident, cooperative grid
    (2000, 16, 60, 3, {"selected": [4, 1999, 700]}),    # farthest from selected first
    (2000, 16, 60, 5, {"selected": [4, 1999], "first": 3}),
    (20000, 8, 30, 2, {"first": 0}),                     # streaming, cooperative
    (20000, 8, 30, 1, {"first": 0}),                     # streaming, one block
    (16, 9000, 8, 1, {"first": 2}),                      # centre read from global memory (wide d)
    (16, 9000, 8, 0, {"first": 2}),
    (600, 3, 600, 0, {"first": 599}),                    # k = n
]


def main() -> None:
    assert _core.cuda, "built without the CUDA kernel"
    dev = torch.cuda.current_device()
    g = torch.Generator().manual_seed(0)
    for n, d, k, blocks, kw in CASES:
        x = torch.randn(n, d, generator=g)
        plan = _core.cuda_plan(n, d, dev, blocks)
        idx, r, dist = kcenter(x.cuda(), k, return_radius=True, return_distances=True, _cuda_blocks=blocks, **kw)
        want, wr, wdist = kcenter(x.numpy(), k, return_radius=True, return_distances=True, **kw)
        got = idx.cpu().numpy()
        assert np.array_equal(got, want), (n, d, k, blocks, got[:10], want[:10])
        assert abs(r - wr) <= 1e-5 * max(1.0, wr), (r, wr)
        np.testing.assert_allclose(dist.cpu().numpy(), wdist, rtol=1e-5, atol=1e-6)
        print(f"ok n={n} d={d} k={k} blocks={blocks} plan={plan}", flush=True)
    # other dtypes and strides
    base = torch.randint(-5, 6, (500, 12), generator=g)
    for v in (base.half(), base.bfloat16(), base.double()[:, ::2], base.float().t().contiguous().t()):
        got = kcenter(v.cuda(), 50, first=0).cpu().numpy()
        want = kcenter(v.float().numpy(), 50, first=0)
        assert np.array_equal(got, want), (v.dtype, got[:10], want[:10])
    print("ok dtypes and strides", flush=True)
    # the status path: NaN found, selection skipped, error raised
    x = torch.randn(100, 4, generator=g)
    x[42, 1] = float("nan")
    try:
        kcenter(x.cuda(), 5, first=0)
    except ValueError as e:
        assert "the first is in row 42" in str(e), e
    else:
        raise AssertionError("NaN not reported")
    idx = kcenter(x.cuda(), 100, first=0, check_finite=False).cpu().numpy()
    assert sorted(idx.tolist()) == list(range(100))
    print("ok status path", flush=True)
    torch.cuda.synchronize()
    print("SMOKE OK", flush=True)


if __name__ == "__main__":
    main()
