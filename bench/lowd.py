"""Low-dimensional k-center (point clouds): the engine's spatial path vs fpsample's bucket FPS.

    python bench/lowd.py                  # the issue's targets table (all data kinds)
    python bench/lowd.py --quick          # fewer repeats, two data kinds
    python bench/lowd.py --crossover      # spatial vs blocked path by d, n, k (the Path::Auto rule)
    python bench/lowd.py --kinds outliers,lognormal,lidar   # uneven densities

Targets table: ``kcenter(x, k, first=0, threads=1)`` against
``fpsample.bucket_fps_kdline_sampling(x, k, h, start_idx=0)`` at its best
``h`` (the fastest of 3, 5, 7, 9 on one call, then timed), both one thread,
same seeded float32 data, calls interleaved, medians.  Before timing, our
picks and distances are checked bit for bit against the eager traversal (all
of them), and the first 256 picks against the float64 brute force of
tests/kcenter_reference.py as the tests do: each must be a farthest point
within float32 rounding (on a circle, several points lie at float32 distance
exactly 2.0 from the first), with the count of picks equal to float64's own.
fpsample is not used as a reference (its rounding and start handling differ).

Crossover table: median time of the spatial path over the blocked path
(``_core.kcenter(..., path=2)`` / ``path=1``), one thread, uniform and
Gaussian-mixture data.
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from smallgan import _config, _core, kcenter

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from kcenter_reference import assert_valid_greedy, reference_kcenter  # noqa: E402

TARGETS = [(100_000, 3, 4096), (500_000, 3, 8192), (100_000, 2, 1024)]
KINDS = ["uniform", "gmm", "sphere", "torus"]
NO_SEL = np.empty(0, dtype=np.int64)


def points(kind: str, n: int, d: int, seed: int = 0) -> np.ndarray:
    """Seeded float32 point sets: uniform in [0, 1)^d, a 32-component Gaussian
    mixture, the unit sphere S^(d-1) (a circle at d = 2), a torus in 3-D (its
    (x, y) projection, an annulus, at d = 2)."""
    r = np.random.default_rng(seed)
    if kind == "uniform":
        return r.random((n, d), dtype=np.float32)
    if kind == "gmm":
        centres = r.normal(scale=5.0, size=(32, d))
        return (centres[r.integers(0, 32, n)] + r.normal(scale=0.3, size=(n, d))).astype(np.float32)
    if kind == "sphere":
        v = r.normal(size=(n, d))
        return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    if kind == "torus":
        u, v = r.random(n) * 2 * np.pi, r.random(n) * 2 * np.pi
        p = np.stack([(2 + 0.5 * np.cos(v)) * np.cos(u), (2 + 0.5 * np.cos(v)) * np.sin(u), 0.5 * np.sin(v)], 1)
        return p[:, :d].astype(np.float32) if d <= 3 else np.pad(p, ((0, 0), (0, d - 3))).astype(np.float32)
    # Densities a single global grid handles badly (Morton cells holding
    # thousands of rows): what the refinement of crowded cells is for.
    if kind == "outliers":  # one tight cluster (std 1e-3) and 100 points spread over [-1000, 1000]^d
        x = r.normal(scale=1e-3, size=(n, d))
        x[:100] = r.uniform(-1000, 1000, size=(100, d))
        return x.astype(np.float32)
    if kind == "lognormal":  # directions uniform, radii log-normal (sigma 3): density spans ~1e4
        v = r.normal(size=(n, d))
        return (v / np.linalg.norm(v, axis=1, keepdims=True) * np.exp(r.normal(scale=3, size=(n, 1)))).astype(np.float32)
    if kind == "lidar":  # half on a flat 100 x 100 ground plane, half in one dense object
        ground = np.c_[r.uniform(-50, 50, (n // 2, 2)), r.normal(scale=0.02, size=(n // 2, max(d - 2, 0)))]
        obj = r.normal(scale=0.3, size=(n - n // 2, d)) + 5.0
        return np.concatenate([ground[:, :d], obj]).astype(np.float32)
    raise ValueError(f"unknown data kind {kind!r}")


def cpu_name() -> str:
    """Model name, family and model from /proc/cpuinfo (a VM may show only 'AMD EPYC')."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key = key.strip()
                if key in ("model name", "cpu family", "model") and key not in fields:
                    fields[key] = val.strip()
                if len(fields) == 3:
                    break
    except OSError:
        pass
    name = fields.get("model name", platform.processor() or platform.machine())
    if "cpu family" in fields:
        name += f" (family {fields['cpu family']}, model {fields.get('model', '?')})"
    return name


def machine() -> str:
    cpu = cpu_name()
    info = _config.config()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"cpu {cpu}, {os.cpu_count()} cores, load average {load:.1f}; smallgan simd={info['simd_level']} "
            f"openmp={info['openmp']}; numpy {np.__version__}; {time.strftime('%Y-%m-%d %H:%M %Z')}")


def interleaved(fns, repeats):
    """Median seconds of each function, called in turns (one warm-up each)."""
    for f in fns:
        f()
    times = [[] for _ in fns]
    for r in range(repeats):
        order = range(len(fns)) if r % 2 == 0 else reversed(range(len(fns)))
        for i in order:
            t0 = time.perf_counter()
            fns[i]()
            times[i].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def best_bucket_h(x, k):
    import fpsample

    best = None
    for h in (3, 5, 7, 9):
        t0 = time.perf_counter()
        fpsample.bucket_fps_kdline_sampling(x, k, h, start_idx=0)
        t = time.perf_counter() - t0
        if best is None or t < best[0]:
            best = (t, h)
    return best[1]


def check(x, k):
    """All picks and distances bit-identical to the eager path; the first 256
    picks a valid float64 farthest-first sequence (each a farthest point within
    float32 rounding, as tests/kcenter_reference.py checks) and how many of
    them equal the float64 brute force's own picks."""
    idx, dist, _, _, info = _core.kcenter(x, k, 0, NO_SEL, 1, -1, True, True, 0, True)
    eager = _core.kcenter(x, k, 0, NO_SEL, 1, -1, True, False, 1)
    m = min(k, 256)
    try:
        assert_valid_greedy(x, idx[:m], first=0)
        valid = True
    except AssertionError:
        valid = False
    same = int((idx[:m] == reference_kcenter(x, m, first=0)[0]).sum())
    ok = valid and np.array_equal(idx, eager[0]) and np.array_equal(dist, eager[1])
    return ("exact" if ok else "MISMATCH") + f" ({same}/{m} = float64)", info


def targets(args) -> int:
    import fpsample

    kinds = args.kinds.split(",") if args.kinds else KINDS[:2] if args.quick else KINDS
    repeats = 3 if args.quick else args.repeats
    print(f"# {machine()}")
    print(f"# kcenter(threads=1) vs fpsample {fpsample.__version__ if hasattr(fpsample, '__version__') else ''} "
          f"bucket_fps_kdline_sampling (best h of 3/5/7/9), medians of {repeats} interleaved calls")
    print("| data | n, d, k | ours 1t ms | fpsample bucket ms (h) | ours faster by | checks | block updates / eager |")
    print("| --- | --- | ---: | ---: | ---: | --- | ---: |")
    worst = np.inf
    for kind in kinds:
        for n, d, k in TARGETS:
            x = points(kind, n, d)
            ok, info = check(x, k)
            h = best_bucket_h(x, k)
            ours, theirs = interleaved([lambda: kcenter(x, k, first=0, threads=1),
                                        lambda: fpsample.bucket_fps_kdline_sampling(x, k, h, start_idx=0)], repeats)
            ratio = theirs / ours
            worst = min(worst, ratio)
            eager = k * -(-n // 16)
            print(f"| {kind} | {n}, {d}, {k} | {ours * 1e3:.1f} | {theirs * 1e3:.1f} ({h}) | {ratio:.2f}x | "
                  f"{ok}, {info['path']} | {info['block_updates'] / eager:.4f} |", flush=True)
    print(f"# smallest ratio: {worst:.2f}x (target 1.5x)")
    return 0


def crossover(args) -> int:
    print(f"# {machine()}")
    print("# spatial / blocked path time (median of interleaved calls, 1 thread); < 1: the spatial path is faster")
    ks = [32, 64, 128, 256, 512, 1024, 2048, 4096]
    ns = [4096, 65536] if args.quick else [1024, 4096, 16384, 65536]
    ds = [2, 3, 8] if args.quick else [1, 2, 3, 4, 5, 6, 8]
    for kind in ("uniform", "gmm"):
        for d in ds:
            print(f"\n{kind}, d = {d}, auto picks spatial from {next(k for k in ks + [10**9] if _core.choose_path(10**5, d, k) == 'spatial')} centres")
            print("| n \\ k | " + " | ".join(str(k) for k in ks) + " |")
            print("| ---: |" + " ---: |" * len(ks))
            for n in ns:
                x = points(kind, n, d, seed=n + d)
                row = []
                for k in ks:
                    if k > n:
                        row.append("-")
                        continue
                    reps = 15 if n * k <= 2**24 else 5
                    b, s = interleaved([lambda: _core.kcenter(x, k, 0, NO_SEL, 1, -1, False, True, 1),
                                        lambda: _core.kcenter(x, k, 0, NO_SEL, 1, -1, False, True, 2)], reps)
                    row.append(f"{s / b:.2f}")
                print(f"| {n} | " + " | ".join(row) + " |", flush=True)
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer repeats and cases")
    ap.add_argument("--repeats", type=int, default=11)
    ap.add_argument("--crossover", action="store_true", help="the spatial/blocked crossover table instead")
    ap.add_argument("--kinds", help="comma list of data kinds (default: " + ",".join(KINDS) +
                    "; also outliers, lognormal, lidar)")
    args = ap.parse_args(argv)
    return crossover(args) if args.crossover else targets(args)


if __name__ == "__main__":
    sys.exit(main())
