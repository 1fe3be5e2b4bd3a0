"""What the experiment grids (``gmm-grid``, ``meg-grid``) and their curve plots share."""
from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence

from smallgan.atomic import atomic_write

from smallgan.training.checkpoint import ResumeError

__all__ = ["finished_runs", "mean_std", "mean_curve", "in_order", "paired_differences",
           "format_paired", "write_csv", "write_curves"]


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


def in_order(names: Any, order: Sequence[str]) -> List[str]:
    """The distinct ``names`` in ``order``, those not in it after (by name)."""
    rank = {v: i for i, v in enumerate(order)}
    return sorted(set(names), key=lambda v: (rank.get(v, len(rank)), v))


def paired_differences(rows: Sequence[Dict[str, Any]], key: str, baseline: str,
                       metrics: Sequence[str], order: Sequence[str]) -> List[Dict[str, Any]]:
    """Per ``row[key]`` value and metric: ``value - baseline`` on the seeds that have both runs.

    ``rows`` have ``key``, ``seed`` and the ``metrics`` (a row whose first
    metric is empty or missing, a run without an evaluation, is left out).
    Returns rows ``<key>, baseline, metric, n_pairs, seeds, diff_mean,
    diff_std`` (sample std of the per-seed differences; 0 for one pair),
    ``n_positive`` / ``n_negative`` (pairs with a difference above / below 0),
    in ``order`` (names not in it after, by name); none for the baseline
    itself or a name without a seed shared with it.
    """
    by = {(r[key], int(r["seed"])): r for r in rows if r.get(metrics[0], "") not in ("", None)}
    names = in_order((v for v, _ in by if v != baseline), order)
    out = []
    for name in names:
        seeds = sorted(s for v, s in by if v == name and (baseline, s) in by)
        if not seeds:
            continue
        for k in metrics:
            diffs = [float(by[(name, s)][k]) - float(by[(baseline, s)][k]) for s in seeds]
            mean, std = mean_std(diffs)
            out.append({key: name, "baseline": baseline, "metric": k, "n_pairs": len(diffs),
                        "seeds": " ".join(map(str, seeds)), "diff_mean": mean, "diff_std": std,
                        "n_positive": sum(d > 0 for d in diffs),
                        "n_negative": sum(d < 0 for d in diffs)})
    return out


def format_paired(diffs: Sequence[Dict[str, Any]], key: str, baseline: str,
                  cols: Sequence[tuple]) -> List[str]:
    """Markdown lines of :func:`paired_differences`' rows: a sentence, then one
    row per name with ``diff_mean ± diff_std (better/pairs)`` per column.

    ``cols`` holds ``(metric, header, format, higher_is_better)``; a pair is
    better when its difference is above 0 where higher is better, below 0
    otherwise.  No lines without differences.
    """
    by = {(d[key], d["metric"]): d for d in diffs}
    names = list(dict.fromkeys(d[key] for d in diffs))
    if not names:
        return []
    lines = [f"Paired difference to {baseline} of the same seed (mean ± std over pairs; in "
             f"brackets, the pairs where the {key} is better):", ""]
    head = [key, "pairs"] + [f"Δ {name}" for _, name, _, _ in cols]
    lines += ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for v in names:
        cells = [v, str(next(d["n_pairs"] for d in diffs if d[key] == v))]
        for k, _, fmt, higher in cols:
            d = by.get((v, k))
            if d is None:
                cells.append("")
                continue
            better = int(d["n_positive"] if higher else d["n_negative"])
            sign = fmt.format(float(d["diff_mean"]))
            sign = sign if sign.startswith("-") else "+" + sign
            cells.append(f"{sign} ± {fmt.format(float(d['diff_std']))} "
                         f"({better}/{int(d['n_pairs'])})")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


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
