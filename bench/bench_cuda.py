"""GPU greedy k-center: our CUDA kernel vs the torch loop a user would write vs our CPU engine.

    python bench/bench_cuda.py [--out bench_cuda.md] [--reps 10] [--quick]

For each (n, d, k): seeded float32 Gaussian data on the GPU, the same first
centre for every column.

* ``ours``: ``kcenter(x, k, first=f, check_finite=False)`` (no host sync),
  timed with CUDA events around the call, so the Python overhead of the call
  counts when the GPU is idle.  ``ours_sync``: the default
  ``check_finite=True`` (one device-to-host sync for the NaN/Inf status).
* ``torch``: the plain loop, per step ``d = ((x - x[c]) ** 2).sum(1);
  mind = torch.minimum(mind, d); c = argmax(mind)``, written without host
  syncs (``x.index_select(0, c)`` with ``c`` a 1-element device tensor).
* ``cpu_1t``/``cpu_Nt``: our CPU engine on a host copy (``threads=1`` and
  up to 16 threads), wall clock.

Medians of ``--reps`` timed runs after one warm-up.  Where n*d*4 bytes fit in
the L2 cache, every GPU rep reads a different copy of x (rotation), so no
rep finds its input in L2 from the rep before.  Columns marked ``*`` ran
fewer steps and are scaled to k by the measured time per step (the torch
loop at the largest size: its steps cost the same; the CPU engine at the
two largest: per-step time from two runs of different length, so its
one-time packing pass is not scaled; its lazy updates make later steps
cheaper, so the scaled figure is an upper bound).  ``GB/s``: n*d*4 bytes per step (each step must read x once: the
memory floor of the exact algorithm) times k over our time; ``floor_ms``:
that traffic at the GPU's HBM bandwidth.  At sizes where x fits in the SMs'
shared memory the kernel reads it on chip, so GB/s can exceed the HBM peak.
Picks are compared with ours on the first data copy.

A second table sweeps the grid size (``_cuda_blocks``) at the smaller sizes,
for tuning the automatic choice (csrc/cuda/kcenter.cu, make_plan).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time

import numpy as np
import torch

import smallgan
from smallgan import _core, kcenter

SIZES = [(512, 128, 128), (1024, 32, 128), (8192, 128, 1024), (65536, 64, 1024), (1048576, 64, 4096)]
# steps actually run by the slow baselines (None: all k)
TORCH_STEPS = {(1048576, 64, 4096): 256}
CPU_STEPS = {(65536, 64, 1024): 256, (1048576, 64, 4096): 32}
CPU_REPS = 3
SWEEP_SIZES = [(512, 128, 128), (1024, 32, 128), (8192, 128, 1024)]
SWEEP_BLOCKS = [1, 2, 4, 8, 16, 32, 64, 132]

# HBM peak by device name (bytes/s), for the floor column
HBM_PEAK = {"H200": 4.8e12, "H100 SXM": 3.35e12, "H100 PCIe": 2.0e12, "H100": 3.35e12,
            "A100-SXM4-80GB": 2.04e12, "A100": 1.56e12}


def hbm_peak(name: str):
    for key, bw in HBM_PEAK.items():
        if key in name:
            return bw
    return None


def gpu_time_ms(fn, inputs, reps):
    """Median of CUDA-event times of fn(x), one warm-up, inputs rotated."""
    fn(inputs[0])
    torch.cuda.synchronize()
    times = []
    for r in range(reps):
        x = inputs[(r + 1) % len(inputs)]
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(x)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def torch_loop(x, k, first):
    """The plain farthest-first loop in torch, free of host syncs."""
    n = x.shape[0]
    mind = torch.full((n,), float("inf"), device=x.device)
    idx = torch.empty(k, dtype=torch.int64, device=x.device)
    c = torch.full((1,), first, dtype=torch.int64, device=x.device)
    for t in range(k):
        idx[t:t + 1] = c
        d = ((x - x.index_select(0, c)) ** 2).sum(1)
        mind = torch.minimum(mind, d)
        c = torch.argmax(mind).view(1)
    return idx


def agreement(ours: np.ndarray, other: np.ndarray) -> str:
    m = min(len(ours), len(other))
    diff = np.flatnonzero(ours[:m] != other[:m])
    return "same" if diff.size == 0 else f"differ@{int(diff[0])}"


def make_inputs(n, d, reps, dev, l2_bytes):
    g = torch.Generator(device=dev).manual_seed(n * 31 + d)
    nbytes = n * d * 4
    copies = 1
    if nbytes * 2 <= l2_bytes:  # fits in L2: rotate distinct copies
        copies = min(reps + 1, max(1, (2 << 30) // nbytes))
    return [torch.randn(n, d, generator=g, device=dev) for _ in range(copies)]


def bench_size(n, d, k, reps, dev, l2_bytes, peak, cpu_threads, log):
    first = 7
    inputs = make_inputs(n, d, reps, dev, l2_bytes)
    x0 = inputs[0]
    row = {"size": f"({n}, {d}, {k})"}
    plan = _core.cuda_plan(n, d, dev.index)
    row["plan"] = (f"{'resident' if plan['resident'] else 'stream'} "
                   f"{plan['blocks']}x{plan['threads']}, {plan['rows_per_block']} rows/block")

    ours = gpu_time_ms(lambda x: kcenter(x, k, first=first, check_finite=False), inputs, reps)
    ours_sync = gpu_time_ms(lambda x: kcenter(x, k, first=first), inputs, reps)
    picks = kcenter(x0, k, first=first, check_finite=False).cpu().numpy()
    row["ours_ms"] = ours
    row["ours_sync_ms"] = ours_sync
    row["us_per_step"] = ours * 1e3 / k
    bytes_per_step = n * d * 4
    row["GB/s"] = bytes_per_step * k / (ours * 1e-3) / 1e9
    row["floor_ms"] = bytes_per_step * k / peak * 1e3 if peak else float("nan")
    log(f"  ours {ours:.3f} ms ({row['plan']}), ours_sync {ours_sync:.3f} ms")

    kt = TORCH_STEPS.get((n, d, k), k)
    t_torch = gpu_time_ms(lambda x: torch_loop(x, kt, first), inputs, max(3, reps // 2) if kt < k else reps)
    row["torch_ms"] = t_torch * k / kt
    row["torch_scaled"] = kt < k
    row["torch_picks"] = agreement(picks[:kt], torch_loop(x0, kt, first).cpu().numpy())
    row["speedup"] = row["torch_ms"] / ours
    log(f"  torch {row['torch_ms']:.1f} ms{' (scaled from %d steps)' % kt if kt < k else ''}, {row['torch_picks']}")

    xh = x0.cpu().numpy()
    kc = CPU_STEPS.get((n, d, k), k)
    def cpu_ms(steps, threads):
        ts = []
        for _ in range(CPU_REPS):
            t0 = time.perf_counter()
            out = kcenter(xh, steps, first=first, threads=threads)
            ts.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(ts), out

    for label, threads in (("cpu_1t", 1), (f"cpu_{cpu_threads}t", cpu_threads)):
        kcenter(xh, min(kc, 8), first=first, threads=threads)  # warm-up
        t_b, cpu_picks = cpu_ms(kc, threads)
        if kc < k:
            # two points, so the one-time packing pass is not scaled with k
            ka = max(1, kc // 4)
            t_a, _ = cpu_ms(ka, threads)
            t_b += (k - kc) * max(0.0, t_b - t_a) / (kc - ka)
        row[label] = t_b
        row[label + "_scaled"] = kc < k
        row[label + "_picks"] = agreement(picks[:kc], cpu_picks)
        log(f"  {label} {row[label]:.1f} ms, {row[label + '_picks']}")
    row["cpu_label"] = f"cpu_{cpu_threads}t"
    del inputs
    torch.cuda.empty_cache()
    return row


def sweep(n, d, k, reps, dev, l2_bytes):
    inputs = make_inputs(n, d, reps, dev, l2_bytes)
    want = kcenter(inputs[0], k, first=7, check_finite=False).cpu().numpy()
    out = {}
    for b in [0] + SWEEP_BLOCKS:
        if b > n:
            continue
        p = _core.cuda_plan(n, d, dev.index, b)
        key = (p["blocks"], p["resident"])
        if key in out:
            continue
        ms = gpu_time_ms(lambda x: kcenter(x, k, first=7, check_finite=False, _cuda_blocks=b), inputs, reps)
        same = np.array_equal(kcenter(inputs[0], k, first=7, check_finite=False, _cuda_blocks=b).cpu().numpy(), want)
        out[key] = (b, ms, same)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=None, help="also write the markdown tables to this path")
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--quick", action="store_true", help="the two training sizes only")
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("bench_cuda.py needs a CUDA GPU", file=sys.stderr)
        return 2
    if not _core.cuda:
        print("smallgan was built without the CUDA kernel (SMALLGAN_CUDA=ON pip install -e .)", file=sys.stderr)
        return 2
    t_start = time.perf_counter()
    dev = torch.device("cuda", torch.cuda.current_device())
    props = torch.cuda.get_device_properties(dev)
    l2_bytes = int(getattr(props, "L2_cache_size", 50 << 20))
    peak = hbm_peak(props.name)
    cpu_threads = min(16, os.cpu_count() or 1)

    def log(msg):
        print(msg, file=sys.stderr, flush=True)

    sizes = SIZES[:2] if args.quick else SIZES
    rows = []
    for n, d, k in sizes:
        log(f"({n}, {d}, {k})")
        rows.append(bench_size(n, d, k, args.reps, dev, l2_bytes, peak, cpu_threads, log))

    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"# CUDA greedy k-center ({now})",
        "",
        f"GPU: {props.name} ({props.multi_processor_count} SMs, L2 {l2_bytes >> 20} MiB, "
        f"HBM peak assumed {peak / 1e12:.2f} TB/s)" if peak else f"GPU: {props.name}",
        f"torch {torch.__version__} (CUDA {torch.version.cuda}), smallgan {smallgan.__version__}, "
        f"kernel built for sm {_core.cuda_architectures} with CUDA runtime {_core.cuda_runtime_version}; "
        f"CPU: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"engine SIMD {_core.simd_level()}",
        f"Command: python bench/bench_cuda.py --reps {args.reps}{' --quick' if args.quick else ''}",
        "",
        "Median ms per call; `*`: scaled from fewer steps (see the script's docstring).",
        "",
    ]
    cpu_label = rows[0]["cpu_label"]
    lines.append(f"| (n, d, k) | ours | ours_sync | us/step | torch loop | speedup vs torch | cpu_1t | {cpu_label} "
                 f"| GB/s | floor_ms | picks torch / cpu | plan |")
    lines.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    for r in rows:
        star = lambda flag: "*" if flag else ""  # noqa: E731
        lines.append(
            f"| {r['size']} | {r['ours_ms']:.3f} | {r['ours_sync_ms']:.3f} | {r['us_per_step']:.2f} "
            f"| {r['torch_ms']:.1f}{star(r['torch_scaled'])} | {r['speedup']:.1f}x "
            f"| {r['cpu_1t']:.1f}{star(r['cpu_1t_scaled'])} | {r[cpu_label]:.1f}{star(r[cpu_label + '_scaled'])} "
            f"| {r['GB/s']:.0f} | {r['floor_ms']:.3f} | {r['torch_picks']} / {r['cpu_1t_picks']} | {r['plan']} |")

    if not args.quick:
        lines += ["", "## Grid size sweep (`_cuda_blocks`; row 'auto' is the default plan)", "",
                  "| (n, d, k) | blocks | mode | ms | same picks |", "| --- | ---: | --- | ---: | --- |"]
        for n, d, k in SWEEP_SIZES:
            log(f"sweep ({n}, {d}, {k})")
            for (blocks, resident), (b, ms, same) in sweep(n, d, k, args.reps, dev, l2_bytes).items():
                lines.append(f"| ({n}, {d}, {k}) | {blocks}{' (auto)' if b == 0 else ''} "
                             f"| {'resident' if resident else 'stream'} | {ms:.3f} | {'yes' if same else 'NO'} |")
    lines += ["", f"Total bench time {time.perf_counter() - t_start:.0f} s."]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
