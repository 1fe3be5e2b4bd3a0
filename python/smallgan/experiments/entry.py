"""The shared shape of a ``smallgan train EXPERIMENT`` entry point."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable, Iterable, Union


def run_command(name: str, out: Union[str, Path], make_config: Callable[[], Any],
                train: Callable[[Any], Iterable[Any]], show: Callable[[Any, Any], str]) -> int:
    """Build the config, train, print each result; the CLI's exit code.

    ``make_config()`` raising ``ValueError`` or ``TypeError`` (a bad option)
    prints ``smallgan train NAME: message`` and returns 2 before any work; so
    does a ``--resume`` whose settings differ from the checkpoint's
    (:class:`~smallgan.training.checkpoint.ResumeError`, raised before the
    first step).  Any other error during training (NaN samples, a bug) keeps
    its traceback.  Ctrl-C
    during ``train(config)`` (the trainer has already written a checkpoint)
    prints how to continue and returns 130; otherwise every result is printed
    with ``show(config, result)`` and 0 is returned.
    """
    from smallgan.training.trainer import ResumeError, TrainingInterrupted

    try:
        config = make_config()
    except (ValueError, TypeError) as exc:
        print(f"smallgan train {name}: {exc}", file=sys.stderr)
        return 2
    try:
        results = list(train(config))
    except ResumeError as exc:
        print(f"smallgan train {name}: {exc}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        print(f"{exc}; continue with --resume", file=sys.stderr)
        return 130
    for result in results:
        print(show(config, result))
    print(f"artifacts in {out}")
    return 0
