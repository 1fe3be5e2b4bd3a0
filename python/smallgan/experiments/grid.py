"""What the experiment grids (``gmm-grid``, ``meg-grid``) share."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Callable, Dict, Sequence

from smallgan.training.checkpoint import ResumeError

__all__ = ["finished_runs", "mean_std"]


def finished_runs(configs: Sequence[Any], run_dir: Callable[[Any], Path],
                  resume: bool) -> Dict[Path, Dict[str, Any]]:
    """Check every run directory of a grid before its first run starts.

    Returns the results (``result.json``) of the runs already finished, by
    run directory.  Raises :class:`ResumeError` if a run directory exists
    without ``resume``, or holds a finished run with other settings than
    ``config.to_dict()``.
    """
    finished: Dict[Path, Dict[str, Any]] = {}
    for cfg in configs:
        d = run_dir(cfg)
        if d.exists() and any(d.iterdir()) and not resume:
            raise ResumeError(f"{d} already exists: pass resume=True (--resume) to continue "
                              f"the grid, or choose another output directory")
        done = d / "result.json"
        if done.exists():
            previous = json.loads(done.read_text())
            if previous.get("config") != cfg.to_dict():
                raise ResumeError(f"{d} holds a run with other settings; "
                                  f"choose another output directory")
            finished[d] = previous
    return finished


def mean_std(values: Sequence[float]) -> tuple:
    """Mean and sample standard deviation over seeds (0 for a single seed)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std
