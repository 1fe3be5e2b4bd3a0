"""Seconds per generator step of the Table 1 runs: GAN at batch 64/256/512 vs Small-GAN at 64.

Issue 15 item 4 asks whether Small-GAN at batch 64 reaches the plain GAN
at batch 256 or 512, and at what cost per step.  The grid's own wall times
(``gmm-table``'s ms/step column) come from runs that shared a loaded
machine, so they cannot be compared with each other.  This script measures
the cost directly: it runs the real experiment (:func:`smallgan.experiments.gmm.run`,
one torch thread, ``prefetch=0``: the selection runs in the training
thread and is paid in full) for ``short`` and ``long`` generator steps, and
takes ``(t_long - t_short) / (long - short)`` as the time per step, so
that data generation, model set-up and the final evaluation cancel.  All
variants are interleaved in rounds (machine noise hits them alike); the
table reports the median over rounds and the ratio to GAN at batch 64 of
the same round.

Script::

    PYTHONPATH=python python bench/gmm_step.py [--modes 100] [--rounds 5]

Prints a markdown table (and writes it with ``--out FILE``).
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time
from typing import Dict, List, Tuple

VARIANTS: Dict[str, Dict] = {
    "GAN, batch 64": dict(sampling="random", batch_size=64),
    "GAN, batch 256": dict(sampling="random", batch_size=256),
    "GAN, batch 512": dict(sampling="random", batch_size=512),
    "Small-GAN, batch 64 (prior x4, target x8)": dict(sampling="coreset", batch_size=64),
    "prior core-set only, batch 64 (x4)": dict(sampling="coreset", batch_size=64,
                                              coreset_target=False),
    "target core-set only, batch 64 (x8)": dict(sampling="coreset", batch_size=64,
                                               coreset_prior=False),
    "Small-GAN, batch 64 (x16 / x16)": dict(sampling="coreset", batch_size=64,
                                            prior_factor=16, target_factor=16),
}


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def timed_run(steps: int, modes: int, hidden: int, **kw) -> float:
    """Wall seconds of one ``gmm.run`` of ``steps`` steps (evaluated once, at the end)."""
    from smallgan.experiments.gmm import GMMConfig, run

    cfg = GMMConfig(modes=modes, steps=steps, hidden=hidden, eval_every=steps,
                    sample_every=steps, checkpoint_every=steps, n_eval=2000, **kw)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run(cfg, tmp, tensorboard=False)
        return time.perf_counter() - t0


def measure(modes: int, hidden: int, short: int, long: int, rounds: int,
            names: List[str]) -> Dict[str, List[float]]:
    """Per-step milliseconds of each variant, one value per round."""
    ms: Dict[str, List[float]] = {n: [] for n in names}
    for n in names:  # warm-up: imports, allocator, the engine's first call
        timed_run(short, modes, hidden, **VARIANTS[n])
    for r in range(rounds):
        for n in names:
            a = timed_run(short, modes, hidden, **VARIANTS[n])
            b = timed_run(long, modes, hidden, **VARIANTS[n])
            ms[n].append(1e3 * (b - a) / (long - short))
        print(f"round {r + 1}/{rounds}: " + ", ".join(f"{ms[n][-1]:.2f}" for n in names),
              file=sys.stderr, flush=True)
    return ms


def table(ms: Dict[str, List[float]], base: str) -> List[Tuple[str, float, float, float]]:
    """(name, median ms, median ratio to ``base``, interquartile range of that ratio)."""
    rows = []
    for n, v in ms.items():
        ratios = sorted(x / y for x, y in zip(v, ms[base]))
        q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
        rows.append((n, statistics.median(v), statistics.median(ratios), q[2] - q[0]))
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--modes", type=int, default=100)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--short", type=int, default=200, help="steps of the short run")
    p.add_argument("--long", type=int, default=1200, help="steps of the long run")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--out", default=None, help="also write the markdown here")
    a = p.parse_args(argv)
    if not 0 < a.short < a.long:
        p.error(f"--short must be positive and below --long, got {a.short} and {a.long}")
    import torch

    torch.set_num_threads(1)
    names = list(VARIANTS)
    ms = measure(a.modes, a.hidden, a.short, a.long, a.rounds, names)
    lines = [f"m = {a.modes}, width {a.hidden}, one torch thread, prefetch 0; ms per generator "
             f"step = (t({a.long}) - t({a.short})) / {a.long - a.short}; median of {a.rounds} "
             f"interleaved rounds; {cpu_name()}, {os.cpu_count()} cores, load average "
             f"{os.getloadavg()[0]:.1f} at the end; {datetime.date.today()}",
             "",
             "| variant | ms / step | ratio to GAN batch 64 (IQR) |",
             "| --- | ---: | ---: |"]
    for n, med, ratio, iqr in table(ms, names[0]):
        lines.append(f"| {n} | {med:.2f} | {ratio:.2f} ({iqr:.2f}) |")
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
