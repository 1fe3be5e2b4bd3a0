"""``smallgan train EXPERIMENT ...``: train a GAN for one of the paper's experiments.

Each experiment is a module exposing ``add_arguments(parser)`` and
``run_from_args(args) -> int``.  :data:`EXPERIMENTS` maps the sub-command
name to that module; adding an experiment is one line here.  Experiment
modules should import torch inside their functions, not at the top, so that
building this parser (``smallgan --help``) stays fast.
"""
from __future__ import annotations

import importlib

__all__ = ["EXPERIMENTS", "register"]

#: sub-command name -> module with add_arguments(parser) and run_from_args(args)
EXPERIMENTS = {
    "gmm": "smallgan.experiments.gmm",
    "gmm-grid": "smallgan.experiments.gmm_grid",
    "gmm-curves": "smallgan.experiments.gmm_curves",
    "gmm-table": "smallgan.experiments.gmm_table",
    "meg-anomaly": "smallgan.experiments.meg",
    "meg-grid": "smallgan.experiments.meg_grid",
    "meg-curves": "smallgan.experiments.meg_curves",
    "sngan-cifar10": "smallgan.experiments.sngan_cifar10",
    "sagan-lsun": "smallgan.experiments.sagan_lsun",
    "lsgan-digits": "smallgan.experiments.lsgan_digits",
    "timing": "smallgan.experiments.timing",
    "stacked-mnist": "smallgan.experiments.stacked_mnist",
    "mnist": "smallgan.experiments.mnist",
    "image-grid": "smallgan.experiments.image_grid",
    "selection-bias": "smallgan.experiments.selection_bias",
    "mnist-classifier": "smallgan.experiments.mnist_classifier",
}


def _summary(module) -> str:
    doc = (module.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def register(subparsers) -> None:
    """Add ``train`` and one sub-command per experiment to ``subparsers``."""
    parser = subparsers.add_parser(
        "train", help="train a GAN or Small-GAN for one experiment",
        description="Train a GAN (random batches) or a Small-GAN (core-set batches).")
    sub = parser.add_subparsers(dest="experiment", metavar="EXPERIMENT")
    sub.required = True
    for name, module_name in EXPERIMENTS.items():
        module = importlib.import_module(module_name)
        summary = _summary(module)
        p = sub.add_parser(name, help=summary, description=summary)
        module.add_arguments(p)
        p.set_defaults(func=module.run_from_args)
