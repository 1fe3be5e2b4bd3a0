"""Per-step cost of Small-GAN's core-sets on the real SN-GAN step: the paper's Table 5.

For every batch size (64, 128, 256) and every ``n_dis`` (1, and 5 as SN-GAN
trains on CIFAR-10) it times the SN-GAN CIFAR-10 model (32x32x3 images) with
three kinds of batches, in one process on one device:

``random``
    SN-GAN: plain random prior draws and a shuffled pass over the data.
``coreset-sync``
    Small-GAN with every selection made synchronously (``prefetch=0``): the
    loop waits for each core-set, as the paper's code did.
``coreset-prefetch``
    Small-GAN as smallgan runs it: selections ``prefetch`` batches ahead on
    the engine's background pool, overlapping the training step.

Core-sets: prior factor 4 on 128-d ``z``, target factor 8 on 32-d embeddings
(paper Sec. 4).  The result: time for ``windows * window`` updates (50 by
default, the paper's count), time per update, and the time core-sets add per
update, in milliseconds and as a ratio of the random-batch update, next to
the paper's +24 ms.

Protocol (our choices where the paper is silent)
-------------------------------------------------
- An *update* is one training step of :class:`~smallgan.training.trainer.Trainer`
  (``n_dis`` discriminator updates and one generator update), run by the
  trainer's own code (:meth:`Trainer._iteration`): same samplers, data
  loader, pinned copies, losses and Adam updates as ``smallgan train``.
- The three variants of a cell (batch, ``n_dis``) live side by side (same
  initial weights), each first runs ``warmup`` untimed updates (allocator,
  cuDNN heuristics, the samplers' threads and first selections), then
  ``windows`` rounds: in each round every variant runs one window of
  ``window`` updates, in an order rotated from round to round so that drifts
  hit all variants alike.
- A window is timed from one ``torch.cuda.synchronize()`` to the next; none
  happens inside it: the losses stay on the device (read once, after the
  last window, as a finiteness check), so the host queues work ahead
  exactly as far as the step lets it.  ``host ms``: the part of the window
  the host spent queueing (before the closing synchronise); when it is
  below the update time the step is device-bound and host-side costs hide.
- ``ms / update``: median over windows; ``added ms`` and ``ratio``: medians
  over rounds of the variant's window minus (over) the random window of the
  same round (paired).  ``wait``: time the loop blocked on a selection.
- Real data: ``dataset_size`` random images (CIFAR-10's 50,000 by default)
  in host memory with random ``embedding_dim``-d embeddings: selection cost
  depends on sizes, not content, and this keeps disk and Inception out.

On a CPU the models compete with the selection threads for the same cores,
so only GPU numbers answer the paper's question; ``--tiny`` is a CPU smoke
test of the same code path.

Example
-------
>>> cfg = TimingConfig.tiny()                         # doctest: +SKIP
>>> result = run(cfg, "runs/timing")                  # doctest: +SKIP
>>> print(format_markdown(result))                    # doctest: +SKIP
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

__all__ = ["TimingConfig", "PAPER_OVERHEAD_S", "MODES", "Cell", "run", "format_markdown",
           "format_table", "add_arguments", "run_from_args"]

#: Paper (Sec. 4.6 / Table 5): Small-GAN's extra seconds per training step.
PAPER_OVERHEAD_S = 0.024

#: The variants of every cell: name -> (label, sampling, prefetched, planner).
MODES: Dict[str, Tuple[str, str, bool, str]] = {
    "random": ("SN-GAN, random batches", "random", False, "thread"),
    "coreset-sync": ("Small-GAN, synchronous core-sets", "coreset", False, "thread"),
    "coreset-prefetch": ("Small-GAN, prefetched core-sets", "coreset", True, "thread"),
    "coreset-prefetch-caller": ("Small-GAN, prefetched core-sets, planned in the loop",
                                "coreset", True, "caller"),
}

_OUTPUTS = ("timing.json", "timing.csv", "timing.md")


def _positive_ints(name: str, values: Any) -> Tuple[int, ...]:
    values = tuple(values)
    if not values or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in values):
        raise ValueError(f"{name} must be a non-empty list of positive integers, got {values!r}")
    return values


@dataclass
class TimingConfig:
    """One timing run; the defaults are the paper's protocol (see module doc)."""

    batch_sizes: Tuple[int, ...] = (64, 128, 256)
    n_dis: Tuple[int, ...] = (1, 5)
    window: int = 10
    windows: int = 5
    warmup: int = 5
    prior_factor: int = 4
    target_factor: int = 8
    z_dim: int = 128
    g_ch: int = 256
    d_ch: int = 128
    dataset_size: int = 50_000
    embedding_dim: int = 32
    prefetch: int = 2
    device: str = "auto"
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    seed: int = 0

    def __post_init__(self) -> None:
        self.batch_sizes = _positive_ints("batch_sizes", self.batch_sizes)
        self.n_dis = _positive_ints("n_dis", self.n_dis)
        for name in ("window", "windows", "prior_factor", "target_factor", "z_dim", "g_ch",
                     "d_ch", "dataset_size", "embedding_dim", "prefetch"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("warmup", "threads", "seed"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        need = max(self.batch_sizes) * self.target_factor
        if self.dataset_size < need:
            raise ValueError(f"dataset_size={self.dataset_size} is smaller than the largest "
                             f"candidate set ({max(self.batch_sizes)} * {self.target_factor} "
                             f"= {need})")

    @classmethod
    def tiny(cls, **override: Any) -> "TimingConfig":
        """A CPU smoke-test size: same protocol and code path, small models and batches."""
        kw: Dict[str, Any] = dict(batch_sizes=(8, 16), n_dis=(1, 2), window=2, windows=2,
                                  warmup=1, z_dim=16, g_ch=8, d_ch=8, dataset_size=256,
                                  embedding_dim=16, device="cpu")
        kw.update(override)
        return cls(**kw)

    @property
    def updates(self) -> int:
        """Timed updates per variant and cell."""
        return self.window * self.windows

    def resolved_device(self) -> str:
        import torch

        if self.device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return self.device

    def to_dict(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d["batch_sizes"], d["n_dis"] = list(self.batch_sizes), list(self.n_dis)
        return d


def _synchronizer(device: str) -> Callable[[], None]:
    import torch

    dev = torch.device(device)
    if dev.type == "cuda":
        return lambda: torch.cuda.synchronize(dev)
    return lambda: None


class _Rig:
    """One variant's trainer and batch streams, alive across its windows."""

    def __init__(self, cfg: TimingConfig, mode: str, batch: int, n_dis: int, data: Any,
                 device: str) -> None:
        import torch

        from smallgan.models.sngan import SNGANDiscriminator, SNGANGenerator
        from smallgan.training.trainer import TrainConfig, Trainer

        _, sampling, prefetched, planner = MODES[mode]
        torch.manual_seed(cfg.seed)  # the same initial weights for every variant
        g = SNGANGenerator(cfg.z_dim, cfg.g_ch)
        d = SNGANDiscriminator(cfg.d_ch)
        tc = TrainConfig(
            steps=cfg.warmup + cfg.updates, batch_size=batch, z_dim=cfg.z_dim, prior="normal",
            loss="hinge", n_dis=n_dis, optimizer="adam", lr_g=2e-4, lr_d=2e-4,
            betas_g=(0.0, 0.9), betas_d=(0.0, 0.9), sampling=sampling,
            prior_factor=cfg.prior_factor, target_factor=cfg.target_factor, device=device,
            seed=cfg.seed, progress=False, tensorboard=False,
            prefetch=cfg.prefetch if prefetched else 0, planner=planner)
        # fit() is never called: nothing is written to the run directory
        self.trainer = Trainer(tc, g, d, data, Path("timing-unused"))
        self.prior = self.trainer._make_prior()
        self.sampler = self.trainer._make_real_sampler()
        self.real = self.trainer._real_batches_from(self.sampler)
        self.losses: Tuple[Any, Any] = (None, None)

    def run(self, updates: int) -> float:
        """``updates`` training steps, never waiting for the device; selection wait (s)."""
        wait = 0.0
        for _ in range(updates):
            ld, lg, wait_prior, wait_target, _ = self.trainer._iteration(
                self.prior, self.real, self.sampler)
            wait += wait_prior + wait_target
        self.losses = (ld, lg)
        return wait

    def close(self) -> None:
        self.real.close()
        for s in (self.sampler, self.prior):
            s.close()


class Cell:
    """The variants of one (batch, ``n_dis``) cell, timed in interleaved rounds.

    Parameters
    ----------
    config : TimingConfig
    batch, n_dis : int
    data : smallgan.training.trainer.RealData
        Images and their embeddings (see :func:`make_data`).
    device : str
    modes : sequence of str
        Keys of :data:`MODES`; the first is the baseline of ``added_ms`` and
        ``ratio``.

    Use :meth:`warm_up`, then :meth:`round` as often as wanted, then
    :meth:`summary`; :meth:`close` (or ``with``) stops the samplers.
    Thread safety: one thread.
    """

    def __init__(self, config: TimingConfig, batch: int, n_dis: int, data: Any, device: str,
                 modes: Sequence[str] = tuple(MODES)) -> None:
        unknown = [m for m in modes if m not in MODES]
        if unknown or not modes:
            raise ValueError(f"modes must be some of {list(MODES)}, got {list(modes)!r}")
        self.config, self.batch, self.n_dis, self.modes = config, batch, n_dis, tuple(modes)
        self._sync = _synchronizer(device)
        self._rigs: Dict[str, _Rig] = {}
        try:
            for m in self.modes:
                self._rigs[m] = _Rig(config, m, batch, n_dis, data, device)
        except BaseException:
            self.close()
            raise
        # per mode, per window: (wall s, host s, selection wait s)
        self.windows: Dict[str, List[Tuple[float, float, float]]] = {m: [] for m in self.modes}
        self._rounds = 0

    def warm_up(self) -> None:
        for m in self.modes:
            self._rigs[m].run(self.config.warmup)
        self._sync()

    def round(self) -> None:
        """One window of every variant, in an order rotated each round."""
        k = self._rounds % len(self.modes)
        for m in self.modes[k:] + self.modes[:k]:
            self._sync()
            t0 = time.perf_counter()
            wait = self._rigs[m].run(self.config.window)
            t_host = time.perf_counter()
            self._sync()
            t1 = time.perf_counter()
            self.windows[m].append((t1 - t0, t_host - t0, wait))
        self._rounds += 1

    def summary(self) -> Dict[str, Dict[str, Any]]:
        """Per mode: seconds, ms per update, paired added ms and ratio, host and wait ms."""
        import math

        w = self.config.window
        base = [x[0] for x in self.windows[self.modes[0]]]
        out: Dict[str, Dict[str, Any]] = {}
        for m in self.modes:
            wall = [x[0] for x in self.windows[m]]
            if not wall:
                raise RuntimeError("no window was timed: call round() first")
            ld, lg = self._rigs[m].losses if m in self._rigs else (None, None)
            finite = all(v is None or math.isfinite(float(v)) for v in (ld, lg))
            if not finite:
                raise RuntimeError(f"{m}: non-finite loss after timing (d {float(ld)}, "
                                   f"g {float(lg)})")
            out[m] = {
                "mode": m, "label": MODES[m][0], "batch": self.batch, "n_dis": self.n_dis,
                "updates": len(wall) * w,
                "seconds": sum(wall),
                "ms_per_update": statistics.median(wall) / w * 1e3,
                "added_ms": statistics.median(a - b for a, b in zip(wall, base)) / w * 1e3,
                "ratio": statistics.median(a / b for a, b in zip(wall, base)),
                "host_ms": statistics.median(x[1] for x in self.windows[m]) / w * 1e3,
                "wait_ms": statistics.median(x[2] for x in self.windows[m]) / w * 1e3,
                "windows_s": wall,
            }
        return out

    def close(self) -> None:
        rigs, self._rigs = self._rigs, {}
        for rig in rigs.values():
            rig.close()

    def __enter__(self) -> "Cell":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()


def make_data(config: TimingConfig) -> Any:
    """``dataset_size`` random CIFAR-shaped images in host memory, random embeddings."""
    import numpy as np
    import torch

    from smallgan.data.points import collate_rows
    from smallgan.training.trainer import RealData

    gen = torch.Generator().manual_seed(config.seed)
    images = torch.rand(config.dataset_size, 3, 32, 32, generator=gen).mul_(2).sub_(1)
    emb = np.random.default_rng(config.seed).standard_normal(
        (config.dataset_size, config.embedding_dim), dtype=np.float32)
    return RealData(_Rows(images), embeddings=emb, collate_fn=collate_rows)


def run(config: TimingConfig, out_dir: Union[str, Path, None] = None, *,
        log: Optional[Callable[[str], None]] = None) -> Dict[str, Any]:
    """Time every cell; returns the result (see :func:`format_markdown`).

    Parameters
    ----------
    config : TimingConfig
    out_dir : path, optional
        Where ``timing.json`` (everything, raw window times included),
        ``timing.csv`` (one row per cell and variant) and ``timing.md`` (the
        tables) go; rewritten after every cell, so a run cut short keeps
        the cells it finished.
    log : callable, optional
        Called with a line of progress after every cell.
    """
    import torch

    if not isinstance(config, TimingConfig):
        raise TypeError(f"config must be a TimingConfig, got {type(config).__name__}")
    device = config.resolved_device()
    if config.threads:
        torch.set_num_threads(config.threads)
    out = Path(out_dir) if out_dir is not None else None
    t_start = time.perf_counter()
    data = make_data(config)
    result: Dict[str, Any] = {"machine": _machine(device), "config": config.to_dict(),
                              "paper_added_ms": PAPER_OVERHEAD_S * 1e3, "rows": [],
                              "complete": False}
    for n_dis in config.n_dis:
        for batch in config.batch_sizes:
            t0 = time.perf_counter()
            with Cell(config, batch, n_dis, data, device) as cell:
                cell.warm_up()
                for _ in range(config.windows):
                    cell.round()
                summary = cell.summary()
            result["rows"] += [summary[m] for m in MODES]
            result["seconds"] = time.perf_counter() - t_start
            if out is not None:
                _write(out, result)
            if log is not None:
                log(f"[timing] n_dis {n_dis}, batch {batch}: random "
                    f"{summary['random']['ms_per_update']:.2f} ms/update, synchronous core-sets "
                    f"{summary['coreset-sync']['added_ms']:+.3f} ms, prefetched "
                    f"{summary['coreset-prefetch']['added_ms']:+.3f} ms, planned in the loop "
                    f"{summary['coreset-prefetch-caller']['added_ms']:+.3f} ms "
                    f"({time.perf_counter() - t0:.1f} s; {result['seconds']:.1f} s so far)")
    result["complete"] = True
    if out is not None:
        _write(out, result)
    return result


def _write(out: Path, result: Dict[str, Any]) -> None:
    from smallgan.atomic import atomic_write

    atomic_write(out / "timing.json",
                 lambda f: f.write(json.dumps(result, indent=2) + "\n"), text=True)
    atomic_write(out / "timing.csv", lambda f: f.write(format_csv(result)), text=True)
    atomic_write(out / "timing.md", lambda f: f.write(format_markdown(result) + "\n"), text=True)


class _Rows:
    """Rows of an in-memory tensor, a whole batch per fetch (``__getitems__``)."""

    def __init__(self, x: Any) -> None:
        self.x = x

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> Any:
        return self.x[i]

    def __getitems__(self, idx: List[int]) -> Any:
        import torch

        return self.x[torch.as_tensor(idx, dtype=torch.long)]


def _machine(device: str) -> Dict[str, Any]:
    import os
    import platform

    import torch

    from smallgan._config import config as engine_config

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name")), cpu)
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    info = engine_config()
    dev = torch.device(device)
    gpu = torch.cuda.get_device_name(dev) if dev.type == "cuda" else None
    return {"device": device, "gpu": gpu, "cpu": cpu, "cpus": cpus, "torch": torch.__version__,
            "cuda": torch.version.cuda, "torch_threads": torch.get_num_threads(),
            "simd_level": info["simd_level"], "pool_threads": info["pool_threads"],
            "cuda_kernel": info["cuda_kernel"],
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


_CSV_FIELDS = ("n_dis", "batch", "mode", "label", "updates", "seconds", "ms_per_update",
               "added_ms", "ratio", "host_ms", "wait_ms")


def format_csv(result: Dict[str, Any]) -> str:
    """One line per cell and variant (no raw window times: see ``timing.json``)."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=_CSV_FIELDS + ("paper_added_ms",), lineterminator="\n")
    w.writeheader()
    for r in result["rows"]:
        w.writerow({**{k: r[k] for k in _CSV_FIELDS}, "paper_added_ms": result["paper_added_ms"]})
    return buf.getvalue()


def format_markdown(result: Dict[str, Any]) -> str:
    """The full table and the overhead summary, with the protocol and machine."""
    c, m = result["config"], result["machine"]
    n = c["window"] * c["windows"]
    where = m["gpu"] or m["cpu"]
    lines = [
        f"## Table 5: time per update, SN-GAN vs Small-GAN ({m['device']}: {where})",
        "",
        f"SN-GAN CIFAR-10 model (G {c['g_ch']} ch, D {c['d_ch']} ch, z {c['z_dim']}), 32x32x3 "
        f"images, hinge loss, Adam, fp32; core-sets: prior factor {c['prior_factor']}, target "
        f"factor {c['target_factor']} on {c['embedding_dim']}-d embeddings, prefetch "
        f"{c['prefetch']}. Per cell: {c['warmup']} warm-up updates, then {c['windows']} rounds "
        f"of one {c['window']}-update window per variant (order rotated), synchronised only at "
        f"window edges; medians over windows, `added` and `ratio` paired by round against "
        f"random batches. An update = n_dis D updates + 1 G update.",
        f"torch {m['torch']} (CUDA {m['cuda']}), {m['cpu']}, {m['cpus']} CPUs, "
        f"{m['torch_threads']} torch threads, engine {m['simd_level']} with {m['pool_threads']} "
        f"pool threads, CUDA k-center kernel: {m['cuda_kernel']}; {m['date']}"
        + ("" if result.get("complete") else " (INCOMPLETE: run cut short)"),
        "",
        f"| n_dis | batch | batches | {n} updates (s) | ms / update | added ms / update | "
        f"ratio | host ms / update | wait ms / update |",
        "| ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in result["rows"]:
        lines.append(
            f"| {r['n_dis']} | {r['batch']} | {r['label']} | {r['seconds']:.3f} | "
            f"{r['ms_per_update']:.2f} | {r['added_ms']:+.3f} | {r['ratio']:.4f} | "
            f"{r['host_ms']:.2f} | {r['wait_ms']:.3f} |")
    lines += [
        "",
        "### Prefetched core-sets: time added per update",
        "",
        "| n_dis | batch | random ms / update | prefetched: added ms | prefetched: ratio | "
        "planned in the loop: added ms | planned in the loop: ratio | "
        "synchronous: added ms | paper: added ms |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    by = {(r["n_dis"], r["batch"], r["mode"]): r for r in result["rows"]}
    for nd in c["n_dis"]:
        for b in c["batch_sizes"]:
            if (nd, b, "random") not in by:
                continue
            rnd, syn, pre, cal = (by[(nd, b, k)] for k in ("random", "coreset-sync",
                                                           "coreset-prefetch",
                                                           "coreset-prefetch-caller"))
            lines.append(
                f"| {nd} | {b} | {rnd['ms_per_update']:.2f} | {pre['added_ms']:+.3f} | "
                f"{pre['ratio']:.4f} | {cal['added_ms']:+.3f} | {cal['ratio']:.4f} | "
                f"{syn['added_ms']:+.3f} | {result['paper_added_ms']:.0f} |")
    lines.append("")
    lines.append(f"Paper (Sinha et al. 2020, Table 5): core-sets add {result['paper_added_ms']:.0f} "
                 f"ms per update. `host ms` below `ms / update`: the step is device-bound and "
                 f"host-side work (selection included) hides behind it. `wait`: time the loop "
                 f"blocked on a core-set selection (random batches: drawing z).")
    return "\n".join(lines)


format_table = format_markdown  # the name the CLI used before


# ---------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train timing``."""
    d = TimingConfig()
    parser.add_argument("--tiny", action="store_true",
                        help="CPU smoke-test sizes (small models and batches); other options "
                             "given explicitly still apply")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=None,
                        help=f"batch sizes (default {' '.join(map(str, d.batch_sizes))})")
    parser.add_argument("--n-dis", type=int, nargs="+", default=None,
                        help=f"D updates per G update, one table block each "
                             f"(default {' '.join(map(str, d.n_dis))})")
    for name, help_ in (("window", "updates per timed window"),
                        ("windows", "timed windows (rounds) per variant"),
                        ("warmup", "untimed updates per variant first"),
                        ("prior-factor", "prior over-sampling"),
                        ("target-factor", "real over-sampling"),
                        ("z-dim", "latent size"), ("g-ch", "generator width"),
                        ("d-ch", "discriminator width"), ("dataset-size", "synthetic images"),
                        ("embedding-dim", "synthetic embedding size"),
                        ("prefetch", "batches selected ahead in the prefetched variant"),
                        ("threads", "torch CPU threads (0: default)"), ("seed", "seed")):
        attr = name.replace("-", "_")
        parser.add_argument(f"--{name}", type=int, default=None,
                            help=f"{help_} (default {getattr(d, attr)})")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available)")
    parser.add_argument("--out", type=Path, default=None,
                        help="write timing.json, timing.csv and timing.md here")


def config_from_args(args: argparse.Namespace) -> TimingConfig:
    """A TimingConfig from parsed arguments (``--tiny`` first, then explicit options)."""
    names = {f.name for f in dataclasses.fields(TimingConfig)}
    kw = {k: v for k, v in vars(args).items() if k in names and v is not None}
    for k in ("batch_sizes", "n_dis"):
        if k in kw:
            kw[k] = tuple(kw[k])
    return TimingConfig.tiny(**kw) if args.tiny else TimingConfig(**kw)


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train timing``."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"smallgan train timing: {exc}", file=sys.stderr)
        return 2
    result = run(config, args.out, log=lambda line: print(line, flush=True))
    print(format_markdown(result))
    if args.out is not None:
        print(f"tables in {args.out / 'timing.md'}, {args.out / 'timing.csv'}; "
              f"raw windows in {args.out / 'timing.json'}")
    return 0
