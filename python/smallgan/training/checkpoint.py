"""Atomic checkpoint files.

A checkpoint is written to a temporary file in the destination directory,
flushed to disk, then moved over the old one with ``os.replace``, which is
atomic on POSIX and Windows: a crash or Ctrl-C during the write leaves the
previous checkpoint intact, never a truncated one.

Example
-------
>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "ckpt.pt"
>>> save_checkpoint({"step": 3}, p)
>>> load_checkpoint(p)["step"]
3
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Union

import torch

from smallgan.atomic import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint"]

PathLike = Union[str, "os.PathLike[str]"]


def save_checkpoint(state: Dict[str, Any], path: PathLike) -> None:
    """Write ``state`` (anything ``torch.save`` accepts) atomically to ``path``.

    Temp file + fsync + rename (:func:`smallgan.atomic.atomic_write`): a crash
    or Ctrl-C leaves the previous checkpoint or the new one, never a torn file.
    """
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: PathLike, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    The file holds optimizer and RNG states as well as weights, so it is loaded
    with ``weights_only=False``: load only checkpoints you wrote yourself.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=False)
