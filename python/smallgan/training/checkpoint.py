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
import tempfile
from pathlib import Path
from typing import Any, Dict, Union

import torch

__all__ = ["save_checkpoint", "load_checkpoint"]

PathLike = Union[str, "os.PathLike[str]"]


def save_checkpoint(state: Dict[str, Any], path: PathLike) -> None:
    """Write ``state`` (anything ``torch.save`` accepts) atomically to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # includes KeyboardInterrupt: never leave a stray temp file behind
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_checkpoint(path: PathLike, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    The file holds optimizer and RNG states as well as weights, so it is loaded
    with ``weights_only=False``: load only checkpoints you wrote yourself.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location=map_location, weights_only=False)
