"""What the image GAN experiments share: the config fields, one run, the CLI.

:class:`ImageGANConfig` holds the fields every image experiment has
(sampling, factors, ablation switches, embeddings, FID protocol, device);
``sngan_cifar10``, ``sagan_lsun`` and ``lsgan_digits`` subclass it with
their models' fields and the paper's defaults, and call :func:`run_image_gan`.

Ablations (paper Tables 6 and 7) are fields, hence flags:

- ``--embedding raw``: core-set on the raw images instead of Inception features;
- ``--projection-dim 0``: unprojected embeddings;
- ``--no-coreset-target`` (prior only) and ``--no-coreset-prior`` (target only);
- ``--prior-factor N --target-factor M``: the factor pairs 2x2 ... 32x32.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence, Tuple, Union

from smallgan.atomic import atomic_write
from smallgan.checks import check_choice, check_int
from smallgan.projection import DEFAULT_PROJECTION_DIM

__all__ = ["ImageGANConfig", "run_image_gan", "add_common_arguments", "config_from_args",
           "format_result"]


@dataclass
class ImageGANConfig:
    """Fields shared by the image experiments (see the subclasses for defaults).

    Attributes
    ----------
    sampling : {"random", "coreset"}
        GAN or Small-GAN.
    steps, batch_size, n_dis, loss, optimizer, lr_g, lr_d, betas, lr_decay, prior, z_dim
        Training, as in :class:`smallgan.training.trainer.TrainConfig`.
    prior_factor, target_factor, coreset_prior, coreset_target
        Core-set factors and the prior-only / target-only ablations.
    embedding : {"inception", "random-conv", "raw", "mnist-cnn"}
        What real images are embedded with for the target core-set
        (``"mnist-cnn"``: the digit classifier's penultimate features, per
        channel; only where :meth:`digit_images` is true).
    projection_dim : int
        Random projection size of the embeddings (default
        ``smallgan.projection.DEFAULT_PROJECTION_DIM`` = 32, as
        ``smallgan embed``); 0 keeps them unprojected.
    projection_seed : int
        Seed of the projection matrix (default 0, as ``smallgan embed``).
        Not the training seed: every seed of an experiment shares one cache.
    embeddings : str or None
        A cache written by ``smallgan embed`` (its ``.npy``) to use for the
        target core-set instead of computing one; its manifest must describe
        this dataset (length and content fingerprint), else an error.  Then
        ``embedding``, ``projection_dim`` and ``projection_seed`` are not
        used.
    feature : {"inception", "random-conv", "mnist-cnn"}
        Features for FID ("random-conv" is reported as FD[random-conv],
        "mnist-cnn", for 28x28 digits, as FD[mnist-cnn]).
    fallback_features : bool
        Without Inception weights, use random-conv features (for embeddings
        and the distance) instead of stopping with an error.
    inception_weights : str or None
        Path of the weights (default: smallgan.inception's search path).
    fid_every : int
        Steps between evaluations; 0: ``steps // 10``; -1: never (not even at the end).
    fid_fake, fid_real : int
        FID protocol: generated and real images (50k/50k is the standard).
    cache_dir : str or None
        Embeddings and real statistics (default ``$SMALLGAN_CACHE`` or ``~/.cache/smallgan``).
    limit : int or None
        Use only the first ``limit`` real images (quick runs, tests).
    ema_decay : float or None
        Generator EMA (evaluation then uses the EMA generator).
    """

    sampling: str = "coreset"
    steps: int = 50_000
    batch_size: int = 64
    n_dis: int = 1
    loss: str = "hinge"
    optimizer: str = "adam"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: Tuple[float, float] = (0.0, 0.9)
    lr_decay: str = "none"
    prior: str = "normal"
    z_dim: int = 128
    prior_factor: int = 4
    target_factor: int = 8
    coreset_prior: bool = True
    coreset_target: bool = True
    embedding: str = "inception"
    projection_dim: int = DEFAULT_PROJECTION_DIM  # one default everywhere (smallgan.projection)
    projection_seed: int = 0
    embeddings: Optional[str] = None
    feature: str = "inception"
    fallback_features: bool = False
    inception_weights: Optional[str] = None
    fid_every: int = 0
    fid_fake: int = 50_000
    fid_real: int = 50_000
    cache_dir: Optional[str] = None
    limit: Optional[int] = None
    ema_decay: Optional[float] = None
    sample_every: int = 0
    checkpoint_every: int = 0
    plot_samples: int = 64
    prefetch: int = 2
    num_workers: int = 0
    threads: int = 0
    amp: bool = False
    device: str = "auto"
    seed: int = 0

    def __post_init__(self) -> None:
        from smallgan.experiments.images import EMBEDDINGS
        from smallgan.metrics.fid import FEATURES

        self.betas = (float(self.betas[0]), float(self.betas[1]))
        check_choice("embedding", self.embedding, EMBEDDINGS)
        check_choice("feature", self.feature, FEATURES)
        for name, lo in (("projection_dim", 0), ("projection_seed", 0), ("fid_fake", 2), ("fid_real", 2),
                         ("threads", 0), ("fid_every", -1)):
            check_int(name, getattr(self, name), lo)
        if self.limit is not None:
            check_int("limit", self.limit, 1)
        if self.embeddings is not None and not isinstance(self.embeddings, str):
            raise TypeError(f"embeddings must be a path (str) or None, got {self.embeddings!r}")
        for name in ("embedding", "feature"):
            if getattr(self, name) == "mnist-cnn" and not self.digit_images():
                raise ValueError(f"{name}='mnist-cnn' needs 28x28 MNIST-family digits; "
                                 f"{type(self).__name__} trains on other images")
        self.train_config()  # validates the training fields

    def digit_images(self) -> bool:
        """Whether this experiment's real images are 28x28 MNIST-family digits
        (what ``embedding="mnist-cnn"`` and ``feature="mnist-cnn"`` need);
        subclasses that train on such digits say so."""
        return False

    @property
    def label(self) -> str:
        """``GAN``, ``Small-GAN`` or the ablation's name."""
        from smallgan.training.trainer import run_label

        return run_label(self.sampling, self.coreset_prior, self.coreset_target)

    def resolved_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def train_config(self, progress: bool = False, tensorboard: bool = True):
        """The trainer's config for this run."""
        import torch

        from smallgan.training.trainer import TrainConfig

        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        every = max(self.steps // 10, 1)
        return TrainConfig(
            steps=self.steps, batch_size=self.batch_size, z_dim=self.z_dim, prior=self.prior,
            loss=self.loss, n_dis=self.n_dis, optimizer=self.optimizer, lr_g=self.lr_g,
            lr_d=self.lr_d, betas_g=self.betas, betas_d=self.betas, lr_decay=self.lr_decay,
            sampling=self.sampling, prior_factor=self.prior_factor,
            target_factor=self.target_factor, coreset_prior=self.coreset_prior,
            coreset_target=self.coreset_target, ema_decay=self.ema_decay, amp=self.amp,
            device=device, seed=self.seed, log_every=max(min(100, self.steps // 100), 1),
            sample_every=self.sample_every or every,
            eval_every=0 if self.fid_every < 0 else (self.fid_every or every),
            checkpoint_every=self.checkpoint_every or every, plot_samples=self.plot_samples,
            progress=progress, tensorboard=tensorboard, num_workers=self.num_workers,
            prefetch=self.prefetch)

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)
        return d


def run_image_gan(config: ImageGANConfig, out_dir: Union[str, Path], *, dataset: str,
                  base: Any, image_size: Optional[int],
                  make_models: Callable[[], Tuple[Any, Any]],
                  trainer_cls: Optional[type] = None, resume: bool = False,
                  progress: bool = False, tensorboard: bool = True,
                  make_eval: Optional[Callable[[Any, Path, str], Callable]] = None
                  ) -> Dict[str, Any]:
    """Train one image GAN run and write ``result.json``.

    Parameters
    ----------
    config : ImageGANConfig
    out_dir : path
        Run directory (trainer artifacts, ``samples/*.png``, ``result.json``).
    dataset : str
        Name used for cache files (e.g. ``"cifar10-train"``).
    base : Dataset
        A ``smallgan.data`` reader (images in [0, 1]).
    image_size : int or None
        Resize real images to this side (None: keep).
    make_models : callable
        Returns ``(generator, discriminator)``; called after seeding torch
        with a seed derived from ``config.seed`` only, so the GAN and the
        Small-GAN run of a seed start from the same weights.
    trainer_cls : type, optional
        A :class:`~smallgan.training.trainer.Trainer` subclass.
    make_eval : callable, optional
        ``make_eval(images, cache_dir, device)`` returns the trainer's
        ``eval_fn`` (run every ``fid_every`` steps and at the end), instead
        of the Fréchet-distance hook (e.g. the Stacked-MNIST mode counts).
    """
    import numpy as np
    import torch

    from smallgan.experiments.images import GANImages, collate_batch, fid_hook, real_embeddings, \
        default_cache_dir, embeddings_from_cache, save_grid
    from smallgan.training.trainer import RealData, Trainer

    out = Path(out_dir)
    device = config.resolved_device()
    if config.threads:
        torch.set_num_threads(config.threads)
    images = GANImages(base, size=image_size, limit=config.limit)
    n = len(images)
    # (an experiment with its own evaluation brings its own real images)
    if config.fid_every >= 0 and make_eval is None and config.fid_real > n:
        raise ValueError(f"fid_real={config.fid_real} exceeds the {n} real images; lower "
                         f"--fid-real (the protocol is printed with every value)")
    cache = Path(config.cache_dir) if config.cache_dir else default_cache_dir()
    key = dataset if config.limit is None else f"{dataset}-first{n}"
    tc = config.train_config(progress=progress, tensorboard=tensorboard)
    embeddings, emb_name = None, None
    if tc.uses_target_coreset and config.embeddings is not None:
        embeddings, emb_name = embeddings_from_cache(images, config.embeddings)
    elif tc.uses_target_coreset:
        t0 = time.perf_counter()
        embeddings, emb_name = real_embeddings(
            images, config.embedding, config.projection_dim, seed=config.projection_seed,
            cache_dir=cache, dataset=key, weights=config.inception_weights,
            fallback=config.fallback_features, device=device)
        print(f"embeddings: {emb_name}, shape {embeddings.shape}, "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    data = RealData(images, embeddings=embeddings, collate_fn=collate_batch)
    init_seed = int(np.random.SeedSequence([config.seed, 7]).generate_state(1)[0])
    torch.manual_seed(init_seed)
    g, d = make_models()
    eval_fn = None
    if config.fid_every >= 0 and make_eval is not None:
        eval_fn = make_eval(images, cache, device)
    elif config.fid_every >= 0:
        eval_fn = fid_hook(images, n_fake=config.fid_fake, n_real=config.fid_real,
                           feature=config.feature, weights=config.inception_weights,
                           fallback=config.fallback_features, cache_dir=cache, dataset=key,
                           device=device,
                           log=lambda s: print(s, file=sys.stderr))
    trainer = (trainer_cls or Trainer)(
        tc, g, d, data, out, eval_fn=eval_fn, plot_fn=lambda s, p: save_grid(s, p),
        extra_config={"experiment": config.to_dict(), "dataset": key,
                      "embeddings": emb_name}, resume=resume)
    t0 = time.perf_counter()
    metrics = trainer.fit()
    wall = time.perf_counter() - t0
    result = {"label": config.label, "dataset": key, "batch_size": config.batch_size,
              "steps": config.steps, "wall_s": wall, "embeddings": emb_name,
              "metrics": metrics, "config": config.to_dict()}
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(out / "result.json", lambda f: f.write(text), text=True)
    return result


def format_result(result: Dict[str, Any]) -> str:
    """One line: label, batch, the distance with its protocol."""
    m = result["metrics"]
    dist = ""
    for k, v in m.items():
        if k == "fid" or k.startswith("fd_"):
            name = "FID" if k == "fid" else f"FD[{k[3:].replace('_', '-')}] (not an FID)"
            dist = (f"{name} {v:.2f} ({int(m.get('fid_n_fake', 0))} fake / "
                    f"{int(m.get('fid_n_real', 0))} real)")
    return (f"{result['label']:<24} batch {result['batch_size']:<4} steps {result['steps']:<7} "
            f"{dist or 'no evaluation'}  [{result['wall_s']:.0f} s]")


# ---------------------------------------------------------------------- CLI

# smallgan.experiments.images.EMBEDDINGS, spelled out so that building the
# CLI parser does not import torch (a test keeps them equal)
EMBEDDING_NAMES = ("inception", "random-conv", "raw", "mnist-cnn")

_FLAG_HELP = {
    "sampling": "random = GAN, coreset = Small-GAN",
    "steps": "generator updates", "batch_size": "batch size k", "n_dis": "D updates per G update",
    "lr_g": "generator learning rate", "lr_d": "discriminator learning rate",
    "z_dim": "latent size", "prior_factor": "prior over-sampling factor",
    "target_factor": "real over-sampling factor",
    "embedding": "what the real core-set is computed on (raw: Table 6 ablation; mnist-cnn: "
                 "the digit classifier's features, 28x28 digits only)",
    "projection_dim": "random projection of the embeddings (0: unprojected, ablation)",
    "projection_seed": "seed of the projection matrix (shared by every training seed)",
    "embeddings": "use this `smallgan embed` cache (.npy) for the real core-set",
    "feature": "features of the Fréchet distance (random-conv and mnist-cnn are NOT FIDs)",
    "fid_every": "steps between evaluations (0: steps/10, -1: none)",
    "fid_fake": "generated images per FID", "fid_real": "real images per FID",
    "cache_dir": "embedding and FID statistics cache",
    "limit": "use only the first N real images", "ema_decay": "generator EMA decay",
    "prefetch": "core-set batches selected ahead", "threads": "torch CPU threads (0: default)",
    "device": "torch device (auto: cuda if available)", "seed": "seed",
    "inception_weights": "Inception weights file",
}


def add_common_arguments(parser: argparse.ArgumentParser, cls: type, *,
                         skip: Sequence[str] = (), default_note: Optional[str] = None) -> None:
    """Flags for the shared fields, with ``cls``'s defaults in the help.

    ``skip`` names fields that get no flag (a grid sets them per run;
    ``coreset_prior`` / ``coreset_target`` drop ``--no-coreset-*``);
    ``default_note`` replaces the default values in the help (e.g. "the
    experiment's" when ``cls`` is not the class that will be built).
    """
    d = {f.name: f.default for f in dataclasses.fields(cls)}
    choices = {"sampling": ("random", "coreset"), "embedding": EMBEDDING_NAMES,
               "feature": ("inception", "random-conv", "mnist-cnn")}
    for name, help_ in _FLAG_HELP.items():
        if name in skip:
            continue
        default = d[name]
        kind = {int: int, float: float, str: str}.get(type(default), str)
        if name in ("limit",):
            kind = int
        if name in ("ema_decay",):
            kind = float
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None,
                            choices=choices.get(name),
                            help=f"{help_} (default {default_note or default})")
    if "coreset_prior" not in skip:
        parser.add_argument("--no-coreset-prior", dest="coreset_prior", action="store_false",
                            default=None, help="ablation: plain prior draws (target only)")
    if "coreset_target" not in skip:
        parser.add_argument("--no-coreset-target", dest="coreset_target", action="store_false",
                            default=None, help="ablation: plain real batches (prior only)")
    parser.add_argument("--fallback-features", dest="fallback_features", action="store_true",
                        default=None, help="without Inception weights, use random-conv "
                                           "features (labelled, not an FID)")
    parser.add_argument("--amp", dest="amp", action="store_true", default=None,
                        help="mixed precision")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--resume", action="store_true", help="continue from --out's checkpoint")
    parser.add_argument("--no-progress", dest="progress", action="store_false")
    parser.add_argument("--no-tensorboard", dest="tensorboard", action="store_false")


def config_from_args(cls: type, args: argparse.Namespace, **override: Any) -> Any:
    """Build ``cls`` from parsed flags: given flags override the defaults."""
    names = {f.name for f in dataclasses.fields(cls)}
    kw = {k: v for k, v in vars(args).items() if k in names and v is not None}
    kw.update(override)
    return cls(**kw)
