"""SN-GAN on CIFAR-10: GAN vs Small-GAN at batch 128, 256 and 512 (paper Table 3).

Configuration (Small-GAN Table 3, following Miyato et al. 2018's CIFAR-10
ResNet setting); only ``sampling`` differs between GAN and Small-GAN:

- models: :mod:`smallgan.models.sngan` (G 256 channels, D 128 channels,
  spectral norm in D), z 128 from N(0, I);
- hinge loss, Adam lr 2e-4 for both nets, betas (0, 0.9), ``n_dis=5``;
- ``steps=50_000`` generator updates with linear learning-rate decay to 0
  (Miyato et al.; the Small-GAN paper does not state its step count);
- Small-GAN: prior factor 4, target factor 8, target core-set on Inception
  pool3 features of the training images randomly projected to 32-d
  (``smallgan.projection.DEFAULT_PROJECTION_DIM``, our choice of size, as
  for ``smallgan embed``; ``--projection-dim``);
- FID at 50k generated / 50k real (the training set), every ``steps // 10``;
  the protocol is printed with every value. The paper's numbers:

  ======  ==========  ============
  batch    SN-GAN      Small-GAN
  ======  ==========  ============
  128      18.75       16.73
  256      17.90       16.22
  512      15.68       15.08
  ======  ==========  ============

Data: the CIFAR-10 python batches in ``--root`` (``cifar-10-batches-py``).
Any other ``smallgan.data`` dataset can stand in (``--dataset folder|digits|
mnist-digits|mnist``), resized to 32x32, with G and D built for its channels.

``--sweep`` trains all six runs (both samplings at 128, 256, 512) into
``OUT/<gan|smallgan>-b<batch>`` and prints them next to the paper.

Example
-------
``smallgan train sngan-cifar10 --root ~/data/cifar10 --sampling coreset --out runs/sg128``
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

from smallgan.experiments.image_gan import (ImageGANConfig, add_common_arguments,
                                            config_from_args, format_result, run_image_gan)

__all__ = ["SNGANConfig", "PAPER_TABLE3", "run", "sweep", "add_arguments", "run_from_args"]

#: batch -> (SN-GAN FID, Small-GAN FID), paper Table 3.
PAPER_TABLE3 = {128: (18.75, 16.73), 256: (17.9, 16.22), 512: (15.68, 15.08)}
SWEEP_BATCHES = (128, 256, 512)
DATASETS = ("cifar10", "folder", "digits", "mnist-digits", "mnist")


@dataclass
class SNGANConfig(ImageGANConfig):
    """Paper Table 3 defaults (see module docstring)."""

    dataset: str = "cifar10"
    root: Optional[str] = None
    batch_size: int = 128
    n_dis: int = 5
    steps: int = 50_000
    lr_decay: str = "linear"
    g_ch: int = 256
    d_ch: int = 128

    def __post_init__(self) -> None:
        if self.dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {DATASETS}, got {self.dataset!r}")
        for name in ("g_ch", "d_ch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        super().__post_init__()


def _open(config: SNGANConfig) -> Any:
    from smallgan.data import open_dataset

    return open_dataset(config.dataset, config.root)


def run(config: SNGANConfig, out_dir: Union[str, Path], *, resume: bool = False,
        progress: bool = False, tensorboard: bool = True) -> Dict[str, Any]:
    """Train one run; returns (and writes ``result.json``) its final metrics."""
    from smallgan.models.sngan import SNGANDiscriminator, SNGANGenerator

    if not isinstance(config, SNGANConfig):
        raise TypeError(f"config must be an SNGANConfig, got {type(config).__name__}")
    base = _open(config)
    channels = int(base[0][0].shape[0])

    def make_models():
        return (SNGANGenerator(config.z_dim, config.g_ch, out_channels=channels),
                SNGANDiscriminator(config.d_ch, in_channels=channels))

    return run_image_gan(config, out_dir, dataset=f"{config.dataset}-train", base=base,
                         image_size=32, make_models=make_models, resume=resume,
                         progress=progress, tensorboard=tensorboard)


def sweep(config: SNGANConfig, out_dir: Union[str, Path], batches=SWEEP_BATCHES,
          **kw: Any) -> List[Dict[str, Any]]:
    """GAN and Small-GAN at each batch size, one sub-folder each."""
    import dataclasses

    results = []
    for b in batches:
        for sampling in ("random", "coreset"):
            cfg = dataclasses.replace(config, batch_size=b, sampling=sampling)
            name = f"{'gan' if sampling == 'random' else 'smallgan'}-b{b}"
            results.append(run(cfg, Path(out_dir) / name, **kw))
    return results


def _with_paper(r: Dict[str, Any]) -> str:
    line = format_result(r)
    paper = PAPER_TABLE3.get(r["batch_size"])
    if paper is not None and r["label"] in ("GAN", "Small-GAN"):
        line += f"   [paper Table 3: {paper[r['label'] == 'Small-GAN']:.2f}]"
    return line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train sngan-cifar10``."""
    parser.add_argument("--dataset", choices=DATASETS, default=None,
                        help="real data (default cifar10)")
    parser.add_argument("--root", default=None, help="folder with the dataset's files")
    parser.add_argument("--g-ch", dest="g_ch", type=int, default=None,
                        help="generator width (default 256)")
    parser.add_argument("--d-ch", dest="d_ch", type=int, default=None,
                        help="discriminator width (default 128)")
    parser.add_argument("--sweep", action="store_true",
                        help="GAN and Small-GAN at batch 128, 256 and 512 (six runs)")
    add_common_arguments(parser, SNGANConfig)


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train sngan-cifar10``."""
    from smallgan.experiments.entry import run_command

    kw = dict(resume=args.resume, progress=args.progress, tensorboard=args.tensorboard)
    return run_command(
        "sngan-cifar10", args.out, lambda: config_from_args(SNGANConfig, args),
        lambda config: sweep(config, args.out, **kw) if args.sweep else [run(config, args.out, **kw)],
        lambda config, result: _with_paper(result))
