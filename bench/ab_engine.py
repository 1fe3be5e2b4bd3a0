"""A/B of two engine builds at the training sizes: this checkout's smallgan._core vs another _core*.so.

    # build the engine of another commit (here 89e0861) beside this one, then compare
    git archive 89e0861 csrc CMakeLists.txt pyproject.toml | tar -x -C /tmp/base
    cmake -S /tmp/base -B /tmp/base/bld -DCMAKE_BUILD_TYPE=Release -DSMALLGAN_CUDA=OFF \\
          -Dpybind11_DIR=$(python -c "import pybind11; print(pybind11.get_cmake_dir())")
    cmake --build /tmp/base/bld -j2
    python bench/ab_engine.py /tmp/base/bld/_core.cpython-*.so [--pairs 400]

Both modules are loaded into one process and called through their own
``kcenter`` binding (the call the Python wrapper makes) on the same seeded
float32 data, one thread, k = 64, first = 0: the training sizes (d = 32-128,
n = 256-4096) and the 2-D GMM prior sizes.  Each pair runs the two in turn
(order alternating), and the table gives the median of the per-pair ratios
with its interquartile range: a range that spans 1.0 is noise.  The picks are
compared first.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time

import numpy as np

from lowd import machine

SIZES = [(256, 32), (1024, 32), (4096, 32), (512, 64), (2048, 64), (4096, 64), (256, 128), (512, 128),
         (1024, 128), (4096, 128), (256, 2), (512, 2)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("other", help="path of the other build's _core*.so")
    ap.add_argument("--pairs", type=int, default=400)
    args = ap.parse_args(argv)
    spec = importlib.util.spec_from_file_location("other._core", args.other)
    other = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(other)
    from smallgan import _core as this

    sel = np.empty(0, dtype=np.int64)
    print(f"# {machine()}")
    print(f"# this build vs {args.other}; {args.pairs} interleaved pairs, 1 thread, k = 64")
    print("| n, d, k | other us | this us | this / other (median of pair ratios) | interquartile range |")
    print("| --- | ---: | ---: | ---: | --- |")
    for n, d in SIZES:
        x = np.random.default_rng(n + d).normal(size=(n, d)).astype(np.float32)
        k = 64
        fa = lambda: other.kcenter(x, k, 0, sel, 1, -1, False, True)  # noqa: E731
        fb = lambda: this.kcenter(x, k, 0, sel, 1, -1, False, True)  # noqa: E731
        if not np.array_equal(fa()[0], fb()[0]):
            print(f"| {n}, {d}, {k} | picks differ | | | |")
            continue
        ta, tb, ratio = [], [], []
        for r in range(args.pairs):
            t = {}
            for f in ((fa, fb) if r % 2 == 0 else (fb, fa)):
                t0 = time.perf_counter()
                f()
                t[f] = time.perf_counter() - t0
            ta.append(t[fa])
            tb.append(t[fb])
            ratio.append(t[fb] / t[fa])
        q = np.percentile(ratio, [25, 50, 75])
        print(f"| {n}, {d}, {k} | {np.median(ta) * 1e6:.1f} | {np.median(tb) * 1e6:.1f} | {q[1]:.3f} | "
              f"[{q[0]:.3f}, {q[2]:.3f}] |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
