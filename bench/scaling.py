"""Scaling curves and peak memory: kcenter and the loops users would otherwise run.

    python bench/scaling.py                 # the full curves (n to 1e7 at d = 3, 1e6 at d = 64)
    python bench/scaling.py --quick         # n to 1e5, fewer points, 3 repeats
    python bench/scaling.py --plot-only     # redraw the figures from bench/scaling.json

Curves (seeded uniform float32 data in [0, 1)^d, first centre 0):

- time against n: d = 3 with k = 1024, and d = 64 with k = 256;
- time against k: n = 100,000, d = 3;
- time against d: n = 100,000, k = 1024;
- peak memory against n, each point in a fresh subprocess: the growth of the
  process's peak resident set over one call (VmHWM, reset to the current RSS
  through ``/proc/self/clear_refs`` just before the call; Linux), after x
  exists and the method has run once on 64 rows, so imports and library
  set-up are not counted.  (Not ``ru_maxrss``: a child inherits its
  parent's peak through it.)

Methods: ours with 1 and 2 threads (``kcenter(threads=...)``); the numpy loop
around BLAS, the faiss loop and the torch loop of smallgan.compare (their
libraries' default threads, 2 here); fpsample's plain ``fps_sampling`` and
``bucket_fps_kdline_sampling`` at its best h (the fastest of 5, 7, 9, 11 on
one call, then timed; it fails past d = 8); fpsample runs on one thread.  A method is skipped
where one call is estimated above ``--max-s`` (from its previous point,
scaled by n k d).  Medians of ``--repeats`` calls after a warm-up; a call
over 2 s is timed once.  Results go to bench/scaling.json and three PNGs in
bench/.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from lowd import machine  # noqa: E402

METHODS = ["ours_1t", "ours_2t", "numpy_blas", "faiss", "torch", "fpsample", "fpsample_bucket"]
LABELS = {"ours_1t": "smallgan 1 thread", "ours_2t": "smallgan 2 threads", "numpy_blas": "numpy BLAS loop",
          "faiss": "faiss loop", "torch": "torch loop", "fpsample": "fpsample fps_sampling",
          "fpsample_bucket": "fpsample bucket (best h)"}


class Unsupported(Exception):
    """A peer cannot run this shape at all (not a time-out): the point is left blank."""


def data(n: int, d: int) -> np.ndarray:
    return np.random.default_rng(n * 7 + d).random((n, d), dtype=np.float32)


def method(name: str) -> Optional[Callable[[np.ndarray, int], object]]:
    """The call for `name`, or None if its library is missing."""
    from smallgan import compare, kcenter

    try:
        if name == "ours_1t":
            return lambda x, k: kcenter(x, k, first=0, threads=1)
        if name == "ours_2t":
            return lambda x, k: kcenter(x, k, first=0, threads=2)
        if name == "numpy_blas":
            return lambda x, k: compare.numpy_blas(x, k, 0)
        if name == "faiss":
            import faiss  # noqa: F401

            return lambda x, k: compare.faiss_loop(x, k, 0)
        if name == "torch":
            import torch

            torch.set_num_threads(2)
            return lambda x, k: compare.torch_loop(x, k, 0)
        if name == "fpsample":
            import fpsample  # noqa: F401

            return lambda x, k: compare.fpsample_fps(x, k, 0)
        if name == "fpsample_bucket":
            import fpsample

            def bucket(x, k, _best={}):
                if x.shape[1] > 8:  # fpsample 1.0.2's bucket method fails ("error code 1") past 8 columns
                    raise Unsupported("fpsample bucket: d > 8")
                key = (x.shape, k)
                if key not in _best:  # the fastest height on one call each
                    times = []
                    for h in [h for h in (5, 7, 9, 11) if 2**h <= len(x)] or [1]:  # it asserts 2^h <= n
                        t0 = time.perf_counter()
                        fpsample.bucket_fps_kdline_sampling(x, k, h, start_idx=0)
                        times.append((time.perf_counter() - t0, h))
                    _best[key] = min(times)[1]
                return fpsample.bucket_fps_kdline_sampling(x, k, _best[key], start_idx=0)

            return bucket
    except ImportError:
        return None
    raise ValueError(name)


def time_call(fn, repeats: int) -> float:
    t0 = time.perf_counter()
    fn()  # warm-up (and, for the bucket method, the choice of h)
    first = time.perf_counter() - t0
    if first > 2.0:
        return first
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def series(points, methods, repeats, max_s, label) -> Dict[str, List[Optional[float]]]:
    """Seconds per call of each method at each (n, d, k); None where skipped."""
    fns = {m: method(m) for m in methods}
    out: Dict[str, List[Optional[float]]] = {m: [] for m in methods}
    last: Dict[str, tuple] = {}
    for n, d, k in points:
        x = data(n, d)
        line = []
        for m in methods:
            fn = fns[m]
            t = None
            if fn is not None:
                prev = last.get(m)
                estimate = prev[0] * (n * k * d) / prev[1] if prev else 0.0
                if estimate <= max_s:
                    try:
                        t = time_call(lambda: fn(x, k), repeats)
                        last[m] = (t, n * k * d)
                    except Unsupported:
                        pass
            out[m].append(t)
            line.append(f"{m}={'skip' if t is None else f'{t * 1e3:.1f}ms'}")
        print(f"# {label} n={n} d={d} k={k}: " + " ".join(line), flush=True)
    return out


MEMORY_CHILD = r"""
import json, sys
sys.path.insert(0, {here!r})
import numpy as np
from scaling import Unsupported, data, method, peak_kib
name, n, d, k = {name!r}, {n}, {d}, {k}
x = data(n, d)
fn = method(name)
try:
    fn(x[:64], 4)
except Unsupported:
    print(json.dumps({{"kib": None}}))
    sys.exit(0)
# the peak so far (imports set it high) is reset to the current RSS:
# writing 5 to clear_refs (Linux >= 4.0)
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
before = peak_kib()
fn(x, k)
print(json.dumps({{"kib": peak_kib() - before}}))
"""


def peak_kib() -> int:
    """This process's peak resident set (VmHWM, KiB).

    Not ru_maxrss: in a child, getrusage reports the larger of its own peak
    and a maxrss inherited through fork and exec, i.e. the parent's peak
    (measured: every child of a parent that had imported torch read 224,668
    KiB before and after the call).
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise OSError("no VmHWM in /proc/self/status")


def memory(points, methods, max_s, timings) -> Dict[str, List[Optional[float]]]:
    """Peak extra MiB of one call, each in a fresh process (ru_maxrss is per process), max of two."""
    out: Dict[str, List[Optional[float]]] = {m: [] for m in methods}
    for i, (n, d, k) in enumerate(points):
        line = []
        for m in methods:
            mib = None
            # with timings: only where the timed call ran and took at most max_s
            est = timings[m][i] if timings is not None else 0.0
            if method(m) is not None and est is not None and est <= max_s:
                code = MEMORY_CHILD.format(here=str(HERE), name=m, n=n, d=d, k=k)
                for _ in range(2):  # the larger of two processes
                    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
                    if r.returncode != 0:
                        print(f"# memory {m} n={n}: failed: {r.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
                        break
                    kib = json.loads(r.stdout.strip().splitlines()[-1])["kib"]
                    if kib is None:
                        break
                    mib = max(mib or 0.0, kib / 1024)
            out[m].append(mib)
            line.append(f"{m}={'skip' if mib is None else f'{mib:.1f}MiB'}")
        print(f"# memory n={n} d={d} k={k}: " + " ".join(line), flush=True)
    return out


def run(args) -> dict:
    q = args.quick
    ns3 = [1000, 3000, 10_000, 30_000, 100_000] if q else \
        [1000, 3000, 10_000, 30_000, 100_000, 300_000, 1_000_000, 3_000_000, 10_000_000]
    ns64 = [1000, 3000, 10_000, 30_000, 100_000] if q else [1000, 3000, 10_000, 30_000, 100_000, 300_000, 1_000_000]
    ks = [16, 64, 256, 1024, 4096] if q else [16, 64, 256, 1024, 4096, 16384]
    ds = [1, 2, 3, 4, 8, 16, 64] if q else [1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128]
    nk = 30_000 if q else 100_000
    res = {"machine": machine(), "command": " ".join(["python", "bench/scaling.py"] + sys.argv[1:]),
           "methods": METHODS}
    cases = {
        "n_d3": [(n, 3, min(1024, n)) for n in ns3],
        "n_d64": [(n, 64, min(256, n)) for n in ns64],
        "k_d3": [(nk, 3, k) for k in ks],
        "d": [(nk, d, 1024) for d in ds],
    }
    for name, pts in cases.items():
        res[name] = {"points": pts, "seconds": series(pts, METHODS, args.repeats, args.max_s, name)}
    if not args.no_memory:
        res.update(run_memory(args, res))
    return res


def run_memory(args, res) -> dict:
    """The memory curves; a method is skipped where its timed call was (or took over --max-s;
    at d = 64 the times for k = 256 scaled to k = 64)."""
    ns3 = [p[0] for p in res["n_d3"]["points"]]
    ns64 = [p[0] for p in res["n_d64"]["points"]]
    mem3 = [(n, 3, min(1024, n)) for n in ns3]
    mem64 = [(n, 64, min(64, n)) for n in ns64]
    out = {"mem_d3": {"points": mem3, "mib": memory(mem3, METHODS, args.max_s, res["n_d3"]["seconds"])}}
    # k = 64 at d = 3 too: the blocked path (the spatial one takes over from 256 centres)
    out["mem_d3_k64"] = {"points": [(n, 3, 64) for n in ns3],
                         "mib": memory([(n, 3, 64) for n in ns3], ["ours_1t"], args.max_s, None)}
    t64 = {m: [None if t is None else t * 64 / 256 for t in ts] for m, ts in res["n_d64"]["seconds"].items()}
    out["mem_d64"] = {"points": mem64, "mib": memory(mem64, METHODS, args.max_s, t64)}
    return out


def tables(res) -> str:
    out = [f"Machine: {res['machine']}", f"Command: `{res['command']}`", ""]
    titles = {"n_d3": "time (ms) against n, d = 3, k = 1024", "n_d64": "time (ms) against n, d = 64, k = 256",
              "k_d3": "time (ms) against k, d = 3", "d": "time (ms) against d, k = 1024"}
    for key, title in titles.items():
        if key not in res:
            continue
        pts = res[key]["points"]
        col = {"n_d3": 0, "n_d64": 0, "k_d3": 2, "d": 1}[key]
        out.append(f"{title} (n = {pts[0][0]} where fixed)" if key in ("k_d3", "d") else title)
        out.append("")
        out.append("| " + ["n", "n", "k", "d"][list(titles).index(key)] + " | " +
                   " | ".join(LABELS[m] for m in res["methods"]) + " |")
        out.append("| ---: |" + " ---: |" * len(res["methods"]))
        for i, p in enumerate(pts):
            cells = []
            for m in res["methods"]:
                t = res[key]["seconds"][m][i]
                cells.append("-" if t is None else f"{t * 1e3:.3g}")
            out.append(f"| {p[col]} | " + " | ".join(cells) + " |")
        out.append("")
    for key, title in (("mem_d3", "peak extra memory (MiB) against n, d = 3, k = 1024"),
                       ("mem_d3_k64", "peak extra memory (MiB), ours at d = 3, k = 64 (blocked path)"),
                       ("mem_d64", "peak extra memory (MiB) against n, d = 64, k = 64")):
        if key not in res:
            continue
        pts = res[key]["points"]
        methods = list(res[key]["mib"])
        out.append(title + "; last column: one float32 copy of x")
        out.append("")
        out.append("| n | " + " | ".join(LABELS[m] for m in methods) + " | x as float32 |")
        out.append("| ---: |" + " ---: |" * (len(methods) + 1))
        for i, (n, d, _) in enumerate(pts):
            cells = ["-" if res[key]["mib"][m][i] is None else f"{res[key]['mib'][m][i]:.3g}" for m in methods]
            out.append(f"| {n} | " + " | ".join(cells) + f" | {n * d * 4 / 2**20:.3g} |")
        out.append("")
    return "\n".join(out)


def plot(res, outdir: Path) -> List[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    style = {"ours_1t": ("C0", "o", "-"), "ours_2t": ("C0", "s", "--"), "numpy_blas": ("C1", "^", "-"),
             "faiss": ("C2", "v", "-"), "torch": ("C3", "D", "-"), "fpsample": ("C4", "x", "-"),
             "fpsample_bucket": ("C5", "P", "-")}
    paths = []

    def panel(ax, key, col, xlabel, ylabel, values="seconds", scale=1e3):
        pts = res[key]["points"]
        for m, ys in res[key][values].items():
            # a log axis cannot show 0 (a call that added no pages: small n)
            xs = [p[col] for p, y in zip(pts, ys) if y]
            yv = [y * scale for y in ys if y]
            if xs:
                c, mk, ls = style[m]
                ax.plot(xs, yv, color=c, marker=mk, ls=ls, label=LABELS[m])
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)

    def finish(fig, axes, title, name):
        axes[0].legend(fontsize=8)
        fig.suptitle(title, fontsize=10)
        fig.text(0.5, 0.005, res["machine"], ha="center", fontsize=7)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        paths.append(outdir / name)
        fig.savefig(paths[-1], dpi=110)
        plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    panel(axes[0], "n_d3", 0, "n (d = 3, k = 1024)", "ms per call")
    panel(axes[1], "n_d64", 0, "n (d = 64, k = 256)", "ms per call")
    finish(fig, axes, "greedy k-center, time against n", "scaling_n.png")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    n_k = res["k_d3"]["points"][0][0]
    panel(axes[0], "k_d3", 2, f"k (n = {n_k}, d = 3)", "ms per call")
    panel(axes[1], "d", 1, f"d (n = {n_k}, k = 1024)", "ms per call")
    finish(fig, axes, "greedy k-center, time against k and d", "scaling_k_d.png")

    if "mem_d3" in res:
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
        for ax, key, d in ((axes[0], "mem_d3", 3), (axes[1], "mem_d64", 64)):
            panel(ax, key, 0, f"n (d = {d}, k = {res[key]['points'][-1][2]})", "peak extra MiB", "mib", 1.0)
            ns = [p[0] for p in res[key]["points"]]
            ax.plot(ns, [n * d * 4 / 2**20 for n in ns], color="k", ls=":", label="one float32 copy of x")
        if "mem_d3_k64" in res:
            pts = res["mem_d3_k64"]["points"]
            ys = res["mem_d3_k64"]["mib"]["ours_1t"]
            axes[0].plot([p[0] for p, y in zip(pts, ys) if y], [y for y in ys if y],
                         color="C0", marker=".", ls=":", label="smallgan, k = 64 (blocked path)")
        finish(fig, axes, "peak memory of one call (growth of the peak resident set, VmHWM; "
               "fresh process per point)", "memory_n.png")
    return paths


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="n to 1e5, fewer points")
    ap.add_argument("--repeats", type=int, default=None, help="calls per point (default 5, --quick 3)")
    ap.add_argument("--max-s", type=float, default=None, help="skip a method where a call is estimated "
                    "above this many seconds (default 20, --quick 3)")
    ap.add_argument("--no-memory", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE, help="folder for scaling.json and the PNGs")
    ap.add_argument("--plot-only", action="store_true", help="redraw from OUT/scaling.json")
    ap.add_argument("--memory-only", action="store_true",
                    help="measure only the memory curves, into the times already in OUT/scaling.json")
    args = ap.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 5
    if args.max_s is None:
        args.max_s = 3.0 if args.quick else 20.0
    js = args.out / "scaling.json"
    if args.plot_only:
        res = json.loads(js.read_text())
    elif args.memory_only:
        res = json.loads(js.read_text())
        res.update(run_memory(args, res))
        res["command"] += " && " + " ".join(["python", "bench/scaling.py"] + sys.argv[1:])
        js.write_text(json.dumps(res, indent=1))
    else:
        res = run(args)
        args.out.mkdir(parents=True, exist_ok=True)
        js.write_text(json.dumps(res, indent=1))
    print(tables(res))
    for p in plot(res, args.out):
        print(f"# wrote {p}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
