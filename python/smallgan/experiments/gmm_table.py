"""Table 1 from finished GMM grids, at any evaluated step, with paired differences.

    smallgan train gmm-table runs/table1 runs/gan-b256 --at 100000 --out docs/results/table1

Reads the run folders (``m<M>/<sampling>/seed<S>``) of one or more
``smallgan train gmm-grid`` outputs and writes ``OUT.csv`` and ``OUT.md``:
(and, without ``--at``, ``OUT-samples.png``: the final samples of one seed,
GAN and Small-GAN side by side for each m): one row per (m, method), mean +- sample std over seeds of

- recovered modes % (the paper's rule) and recovered with a high-quality
  sample % (the stricter rule), high-quality samples %;
- ``KL``: KL divergence (nats) of the per-mode histogram of the 10,000
  samples from uniform (:func:`smallgan.metrics.modes.kl_from_uniform`; 0 is
  perfectly balanced, ``log m`` all on one mode).  Runs that finished before
  it was logged get it from their ``samples.npz``, which holds the final
  evaluation's samples, so it is only known at the final step for them;
- seconds per generator step (the run's wall time over its steps);
- the paired difference to the *reference* GAN (the plain GAN runs of the
  first grid given) of the same m and seed: mean +- std over the seeds both
  have, for recovered %, high-quality % and KL.

A method is named by its run label (``GAN``, ``Small-GAN``, ``Small-GAN
(prior only)`` ...) plus every setting that differs from the reference GAN
(batch size, width, learning rates, steps, core-set factors), so large-batch
GAN rows and ablation grids sit in one table with the main grid.

``--at STEP`` reads each run's ``metrics.csv`` row at that step (runs must
have been evaluated there: ``--eval-every``); without it, each run's final
result.  Unfinished runs count if they have reached ``STEP``.  It trains
nothing.
"""
from __future__ import annotations

import argparse
import csv
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from smallgan.atomic import atomic_write
from smallgan.experiments.gmm import paper_columns
from smallgan.experiments.grid import mean_std, write_csv

__all__ = ["collect", "tabulate", "format_markdown", "add_arguments", "run_from_args"]

_METRICS = ("recovered_pct", "recovered_hq_pct", "high_quality_pct", "kl_uniform")
_PAIRED = ("recovered_pct", "high_quality_pct", "kl_uniform")
#: settings that name a method when they differ from the reference GAN's
_NAMED = (("batch_size", "batch {}"), ("hidden", "width {}"), ("lr_g", "lr_g {:g}"),
          ("lr_d", "lr_d {:g}"), ("steps", "{} steps"), ("loss", "{} loss"))


def _read_rows(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _label(gmm: Dict[str, Any]) -> str:
    from smallgan.training.trainer import run_label

    return run_label(gmm["sampling"], gmm.get("coreset_prior", True), gmm.get("coreset_target", True))


def _method(gmm: Dict[str, Any], reference: Optional[Dict[str, Any]]) -> str:
    parts = []
    if reference is not None:
        for key, fmt in _NAMED:
            if gmm.get(key) != reference.get(key):
                parts.append(fmt.format(gmm.get(key)))
    if gmm["sampling"] == "coreset":
        factors = []
        if gmm.get("coreset_prior", True):
            factors.append(f"prior x{gmm['prior_factor']}")
        if gmm.get("coreset_target", True):
            factors.append(f"target x{gmm['target_factor']}")
        if (gmm["prior_factor"], gmm["target_factor"]) != (4, 8):
            parts.append(", ".join(factors))
    return _label(gmm) + (f" ({', '.join(parts)})" if parts else "")


def _run_dirs(grid: Path) -> List[Path]:
    return sorted(p.parent for p in grid.glob("m*/*/seed*/config.json"))


def collect(grids: Sequence[Union[str, Path]], at: Optional[int] = None) -> List[Dict[str, Any]]:
    """One record per run of ``grids`` at step ``at`` (``None``: its final result).

    Runs that have not reached ``at`` (or not finished, without ``at``) are
    left out.  Raises ``ValueError`` when a run reached ``at`` without being
    evaluated there, or when nothing is found.
    """
    from smallgan.experiments.gmm_grid import with_kl

    grids = [Path(g) for g in grids]
    for g in grids:
        if not g.is_dir():
            raise FileNotFoundError(f"no grid directory {str(g)!r}")
    reference = None
    records: List[Dict[str, Any]] = []
    for grid in grids:
        for run in _run_dirs(grid):
            gmm = json.loads((run / "config.json").read_text())["experiment"]["gmm"]
            if reference is None and gmm["sampling"] == "random":
                reference = gmm
            done = run / "result.json"
            final = with_kl(json.loads(done.read_text()), run) if done.exists() else None
            if at is None or (final is not None and at == final["steps"]):
                if final is None:
                    continue
                rec = {k: float(final[k]) for k in _METRICS}
                step = final["steps"]
            else:
                rows = _read_rows(run / "metrics.csv") if (run / "metrics.csv").exists() else []
                row = next((r for r in rows if int(r["step"]) == at), None)
                if row is None:
                    if any(int(r["step"]) > at for r in rows) or (final and final["steps"] > at):
                        raise ValueError(f"{run} was not evaluated at step {at} "
                                         f"(its metrics.csv has steps "
                                         f"{[int(r['step']) for r in rows]})")
                    continue  # not there yet
                rec = {k: float(row[k]) if row.get(k, "") != "" else math.nan for k in _METRICS}
                step = at
            rec.update(grid=grid.name, run=str(run), modes=int(gmm["modes"]), seed=int(gmm["seed"]),
                       step=step, sampling=gmm["sampling"], gmm=gmm,
                       s_per_step=(final["wall_s"] / final["steps"]
                                   if final and final["steps"] else math.nan))
            records.append(rec)
    if not records:
        raise ValueError(f"no run {'finished' if at is None else f'evaluated at step {at}'} "
                         f"under {[str(g) for g in grids]}")
    for rec in records:
        rec["method"] = _method(rec.pop("gmm"), reference)
    return records


def _stats(values: Sequence[float]) -> tuple:
    values = [v for v in values if not math.isnan(v)]
    return mean_std(values) if values else (math.nan, math.nan)


def tabulate(records: Sequence[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Rows per (m, method): means, stds, paired differences to the reference GAN, paper."""
    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    order: Dict[str, int] = {}
    for r in records:
        groups.setdefault((r["modes"], r["method"]), []).append(r)
        order.setdefault(r["method"], len(order))
    gan = {(r["modes"], r["seed"]): r for r in records if r["method"] == "GAN"}
    rows = []
    for (m, method), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] != "GAN",
                                                                  order[kv[0][1]])):
        row: Dict[str, Any] = {"modes": m, "method": method, "n_seeds": len(rs),
                               "seeds": " ".join(str(r["seed"]) for r in sorted(rs, key=lambda r: r["seed"])),
                               "step": rs[0]["step"]}
        for k in _METRICS:
            row[f"{k}_mean"], row[f"{k}_std"] = _stats([r[k] for r in rs])
            # runs evaluated before KL was logged have no KL at earlier steps
            row[f"{k}_n"] = sum(not math.isnan(r[k]) for r in rs)
        timed = [r["s_per_step"] for r in rs if not math.isnan(r["s_per_step"])]
        row["s_per_step_median"] = statistics.median(timed) if timed else math.nan
        pairs = [(r, gan[(m, r["seed"])]) for r in rs if (m, r["seed"]) in gan] if method != "GAN" else []
        row["n_pairs"] = len(pairs)
        for k in _PAIRED:
            d = [a[k] - b[k] for a, b in pairs]
            row[f"diff_{k}_mean"], row[f"diff_{k}_std"] = _stats(d) if pairs else (math.nan, math.nan)
            row[f"diff_{k}_n"] = sum(not math.isnan(x) for x in d)
        row.update(paper_columns(m, method))
        rows.append(row)
    return rows


def _pm(mean: float, std: float, digits: int = 1, n: Optional[int] = None,
        of: Optional[int] = None) -> str:
    """``mean ± std``; ``n/a`` without values; ``(n of N)`` when only ``n`` of ``of`` runs had one."""
    if math.isnan(mean):
        return "n/a"
    text = f"{mean:.{digits}f} ± {std:.{digits}f}"
    return text if n is None or of is None or n >= of else f"{text} ({n} of {of})"


def format_markdown(rows: Sequence[Dict[str, Any]]) -> str:
    """The README's table: one line per (m, method)."""
    head = ("| m | method | seeds | modes % | paper | HQ % | paper | modes w/ HQ % | KL (nats) "
            "| Δ modes vs GAN | Δ HQ vs GAN | Δ KL vs GAN | ms/step |")
    lines = [head, "| ---: | --- " + "| ---: " * 11 + "|"]
    for r in rows:
        def paper(k: str) -> str:
            return f"{r[k]:.2f}" if r[k] != "" else ""

        def diff(k: str, digits: int = 1) -> str:
            if not r["n_pairs"]:
                return ""
            return ("+" if r[f"diff_{k}_mean"] >= 0 else "") + _pm(
                r[f"diff_{k}_mean"], r[f"diff_{k}_std"], digits, r[f"diff_{k}_n"], r["n_pairs"])

        ms = r["s_per_step_median"] * 1e3
        lines.append(
            f"| {r['modes']} | {r['method']} | {r['n_seeds']} "
            f"| {_pm(r['recovered_pct_mean'], r['recovered_pct_std'])} | {paper('paper_recovered_pct')} "
            f"| {_pm(r['high_quality_pct_mean'], r['high_quality_pct_std'])} "
            f"| {paper('paper_high_quality_pct')} "
            f"| {_pm(r['recovered_hq_pct_mean'], r['recovered_hq_pct_std'])} "
            f"| {_pm(r['kl_uniform_mean'], r['kl_uniform_std'], 3, r['kl_uniform_n'], r['n_seeds'])} "
            f"| {diff('recovered_pct')} | {diff('high_quality_pct')} | {diff('kl_uniform', 3)} "
            f"| {'' if math.isnan(ms) else f'{ms:.2f}'} |")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("grids", nargs="+", type=Path,
                        help="gmm-grid output directories; the first one's GAN runs are the "
                             "reference for the paired differences")
    parser.add_argument("--at", type=int, default=None,
                        help="read every run at this step (default: its final result)")
    parser.add_argument("--out", type=Path, required=True,
                        help="output prefix: writes OUT.csv, OUT.md and (without --at) OUT-samples.png")
    parser.add_argument("--samples-seed", type=int, default=0,
                        help="seed whose final samples OUT-samples.png shows, GAN and "
                             "Small-GAN of the first grid side by side (default %(default)s)")


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train gmm-table``."""
    from smallgan.experiments.gmm_grid import plot_grid

    try:
        if args.at is not None and args.at <= 0:
            raise ValueError(f"--at must be a positive step, got {args.at}")
        rows = tabulate(collect(args.grids, args.at))
    except (FileNotFoundError, ValueError) as exc:
        print(f"smallgan train gmm-table: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(rows, out.with_suffix(".csv"))
    text = format_markdown(rows) + "\n"
    atomic_write(out.with_suffix(".md"), lambda f: f.write(text), text=True)
    print(text, end="")
    written = [out.with_suffix(".csv"), out.with_suffix(".md")]
    if args.at is None:  # the runs keep only their final samples
        written.append(out.parent / f"{out.name}-samples.png")
        plot_grid(Path(args.grids[0]), sorted({r["modes"] for r in rows}), args.samples_seed,
                  ("random", "coreset"), written[-1])
    print(f"{sum(r['n_seeds'] for r in rows)} runs: " + ", ".join(map(str, written)))
    return 0
