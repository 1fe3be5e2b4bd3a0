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
import pickle
import re
from pathlib import Path
from typing import Any, Dict, Union

import torch

from smallgan.atomic import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "ResumeError"]


class ResumeError(ValueError):
    """A run cannot continue from its checkpoint: the checkpoint holds other
    settings than the run asks for, or the file is not a safe smallgan
    checkpoint.  The message names what differs.  The CLI exits with 2."""

PathLike = Union[str, "os.PathLike[str]"]


def save_checkpoint(state: Dict[str, Any], path: PathLike) -> None:
    """Write ``state`` atomically to ``path``.

    ``state`` must hold only tensors and plain types (dicts, lists, tuples,
    str, int, float, bool, None), which is what :func:`load_checkpoint`
    accepts back.  Temp file + fsync + rename
    (:func:`smallgan.atomic.atomic_write`): a crash or Ctrl-C leaves the
    previous checkpoint or the new one, never a torn file.
    """
    atomic_write(path, lambda f: torch.save(state, f))


def load_checkpoint(path: PathLike, map_location: Any = "cpu") -> Dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Loaded with ``torch.load(..., weights_only=True)``: only tensors and plain
    types are unpickled, so a crafted file (a shared run directory, a
    downloaded checkpoint) cannot run code.  Anything else in the file raises
    :class:`ResumeError` before any of it is used.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" (it names {found.group(1)})" if found else ""
        raise ResumeError(
            f"refusing to load {path}: it holds objects other than tensors and plain types{what}, "
            f"which could run code when unpickled; smallgan never writes such checkpoints"
        ) from None
