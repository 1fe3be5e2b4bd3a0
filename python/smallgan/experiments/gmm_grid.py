"""The paper's Table 1: GAN vs Small-GAN over every number of modes and several seeds.

Runs :func:`smallgan.experiments.gmm.run` for every ``m`` in
{25, 36, 49, 64, 81, 100}, both samplings and each seed, one after the other
in one process, then prints mean +- std (sample std over seeds) next to the
paper's numbers and writes:

- ``runs.csv``: one row per run;
- ``summary.csv``: one row per (m, method) with means, stds and the paper's value;
- ``figure.png``: samples of the first seed over the mode grid, GAN and
  Small-GAN side by side for each ``m``;
- one run directory per run, ``m{m}/{random|coreset}/seed{seed}/``.

With ``--resume`` finished runs are read back and unfinished ones continue
from their checkpoints, so an interrupted grid loses at most one checkpoint
interval.  ``--quick`` is the README's demo: GAN vs Small-GAN, seed 0 at
m = 64 with the table's settings (two runs of 20k steps: 2-3 minutes on one
laptop core); m = 64 is the smallest grid where the paper reports a clear
gap, and the demo's rows are the grid's seed-0 runs at m = 64.

Example
-------
``smallgan train gmm-grid --seeds 3 --out runs/table1``
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Sequence, Union

from smallgan.atomic import atomic_write
from smallgan.experiments.grid import finished_runs, mean_std, write_csv
from smallgan.experiments.gmm import (
    GMMConfig, add_config_arguments, config_from_args, format_result, paper_columns,
    plot_samples, run,
)

__all__ = ["run_grid", "with_kl", "summarize", "format_table", "add_arguments", "run_from_args",
           "QUICK_STEPS", "QUICK_MODES"]

PAPER_MODES = (25, 36, 49, 64, 81, 100)
SAMPLINGS = ("random", "coreset")
#: The demo (``--quick``): one seed, these modes, this many steps.
QUICK_STEPS = 20_000
QUICK_MODES = (64,)

_METRICS = ("recovered_pct", "recovered_hq_pct", "high_quality_pct", "kl_uniform",
            "kl_uniform_hq")


def _run_dir(out: Path, m: int, sampling: str, seed: int) -> Path:
    return out / f"m{m}" / sampling / f"seed{seed}"


def run_grid(base: GMMConfig, out: Union[str, Path], modes: Sequence[int] = PAPER_MODES,
             seeds: Sequence[int] = (0, 1, 2), samplings: Sequence[str] = SAMPLINGS, *,
             resume: bool = False, tensorboard: bool = True, echo=print) -> List[Dict[str, Any]]:
    """Run every (m, seed, sampling) and write ``runs.csv``, ``summary.csv`` and the figure.

    Parameters
    ----------
    base : GMMConfig
        Settings shared by all runs; ``modes``, ``sampling`` and ``seed`` are replaced.
    out : str or Path
        Grid directory.
    modes, seeds, samplings : sequences
        The grid.
    resume : bool
        Reuse finished runs (same config) and continue unfinished ones.
        Without it, an existing run directory is an error.
    tensorboard : bool
        Write TensorBoard events in each run directory.
    echo : callable
        Receives one line per finished run.

    Returns
    -------
    list of dict
        One result per run (as :func:`smallgan.experiments.gmm.run` returns).
    """
    out = Path(out)
    if not modes or not seeds or not samplings:
        raise ValueError("modes, seeds and samplings must each name at least one value")
    for s in samplings:
        if s not in SAMPLINGS:
            raise ValueError(f"samplings must be among {SAMPLINGS}, got {s!r}")
    # seeds outermost: a grid stopped early still has every m for its first seeds
    configs = [dataclasses.replace(base, modes=m, sampling=s, seed=seed)
               for seed in seeds for m in modes for s in samplings]  # validates each
    # every existing run directory is checked before the first run starts
    finished = finished_runs(configs, lambda c: _run_dir(out, c.modes, c.sampling, c.seed), resume)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for cfg in configs:
        run_dir = _run_dir(out, cfg.modes, cfg.sampling, cfg.seed)
        if run_dir in finished:
            result = with_kl(finished[run_dir], run_dir)
        else:
            result = run(cfg, run_dir, resume=resume, tensorboard=tensorboard)
        results.append(result)
        echo(format_result(result) + f"  ({result['wall_s']:.0f} s)")
        # rewritten after every run, so a long grid can be read while it runs
        _write_runs(results, out / "runs.csv")
        _write_summary(summarize(results), out / "summary.csv")
    plot_grid(out, modes, seeds[0], samplings, out / "figure.png")
    return results



def with_kl(result: Dict[str, Any], run_dir: Path) -> Dict[str, Any]:
    """``result`` with the KL balance metrics, computed from ``samples.npz`` when a run
    finished before they were recorded (the same 10,000 samples as its final evaluation)."""
    if "kl_uniform" in result:
        return result
    import numpy as np

    from smallgan.metrics.modes import mode_stats

    with np.load(Path(run_dir) / "samples.npz") as z:
        s = mode_stats(z["samples"], z["means"], float(result["config"]["std"]))
    return {**result, "kl_uniform": s.kl_uniform, "kl_uniform_hq": s.kl_uniform_hq}


def summarize(results: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Mean and std over seeds of each metric, per (m, method), with the paper's values."""
    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["modes"], r["label"]), []).append(r)
    rows = []
    for (m, label), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "GAN")):
        row: Dict[str, Any] = {"modes": m, "method": label, "n_seeds": len(rs),
                               "seeds": " ".join(str(r["seed"]) for r in rs),
                               "steps": rs[0]["steps"]}
        for k in _METRICS:
            row[f"{k}_mean"], row[f"{k}_std"] = mean_std([float(r[k]) for r in rs])
        row.update(paper_columns(m, label))
        rows.append(row)
    return rows


def format_table(rows: Sequence[Dict[str, Any]]) -> str:
    """A plain-text table of :func:`summarize`'s rows next to the paper."""
    head = (f"{'m':>4}  {'method':<10} {'seeds':>5}  {'recovered %':>15} {'paper':>7}  "
            f"{'high-quality %':>15} {'paper':>7}  {'recovered w/ HQ %':>17}  {'KL(modes||unif)':>15}")
    lines = [head, "-" * len(head)]
    for r in rows:
        def cell(k: str) -> str:
            return f"{r[k + '_mean']:6.2f} +- {r[k + '_std']:5.2f}"

        def paper(k: str) -> str:
            return f"{r[k]:7.2f}" if r[k] != "" else f"{'':>7}"

        lines.append(f"{r['modes']:>4}  {r['method']:<10} {r['n_seeds']:>5}  "
                     f"{cell('recovered_pct'):>15} {paper('paper_recovered_pct')}  "
                     f"{cell('high_quality_pct'):>15} {paper('paper_high_quality_pct')}  "
                     f"{cell('recovered_hq_pct'):>17}  "
                     f"{r['kl_uniform_mean']:6.3f} +- {r['kl_uniform_std']:5.3f}")
    return "\n".join(lines)


def _write_runs(results: Sequence[Dict[str, Any]], path: Path) -> None:
    write_csv([{k: r[k] for k in ("modes", "label", "sampling", "seed", "steps", *_METRICS,
                                   "wall_s")} for r in results], path)


def _write_summary(rows: Sequence[Dict[str, Any]], path: Path) -> None:
    write_csv(rows, path)


def plot_grid(out: Path, modes: Sequence[int], seed: int, samplings: Sequence[str],
              path: Path, per_row: int = 3) -> None:
    """Figure: for each m, the samplings' samples of ``seed`` side by side.

    Pairs (GAN | Small-GAN) are laid out ``per_row`` to a row; runs that are
    not finished are left blank.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = {"random": "GAN", "coreset": "Small-GAN"}
    per_row = max(1, min(per_row, len(modes)))
    n_rows = -(-len(modes) // per_row)
    cols = per_row * len(samplings)
    fig, axes = plt.subplots(n_rows, cols, squeeze=False, figsize=(2.7 * cols, 2.95 * n_rows), dpi=120)
    for ax in axes.flat:
        ax.set_axis_off()
    for j, m in enumerate(modes):
        for i, s in enumerate(samplings):
            ax = axes[j // per_row][(j % per_row) * len(samplings) + i]
            run_dir = _run_dir(out, m, s, seed)
            if not (run_dir / "samples.npz").exists() or not (run_dir / "result.json").exists():
                continue
            ax.set_axis_on()
            with np.load(run_dir / "samples.npz") as z:
                samples, means = z["samples"], z["means"]
            r = json.loads((run_dir / "result.json").read_text())
            plot_samples(ax, samples, means, r["config"]["std"],
                         f"{names.get(s, s)}, m = {m}\nmodes {r['recovered_pct']:.0f} %, "
                         f"HQ {r['high_quality_pct']:.1f} %")
            ax.title.set_fontsize(9)
    fig.suptitle(f"10,000 samples per panel (seed {seed}); red circles: 4 std around each mode",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


# ---------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train gmm-grid``."""
    add_config_arguments(parser, single=False)
    parser.add_argument("--modes", type=int, nargs="+", default=list(PAPER_MODES),
                        help="numbers of modes (default: the paper's %(default)s)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="number of seeds, 0 .. N-1 (default %(default)s)")
    parser.add_argument("--first-seed", type=int, default=0, help="default %(default)s")
    parser.add_argument("--samplings", nargs="+", choices=SAMPLINGS, default=list(SAMPLINGS),
                        help="which runs: random (GAN) and/or coreset (Small-GAN); one alone "
                             "for large-batch GAN rows or core-set ablations (default: both)")
    parser.add_argument("--quick", action="store_true",
                        help=f"demo: one seed, m={QUICK_MODES[0]}, {QUICK_STEPS} steps "
                             "(overrides --modes, --seeds and --steps)")


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train gmm-grid``."""
    from smallgan.training.trainer import ResumeError, TrainingInterrupted

    modes, seeds = list(args.modes), list(range(args.first_seed, args.first_seed + args.seeds))
    override: Dict[str, Any] = {}
    if args.quick:
        modes, seeds, override["steps"] = list(QUICK_MODES), [args.first_seed], QUICK_STEPS
    # only mistakes in the options (and a --resume that does not match the
    # checkpoints) are one-line errors with exit 2; a ValueError raised while
    # training (NaN samples, a bug) keeps its traceback
    try:
        if args.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
        # modes and seed are placeholders here: run_grid sets them per run
        base = config_from_args(args, modes=modes[0], seed=seeds[0], **override)
        for m in modes:  # every run's config, before the first run starts
            dataclasses.replace(base, modes=m)
    except (ValueError, TypeError) as exc:
        print(f"smallgan train gmm-grid: {exc}", file=sys.stderr)
        return 2
    try:
        t0 = time.perf_counter()
        results = run_grid(base, args.out, modes, seeds, samplings=args.samplings,
                           resume=args.resume, tensorboard=args.tensorboard)
    except ResumeError as exc:
        print(f"smallgan train gmm-grid: {exc}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        print(f"{exc}; continue the grid with --resume", file=sys.stderr)
        return 130
    print()
    print(format_table(summarize(results)))
    print(f"\n{len(results)} runs, {base.steps} steps each, seeds {seeds}, "
          f"{time.perf_counter() - t0:.0f} s; "
          f"results in {args.out}/summary.csv, figure {args.out}/figure.png")
    return 0
