"""SAGAN on LSUN church outdoor from a local image folder (paper Table 4).

Configuration (Zhang et al. 2019's SAGAN recipe; only ``sampling`` differs
between GAN and Small-GAN):

- models: :mod:`smallgan.models.sagan` at ``resolution`` 128 (or 64), base
  width 64, self-attention and spectral norm in G and D, z 128 from N(0, I);
- hinge loss, two time-scale learning rates: G 1e-4, D 4e-4, Adam betas
  (0, 0.9), one D update per G update;
- our choices where the papers are silent for LSUN: batch 64,
  ``steps=100_000``, no EMA, prior factor 4 / target factor 8 on Inception
  features projected to 128-d;
- FID at 50k generated / 50k real images of the folder.

Data: LSUN ships as lmdb databases; export ``church_outdoor_train`` to image
files first (e.g. with the LSUN repository's ``data.py export``), then pass
that folder as ``--root``. Images are resized to the resolution (bilinear;
LSUN images are 256 on the short side, so crop them first if their aspect
ratio matters to you).

Example
-------
``smallgan train sagan-lsun --root ~/data/church_outdoor --resolution 64 --out runs/sagan64``
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Union

from smallgan.checks import check_int
from smallgan.experiments.image_gan import (ImageGANConfig, add_common_arguments,
                                            config_from_args, format_result, run_image_gan)

__all__ = ["SAGANConfig", "run", "add_arguments", "run_from_args"]


@dataclass
class SAGANConfig(ImageGANConfig):
    """SAGAN defaults (see module docstring)."""

    root: Optional[str] = None
    resolution: int = 128
    ch: int = 64
    batch_size: int = 64
    steps: int = 100_000
    lr_g: float = 1e-4
    lr_d: float = 4e-4

    def __post_init__(self) -> None:
        from smallgan.models.sagan import G_WIDTHS

        if self.resolution not in G_WIDTHS:
            raise ValueError(f"resolution must be one of {sorted(G_WIDTHS)}, got {self.resolution!r}")
        check_int("ch", self.ch, 8)  # >= 8: self-attention divides the channels by 8
        if self.root is None:
            raise ValueError("root is required: the folder of exported LSUN images")
        super().__post_init__()


def run(config: SAGANConfig, out_dir: Union[str, Path], *, resume: bool = False,
        progress: bool = False, tensorboard: bool = True) -> Dict[str, Any]:
    """Train one run; returns (and writes ``result.json``) its final metrics."""
    from smallgan.data import open_dataset
    from smallgan.models.sagan import SAGANDiscriminator, SAGANGenerator

    if not isinstance(config, SAGANConfig):
        raise TypeError(f"config must be a SAGANConfig, got {type(config).__name__}")
    r = config.resolution
    base = open_dataset("folder", config.root, image_size=r)

    def make_models():
        return (SAGANGenerator(r, config.z_dim, config.ch),
                SAGANDiscriminator(r, config.ch))

    name = f"folder-{Path(config.root).expanduser().resolve().name}-{r}"
    return run_image_gan(config, out_dir, dataset=name, base=base, image_size=r,
                         make_models=make_models, resume=resume, progress=progress,
                         tensorboard=tensorboard)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train sagan-lsun``."""
    parser.add_argument("--root", required=True, help="folder of exported LSUN images")
    parser.add_argument("--resolution", type=int, choices=(64, 128), default=None,
                        help="image side (default 128)")
    parser.add_argument("--ch", type=int, default=None, help="base width (default 64)")
    add_common_arguments(parser, SAGANConfig)


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train sagan-lsun``."""
    from smallgan.experiments.entry import run_command

    return run_command(
        "sagan-lsun", args.out, lambda: config_from_args(SAGANConfig, args),
        lambda config: [run(config, args.out, resume=args.resume, progress=args.progress,
                            tensorboard=args.tensorboard)],
        lambda config, result: format_result(result))
