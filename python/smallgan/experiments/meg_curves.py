"""Learning curves of a MEG grid (paper Table 2): AUPRC against epochs, per held-out digit.

    smallgan train meg-curves runs/table2 --out docs/results/meg-curves

Reads the runs that ``smallgan train meg-grid`` wrote (each run's
``metrics.csv`` holds one evaluation per epoch: AUPRC, average precision and
AUROC of the energy score E(x) and of ||grad_x E||) and writes ``OUT.csv``
(one row per run and evaluation) and ``OUT.png``: one column per digit, rows
for the AUPRC of E(x) and of ||grad E|| against epochs, MEG and Core-set+MEG
in two colours (the mean over seeds with a min-max band when there are
several), the chance level (the test set's share of anomalies) dashed, and
the window the table averages (the last ``last_n`` evaluations) shaded.
Unfinished runs are drawn as far as every seed has got.  It trains nothing.
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

def collect(grid: Union[str, Path]) -> List[Dict[str, Any]]:
    """One row per (run, evaluation) under ``grid`` (``digit*/<sampling>/seed*``)."""
    grid = Path(grid)
    if not grid.is_dir():
        raise FileNotFoundError(f"no grid directory {str(grid)!r}")
    from smallgan.experiments.meg import METHOD_LABELS

    rows: List[Dict[str, Any]] = []
    for metrics in sorted(grid.glob("digit*/*/seed*/metrics.csv")):
        run = metrics.parent
        exp = json.loads((run / "config.json").read_text())["experiment"]["meg"]
        with open(metrics, newline="") as f:
            evals = list(csv.DictReader(f))
        steps_per_epoch, chance = _epoch_and_chance(run, exp, evals)
        for e in evals:
            step = int(e["step"])
            rows.append({"digit": int(exp["digit"]), "label": METHOD_LABELS[exp["sampling"]],
                         "seed": int(exp["seed"]), "step": step, "epoch": step / steps_per_epoch,
                         "energy_auprc": float(e["energy_auprc"]), "grad_auprc": float(e["grad_auprc"]),
                         "energy_auroc": float(e["energy_auroc"]), "chance_auprc": chance,
                         "last_n": int(exp.get("last_n", 10))})
    if not rows:
        raise ValueError(f"no run with a metrics.csv under {str(grid)!r}")
    return rows


def _epoch_and_chance(run: Path, exp: Dict[str, Any], evals: Sequence[Dict[str, str]]) -> tuple:
    """Steps per epoch and the chance AUPRC (anomalies / test images) of one run.

    From ``result.json`` once the run has finished.  Before that the chance
    level is unknown (NaN) and, with the default once-per-epoch evaluation,
    the first evaluation is at one epoch.
    """
    done = run / "result.json"
    if done.exists():
        r = json.loads(done.read_text())
        return float(r["steps_per_epoch"]), r["n_anomalies"] / r["n_test"]
    if not exp.get("eval_every") and evals:
        return float(int(evals[0]["step"])), float("nan")
    return float("nan"), float("nan")


def plot_curves(rows: Sequence[Dict[str, Any]], path: Union[str, Path]) -> Path:
    """The figure described in the module docstring, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    digits = sorted({r["digit"] for r in rows})
    colours = {"MEG": "tab:blue", "Core-set+MEG": "tab:orange"}
    panels = [("energy_auprc", "AUPRC of E(x)"), ("grad_auprc", "AUPRC of ||grad E||")]
    fig, axes = plt.subplots(len(panels), len(digits), squeeze=False, sharey=True,
                             figsize=(max(6.0, 2.6 * len(digits)), 5.2))
    for j, d in enumerate(digits):
        mine = [r for r in rows if r["digit"] == d]
        chance = [r["chance_auprc"] for r in mine if r["chance_auprc"] == r["chance_auprc"]]
        for i, (key, ylabel) in enumerate(panels):
            ax = axes[i][j]
            last_epoch = 0.0
            for label, colour in colours.items():
                curve = mean_curve([r for r in mine if r["label"] == label], "step", key)
                if not curve:
                    continue
                xs, ys, lo, hi, n = curve
                per = {r["step"]: r["epoch"] for r in mine}
                xs = [per[s] for s in xs]
                last_epoch = max(last_epoch, xs[-1])
                ax.plot(xs, ys, color=colour, lw=1.3, label=label + (f", {n} seeds" if n > 1 else ""))
                if n > 1:
                    ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, lw=0)
                window = min(mine[0]["last_n"], len(xs))
                ax.axvspan(xs[-window], xs[-1], color="0.9", zorder=0)
            if chance:
                ax.axhline(chance[0], ls="--", color="0.4", lw=0.9, label="chance")
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            if i == 0:
                ax.set_title(f"held-out digit {d}", fontsize=9)
            if i == len(panels) - 1:
                ax.set_xlabel("epoch")
            if j == 0:
                ax.set_ylabel(ylabel)
    axes[0][0].legend(fontsize=7, loc="upper right")
    fig.suptitle("MEG anomaly detection: AUPRC per epoch (shaded: the epochs the table averages)",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return Path(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grid", type=Path, help="a meg-grid output directory")
    parser.add_argument("--out", type=Path, required=True,
                        help="output prefix: writes OUT.csv and OUT.png")


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train meg-curves``."""
    try:
        rows = collect(args.grid)
    except (FileNotFoundError, ValueError) as exc:
        print(f"smallgan train meg-curves: {exc}", file=sys.stderr)
        return 2

    write_curves(rows, Path(args.out), plot_curves, ("digit", "label", "seed"))
    return 0
