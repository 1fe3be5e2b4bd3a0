"""Atomic file writes: readers see the old file or the new one, never half of one."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import IO, Callable, Union


def atomic_write(path: Union[str, os.PathLike], write: Callable[[IO], object], *, text: bool = False) -> Path:
    """Write ``path`` through ``write(f)`` on a temp file in the same folder, then rename.

    The data is flushed and fsync'ed before ``os.replace``, so a crash leaves
    either the previous file or the complete new one.  On any exception
    (KeyboardInterrupt included) the temp file is removed and the exception
    re-raised; the previous file is untouched.  The parent folder is created.

    Thread safety: concurrent writers to the same path each write their own
    temp file; the last rename wins.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w" if text else "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path
