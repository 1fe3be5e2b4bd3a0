"""Mode dropping on 2-D grid mixtures of Gaussians: the paper's Table 1.

One run trains a GAN (``sampling="random"``) or a Small-GAN
(``sampling="coreset"``) on a mixture of ``m`` Gaussians and reports, on
10,000 generated samples, the percentage of modes recovered and of
high-quality samples (:mod:`smallgan.metrics.modes`).  The grid over every
``m`` and several seeds is :mod:`smallgan.experiments.gmm_grid`.

Hyper-parameters (identical for GAN and Small-GAN; only ``sampling`` differs)
------------------------------------------------------------------------------
From the papers:

- data: ``m`` in {25, 36, 49, 64, 81, 100} equal-weight isotropic Gaussians,
  std 0.05, means on a ``sqrt(m) x sqrt(m)`` grid with spacing 2 centred on
  the origin (Small-GAN Sec. 4.1 -> Azadi et al. 2018 (DRS) -> PacGAN);
- networks: "4-layer" fully connected ReLU G and D (DRS, Small-GAN), read as
  four linear layers; standard non-saturating GAN loss (paper eqs. 1-2);
- metrics: 10,000 samples, nearest mode, high quality within 4 std (DRS);
- core-sets: prior factor 4, target factor 8, on the raw 2-D points (for
  2-D data the points are their own embedding; Small-GAN Sec. 3).

Our choices where the papers are silent (documented in the README too):

- ``hidden=128``: width of the three hidden layers of both nets (PacGAN uses
  400/200; 128 keeps a run CPU-cheap);
- ``scale_data=True``: G's output is multiplied and D's input divided by the
  grid's half-width (9 at m = 100), a fixed change of units so that both
  nets work on data in [-1, 1], the range PyTorch's initialisation assumes
  (see :class:`smallgan.models.mlp.MLPDiscriminator`);
- ``z_dim=2``, prior uniform on ``[-1, 1]^2`` (PacGAN uses a 2-D prior;
  uniform is the paper's prior for the core-set experiments);
- Adam with ``betas=(0.5, 0.999)`` (DCGAN) and ``lr=3e-4`` for both nets
  (``lr_g``, ``lr_d``).  Why not PacGAN's 1e-4: we measured that D then
  stays at chance (loss 2 log 2) and G spreads its samples uniformly over
  the grid's square for 20k steps (high-quality fraction about 3 %, the
  area the 4-std disks cover); training is too slow for a CPU budget.  Why
  not a faster D: with ``lr_d=1e-3`` (``lr_g`` 1e-4 or 3e-4) G piles its
  mass onto the four corner modes (m = 25: 80-88 % recovered, but only
  through stray samples).  At m = 25, 10k steps, seed 0: ``lr_d=3e-4`` with
  ``lr_g=1e-4`` reached 100 % / 62.5 % and with ``lr_g=3e-4`` 100 % / 75.2 %
  (recovered / high quality).  These GAN-side probes are the only tuning
  done, and the Small-GAN runs use the same values;
- ``batch_size=64`` (the paper's default k), ``n_dis=1``;
- ``steps=20000`` generator updates: 1-2.5 minutes per run on one CPU core
  (3.5-7 ms per step, depending on load; m does not change the cost).  The
  papers train longer; our numbers are for this budget;
- a fixed training set of ``dataset_size=100_000`` points drawn once per seed
  (1,000 per mode at m = 100): the target core-set selects rows of a dataset,
  and the GAN draws its random batches from the same rows;
- ``seed`` seeds the data, the model initialisation (identical for the GAN
  and the Small-GAN run of a seed) and the samplers;
- ``threads=1`` torch thread and ``prefetch=0``: selection runs in the
  training thread.  Here the GAN step itself runs on the same CPU, so a
  background selection competes with it instead of overlapping it (measured
  on a loaded 2-core machine: 5.0 ms per step with prefetch 2 against 3.1 ms
  with prefetch 0; the GAN's step is 2.5 ms); on a GPU use the default 2;
- evaluation on 10,000 samples from plain (not core-set) prior draws, every
  ``steps // 10`` steps and at the end; the final numbers are reported.

What the target core-set does to 2-D batches
---------------------------------------------
Measured over 300 batches (k = 64 of 512 candidates, seed 0): a core-set
batch covers more modes than a random one (m = 64: 64.0 distinct modes
against 40.6; m = 100: 64.0 against 47.3), but greedy k-center picks the
far side of each Gaussian, so the batch's spread around its modes grows
(per-axis std 0.050 for random batches; 0.055 for core-sets at m = 64 and
100; 0.075 at m = 25, where k > m and the later picks are each mode's
outliers).  D then sees wider modes than the data has, which can cost
Small-GAN high-quality samples when k > m.

Example
-------
>>> cfg = GMMConfig(modes=25, steps=200, sampling="coreset")   # doctest: +SKIP
>>> run(cfg, "runs/gmm25")["high_quality_pct"]                  # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Tuple, Union

from smallgan.atomic import atomic_write

__all__ = ["GMMConfig", "run", "add_arguments", "run_from_args", "plot_samples", "PAPER_TABLE1",
           "paper_columns"]

#: Paper Table 1: m -> (recovered GAN, recovered Small-GAN, high-quality GAN, high-quality Small-GAN), %.
PAPER_TABLE1: Dict[int, Tuple[float, float, float, float]] = {
    25: (100.0, 100.0, 95.76, 98.9),
    36: (100.0, 100.0, 92.73, 95.34),
    49: (98.12, 99.85, 84.28, 88.1),
    64: (96.13, 99.01, 68.81, 82.11),
    81: (92.59, 98.84, 49.74, 71.75),
    100: (90.67, 97.33, 23.31, 49.87),
}


def paper_columns(m: int, method: str) -> Dict[str, Any]:
    """The paper's Table 1 values for ``method`` ("GAN" or "Small-GAN") at ``m``, as table
    columns; empty strings where the paper has none (other m, ablations, large batches)."""
    paper = PAPER_TABLE1.get(m)
    i = {"GAN": 0, "Small-GAN": 1}.get(method)
    if paper is None or i is None:
        return {"paper_recovered_pct": "", "paper_high_quality_pct": ""}
    return {"paper_recovered_pct": paper[i], "paper_high_quality_pct": paper[2 + i]}


@dataclass
class GMMConfig:
    """One mixture-of-Gaussians run; the defaults are our documented choice.

    See the module docstring for where each value comes from.
    """

    modes: int = 100
    sampling: str = "coreset"
    steps: int = 20_000
    batch_size: int = 64
    hidden: int = 128
    layers: int = 4
    scale_data: bool = True
    z_dim: int = 2
    prior: str = "uniform"
    loss: str = "ns"
    n_dis: int = 1
    lr_g: float = 3e-4
    lr_d: float = 3e-4
    betas: Tuple[float, float] = (0.5, 0.999)
    prior_factor: int = 4
    target_factor: int = 8
    coreset_prior: bool = True
    coreset_target: bool = True
    std: float = 0.05
    spacing: float = 2.0
    dataset_size: int = 100_000
    n_eval: int = 10_000
    eval_every: int = 0  # 0: steps // 10
    sample_every: int = 0  # 0: steps // 4
    checkpoint_every: int = 0  # 0: steps // 4
    seed: int = 0
    threads: int = 1
    prefetch: int = 0
    device: str = "cpu"

    def __post_init__(self) -> None:
        from smallgan.data.gmm import grid_means

        grid_means(self.modes, self.spacing)  # validates modes and spacing
        for name in ("hidden", "layers", "z_dim", "n_eval", "threads"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("eval_every", "sample_every", "checkpoint_every"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if not (isinstance(self.std, (int, float)) and self.std > 0 and math.isfinite(self.std)):
            raise ValueError(f"std must be a positive finite number, got {self.std!r}")
        if isinstance(self.dataset_size, bool) or not isinstance(self.dataset_size, int) \
                or self.dataset_size < 1:
            raise ValueError(f"dataset_size must be a positive integer, got {self.dataset_size!r}")
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        self.train_config()  # validates the rest (steps, factors, loss, ...)
        if self.sampling == "coreset" and self.coreset_target \
                and self.dataset_size < self.target_factor * self.batch_size:
            raise ValueError(f"dataset_size={self.dataset_size} is smaller than "
                             f"target_factor * batch_size = {self.target_factor * self.batch_size}")

    @property
    def label(self) -> str:
        """``GAN`` or ``Small-GAN`` (or the ablation's name)."""
        from smallgan.training.trainer import run_label

        return run_label(self.sampling, self.coreset_prior, self.coreset_target)

    def train_config(self, progress: bool = False, tensorboard: bool = True):
        """The :class:`~smallgan.training.trainer.TrainConfig` of this run."""
        from smallgan.training.trainer import TrainConfig

        every = max(self.steps // 10, 1)
        quarter = max(self.steps // 4, 1)
        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, z_dim=self.z_dim, prior=self.prior,
            loss=self.loss, n_dis=self.n_dis, optimizer="adam", lr_g=self.lr_g, lr_d=self.lr_d,
            betas_g=self.betas, betas_d=self.betas, sampling=self.sampling,
            prior_factor=self.prior_factor, target_factor=self.target_factor,
            coreset_prior=self.coreset_prior, coreset_target=self.coreset_target,
            device=self.device, seed=self.seed, log_every=max(self.steps // 100, 1),
            eval_every=self.eval_every or every, sample_every=self.sample_every or quarter,
            checkpoint_every=self.checkpoint_every or quarter, plot_samples=2000,
            progress=progress, tensorboard=tensorboard, prefetch=self.prefetch)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-friendly copy."""
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


def plot_samples(ax, samples, means, std: float, title: str = "", hq: float = 4.0) -> None:
    """Scatter ``samples`` (n, 2) over the mode grid on a matplotlib axis.

    Modes are drawn as circles of radius ``hq * std`` (the high-quality zone).
    """
    from matplotlib.patches import Circle

    for mx, my in means:
        ax.add_patch(Circle((mx, my), hq * std, fill=False, lw=0.4, color="tab:red"))
    ax.scatter(samples[:, 0], samples[:, 1], s=0.5, alpha=0.5, color="tab:blue", lw=0)
    lim = float(abs(means).max()) + 1.5
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)


def _scatter_png(samples, means, std: float, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    plot_samples(ax, samples, means, std, title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def run(config: GMMConfig, out_dir: Union[str, Path], *, resume: bool = False,
        progress: bool = False, tensorboard: bool = True) -> Dict[str, Any]:
    """Train and evaluate one run; returns (and writes ``result.json``) its metrics.

    Parameters
    ----------
    config : GMMConfig
    out_dir : str or Path
        Run directory: the trainer's artifacts plus ``result.json`` (metrics,
        config, wall time) and ``samples.npz`` (the 10,000 evaluation samples).
    resume : bool
        Continue from the run directory's checkpoint.
    progress, tensorboard : bool
        Progress bar; TensorBoard events.

    Raises
    ------
    smallgan.training.trainer.TrainingInterrupted
        On Ctrl-C, after writing a checkpoint.
    """
    import numpy as np
    import torch

    from smallgan.data.gmm import GMMGrid
    from smallgan.data.points import PointDataset, collate_rows
    from smallgan.metrics.modes import mode_stats
    from smallgan.models.mlp import MLPDiscriminator, MLPGenerator
    from smallgan.training.trainer import RealData, Trainer

    if not isinstance(config, GMMConfig):
        raise TypeError(f"config must be a GMMConfig, got {type(config).__name__}")
    out = Path(out_dir)
    torch.set_num_threads(config.threads)
    grid = GMMGrid(config.modes, std=config.std, spacing=config.spacing)
    # data and model init depend only on the seed, so the GAN and Small-GAN
    # runs of a seed start from the same weights and the same dataset
    ss = np.random.SeedSequence([config.seed, config.modes])
    data_seed, init_seed = (int(s.generate_state(1)[0]) for s in ss.spawn(2))
    points, _ = grid.sample(config.dataset_size, seed=data_seed)
    data = RealData(PointDataset(torch.from_numpy(points)), embeddings=points,
                    collate_fn=collate_rows)
    torch.manual_seed(init_seed)
    # the nets work in unit-scale coordinates (see MLPDiscriminator): G's output
    # is multiplied and D's input divided by the grid's half-width
    half_width = float(abs(grid.means).max())  # 0 for a single mode
    scale = half_width if config.scale_data and half_width > 0 else 1.0
    g = MLPGenerator(config.z_dim, config.hidden, 2, config.layers, scale=scale)
    d = MLPDiscriminator(2, config.hidden, config.layers, scale=scale)

    def evaluate(trainer: Trainer, step: int) -> Dict[str, float]:
        x = trainer.sample(config.n_eval, seed=config.seed).numpy()
        return mode_stats(x, grid.means, grid.std).as_dict()

    def plot(samples: torch.Tensor, path: Path) -> None:
        _scatter_png(samples.numpy(), grid.means, grid.std, path,
                     f"{config.label}, m={config.modes}, {path.stem}")

    trainer = Trainer(config.train_config(progress=progress, tensorboard=tensorboard), g, d,
                      data, out, eval_fn=evaluate, plot_fn=plot,
                      extra_config={"gmm": config.to_dict()}, resume=resume)
    t0 = time.perf_counter()
    metrics = trainer.fit()
    wall = time.perf_counter() - t0
    samples = trainer.sample(config.n_eval, seed=config.seed).numpy()
    atomic_write(out / "samples.npz", lambda f: np.savez_compressed(f, samples=samples, means=grid.means))
    result = {"label": config.label, "modes": config.modes, "sampling": config.sampling,
              "seed": config.seed, "steps": config.steps, "wall_s": wall,
              **{k: metrics[k] for k in ("recovered_pct", "recovered_hq_pct",
                                         "high_quality_pct", "kl_uniform", "kl_uniform_hq")},
              "config": config.to_dict()}
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(out / "result.json", lambda f: f.write(text), text=True)
    return result


# ---------------------------------------------------------------------- CLI


def add_config_arguments(parser: argparse.ArgumentParser, *, single: bool = True) -> None:
    """Options shared by ``train gmm`` and ``train gmm-grid`` (defaults: GMMConfig)."""
    # field defaults, without constructing a config (that would import torch
    # for `smallgan --help`)
    d = argparse.Namespace(**{f.name: f.default for f in dataclasses.fields(GMMConfig)})
    if single:
        parser.add_argument("--modes", type=int, default=d.modes,
                            help=f"number of Gaussians, a perfect square (default {d.modes})")
        parser.add_argument("--sampling", choices=("random", "coreset"), default=d.sampling,
                            help="random = GAN, coreset = Small-GAN (default %(default)s)")
        parser.add_argument("--seed", type=int, default=d.seed, help="default %(default)s")
    parser.add_argument("--no-coreset-prior", dest="coreset_prior", action="store_false",
                        help="ablation: plain prior draws in coreset mode (target core-set only)")
    parser.add_argument("--no-coreset-target", dest="coreset_target", action="store_false",
                        help="ablation: plain real batches in coreset mode (prior core-set only)")
    parser.add_argument("--steps", type=int, default=d.steps,
                        help="generator updates per run (default %(default)s)")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="default %(default)s")
    parser.add_argument("--hidden", type=int, default=d.hidden,
                        help="hidden width of G and D (default %(default)s)")
    parser.add_argument("--lr-g", type=float, default=d.lr_g, help="G's Adam lr (default %(default)s)")
    parser.add_argument("--lr-d", type=float, default=d.lr_d, help="D's Adam lr (default %(default)s)")
    parser.add_argument("--loss", choices=("ns", "hinge", "lsgan"), default=d.loss,
                        help="default %(default)s")
    parser.add_argument("--prior-factor", type=int, default=d.prior_factor, help="default %(default)s")
    parser.add_argument("--target-factor", type=int, default=d.target_factor, help="default %(default)s")
    parser.add_argument("--eval-every", type=int, default=d.eval_every,
                        help="steps between evaluations on n_eval samples, the learning "
                             "curve in metrics.csv (default: steps // 10)")
    parser.add_argument("--threads", type=int, default=d.threads,
                        help="torch CPU threads (default %(default)s)")
    parser.add_argument("--prefetch", type=int, default=d.prefetch,
                        help="core-set batches selected ahead on the engine's pool; 0 selects "
                             "in the loop; never changes the batches (default %(default)s)")
    parser.add_argument("--device", default=d.device, help="torch device (default %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoint(s) in --out")
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                        help="do not write TensorBoard events")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train gmm``."""
    add_config_arguments(parser, single=True)
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="hide the progress bar")


def config_from_args(args: argparse.Namespace, **override: Any) -> GMMConfig:
    """A GMMConfig from parsed arguments (fields not given keep their default)."""
    names = {f.name for f in dataclasses.fields(GMMConfig)}
    kw = {k: v for k, v in vars(args).items() if k in names}
    kw.update(override)
    return GMMConfig(**kw)


def format_result(r: Dict[str, Any]) -> str:
    """One line: label, m, recovered %, high-quality %, next to the paper."""
    paper = PAPER_TABLE1.get(r["modes"])
    line = (f"{r['label']:<10} m={r['modes']:<3} seed={r['seed']}  recovered {r['recovered_pct']:6.2f}%"
            f" (with a high-quality sample {r['recovered_hq_pct']:6.2f}%)"
            f"  high-quality {r['high_quality_pct']:6.2f}%")
    if paper is not None and r["label"] in ("GAN", "Small-GAN"):
        i = 0 if r["label"] == "GAN" else 1
        line += f"   [paper: {paper[i]:.2f}% / {paper[2 + i]:.2f}%]"
    return line


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train gmm``."""
    from smallgan.experiments.entry import run_command

    return run_command(
        "gmm", args.out, lambda: config_from_args(args),
        lambda config: [run(config, args.out, resume=args.resume, progress=args.progress,
                            tensorboard=args.tensorboard)],
        lambda config, result: format_result(result))
