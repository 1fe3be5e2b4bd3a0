"""Run logging: CSV files, TensorBoard events and a tqdm progress bar.

Two CSV files, both with a ``step`` column: ``log.csv`` (training scalars:
losses, step time, selection wait) and ``metrics.csv`` (evaluation hooks).
Columns are fixed by the first row written.  On resume, rows after the
checkpoint's step are dropped so the files read as one uninterrupted run;
TensorBoard's ``purge_step`` does the same for the event files.

Example
-------
>>> import tempfile
>>> log = RunLogger(tempfile.mkdtemp(), total_steps=10, tensorboard=False, progress=False)
>>> log.log_train(1, {"d_loss": 1.0})
>>> log.close()
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from tqdm.auto import tqdm

from smallgan.atomic import atomic_write

__all__ = ["RunLogger"]


def _truncate_csv(path: Path, max_step: int) -> None:
    """Drop rows whose step is after ``max_step`` (work done after the checkpoint)."""
    if not path.exists():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    header, body = rows[0], rows[1:]
    keep = [r for r in body if r and int(r[0]) <= max_step]
    def write(f) -> None:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(keep)

    atomic_write(path, write, text=True)


class _CsvLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: Optional[list] = None
        if path.exists() and path.stat().st_size > 0:
            with open(path, newline="") as f:
                self.fields = next(csv.reader(f), None)

    def write(self, step: int, values: Mapping[str, Any]) -> None:
        new = self.fields is None
        if new:
            self.fields = ["step"] + list(values)
        with open(self.path, "a", newline="") as f:
            w = csv.DictWriter(f, fieldnames=self.fields, extrasaction="ignore", restval="")
            if new:
                w.writeheader()
            w.writerow({"step": step, **values})


def _fmt(v: float) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


class RunLogger:
    """Writes a run's scalars to CSV and TensorBoard and drives the progress bar.

    Parameters
    ----------
    out_dir : str or Path
        Run directory; ``log.csv``, ``metrics.csv`` and ``tb/`` go there.
    total_steps : int
        Length of the progress bar.
    start_step : int
        Step the run starts from (> 0 when resuming).
    tensorboard : bool
        Write TensorBoard events with ``torch.utils.tensorboard``.
    progress : bool
        Show a tqdm bar (tqdm hides it by itself when stderr is not a terminal).

    Thread safety
    -------------
    Not thread safe; use from the training loop only.
    """

    def __init__(self, out_dir: Union[str, Path], total_steps: int, start_step: int = 0,
                 tensorboard: bool = True, progress: bool = True, desc: str = "train") -> None:
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        train_csv, metrics_csv = self.out_dir / "log.csv", self.out_dir / "metrics.csv"
        if start_step > 0:
            _truncate_csv(train_csv, start_step)
            _truncate_csv(metrics_csv, start_step)
        else:
            for p in (train_csv, metrics_csv):
                if p.exists():
                    p.unlink()
        self._train = _CsvLog(train_csv)
        self._metrics = _CsvLog(metrics_csv)
        self._writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(self.out_dir / "tb"),
                                         purge_step=start_step if start_step > 0 else None)
        self._bar = tqdm(total=total_steps, initial=start_step, desc=desc, unit="step",
                         dynamic_ncols=True, disable=None if progress else True)
        self._postfix: Dict[str, str] = {}

    def log_train(self, step: int, scalars: Mapping[str, float]) -> None:
        """Record training scalars at ``step`` (CSV, TensorBoard ``train/*``, bar)."""
        self._train.write(step, scalars)
        if self._writer is not None:
            for k, v in scalars.items():
                self._writer.add_scalar(f"train/{k}", v, step)
        for k in ("d_loss", "g_loss"):
            if k in scalars:
                self._postfix[k] = _fmt(float(scalars[k]))
        self._bar.set_postfix(self._postfix, refresh=False)

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record evaluation results at ``step`` (CSV, TensorBoard ``metrics/*``, bar)."""
        finite = {k: float(v) for k, v in metrics.items()
                  if isinstance(v, (int, float)) and math.isfinite(float(v))}
        self._metrics.write(step, finite)
        if self._writer is not None:
            for k, v in finite.items():
                self._writer.add_scalar(f"metrics/{k}", v, step)
        for k, v in list(finite.items())[:3]:  # the bar has room for a few
            self._postfix[k] = _fmt(v)
        self._bar.set_postfix(self._postfix, refresh=False)

    def advance(self, n: int = 1) -> None:
        """Move the progress bar ``n`` steps."""
        self._bar.update(n)

    def write(self, message: str) -> None:
        """Print a line without breaking the progress bar."""
        self._bar.write(message)

    def close(self) -> None:
        """Flush and close everything; safe to call twice."""
        self._bar.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
