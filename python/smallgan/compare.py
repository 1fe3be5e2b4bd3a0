"""One table: smallgan.kcenter vs what a user would otherwise write, and the floor.

    smallgan bench                          # the issue's sizes, all baselines
    smallgan bench --quick                  # small sizes only
    smallgan bench --sizes 1024,32,128 65536,64,1024 --repeats 9
    python bench/compare.py ...             # the same, from a source checkout

Baselines beyond numpy need ``pip install 'smallgan[bench]'`` (torch, faiss-cpu,
fpsample); missing ones are skipped with a note.

Every row is timed in the same run on the same seeded data, with a warm-up
call, and reported as the median of ``--repeats`` calls; ratios are against the
best loop a user writes around BLAS (squared norms once, one matrix-vector
product per step).  Each baseline's picks are checked against ours (first 32
picks, same start) before it is timed.

The "floor" column is a model, not a measurement: per step, the larger of the
FMA time and one re-read of the data from the cache level that holds it, plus
one barrier per step when threaded.  The machine constants default to those
measured on the project's 2-core AMD EPYC dev machine (../shared/REFERENCES.md)
and can be overridden.
"""
from __future__ import annotations

import argparse
import functools
import os
import platform
import statistics
import sys
import time
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from smallgan import _config, _core, kcenter

SIZES = [(512, 128, 128), (1024, 32, 128), (1024, 256, 128), (2048, 128, 256),
         (8192, 128, 1024), (65536, 64, 1024)]
QUICK = [(512, 128, 128), (1024, 32, 128), (2048, 128, 256)]

# ---------------------------------------------------------------- baselines a user writes


def numpy_diff(x: np.ndarray, k: int, first: int) -> np.ndarray:
    """The first loop people write: explicit differences every step."""
    mind = np.full(len(x), np.inf, dtype=np.float32)
    out = np.empty(k, dtype=np.int64)
    c = first
    for t in range(k):
        out[t] = c
        d = ((x - x[c]) ** 2).sum(axis=1)
        np.minimum(mind, d, out=mind)
        c = int(np.argmax(mind))
    return out


def numpy_blas(x: np.ndarray, k: int, first: int) -> np.ndarray:
    """The best loop around BLAS: squared norms once, one GEMV per step."""
    sq = np.einsum("ij,ij->i", x, x)
    mind = np.full(len(x), np.inf, dtype=np.float32)
    out = np.empty(k, dtype=np.int64)
    c = first
    for t in range(k):
        out[t] = c
        d = sq - 2.0 * (x @ x[c]) + sq[c]
        np.minimum(mind, d, out=mind)
        mind[c] = -1.0  # rounding can leave a centre slightly above 0
        c = int(np.argmax(mind))
    return out


def torch_loop(x: np.ndarray, k: int, first: int) -> np.ndarray:
    import torch

    xt = torch.from_numpy(x)
    mind = torch.full((len(x),), float("inf"))
    out = np.empty(k, dtype=np.int64)
    c = first
    for t in range(k):
        out[t] = c
        d = ((xt - xt[c]) ** 2).sum(dim=1)
        torch.minimum(mind, d, out=mind)
        c = int(torch.argmax(mind))
    return out


def faiss_loop(x: np.ndarray, k: int, first: int) -> np.ndarray:
    import faiss

    n, d = x.shape
    dist = np.empty(n, dtype=np.float32)
    mind = np.full(n, np.inf, dtype=np.float32)
    out = np.empty(k, dtype=np.int64)
    px, pd = faiss.swig_ptr(x), faiss.swig_ptr(dist)
    c = first
    for t in range(k):
        out[t] = c
        faiss.fvec_L2sqr_ny(pd, faiss.swig_ptr(x[c]), px, d, n)
        np.minimum(mind, dist, out=mind)
        c = int(np.argmax(mind))
    return out


def fpsample_fps(x: np.ndarray, k: int, first: int) -> np.ndarray:
    import fpsample

    return np.asarray(fpsample.fps_sampling(x, k, start_idx=first), dtype=np.int64)


def fpsample_bucket_height(x: np.ndarray, k: int) -> Optional[Tuple[int, float]]:
    """(h, ms): the fastest height of fpsample's bucket method on one call each of
    3, 5, 7, 9 (it needs 2^h <= n) and that call's time, or None where it does not
    run (fpsample 1.0.2: d > 8)."""
    import fpsample

    best = None
    for h in (3, 5, 7, 9):
        if 2**h > len(x):
            break
        try:
            t0 = time.perf_counter()
            fpsample.bucket_fps_kdline_sampling(x, k, h, start_idx=0)
        except RuntimeError:  # "bucket_fps_kdline failed with error code 1"
            return None
        t = (time.perf_counter() - t0) * 1e3
        if best is None or t < best[1]:
            best = (h, t)
    return best


def fpsample_bucket(x: np.ndarray, k: int, first: int, h: int = 7) -> np.ndarray:
    """fpsample's bucketed KD-tree FPS (QuickFPS), exact, one thread."""
    import fpsample

    return np.asarray(fpsample.bucket_fps_kdline_sampling(x, k, h, start_idx=first), dtype=np.int64)


# ---------------------------------------------------------------- floor model


def floor_ms(n: int, d: int, k: int, threads: int, peak_gflops: float, bw: Dict[str, float],
             caches: Dict[str, int], barrier_us: float) -> float:
    """Per step: max(FMA time, one read of the block from its cache level) + barrier."""
    per_thread_bytes = n * d * 4 / threads
    if per_thread_bytes <= caches["L1"]:
        level = "L1"
    elif per_thread_bytes <= caches["L2"]:
        level = "L2"
    elif n * d * 4 <= caches["L3"]:
        level = "L3"
    else:
        level = "DRAM"
    t_mem = per_thread_bytes / (bw[level] * 1e9)
    t_fma = 2.0 * n * d / threads / (peak_gflops * 1e9)  # one FMA per element (norm trick)
    t_sync = barrier_us * 1e-6 if threads > 1 else 0.0
    return k * (max(t_mem, t_fma) + t_sync) * 1e3


def cache_sizes() -> Dict[str, int]:
    out = {"L1": 32 << 10, "L2": 1 << 20, "L3": 32 << 20}
    base = "/sys/devices/system/cpu/cpu0/cache"
    try:
        for entry in os.listdir(base):
            p = os.path.join(base, entry)
            with open(os.path.join(p, "level")) as f:
                level = int(f.read())
            with open(os.path.join(p, "type")) as f:
                typ = f.read().strip()
            with open(os.path.join(p, "size")) as f:
                size = f.read().strip()
            mult = {"K": 1 << 10, "M": 1 << 20}.get(size[-1], 1)
            val = int(size.rstrip("KM")) * mult
            if typ in ("Data", "Unified"):
                out[f"L{level}"] = val
    except OSError:
        pass
    return out


# ---------------------------------------------------------------- timing


def median_ms(fn: Callable[[], object], repeats: int, budget_s: float) -> Tuple[float, int]:
    fn()  # warm-up
    times: List[float] = []
    start = time.perf_counter()
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if time.perf_counter() - start > budget_s and len(times) >= 3:
            break
    return statistics.median(times) * 1e3, len(times)


def add_arguments(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--sizes", nargs="*", help="n,d,k triples (default: the issue's six sizes)")
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    ap.add_argument("--repeats", type=int, default=21)
    ap.add_argument("--budget", type=float, default=10.0, help="seconds per cell before stopping early (>= 3 runs)")
    ap.add_argument("--baselines", default="numpy_diff,numpy_blas,torch,faiss,fpsample,fpsample_bucket",
                    help="comma list among numpy_diff,numpy_blas,torch,faiss,fpsample,fpsample_bucket")
    ap.add_argument("--peak-gflops", type=float, default=129.0, help="FMA peak per core")
    ap.add_argument("--bw", default="L1=195,L2=103,L3=66.5,DRAM=23", help="read GB/s per core")
    ap.add_argument("--barrier-us", type=float, default=0.26)
    ap.add_argument("--max-baseline-ms", type=float, default=4000.0,
                    help="skip a baseline at sizes where one call would exceed this (estimated)")


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(ap)
    return run(ap.parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Prints the comparison table for parsed ``args`` (see :func:`add_arguments`)."""

    sizes = QUICK if args.quick else SIZES
    if args.sizes:
        sizes = [tuple(int(v) for v in s.split(",")) for s in args.sizes]
    bw = {kv.split("=")[0]: float(kv.split("=")[1]) for kv in args.bw.split(",")}
    caches = cache_sizes()
    nthreads = _core.max_threads()

    baselines: Dict[str, Callable] = {
        "numpy_diff": numpy_diff, "numpy_blas": numpy_blas, "torch": torch_loop,
        "faiss": faiss_loop, "fpsample": fpsample_fps, "fpsample_bucket": fpsample_bucket,
    }
    chosen = []
    for name in args.baselines.split(","):
        name = name.strip()
        if not name:
            continue
        try:
            if name == "torch":
                import torch

                torch.set_num_threads(nthreads)
            elif name in ("faiss", "fpsample", "fpsample_bucket"):
                __import__(name.split("_")[0])
        except ImportError:
            print(f"# {name}: not installed, skipped (pip install 'smallgan[bench]')", file=sys.stderr)
            continue
        chosen.append(name)

    info = _config.config()
    print(f"# smallgan {info['smallgan']}  simd={info['simd_level']}  openmp={info['openmp']}  "
          f"threads={nthreads}  cpu={platform.processor() or platform.machine()}  "
          f"cores={os.cpu_count()}  caches={ {k: f'{v >> 10}K' for k, v in caches.items()} }")
    print(f"# date {time.strftime('%Y-%m-%d')}  numpy {np.__version__}  median of up to "
          f"{args.repeats} calls (ms); ratio = numpy_blas / column")
    cols = ["ours_1t", f"ours_{nthreads}t"] + chosen + ["floor_1t", f"floor_{nthreads}t"]
    header = f"{'n,d,k':>16} | " + " | ".join(f"{c:>11}" for c in cols) + " | vs blas (1t/mt) | vs floor (1t/mt)"
    print(header)
    print("-" * len(header))
    est_rate = None  # ms per (n*d*k) of the slowest baseline seen, for skipping
    for n, d, k in sizes:
        x = np.random.default_rng(n * 7 + d).normal(size=(n, d)).astype(np.float32)
        ours = kcenter(x, k, first=0)
        row: Dict[str, str] = {}
        t1, _ = median_ms(lambda: kcenter(x, k, first=0, threads=1), args.repeats, args.budget)
        tm, _ = median_ms(lambda: kcenter(x, k, first=0, threads=nthreads), args.repeats, args.budget)
        row["ours_1t"] = f"{t1:.3f}"
        row[f"ours_{nthreads}t"] = f"{tm:.3f}"
        blas = None
        for name in chosen:
            fn = baselines[name]
            if name == "fpsample_bucket":  # at its best height for this problem
                best = fpsample_bucket_height(x, k)
                if best is None:
                    row[name] = "n/a"
                    continue
                fn = functools.partial(fpsample_bucket, h=best[0])
                est = best[1]  # timed at full size (a tiny call scales far from linearly here)
            else:
                probe = fn(x[:256], min(k, 8), 0)  # rough cost estimate from a tiny call
                t0 = time.perf_counter()
                fn(x[:256], 8, 0)
                est = (time.perf_counter() - t0) * 1e3 * (n / 256) * (k / 8)
                del probe
            if est > args.max_baseline_ms:
                row[name] = "skip"
                continue
            got = fn(x, min(k, 32), 0)
            agree = np.array_equal(np.asarray(got)[:32], ours[: len(got)])
            t, _ = median_ms(lambda: fn(x, k, 0), args.repeats, args.budget)
            row[name] = f"{t:.3f}" + ("" if agree else "*")
            if name == "numpy_blas":
                blas = t
        f1 = floor_ms(n, d, k, 1, args.peak_gflops, bw, caches, args.barrier_us)
        fm = floor_ms(n, d, k, nthreads, args.peak_gflops, bw, caches, args.barrier_us)
        row["floor_1t"] = f"{f1:.3f}"
        row[f"floor_{nthreads}t"] = f"{fm:.3f}"
        vs_blas = f"{blas / t1:5.1f}x / {blas / tm:5.1f}x" if blas else "      -"
        vs_floor = f"{t1 / f1:4.2f} / {tm / fm:4.2f}"
        print(f"{f'{n},{d},{k}':>16} | " + " | ".join(f"{row[c]:>11}" for c in cols)
              + f" | {vs_blas:>15} | {vs_floor:>16}", flush=True)
    print("# '*' after a time: that baseline's first 32 picks differ from ours (float rounding ties,"
          " or the norm trick's cancellation); 'skip': estimated over --max-baseline-ms;"
          " fpsample_bucket: at its fastest height of 3/5/7/9, 'n/a' where it does not run (d > 8)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
