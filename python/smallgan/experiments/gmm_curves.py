"""Learning curves of GMM grids (paper Table 1): mode metrics against steps and seconds.

    smallgan train gmm-curves runs/curves-w128 runs/curves-w512 --out docs/results/gmm-curves

Reads the runs that ``smallgan train gmm-grid --eval-every N`` wrote (each
run's ``metrics.csv`` is its learning curve: recovered modes, recovered with
a high-quality sample and high-quality samples, on ``n_eval`` samples every
``N`` steps; ``log.csv`` has the seconds per step), labels each grid by the
width and learning rates in its runs' ``config.json``, and writes
``OUT.csv`` (one row per run and evaluation, with the cumulative training
seconds at that step) and ``OUT.png``: one column per number of modes, rows
for high-quality % against steps, recovered % against steps and
high-quality % against seconds; GAN and Small-GAN in two colours, one line
style per grid; with several seeds, the mean over seeds and a min-max band.  Unfinished runs are drawn as far as they got, so the
figure can be made while the grids still run.  It trains nothing.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

from smallgan.atomic import atomic_write
from smallgan.experiments.grid import mean_curve, write_curves

__all__ = ["collect", "plot_curves", "add_arguments", "run_from_args"]

def _read_csv(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _setting(config: Dict[str, Any]) -> str:
    g = config.get("experiment", {}).get("gmm", {})
    return f"width {g.get('hidden')}, lr {g.get('lr_g'):g}/{g.get('lr_d'):g}"


def collect(grids: Sequence[Union[str, Path]]) -> List[Dict[str, Any]]:
    """One row per (run, evaluation) of every run under ``grids``.

    A run is a folder ``m<M>/<sampling>/seed<S>`` holding ``config.json`` and
    ``metrics.csv``; ``seconds`` sums the logged mean step time times the
    steps of each log row up to the evaluation's step.
    """
    rows: List[Dict[str, Any]] = []
    for grid in map(Path, grids):
        if not grid.is_dir():
            raise FileNotFoundError(f"no grid directory {str(grid)!r}")
        for metrics in sorted(grid.glob("m*/*/seed*/metrics.csv")):
            run = metrics.parent
            config = json.loads((run / "config.json").read_text())
            gmm = config["experiment"]["gmm"]
            log = _read_csv(run / "log.csv") if (run / "log.csv").exists() else []
            elapsed, last, spent = [], 0, 0.0
            for r in log:  # (step, seconds so far)
                step = int(r["step"])
                spent += float(r["step_time_s"]) * (step - last)
                last = step
                elapsed.append((step, spent))
            for m in _read_csv(metrics):
                step = int(m["step"])
                secs = max((s for st, s in elapsed if st <= step), default=float("nan"))
                rows.append({
                    "grid": grid.name, "setting": _setting(config), "modes": int(gmm["modes"]),
                    "label": "GAN" if gmm["sampling"] == "random" else "Small-GAN",
                    "seed": int(gmm["seed"]), "step": step, "seconds": secs,
                    "recovered_pct": float(m["recovered_pct"]),
                    "recovered_hq_pct": float(m["recovered_hq_pct"]),
                    "high_quality_pct": float(m["high_quality_pct"]),
                })
    if not rows:
        raise ValueError(f"no run with a metrics.csv under {[str(g) for g in grids]}")
    return rows


def plot_curves(rows: Sequence[Dict[str, Any]], path: Union[str, Path]) -> Path:
    """The figure described in the module docstring, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = sorted({r["modes"] for r in rows})
    settings = sorted({r["setting"] for r in rows})
    styles = ["-", "--", ":", "-."]
    colours = {"GAN": "tab:blue", "Small-GAN": "tab:orange"}
    panels = [("step", "high_quality_pct", "high-quality samples %"),
              ("step", "recovered_pct", "recovered modes %"),
              ("seconds", "high_quality_pct", "high-quality samples %")]
    fig, axes = plt.subplots(len(panels), len(modes), figsize=(max(7.0, 3.6 * len(modes)), 8.4),
                             squeeze=False, sharey="row")
    for j, m in enumerate(modes):
        for i, (x, y, ylabel) in enumerate(panels):
            ax = axes[i][j]
            for k, setting in enumerate(settings):
                for label, colour in colours.items():
                    curve = mean_curve([r for r in rows if r["modes"] == m
                                         and r["setting"] == setting and r["label"] == label], x, y)
                    if curve:
                        xs, ys, lo, hi, n = curve
                        if x == "step":
                            xs = [v / 1000 for v in xs]
                        seeds = f", {n} seeds" if n > 1 else ""
                        ax.plot(xs, ys, styles[k % len(styles)], color=colour, lw=1.4,
                                label=f"{label}, {setting}{seeds}")
                        if n > 1:
                            ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, lw=0)
            ax.set_ylim(0, 101)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(f"m = {m}")
            if j == 0:
                ax.set_ylabel(ylabel)
            ax.set_xlabel("generator steps (thousands)" if x == "step"
                          else "training seconds (one core)")
    axes[0][0].legend(fontsize=7, loc="lower right")
    fig.suptitle("GMM grid: learning curves\n(10,000 samples per point)", fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return Path(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grids", nargs="+", type=Path, help="gmm-grid output directories")
    parser.add_argument("--out", type=Path, required=True,
                        help="output prefix: writes OUT.csv and OUT.png")


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train gmm-curves``."""
    try:
        rows = collect(args.grids)
    except (FileNotFoundError, ValueError) as exc:
        print(f"smallgan train gmm-curves: {exc}", file=sys.stderr)
        return 2

    write_curves(rows, Path(args.out), plot_curves, ("grid", "modes", "label", "seed"))
    return 0
