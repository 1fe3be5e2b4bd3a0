"""The digit image table: GAN vs Small-GAN vs large-batch GAN over seeds, on Stacked MNIST or MNIST-5k.

Runs ``smallgan train stacked-mnist`` or ``smallgan train mnist``
(:mod:`smallgan.experiments.stacked_mnist`, :mod:`smallgan.experiments.mnist`)
once per variant and seed, one after the other in one process.  The
variants (:data:`VARIANTS`) are the rows of issue 14's tables:

- ``GAN-64``: random batches of 64;
- ``Small-GAN-64``: core-set batches of 64, prior factor 4, target factor 8,
  target core-set on the raw pixels randomly projected (``--embedding raw``);
- ``Small-GAN-64-cnn``: the same on the classifier's features, projected
  (``--embedding mnist-cnn``; the ablation of what the target core-set sees);
- ``GAN-256``: random batches of 256 (is Small-GAN at 64 as good as GAN at 256?).

Two more variants, not in the default grid (:data:`DEFAULT_VARIANTS`), split
Small-GAN-64 into its halves (``--variants``):

- ``Small-GAN-64-prior``: the prior core-set only (factor 4); real batches
  of 64 drawn at random (``coreset_target=False``);
- ``Small-GAN-64-target``: the target core-set only (factor 8, projected
  pixels); z drawn i.i.d. (``coreset_prior=False``).

Every other setting is the experiment's default or a flag given to the grid
(``--steps``, ``--eval-every``, ``--ngf``, ``--ndf``, ``--lr-g``, ...), the
same for every run.  Written to ``OUT`` and rewritten after every run, so a
long grid can be read while it runs:

- ``<variant>/seed<S>/``: each run's directory (``result.json``,
  ``metrics.csv`` with one row per evaluation, checkpoints, samples);
- ``runs.csv``: one row per run (final metrics, D's size, seconds);
- ``summary.csv``: per variant, mean and sample std over seeds of every metric;
- ``paired.csv``: per variant and metric, the difference to ``GAN-64`` of
  the same seed (same initial weights, same evaluation noise), mean and std;
- ``table.md``: both as markdown tables (:func:`format_markdown`), with the
  number of seeds in which each variant is better than ``GAN-64``;
- ``curves.csv`` / ``curves.png``: every run's metrics at every evaluation;
  the figure has one panel per metric (modes for Stacked MNIST, KL,
  FD[mnist-cnn], precision, recall, coverage) against steps, one line per
  variant: the mean over seeds with a min-max band;
- ``seeds.png``: every run's final metrics, one panel per metric, one
  column per variant, each seed a marker with the same seed joined across
  variants (:func:`plot_seeds`: the pairing behind paired.csv, readable
  where a grid evaluates only at its last step);
- ``samples.png``: each variant's last fixed-noise sample grid, from its
  first finished seed, side by side (:func:`plot_samples`).

With ``--resume`` finished runs with the same settings are read back, not
rerun, and unfinished ones continue from their checkpoints.  ``--report``
trains nothing: it reads back the finished runs of the grid it names, writes
the tables and the figure from those alone (a grid still running in another
process, or stopped at a session's end, reported as it stands) and lists the
runs that are missing.

Example
-------
``smallgan train image-grid --experiment stacked-mnist --seeds 3 --out runs/stacked-grid``
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from smallgan.atomic import atomic_write
from smallgan.experiments.grid import (finished_runs, format_paired, in_order, mean_curve,
                                       mean_std, paired_differences, write_csv, write_curves)

__all__ = ["VARIANTS", "DEFAULT_VARIANTS", "EXPERIMENTS", "METRICS", "BASELINE", "plan_grid",
           "run_grid", "summarize", "paired", "collect_curves", "plot_curves", "plot_seeds",
           "sample_grids", "plot_samples",
           "format_table", "format_markdown", "add_arguments", "run_from_args"]

#: Variant name -> the config fields it sets (everything else is shared).
VARIANTS: Dict[str, Dict[str, Any]] = {
    "GAN-64": {"sampling": "random", "batch_size": 64},
    "Small-GAN-64": {"sampling": "coreset", "batch_size": 64, "prior_factor": 4,
                     "target_factor": 8, "embedding": "raw"},
    "Small-GAN-64-cnn": {"sampling": "coreset", "batch_size": 64, "prior_factor": 4,
                         "target_factor": 8, "embedding": "mnist-cnn"},
    "GAN-256": {"sampling": "random", "batch_size": 256},
    "Small-GAN-64-prior": {"sampling": "coreset", "batch_size": 64, "prior_factor": 4,
                           "target_factor": 8, "embedding": "raw", "coreset_target": False},
    "Small-GAN-64-target": {"sampling": "coreset", "batch_size": 64, "prior_factor": 4,
                            "target_factor": 8, "embedding": "raw", "coreset_prior": False},
}
#: The rows a grid runs unless ``variants`` says otherwise: issue 14's table.
DEFAULT_VARIANTS = ("GAN-64", "Small-GAN-64", "Small-GAN-64-cnn", "GAN-256")
#: Width of the variant column in printed lines: the longest name.
_NAME_W = max(map(len, VARIANTS))
#: What paired.csv subtracts.
BASELINE = "GAN-64"
#: The experiments a grid can run (``smallgan train`` sub-command -> module).
EXPERIMENTS = {"stacked-mnist": "smallgan.experiments.stacked_mnist",
               "mnist": "smallgan.experiments.mnist"}
#: Metrics of runs.csv, summary.csv and paired.csv (keys of the evaluation's result).
METRICS = ("modes", "kl", "fd_mnist_cnn", "cs_mnist_cnn", "precision", "recall", "density",
           "coverage")
# Settings each variant decides: not grid flags.
_PER_RUN = ("sampling", "batch_size", "prior_factor", "target_factor", "embedding", "seed",
            "coreset_prior", "coreset_target")


def _module(experiment: str) -> Any:
    import importlib

    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {sorted(EXPERIMENTS)}, got {experiment!r}")
    return importlib.import_module(EXPERIMENTS[experiment])


def _config_class(experiment: str) -> type:
    mod = _module(experiment)
    return mod.StackedMNISTConfig if experiment == "stacked-mnist" else mod.MNISTConfig


def _run_dir(out: Path, variant: str, seed: int) -> Path:
    return out / variant / f"seed{seed}"


def _run_row(variant: str, result: Dict[str, Any]) -> Dict[str, Any]:
    cfg, m = result["config"], result["metrics"]
    row: Dict[str, Any] = {"variant": variant, "label": result["label"],
                           "sampling": cfg["sampling"], "batch_size": cfg["batch_size"],
                           "embedding": cfg["embedding"] if cfg["sampling"] == "coreset" else "",
                           "seed": cfg["seed"], "steps": result["steps"]}
    row.update({k: m.get(k, "") for k in METRICS})
    row.update({"n_fake": m.get("fd_n_fake", ""), "n_real": m.get("fd_n_real", ""),
                "d_parameters": result.get("d_parameters", ""), "wall_s": result["wall_s"]})
    return row


def _in_order(variants: Any) -> List[str]:
    """Distinct variant names in :data:`VARIANTS` order, unknown ones after (by name)."""
    return in_order(variants, tuple(VARIANTS))


def summarize(rows: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Mean and sample std over seeds of every metric, per variant.

    ``rows`` are runs.csv rows (``variant``, ``seed``, ``steps``, the
    :data:`METRICS`); variants come in :data:`VARIANTS` order, unknown ones
    after.  Runs without an evaluation (empty metrics) are left out of the
    means; ``n_seeds`` counts the runs that have them.
    """
    groups: Dict[str, List[Dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["variant"], []).append(r)
    out = []
    for variant in _in_order(groups):
        rs = [r for r in groups[variant] if r.get(METRICS[0], "") != ""]
        if not rs:
            continue
        row: Dict[str, Any] = {"variant": variant, "n_seeds": len(rs),
                               "seeds": " ".join(str(r["seed"]) for r in rs),
                               "steps": rs[0]["steps"]}
        for k in METRICS:
            row[f"{k}_mean"], row[f"{k}_std"] = mean_std([float(r[k]) for r in rs])
        out.append(row)
    return out


def paired(rows: Sequence[Dict[str, Any]], baseline: str = BASELINE) -> List[Dict[str, Any]]:
    """Per variant and metric: ``variant - baseline`` on the seeds that have both runs.

    Rows ``variant, metric, n_pairs, seeds, diff_mean, diff_std`` (sample std
    of the per-seed differences; 0 for one pair), ``n_positive`` /
    ``n_negative`` (pairs with a difference above / below 0), variants in :data:`VARIANTS`
    order; none for the baseline itself or a variant without a shared seed.
    """
    return paired_differences(rows, "variant", baseline, METRICS, tuple(VARIANTS))


#: Columns of :func:`format_markdown`: metric, header, format, whether higher is better.
_MD_COLS = (("modes", "modes", "{:.1f}", True), ("kl", "KL", "{:.3f}", False),
            ("fd_mnist_cnn", "FD[mnist-cnn]", "{:.1f}", False),
            ("cs_mnist_cnn", "CS[mnist-cnn]", "{:.2f}", True),
            ("precision", "precision", "{:.3f}", True), ("recall", "recall", "{:.3f}", True),
            ("density", "density", "{:.3f}", True), ("coverage", "coverage", "{:.3f}", True))


def format_markdown(summary: Sequence[Dict[str, Any]], diffs: Sequence[Dict[str, Any]],
                    baseline: str = BASELINE) -> str:
    """Markdown tables of a grid: :func:`summarize`'s rows (mean +- std over
    seeds), then :func:`paired`'s differences to ``baseline`` (mean +- std
    over seeds, and in how many seeds the variant is better: larger where
    higher is better, smaller for KL and FD)."""
    cols = [c for c in _MD_COLS if any(f"{c[0]}_mean" in r for r in summary)]
    head = ["variant", "seeds", "steps"] + [name for _, name, _, _ in cols]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in summary:
        cells = [r["variant"], str(r["n_seeds"]), str(r["steps"])]
        cells += [f"{fmt.format(float(r[k + '_mean']))} ± {fmt.format(float(r[k + '_std']))}"
                  for k, _, fmt, _ in cols]
        lines.append("| " + " | ".join(cells) + " |")
    paired_lines = format_paired(diffs, "variant", baseline, cols)
    if paired_lines:
        lines += [""] + paired_lines
    return "\n".join(lines)


def collect_curves(runs: Sequence[tuple], key: str = "variant",
                   metrics: Sequence[str] = METRICS) -> List[Dict[str, Any]]:
    """One row per (run, evaluation) from each run's ``metrics.csv``.

    ``runs`` holds ``(name, seed, run_dir)``, the name stored under ``key``;
    each row has the ``metrics`` the evaluation has; runs without a
    ``metrics.csv`` (no evaluation yet) give no rows.
    """
    rows: List[Dict[str, Any]] = []
    for name, seed, run_dir in runs:
        path = Path(run_dir) / "metrics.csv"
        if not path.exists():
            continue
        with open(path, newline="") as f:
            for m in csv.DictReader(f):
                row: Dict[str, Any] = {key: name, "seed": int(seed), "step": int(m["step"])}
                row.update({k: float(m[k]) for k in metrics if m.get(k, "") != ""})
                rows.append(row)
    return rows


#: Panel title of each metric in the figures.
_LABELS = {"modes": "modes covered", "kl": "KL(modes || uniform)",
           "fd_mnist_cnn": "FD[mnist-cnn] (not an FID)",
           "cs_mnist_cnn": "CS[mnist-cnn] (not an IS)",
           "precision": "precision", "recall": "recall", "density": "density",
           "coverage": "coverage"}
#: The learning-curve figure's metrics (the seed figure has all of METRICS).
_CURVE_METRICS = ("modes", "kl", "fd_mnist_cnn", "precision", "recall", "coverage")


def _panel_figure(n_panels: int, cols: int, width: float, height: float):
    """``(plt, fig, axes)``: a grid of ``n_panels`` axes, ``cols`` wide, the rest hidden."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n_rows = -(-n_panels // cols)
    fig, axes = plt.subplots(n_rows, cols, figsize=(width * cols, height * n_rows),
                             squeeze=False)
    for ax in axes.flat[n_panels:]:
        ax.set_axis_off()
    return plt, fig, axes


def _save_figure(plt: Any, fig: Any, path: Union[str, Path], title: str) -> Path:
    """Title, lay out and write ``fig`` atomically as PNG; close it."""
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    atomic_write(Path(path), lambda f: fig.savefig(f, format="png", dpi=110))
    plt.close(fig)
    return Path(path)


def plot_curves(rows: Sequence[Dict[str, Any]], path: Union[str, Path], *,
                modes: bool = True, title: str = "", key: str = "variant",
                order: Sequence[str] = tuple(VARIANTS),
                metrics: Sequence[str] = _CURVE_METRICS,
                xlabel: str = "generator steps") -> Path:
    """The learning-curve figure of the module docstring, written atomically.

    ``modes=False`` leaves out the modes panel (MNIST's 10 are all covered
    by any generator that is not collapsed).  One line per value of
    ``row[key]``, in ``order`` (others after, by name), one panel per entry
    of ``metrics`` (those of :data:`_LABELS`).
    """
    panels = [k for k in metrics if modes or k != "modes"]
    names = in_order((r[key] for r in rows), order)
    colours = dict(zip(VARIANTS, ("tab:blue", "tab:orange", "tab:green", "tab:purple",
                                  "tab:red", "tab:brown")))
    plt, fig, axes = _panel_figure(len(panels), 3, 4.2, 3.2)
    for ax, metric in zip(axes.flat, panels):
        for i, name in enumerate(names):
            curve = mean_curve([r for r in rows if r[key] == name and metric in r],
                               "step", metric)
            if not curve:
                continue
            xs, ys, lo, hi, n = curve
            colour = colours.get(name, f"C{i % 10}")
            ax.plot(xs, ys, "-o", ms=2.5, color=colour, lw=1.4,
                    label=f"{name} ({n} seed{'s' if n > 1 else ''})")
            if n > 1:
                ax.fill_between(xs, lo, hi, color=colour, alpha=0.15, lw=0)
        ax.set_title(_LABELS[metric], fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.grid(alpha=0.3)
    axes.flat[0].legend(fontsize=7)
    return _save_figure(plt, fig, path, title)


def plot_seeds(rows: Sequence[Dict[str, Any]], path: Union[str, Path], *,
               modes: bool = True, title: str = "") -> Optional[Path]:
    """Every run's final metrics by variant, seeds joined across variants.

    ``rows`` are runs.csv's rows (:func:`_run_row`); metrics a run lacks
    (no evaluation) are left out.  Writes ``path`` atomically and returns it,
    or returns None (writing nothing) without a metric to plot.
    """
    panels = [k for k in METRICS if (modes or k != "modes")
              and any(r.get(k, "") != "" for r in rows)]
    if not panels:
        return None
    variants = _in_order(r["variant"] for r in rows)
    x_of = {v: i for i, v in enumerate(variants)}
    seeds = sorted({int(r["seed"]) for r in rows})
    plt, fig, axes = _panel_figure(len(panels), 4, 3.3, 3.0)
    for ax, key in zip(axes.flat, panels):
        for i, seed in enumerate(seeds):
            pts = sorted((x_of[r["variant"]], float(r[key])) for r in rows
                         if int(r["seed"]) == seed and r.get(key, "") != "")
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, "-", color="0.6", lw=0.8, zorder=1)
                ax.scatter(xs, ys, s=18, marker="osD^v<>"[i % 7], color=f"C{i % 10}", zorder=2,
                           label=f"seed {seed}")
        ax.set_xticks(range(len(variants)))
        ax.set_xticklabels(variants, rotation=30, ha="right", fontsize=7)
        ax.set_xlim(-0.5, len(variants) - 0.5)
        ax.set_title(_LABELS[key], fontsize=9)
        ax.grid(alpha=0.3, axis="y")
    axes.flat[0].legend(fontsize=7)
    return _save_figure(plt, fig, path, title)


def _last_samples(run_dir: Path) -> Optional[Path]:
    """The sample grid of a run's last step (``samples/step_*.png``), or None."""
    grids = sorted((Path(run_dir) / "samples").glob("step_*.png"))
    return grids[-1] if grids else None


def sample_grids(runs: Sequence[tuple]) -> Dict[str, tuple]:
    """Variant -> ``(seed, path)`` of the last sample grid of its lowest seed that has one.

    ``runs`` holds ``(variant, seed, run_dir)``; variants in :data:`VARIANTS`
    order, runs without a grid left out.
    """
    rank = {v: i for i, v in enumerate(_in_order(r[0] for r in runs))}
    first: Dict[str, tuple] = {}
    for variant, seed, run_dir in sorted(runs, key=lambda r: (rank[r[0]], r[1])):
        grid = _last_samples(run_dir)
        if grid is not None and variant not in first:
            first[variant] = (seed, grid)
    return first


def plot_samples(runs: Sequence[tuple], path: Union[str, Path], *,
                 title: str = "") -> Optional[Path]:
    """The grids of :func:`sample_grids` side by side, titled by variant, seed and step.

    Writes ``path`` atomically and returns it, or returns None (writing
    nothing) if no run has a grid.
    """
    first = sample_grids(runs)
    if not first:
        return None
    import matplotlib.image as mpimg

    plt, fig, axes = _panel_figure(len(first), len(first), 3.6, 3.9)
    for ax, (variant, (seed, grid)) in zip(axes.flat, first.items()):
        ax.imshow(mpimg.imread(grid))
        step = int(grid.stem.split("_")[-1])
        ax.set_title(f"{variant}, seed {seed}, step {step}", fontsize=9)
        ax.set_axis_off()
    return _save_figure(plt, fig, path, title)


def format_table(rows: Sequence[Dict[str, Any]]) -> str:
    """Plain-text table of :func:`summarize`'s rows (mean +- std over seeds)."""
    cols = [("modes", "modes", "{:.1f}"), ("kl", "KL", "{:.3f}"),
            ("fd_mnist_cnn", "FD[mnist-cnn]", "{:.2f}"), ("cs_mnist_cnn", "CS[mnist-cnn]", "{:.2f}"),
            ("precision", "P", "{:.3f}"), ("recall", "R", "{:.3f}"), ("density", "D", "{:.3f}"),
            ("coverage", "C", "{:.3f}")]
    head = (f"{'variant':<{_NAME_W}} {'seeds':>5}  "
            + "  ".join(f"{name:>17}" for _, name, _ in cols))
    lines = [head, "-" * len(head)]
    for r in rows:
        cells = [f"{fmt.format(r[k + '_mean'])} +- {fmt.format(r[k + '_std'])}"
                 for k, _, fmt in cols]
        lines.append(f"{r['variant']:<{_NAME_W}} {r['n_seeds']:>5}  "
                     + "  ".join(f"{c:>17}" for c in cells))
    return "\n".join(lines)


def plan_grid(experiment: str, out: Union[str, Path], *,
              variants: Sequence[str] = DEFAULT_VARIANTS, seeds: Sequence[int] = (0, 1, 2),
              settings: Optional[Dict[str, Any]] = None) -> List[tuple]:
    """The grid's runs, ``(variant, seed, config, run_dir)``, seeds outermost
    (a grid stopped early has every variant for its first seeds).  Builds,
    and so checks, every config; touches no file.  Arguments as :func:`run_grid`."""
    cls = _config_class(experiment)
    settings = dict(settings or {})
    if not variants or not seeds:
        raise ValueError("variants and seeds must each name at least one value")
    bad = [v for v in variants if v not in VARIANTS]
    if bad:
        raise ValueError(f"variants must be among {list(VARIANTS)}, got {bad}")
    if len(set(variants)) != len(variants) or len(set(seeds)) != len(seeds):
        raise ValueError(f"variants and seeds must not repeat, got {list(variants)} and "
                         f"{list(seeds)}")
    fixed = sorted(set(settings) & set(_PER_RUN))
    if fixed:
        raise ValueError(f"settings may not set {fixed}: each variant and seed sets them")
    return [(v, seed, cls(**{**settings, **VARIANTS[v], "seed": seed}),
             _run_dir(Path(out), v, seed)) for seed in seeds for v in variants]


def run_grid(experiment: str, out: Union[str, Path], *, variants: Sequence[str] = DEFAULT_VARIANTS,
             seeds: Sequence[int] = (0, 1, 2), settings: Optional[Dict[str, Any]] = None,
             resume: bool = False, tensorboard: bool = True, report: bool = False,
             echo: Callable[[str], Any] = print) -> List[Dict[str, Any]]:
    """Run every (seed, variant) and write the CSVs and the figure.

    Parameters
    ----------
    experiment : {"stacked-mnist", "mnist"}
    out : path
        Grid directory.
    variants : sequence of str
        Names from :data:`VARIANTS` (default :data:`DEFAULT_VARIANTS`).
    seeds : sequence of int
        Training seeds.
    settings : dict, optional
        Config fields shared by every run (``steps``, ``ngf``, ...); the
        fields a variant sets (and ``seed``) are refused.
    resume : bool
        Read back finished runs (same config), continue unfinished ones.
        Without it, an existing run directory is an error.
    tensorboard : bool
    report : bool
        Train nothing: read back the finished runs (same config; implies
        ``resume``), skip the others (one line each to ``echo``) and write
        the tables and the figure from the finished ones.  Writes nothing if
        no run is finished.
    echo : callable
        Receives one line per finished run.

    Returns
    -------
    list of dict
        runs.csv's rows, in run order.

    Every config is built (and so checked) and every existing run directory
    is checked before the first run starts.
    """
    from smallgan.experiments.digit_gan import format_result

    mod = _module(experiment)
    out = Path(out)
    runs = plan_grid(experiment, out, variants=variants, seeds=seeds, settings=settings)
    dirs = {id(cfg): run_dir for _, _, cfg, run_dir in runs}
    finished = finished_runs([cfg for _, _, cfg, _ in runs], lambda c: dirs[id(c)],
                             resume or report)
    if report:
        missing = [(v, seed) for v, seed, _, d in runs if d not in finished]
        for v, seed in missing:
            echo(f"{v:<{_NAME_W}} seed {seed}: not finished, left out of the report")
        runs = [r for r in runs if r[3] in finished]
        if not runs:
            return []
    out.mkdir(parents=True, exist_ok=True)
    rows: List[Dict[str, Any]] = []
    done: List[tuple] = []
    data = "Stacked MNIST-5k (1,000 modes)" if experiment == "stacked-mnist" else "MNIST-5k"
    for variant, seed, cfg, run_dir in runs:
        title = (f"{data}: mean over seeds, min-max band; {cfg.fid_fake} generated vs "
                 f"{cfg.fid_real} real images, mnist-cnn features, PRDC k={cfg.nearest_k}")
        result = finished.get(run_dir) or mod.run(cfg, run_dir, resume=resume,
                                                   tensorboard=tensorboard)
        rows.append(_run_row(variant, result))
        done.append((variant, seed, run_dir))
        echo(f"{variant:<{_NAME_W}} seed {seed}: {format_result(result)}")
        write_csv(rows, out / "runs.csv")
        summary = summarize(rows)
        if summary:
            write_csv(summary, out / "summary.csv")
        diffs = paired(rows)
        if diffs:
            write_csv(diffs, out / "paired.csv")
        if summary:
            text = format_markdown(summary, diffs) + "\n"
            atomic_write(out / "table.md", lambda f: f.write(text), text=True)
        curves = collect_curves(done)
        if curves:
            write_curves(curves, out / "curves",
                         lambda r, p: plot_curves(r, p, modes=experiment == "stacked-mnist",
                                                  title=title),
                         ("variant", "seed"))
        plot_seeds(rows, out / "seeds.png", modes=experiment == "stacked-mnist",
                   title=f"{data}: final metrics of every run, seeds joined across variants")
        plot_samples(done, out / "samples.png",
                     title=f"{data}: fixed-noise samples at the last step")
    return rows


# ---------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train image-grid``."""
    from smallgan.experiments.digit_gan import DigitGANConfig, add_digit_arguments

    parser.add_argument("--experiment", choices=tuple(EXPERIMENTS), required=True,
                        help="Stacked MNIST (1,000 modes) or MNIST-5k (10 modes)")
    parser.add_argument("--variants", nargs="+", choices=tuple(VARIANTS),
                        default=list(DEFAULT_VARIANTS),
                        help="rows to run (default %(default)s; Small-GAN-64-prior and "
                             "Small-GAN-64-target split Small-GAN-64 into its prior and its "
                             "target core-set)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="number of seeds, first-seed .. first-seed+N-1 (default %(default)s)")
    parser.add_argument("--first-seed", dest="first_seed", type=int, default=0,
                        help="default %(default)s")
    parser.add_argument("--eval-every", dest="fid_every", type=int, default=None,
                        help="steps between evaluations, same as --fid-every (default: the "
                             "experiment's)")
    parser.add_argument("--report", action="store_true",
                        help="train nothing: write the tables and the figure from the runs "
                             "already finished, list the missing ones")
    parser.add_argument("--n-train", dest="n_train", type=int, default=None,
                        help="stacked-mnist only: stacked training images (default 128000)")
    add_digit_arguments(parser, DigitGANConfig, "seed of the data draws", skip=_PER_RUN,
                        default_note="the experiment's")


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train image-grid``."""
    from smallgan.training.trainer import ResumeError, TrainingInterrupted

    grid_only = {"experiment", "variants", "seeds", "first_seed", "out", "resume", "progress",
                 "tensorboard", "report", "func", "command"}
    try:
        if args.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
        if args.first_seed < 0:
            raise ValueError(f"--first-seed must be >= 0, got {args.first_seed}")
        if args.experiment != "stacked-mnist" and args.n_train is not None:
            raise ValueError(f"--n-train applies to --experiment stacked-mnist only, "
                             f"not {args.experiment}")
        names = {f.name for f in dataclasses.fields(_config_class(args.experiment))}
        settings = {k: v for k, v in vars(args).items()
                    if k not in grid_only and k in names and v is not None}
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        # every run's config, before the first run starts
        plan_grid(args.experiment, args.out, variants=args.variants, seeds=seeds,
                  settings=settings)
    except (ValueError, TypeError) as exc:
        print(f"smallgan train image-grid: {exc}", file=sys.stderr)
        return 2
    # only mistakes in the options (above) and a --resume that does not
    # match the finished runs are one-line errors with exit 2; a ValueError
    # raised while training (NaN samples, a bug) keeps its traceback
    t0 = time.perf_counter()
    try:
        rows = run_grid(args.experiment, args.out, variants=args.variants, seeds=seeds,
                        settings=settings, resume=args.resume, tensorboard=args.tensorboard,
                        report=args.report)
    except ResumeError as exc:
        print(f"smallgan train image-grid: {exc}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        print(f"{exc}; continue the grid with --resume", file=sys.stderr)
        return 130
    if args.report and not rows:
        print(f"smallgan train image-grid: no finished run of this grid in {args.out}",
              file=sys.stderr)
        return 1
    summary = summarize(rows)
    print()
    if summary:
        print(format_table(summary))
    print(f"\n{len(rows)} runs ({args.experiment}), seeds {seeds}, "
          f"{time.perf_counter() - t0:.0f} s; results in {args.out}/summary.csv, "
          f"paired.csv, curves.png")
    return 0
