"""What the experiment grids (``gmm-grid``, ``meg-grid``) and their curve plots share."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

from smallgan.atomic import atomic_write

from smallgan.training.checkpoint import ResumeError

__all__ = ["finished_runs", "mean_std", "mean_curve", "write_csv", "write_curves"]


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
            now = cfg.to_dict()
            if previous.get("config") != now:
                before = previous.get("config") or {}
                diff = ", ".join(
                    f"{k}={before.get(k, '<unset>')!r} there, {now.get(k, '<unset>')!r} here"
                    for k in sorted(set(before) | set(now))
                    if before.get(k, "<unset>") != now.get(k, "<unset>"))
                raise ResumeError(f"{d} holds a run with other settings ({diff}); "
                                  f"choose another output directory or pass the same settings")
            finished[d] = previous
    return finished


def mean_std(values: Sequence[float]) -> tuple:
    """Mean and sample standard deviation over seeds (0 for a single seed)."""
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return mean, std


def mean_curve(rows: Sequence[Dict[str, Any]], x: str, y: str):
    """Mean of ``y`` over seeds at every step, with the min-max band across seeds.

    Returns ``(xs, means, lows, highs, n_seeds)`` or ``None`` without rows; a
    step counts only where every seed has reached it (so the band never
    narrows to fewer seeds); ``x = "seconds"`` averages the seconds too.
    """
    by_seed: Dict[int, Dict[int, Dict[str, Any]]] = {}
    for r in rows:
        by_seed.setdefault(r["seed"], {})[r["step"]] = r
    if not by_seed:
        return None
    steps = sorted(set.intersection(*(set(v) for v in by_seed.values())))
    if not steps:
        return None
    xs, means, lows, highs = [], [], [], []
    for st in steps:
        pts = [v[st] for v in by_seed.values()]
        ys = [p[y] for p in pts]
        xs.append(st if x == "step" else sum(p[x] for p in pts) / len(pts))
        means.append(sum(ys) / len(ys))
        lows.append(min(ys))
        highs.append(max(ys))
    return xs, means, lows, highs, len(by_seed)


def write_csv(rows: Sequence[Dict[str, Any]], path: Path) -> None:
    """``rows`` as a CSV, written atomically; the columns are every key, in order of appearance."""
    fields: List[str] = []
    for r in rows:
        fields += [k for k in r if k not in fields]

    def write(f) -> None:
        w = csv.DictWriter(f, fieldnames=fields)
        w.writeheader()
        w.writerows(rows)

    atomic_write(path, write, text=True)


def write_curves(rows: Sequence[Dict[str, Any]], out: Path, plot: Callable[..., Any],
                 run_keys: Sequence[str]) -> None:
    """What ``gmm-curves`` and ``meg-curves`` write: ``OUT.csv`` of ``rows``, ``OUT.png``
    from ``plot(rows, path)``, and a one-line summary (runs are told apart by ``run_keys``)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out.with_suffix(".csv"))
    plot(rows, out.with_suffix(".png"))
    runs = {tuple(r[k] for k in run_keys) for r in rows}
    print(f"{len(runs)} runs, {len(rows)} evaluations: {out.with_suffix('.csv')}, "
          f"{out.with_suffix('.png')}")
