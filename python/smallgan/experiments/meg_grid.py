"""The paper's Table 2: MEG vs Core-set+MEG over held-out digits and seeds.

Runs :func:`smallgan.experiments.meg.run` for every digit, both samplings
and each seed, one after the other, and writes (rewritten after every run,
so a long grid can be read while it runs):

- ``runs.csv``: one row per run (AUPRC of E(x) and of ||grad E||, mean of
  the last 10 evaluations, AUROC, AP);
- ``summary.csv``: per (digit, method) the mean and sample std over seeds,
  with the paper's AUPRC (and its Bi-GAN) for digits 1, 4, 5, 7, 9;
- ``paired.csv``: per digit, the paired difference Core-set+MEG minus MEG
  (same seed: same initial weights) of the energy AUPRC, mean and std;
- one run directory per run, ``digit{d}/{random|coreset}/seed{s}/``.

With ``--resume`` finished runs are read back and unfinished ones continue
from their checkpoints.

Example
-------
``smallgan train meg-grid --digits 0-9 --seeds 3 --out runs/table2``
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Union

from smallgan.atomic import atomic_write
from smallgan.experiments.grid import mean_std, write_csv
from smallgan.experiments.meg import (METHOD_LABELS, PAPER_TABLE2, MEGConfig,
                                      add_config_arguments, config_from_args, format_result, run)

__all__ = ["run_grid", "summarize", "paired", "format_table", "format_markdown", "parse_digits",
           "add_arguments", "run_from_args"]

SAMPLINGS = ("random", "coreset")
_METRICS = ("auprc_energy_last10", "auprc_grad_last10", "energy_auroc_last10", "energy_ap_last10")


def parse_digits(text: str) -> List[int]:
    """``"0-9"``, ``"1,4,5,7,9"`` or ``"3"`` -> sorted unique digits; ``ValueError`` otherwise."""
    digits: List[int] = []
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                lo, hi = (int(v) for v in part.split("-", 1))
                digits += list(range(lo, hi + 1))
            else:
                digits.append(int(part))
    except ValueError:
        raise ValueError(f"--digits must look like 0-9 or 1,4,5,7,9, got {text!r}") from None
    if not digits or any(d < 0 or d > 9 for d in digits):
        raise ValueError(f"--digits must name digits in 0-9, got {text!r}")
    return sorted(set(digits))


def _run_dir(out: Path, digit: int, sampling: str, seed: int) -> Path:
    return out / f"digit{digit}" / sampling / f"seed{seed}"



def summarize(results: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Mean and sample std over seeds per (digit, method), with the paper's AUPRC."""
    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    for r in results:
        groups.setdefault((r["digit"], r["sampling"]), []).append(r)
    rows = []
    for (digit, sampling), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "random")):
        row: Dict[str, Any] = {"digit": digit, "method": METHOD_LABELS[sampling], "n_seeds": len(rs),
                               "seeds": " ".join(str(r["seed"]) for r in rs), "steps": rs[0]["steps"]}
        for k in _METRICS:
            row[f"{k}_mean"], row[f"{k}_std"] = mean_std([float(r[k]) for r in rs])
        paper = PAPER_TABLE2.get(digit)
        row["paper_auprc"] = paper[1 if sampling == "random" else 2] if paper else ""
        row["paper_bigan_auprc"] = paper[0] if paper else ""
        rows.append(row)
    return rows


def paired(results: Sequence[Dict[str, Any]], key: str = "auprc_energy_last10") -> List[Dict[str, Any]]:
    """Per digit: Core-set+MEG minus MEG of ``key`` over the seeds that have both runs."""
    by = {(r["digit"], r["sampling"], r["seed"]): float(r[key]) for r in results}
    rows = []
    for digit in sorted({r["digit"] for r in results}):
        diffs = [by[(digit, "coreset", s)] - by[(digit, "random", s)]
                 for s in sorted({r["seed"] for r in results})
                 if (digit, "coreset", s) in by and (digit, "random", s) in by]
        if not diffs:
            continue
        mean, std = mean_std(diffs)
        paper = PAPER_TABLE2.get(digit)
        rows.append({"digit": digit, "metric": key, "n_pairs": len(diffs), "diff_mean": mean,
                     "diff_std": std, "n_positive": sum(d > 0 for d in diffs),
                     "paper_diff": round(paper[2] - paper[1], 3) if paper else ""})
    return rows


def format_table(rows: Sequence[Dict[str, Any]], diffs: Sequence[Dict[str, Any]] = ()) -> str:
    """Plain-text table of :func:`summarize` (and :func:`paired`) rows next to the paper."""
    head = (f"{'digit':>5}  {'method':<13} {'seeds':>5}  {'AUPRC E(x)':>15} {'paper':>6}  "
            f"{'AUPRC |grad E|':>15}  {'AUROC E(x)':>15}")
    lines = [head, "-" * len(head)]
    for r in rows:
        def cell(k: str) -> str:
            return f"{r[k + '_mean']:.3f} +- {r[k + '_std']:.3f}"

        paper = f"{r['paper_auprc']:6.3f}" if r["paper_auprc"] != "" else f"{'':>6}"
        lines.append(f"{r['digit']:>5}  {r['method']:<13} {r['n_seeds']:>5}  "
                     f"{cell('auprc_energy_last10'):>15} {paper}  {cell('auprc_grad_last10'):>15}  "
                     f"{cell('energy_auroc_last10'):>15}")
    if diffs:
        lines.append("")
        lines.append("paired difference Core-set+MEG - MEG (AUPRC E(x), same seeds):")
        for d in diffs:
            paper = f"   [paper {d['paper_diff']:+.3f}]" if d["paper_diff"] != "" else ""
            lines.append(f"  digit {d['digit']}: {d['diff_mean']:+.3f} +- {d['diff_std']:.3f} "
                         f"over {d['n_pairs']} seed(s){paper}")
    return "\n".join(lines)


_SCORES = (("auprc_energy_last10", "E(x)"), ("auprc_grad_last10", "‖∇E‖"))


def format_markdown(results: Sequence[Dict[str, Any]]) -> str:
    """The README's Table 2: per digit, both scores of both methods (mean +- std
    over seeds), the paired difference Core-set+MEG minus MEG (mean +- std over
    seeds, and in how many seeds it is positive), the paper's columns; then one
    line per score over all digits."""
    rows = {(r["digit"], r["method"]): r for r in summarize(results)}
    diffs = {(d["digit"], d["metric"]): d for key, _ in _SCORES for d in paired(results, key)}
    digits = sorted({r["digit"] for r in results})

    def cell(row: Any, key: str) -> str:
        if row is None:
            return ""
        mean, std = row[f"{key}_mean"], row[f"{key}_std"]
        return f"{mean:.3f}" if row["n_seeds"] == 1 else f"{mean:.3f} ± {std:.3f}"

    head = ["held-out digit", "seeds"]
    for _, name in _SCORES:
        head += [f"MEG {name}", f"Core-set+MEG {name}", f"Δ {name} (seeds > 0)"]
    head.append("paper MEG / Core-set+MEG (Δ)")
    lines = ["| " + " | ".join(head) + " |", "| " + " | ".join("---:" for _ in head) + " |"]
    for digit in digits:
        meg, cs = rows.get((digit, "MEG")), rows.get((digit, "Core-set+MEG"))
        n = {r["n_seeds"] for r in (meg, cs) if r is not None}
        cells = [str(digit), str(n.pop()) if len(n) == 1 else
                 f"{meg['n_seeds']} / {cs['n_seeds']}"]
        for key, _ in _SCORES:
            d = diffs.get((digit, key))
            delta = "" if d is None else (f"{d['diff_mean']:+.3f}" if d["n_pairs"] == 1 else
                                          f"{d['diff_mean']:+.3f} ± {d['diff_std']:.3f}")
            cells += [cell(meg, key), cell(cs, key),
                      f"{delta} ({d['n_positive']}/{d['n_pairs']})" if d else ""]
        paper = PAPER_TABLE2.get(digit)
        cells.append(f"{paper[1]:.3f} / {paper[2]:.3f} ({paper[2] - paper[1]:+.3f})" if paper else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    for key, name in _SCORES:
        ds = [diffs[(d, key)] for d in digits if (d, key) in diffs]
        if ds:
            means = [d["diff_mean"] for d in ds]
            lines.append(f"- {name}: Core-set+MEG ahead on {sum(m > 0 for m in means)} of "
                         f"{len(means)} digits (mean over seeds), mean difference "
                         f"{sum(means) / len(means):+.3f}; ahead in "
                         f"{sum(d['n_positive'] for d in ds)} of {sum(d['n_pairs'] for d in ds)} "
                         f"(digit, seed) pairs.")
    return "\n".join(lines) + "\n"


def run_grid(base: MEGConfig, out: Union[str, Path], digits: Sequence[int], seeds: Sequence[int],
             samplings: Sequence[str] = SAMPLINGS, *, resume: bool = False, tensorboard: bool = True,
             echo: Callable[[str], Any] = print) -> List[Dict[str, Any]]:
    """Run every (seed, digit, sampling); write ``runs.csv``, ``summary.csv``,
    ``paired.csv`` (both scores) and ``table.md`` (:func:`format_markdown`).

    ``base`` holds the shared settings; ``digit``, ``sampling`` and ``seed``
    are replaced.  Without ``resume`` an existing run directory is an error;
    with it, finished runs (same config) are read back and unfinished ones
    continue.
    """
    from smallgan.experiments.grid import finished_runs

    out = Path(out)
    if not digits or not seeds or not samplings:
        raise ValueError("digits, seeds and samplings must each name at least one value")
    configs = [dataclasses.replace(base, digit=d, sampling=s, seed=seed)
               for seed in seeds for d in digits for s in samplings]
    finished = finished_runs(configs, lambda c: _run_dir(out, c.digit, c.sampling, c.seed), resume)
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for cfg in configs:
        run_dir = _run_dir(out, cfg.digit, cfg.sampling, cfg.seed)
        result = finished.get(run_dir) or run(cfg, run_dir, resume=resume, tensorboard=tensorboard)
        results.append(result)
        echo(format_result(result) + f"  ({result['wall_s']:.0f} s)")
        write_csv([{k: r[k] for k in ("digit", "label", "sampling", "seed", "steps", *_METRICS,
                                         "n_evals", "wall_s")} for r in results], out / "runs.csv")
        write_csv(summarize(results), out / "summary.csv")
        diffs = [d for key, _ in _SCORES for d in paired(results, key)]
        if diffs:
            write_csv(diffs, out / "paired.csv")
        text = format_markdown(results)
        atomic_write(out / "table.md", lambda f: f.write(text), text=True)
    return results


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train meg-grid``."""
    add_config_arguments(parser, single=False)
    parser.add_argument("--digits", default="0-9",
                        help="held-out digits, e.g. 0-9 or 1,4,5,7,9 (default %(default)s)")
    parser.add_argument("--seeds", type=int, default=3,
                        help="number of seeds, 0 .. N-1 (default %(default)s)")
    parser.add_argument("--first-seed", type=int, default=0, help="default %(default)s")


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train meg-grid``."""
    from smallgan.training.trainer import ResumeError, TrainingInterrupted

    try:
        digits = parse_digits(args.digits)
        if args.seeds < 1:
            raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
        seeds = list(range(args.first_seed, args.first_seed + args.seeds))
        base = config_from_args(args, digit=digits[0], seed=seeds[0])
    except (ValueError, TypeError) as exc:
        print(f"smallgan train meg-grid: {exc}", file=sys.stderr)
        return 2
    try:
        results = run_grid(base, args.out, digits, seeds, resume=args.resume,
                           tensorboard=args.tensorboard)
    except ResumeError as exc:
        print(f"smallgan train meg-grid: {exc}", file=sys.stderr)
        return 2
    except TrainingInterrupted as exc:
        print(f"{exc}; continue with --resume", file=sys.stderr)
        return 130
    print(format_table(summarize(results), paired(results)))
    print(f"artifacts in {args.out}")
    return 0
