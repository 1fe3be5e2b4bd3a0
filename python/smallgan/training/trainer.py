"""The training loop every smallgan experiment shares.

An experiment supplies a generator, a discriminator, its real data
(:class:`RealData`: a map-style dataset, plus an embedding of every row when
real batches are chosen by core-set) and optionally an evaluation hook and a
sample-plot function; :class:`TrainConfig` says how to train.  The
:class:`Trainer` then runs the standard alternating GAN updates and looks
after everything around them: the output directory, logs, sample plots,
checkpoints, resuming and Ctrl-C.

Sampling (the paper's Algorithm 1)
----------------------------------
With ``sampling="coreset"`` every prior batch is the greedy k-center core-set
of ``prior_factor * batch_size`` prior draws (:class:`smallgan.sampling.PriorCoreset`)
and every real batch the core-set, on the rows' embeddings, of
``target_factor * batch_size`` candidate rows
(:class:`smallgan.sampling.CoresetBatchSampler`).  ``coreset_prior`` and
``coreset_target`` switch either side back to plain random draws (the paper's
ablation, Table 6).  With ``sampling="random"`` both sides draw plainly from
the same distributions: a uniform/normal prior and a shuffled pass over the
dataset, so the two modes differ only in selection.

Each training step is ``n_dis`` discriminator updates (each on a fresh real
batch and a fresh prior batch) followed by one generator update (on a fresh
prior batch).  ``steps`` counts generator updates.

Output directory
----------------
``config.json``, ``log.csv`` (losses, step time, selection wait),
``metrics.csv`` (evaluation hooks), ``tb/`` (TensorBoard), ``samples/`` (PNG
plots of fixed-noise samples), ``checkpoint.pt`` (atomic; every
``checkpoint_every`` steps, at the end and on Ctrl-C).

Resuming
--------
``Trainer(..., resume=True)`` continues from ``checkpoint.pt`` and ends with
exactly the weights an uninterrupted run with the same config would have:
the checkpoint holds both networks, both optimizers, the LR schedules, the
EMA, the AMP loss scalers and torch's RNG state, and the samplers are rebuilt from
their seeds and fast-forwarded by the number of batches already used (the
samplers' batch sequences depend only on their seeds).

Example
-------
>>> import tempfile, torch
>>> from smallgan.models.mlp import MLPGenerator, MLPDiscriminator
>>> from smallgan.data.points import PointDataset, collate_rows
>>> data = RealData(PointDataset(torch.randn(512, 2)), collate_fn=collate_rows)
>>> cfg = TrainConfig(steps=5, batch_size=16, z_dim=2, progress=False, tensorboard=False)
>>> t = Trainer(cfg, MLPGenerator(2, 16), MLPDiscriminator(2, 16), data, tempfile.mkdtemp())
>>> t.fit()
{}
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple, Union

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from smallgan.atomic import atomic_write
from smallgan.checks import check_bool, check_choice, check_float, check_int
from smallgan.prefetch import PLANNERS
from smallgan.sampling import CoresetBatchSampler, PriorCoreset, RandomBatchSampler, RandomPrior
from smallgan.training.checkpoint import ResumeError, load_checkpoint, save_checkpoint
from smallgan.training.ema import EMA
from smallgan.training.logs import RunLogger
from smallgan.training.losses import LOSSES, d_loss, g_loss

__all__ = ["TrainConfig", "RealData", "Trainer", "TrainingInterrupted", "ResumeError", "CHECKPOINT_NAME",
           "run_label"]

CHECKPOINT_NAME = "checkpoint.pt"

SAMPLINGS = ("random", "coreset")
PRIORS = ("uniform", "normal")
OPTIMIZERS = ("adam", "rmsprop")
LR_DECAYS = ("none", "linear")

# Fields that may change between a run and its resumption without changing
# the trajectory of the weights (steps may grow: the run is then extended).
_RESUMABLE_CHANGES = frozenset({
    "steps", "log_every", "sample_every", "eval_every", "checkpoint_every", "progress",
    "tensorboard", "plot_samples", "num_workers", "prefetch", "planner",
})
# Experiment settings (Trainer's extra_config) that may change on resume, by
# field name: the cadences above, evaluation sample counts and the engine's
# thread count (selections are identical for any thread count).
_RESUMABLE_EXPERIMENT_CHANGES = _RESUMABLE_CHANGES | {"n_eval", "threads"}


def run_label(sampling: str, coreset_prior: bool, coreset_target: bool) -> str:
    """``GAN``, ``Small-GAN`` or the ablation's name, for tables and plots."""
    if sampling == "random":
        return "GAN"
    if coreset_prior and coreset_target:
        return "Small-GAN"
    return "Small-GAN (prior only)" if coreset_prior else "Small-GAN (target only)"


@dataclass
class TrainConfig:
    """How to train; every field is validated on construction.

    Attributes
    ----------
    steps : int
        Generator updates (>= 0).
    batch_size : int
        Batch size ``k`` for both networks (>= 1).
    z_dim : int
        Prior dimension.
    prior : str
        ``"uniform"`` on ``[-1, 1]^z_dim`` or ``"normal"`` N(0, I).
    loss : str
        ``"ns"`` (paper eqs. 1-2), ``"hinge"`` or ``"lsgan"``.
    n_dis : int
        Discriminator updates per generator update.
    optimizer : str
        ``"adam"`` (with ``betas_*``) or ``"rmsprop"``.
    lr_g, lr_d : float
        Learning rates.
    betas_g, betas_d : tuple of float
        Adam betas.
    lr_decay : str
        ``"none"`` or ``"linear"`` (to 0 at ``steps``, as in SN-GAN).
    sampling : str
        ``"random"`` or ``"coreset"``.
    prior_factor, target_factor : int
        Over-sampling factors of the core-sets (paper: 4 and 8).
    coreset_prior, coreset_target : bool
        With ``sampling="coreset"``, whether each side uses a core-set.
    ema_decay : float or None
        Keep an EMA of G with this decay (``None``: no EMA).  Evaluation and
        sample plots then use the EMA generator.
    ema_start : int
        Generator updates before the EMA starts averaging.
    amp : bool
        Mixed precision (float16 with loss scaling on CUDA, bfloat16 on CPU).
    device : str
        Torch device.
    seed : int
        Seeds the prior, the real-batch order and the fixed plotting noise.
        (Model initialisation is the experiment's business.)
    log_every, sample_every, eval_every, checkpoint_every : int
        Cadences in steps; 0 disables the periodic action (samples,
        evaluation and a checkpoint still happen at the end).
    plot_samples : int
        Number of fixed-noise samples given to the plot function.
    progress, tensorboard : bool
        Show a progress bar; write TensorBoard events.
    num_workers, prefetch : int
        DataLoader workers; batches the core-set samplers select ahead.
    planner : str
        ``"thread"`` or ``"caller"``: where the core-set samplers plan their
        batches (see :class:`smallgan.sampling.PriorCoreset`); same batches.
    """

    steps: int = 10_000
    batch_size: int = 64
    z_dim: int = 128
    prior: str = "uniform"
    loss: str = "ns"
    n_dis: int = 1
    optimizer: str = "adam"
    lr_g: float = 1e-4
    lr_d: float = 1e-4
    betas_g: Tuple[float, float] = (0.5, 0.999)
    betas_d: Tuple[float, float] = (0.5, 0.999)
    lr_decay: str = "none"
    sampling: str = "random"
    prior_factor: int = 4
    target_factor: int = 8
    coreset_prior: bool = True
    coreset_target: bool = True
    ema_decay: Optional[float] = None
    ema_start: int = 0
    amp: bool = False
    device: str = "cpu"
    seed: int = 0
    log_every: int = 100
    sample_every: int = 1000
    eval_every: int = 0
    checkpoint_every: int = 1000
    plot_samples: int = 64
    progress: bool = True
    tensorboard: bool = True
    num_workers: int = 0
    prefetch: int = 2
    planner: str = "thread"

    def __post_init__(self) -> None:
        check_int("steps", self.steps, 0)
        check_int("batch_size", self.batch_size, 1)
        check_int("z_dim", self.z_dim, 1)
        check_choice("prior", self.prior, PRIORS)
        check_choice("loss", self.loss, LOSSES)
        check_int("n_dis", self.n_dis, 1)
        check_choice("optimizer", self.optimizer, OPTIMIZERS)
        check_float("lr_g", self.lr_g, 0.0, lo_open=True)
        check_float("lr_d", self.lr_d, 0.0, lo_open=True)
        for name in ("betas_g", "betas_d"):
            betas = getattr(self, name)
            if not isinstance(betas, (tuple, list)):
                raise TypeError(f"{name} must be a pair (beta1, beta2), got {betas!r}")
            if len(betas) != 2:
                raise ValueError(f"{name} must be a pair (beta1, beta2), got {betas!r}")
            for i, b in enumerate(betas):
                check_float(f"{name}[{i}]", b, 0.0, 1.0, hi_open=True)
            setattr(self, name, (float(betas[0]), float(betas[1])))
        check_choice("lr_decay", self.lr_decay, LR_DECAYS)
        check_choice("sampling", self.sampling, SAMPLINGS)
        check_int("prior_factor", self.prior_factor, 1)
        check_int("target_factor", self.target_factor, 1)
        if self.ema_decay is not None:
            check_float("ema_decay", self.ema_decay, 0.0, 1.0, hi_open=True)
        check_int("ema_start", self.ema_start, 0)
        check_int("seed", self.seed, 0)
        for name in ("log_every", "sample_every", "eval_every", "checkpoint_every"):
            check_int(name, getattr(self, name), 0)
        check_int("plot_samples", self.plot_samples, 1)
        check_int("num_workers", self.num_workers, 0)
        check_int("prefetch", self.prefetch, 0)
        check_choice("planner", self.planner, PLANNERS)
        for name in ("coreset_prior", "coreset_target", "amp", "progress", "tensorboard"):
            check_bool(name, getattr(self, name))
        if not isinstance(self.device, str):
            raise TypeError(f"device must be a str such as 'cpu' or 'cuda:0', got {self.device!r}")
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must be a torch device string, got {self.device!r}") from exc

    @property
    def uses_prior_coreset(self) -> bool:
        """Whether prior batches are core-sets."""
        return self.sampling == "coreset" and self.coreset_prior

    @property
    def uses_target_coreset(self) -> bool:
        """Whether real batches are core-sets."""
        return self.sampling == "coreset" and self.coreset_target

    def to_dict(self) -> Dict[str, Any]:
        """JSON-friendly copy."""
        d = dataclasses.asdict(self)
        d["betas_g"], d["betas_d"] = list(self.betas_g), list(self.betas_d)
        return d


@dataclass
class RealData:
    """The real-data source of an experiment.

    Attributes
    ----------
    dataset : torch.utils.data.Dataset
        Map-style dataset.  A batch may be a tensor or a tuple/list whose first
        element is the tensor the discriminator sees (labels are ignored).
    embeddings : np.ndarray or None
        Shape ``(len(dataset), d)``: what the core-set of real rows is computed
        on (for 2-D points the points themselves; for images their cached,
        projected features).  Required when real batches are core-sets.
    collate_fn : callable or None
        Passed to the ``DataLoader``.
    """

    dataset: Dataset
    embeddings: Optional[np.ndarray] = None
    collate_fn: Optional[Callable] = None

    def __post_init__(self) -> None:
        n = len(self.dataset)  # type: ignore[arg-type]
        if n < 1:
            raise ValueError("dataset must not be empty")
        if self.embeddings is not None:
            shape = getattr(self.embeddings, "shape", None)
            if shape is None or len(shape) != 2 or shape[0] != n:
                raise ValueError(f"embeddings must have shape (len(dataset)={n}, d), got {shape}")


class TrainingInterrupted(KeyboardInterrupt):
    """Raised by :meth:`Trainer.fit` after a stop request (Ctrl-C) was honoured.

    Attributes
    ----------
    step : int
        Last completed generator update; the checkpoint holds this state.
    checkpoint : Path
        Where the checkpoint was written.
    """

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted after step {step}; checkpoint written to {checkpoint}")
        self.step = step
        self.checkpoint = checkpoint


def _sub_seeds(seed: int, n: int) -> List[int]:
    # independent streams for prior, real order and plotting noise, identical in
    # both sampling modes so that GAN and Small-GAN runs see the same seeds
    return [int(s.generate_state(1, dtype=np.uint32)[0])
            for s in np.random.SeedSequence(seed).spawn(n)]


def _draw_prior(gen: torch.Generator, shape: Tuple[int, int], prior: str) -> torch.Tensor:
    # fixed plotting noise and Trainer.sample(); training batches come from
    # smallgan.sampling
    if prior == "uniform":
        return torch.rand(shape, generator=gen) * 2.0 - 1.0
    return torch.randn(shape, generator=gen)


def _ignore_sigint(worker_id: int) -> None:  # noqa: ARG001
    # DataLoader workers share the terminal's process group, so Ctrl-C reaches
    # them too; they must outlive it so the main process can finish its step
    # and write the checkpoint.  The main process shuts them down after.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@contextlib.contextmanager
def _sigint_blocked(block: bool) -> Iterator[None]:
    """Block SIGINT in this thread while DataLoader workers start.

    A child inherits the signal mask (through fork and exec), so workers
    start with SIGINT blocked and a Ctrl-C during their start-up (seconds
    with the spawn and forkserver start methods) cannot kill them before
    ``_ignore_sigint`` runs.  A Ctrl-C that arrives meanwhile reaches this
    process when the block ends.
    """
    if not (block and hasattr(signal, "pthread_sigmask")
            and threading.current_thread() is threading.main_thread()):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _loader_seed(seed: int, epoch: int) -> int:
    # the DataLoader's base seed (worker seeds derive from it): explicit and a
    # function of (seed, epoch), not a draw from torch's global RNG, so that a
    # resumed run's workers get the seeds an uninterrupted run's would
    return int(np.random.SeedSequence(seed, spawn_key=(epoch,)).generate_state(1, dtype=np.uint64)[0] >> 1)


class Trainer:
    """Trains a GAN from a :class:`TrainConfig`.

    Parameters
    ----------
    config : TrainConfig
    generator : torch.nn.Module
        Maps ``(b, z_dim)`` noise to samples.
    discriminator : torch.nn.Module
        Maps samples to logits (any shape; losses average over it).
    data : RealData
    out_dir : str or Path
        Run directory (created).
    eval_fn : callable, optional
        ``eval_fn(trainer, step) -> Mapping[str, float]``; called every
        ``eval_every`` steps and at the end.  Use ``trainer.eval_generator``
        (the EMA generator when enabled) and ``trainer.discriminator``.
    plot_fn : callable, optional
        ``plot_fn(samples, path)``: writes a PNG of ``samples`` (a CPU tensor
        of ``plot_samples`` generator outputs from fixed noise) to ``path``.
    extra_config : mapping, optional
        Experiment settings written to ``config.json`` next to the train config.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` when it exists.

    Subclasses may override :meth:`discriminator_step` and
    :meth:`generator_step` for other objectives (penalties, extra networks);
    they return the loss (a 0-dim tensor, or a float).

    Thread safety
    -------------
    One trainer per thread; :meth:`fit` installs a SIGINT handler only when
    called from the main thread.
    """

    def __init__(self, config: TrainConfig, generator: nn.Module, discriminator: nn.Module,
                 data: RealData, out_dir: Union[str, Path], *,
                 eval_fn: Optional[Callable[["Trainer", int], Mapping[str, float]]] = None,
                 plot_fn: Optional[Callable[[torch.Tensor, Path], None]] = None,
                 extra_config: Optional[Mapping[str, Any]] = None,
                 resume: bool = False) -> None:
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if not isinstance(data, RealData):
            raise TypeError(f"data must be a RealData, got {type(data).__name__}")
        if config.uses_target_coreset and data.embeddings is None:
            raise ValueError("sampling='coreset' with coreset_target=True needs data.embeddings")
        n = len(data.dataset)  # type: ignore[arg-type]
        if n < config.batch_size:
            raise ValueError(f"dataset has {n} rows, fewer than batch_size={config.batch_size}")
        self.config = config
        self.device = torch.device(config.device)
        self.generator = generator.to(self.device)
        self.discriminator = discriminator.to(self.device)
        self.data = data
        self.out_dir = Path(out_dir)
        self.eval_fn, self.plot_fn = eval_fn, plot_fn
        self.extra_config = dict(extra_config or {})
        self.resume = resume
        self.step = 0
        self.metrics: Dict[str, float] = {}
        self._stop = False
        self._prior_batches = 0  # batches consumed so far, for fast-forward on resume
        self._real_batches = 0
        # running sums for the next log row; checkpointed, so that a resumed
        # run writes exactly the rows an uninterrupted one would
        self._acc: Dict[str, float] = {}
        self._n_acc = 0

        c = config
        if c.optimizer == "adam":
            self.opt_g = torch.optim.Adam(self.generator.parameters(), lr=c.lr_g, betas=c.betas_g)
            self.opt_d = torch.optim.Adam(self.discriminator.parameters(), lr=c.lr_d, betas=c.betas_d)
        else:
            self.opt_g = torch.optim.RMSprop(self.generator.parameters(), lr=c.lr_g)
            self.opt_d = torch.optim.RMSprop(self.discriminator.parameters(), lr=c.lr_d)
        total = max(c.steps, 1)
        decay = (lambda s: max(0.0, 1.0 - s / total)) if c.lr_decay == "linear" else (lambda s: 1.0)
        self.sched_g = torch.optim.lr_scheduler.LambdaLR(self.opt_g, decay)
        self.sched_d = torch.optim.lr_scheduler.LambdaLR(self.opt_d, decay)
        self.ema = EMA(self.generator, c.ema_decay, c.ema_start) if c.ema_decay is not None else None
        self._amp_dtype = None
        # one loss scaler per network: an overflow in D's backward pass must not
        # shrink G's scale (and skip G's step) or the other way round
        self.scaler_g = self.scaler_d = None
        if c.amp:
            if self.device.type == "cuda":
                self._amp_dtype = torch.float16
                self.scaler_g = torch.amp.GradScaler("cuda")
                self.scaler_d = torch.amp.GradScaler("cuda")
            else:
                self._amp_dtype = torch.bfloat16
        self._prior_seed, self._real_seed, self._fixed_seed = _sub_seeds(c.seed, 3)
        gen = torch.Generator().manual_seed(self._fixed_seed)
        self.fixed_z = _draw_prior(gen, (c.plot_samples, c.z_dim), c.prior).to(self.device)

    # ------------------------------------------------------------------ public

    @property
    def eval_generator(self) -> nn.Module:
        """The generator to evaluate: the EMA copy when enabled, else G itself."""
        return self.ema.module if self.ema is not None else self.generator

    @property
    def checkpoint_path(self) -> Path:
        """``out_dir / "checkpoint.pt"``."""
        return self.out_dir / CHECKPOINT_NAME

    def request_stop(self) -> None:
        """Ask :meth:`fit` to checkpoint and stop after the current step (what Ctrl-C does)."""
        self._stop = True

    @torch.no_grad()
    def sample(self, n: int, seed: int = 0, batch: int = 4096) -> torch.Tensor:
        """``n`` samples of :attr:`eval_generator` from plain prior draws, on the CPU.

        Parameters
        ----------
        n : int
            Number of samples.
        seed : int
            Seeds the prior draws (independent of training).
        batch : int
            Generator batch size.
        """
        check_int("n", n, 1)
        g = self.eval_generator
        was_training = g.training
        g.eval()
        gen = torch.Generator().manual_seed(seed)
        out = []
        for lo in range(0, n, batch):
            z = _draw_prior(gen, (min(batch, n - lo), self.config.z_dim), self.config.prior)
            out.append(g(z.to(self.device)).float().cpu())
        g.train(was_training)
        return torch.cat(out)

    def fit(self) -> Dict[str, float]:
        """Train to ``config.steps``; returns the last evaluation's metrics.

        Raises
        ------
        TrainingInterrupted
            After Ctrl-C or :meth:`request_stop`, once the checkpoint is written.
        """
        c = self.config
        # from here on Ctrl-C only raises a flag, honoured between steps, so a
        # checkpoint never holds a half-done optimizer step
        previous_handler = self._install_sigint()
        logger = prior = real_sampler = None
        try:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            if self.resume and self.checkpoint_path.exists():
                # on the CPU: the RNG states must stay CPU byte tensors, and
                # load_state_dict copies weights and optimizer state to the
                # device of the parameters they belong to
                self._load(load_checkpoint(self.checkpoint_path))
            logger = RunLogger(self.out_dir, c.steps, self.step, c.tensorboard, c.progress)
            self._write_config()  # last: its presence means the handler is in place
            prior = self._make_prior()
            real_sampler = self._make_real_sampler()
            real = self._real_batches_from(real_sampler)
            if self.step >= c.steps and self.metrics:
                return dict(self.metrics)  # finished run resumed: nothing to do
            while self.step < c.steps:
                if self._stop:
                    break
                t0 = time.perf_counter()
                ld_t, lg_t, wait_prior, wait_target, data_s = self._iteration(prior, real,
                                                                              real_sampler)
                # reading the losses waits for the device: the step time
                # includes the device's work
                ld, lg = float(ld_t), float(lg_t)
                step_s = time.perf_counter() - t0
                for k, v in (("d_loss", ld), ("g_loss", lg), ("step_time_s", step_s),
                             ("wait_prior_s", wait_prior), ("wait_target_s", wait_target),
                             ("data_time_s", data_s)):
                    self._acc[k] = self._acc.get(k, 0.0) + v
                self._n_acc += 1
                logger.advance()
                last = self.step == c.steps
                if (c.log_every and self.step % c.log_every == 0) or last:
                    means = {k: v / self._n_acc for k, v in self._acc.items()}
                    means["lr_g"] = self.opt_g.param_groups[0]["lr"]
                    logger.log_train(self.step, means)
                    self._acc, self._n_acc = {}, 0
                if (c.eval_every and self.step % c.eval_every == 0) or last:
                    self._evaluate(logger)
                if (c.sample_every and self.step % c.sample_every == 0) or last:
                    self._plot()
                if (c.checkpoint_every and self.step % c.checkpoint_every == 0) or last:
                    self._save()
            if self._stop and self.step < c.steps:
                self._save()
                logger.write(f"stopped after step {self.step}; checkpoint: {self.checkpoint_path}")
                raise TrainingInterrupted(self.step, self.checkpoint_path)
            if c.steps == 0 and not self.metrics:  # nothing trained: still evaluate once
                self._evaluate(logger)
                self._save()
            return dict(self.metrics)
        finally:
            if previous_handler is not None:
                signal.signal(signal.SIGINT, previous_handler)
            for s in (prior, real_sampler):
                if s is not None:
                    s.close()
            if logger is not None:
                logger.close()

    def _iteration(self, prior: Any, real: Iterator[Any],
                   real_sampler: Any) -> Tuple[Any, Any, float, float, float]:
        """One training step: ``n_dis`` D updates, one G update, EMA, LR schedules.

        Returns ``(d_loss, g_loss, wait_prior_s, wait_target_s, data_s)``; the
        losses are whatever the step methods return (device tensors, not yet
        read), so nothing here waits for the device.  The timing experiment
        calls this too, in windows synchronised only at their edges.
        """
        c = self.config
        wait_prior = wait_target = data_s = 0.0
        ld: Any = None
        for _ in range(c.n_dis):
            t_data = time.perf_counter()
            x = self._to_real(next(real))
            data_s += time.perf_counter() - t_data
            wait_target += real_sampler.last_wait_s
            z = next(prior)
            wait_prior += prior.last_wait_s
            self._real_batches += 1
            self._prior_batches += 1
            ld = self.discriminator_step(x, z)
        z = next(prior)
        wait_prior += prior.last_wait_s
        self._prior_batches += 1
        lg = self.generator_step(z)
        if self.ema is not None:
            self.ema.update(self.generator)
        with warnings.catch_warnings():
            # With AMP, GradScaler skips an optimizer step whose gradients
            # overflowed (the first steps, while it calibrates); the schedule
            # still advances one step per iteration, as intended, and torch
            # warns that the scheduler stepped before the optimizer did.
            warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler\.step\(\)` "
                                                      r"before `optimizer\.step\(\)`")
            self.sched_g.step()
            self.sched_d.step()
        self.step += 1
        return ld, lg, wait_prior, wait_target, data_s

    # ----------------------------------------------------- overridable updates

    def _autocast(self):
        if self._amp_dtype is None:
            return torch.autocast(self.device.type, enabled=False)
        return torch.autocast(self.device.type, dtype=self._amp_dtype)

    def _backward_step(self, loss: torch.Tensor, opt: torch.optim.Optimizer,
                       scaler: Optional["torch.amp.GradScaler"]) -> None:
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
        else:
            loss.backward()
            opt.step()

    def discriminator_step(self, real: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """One discriminator update on a real batch and a prior batch.

        Returns the loss as a detached 0-dim tensor on the device: reading it
        (``float(loss)``) waits for the device, so the caller decides when.
        """
        with torch.no_grad(), self._autocast():
            fake = self.generator(z)
        self.opt_d.zero_grad(set_to_none=True)
        with self._autocast():
            loss = d_loss(self.config.loss, self.discriminator(real), self.discriminator(fake))
        self._backward_step(loss, self.opt_d, self.scaler_d)
        return loss.detach()

    def generator_step(self, z: torch.Tensor) -> torch.Tensor:
        """One generator update on a prior batch; returns its loss as :meth:`discriminator_step`."""
        self.opt_g.zero_grad(set_to_none=True)
        # D's weights are not updated here: skip their gradients
        for p in self.discriminator.parameters():
            p.requires_grad_(False)
        try:
            with self._autocast():
                loss = g_loss(self.config.loss, self.discriminator(self.generator(z)))
            self._backward_step(loss, self.opt_g, self.scaler_g)
        finally:
            for p in self.discriminator.parameters():
                p.requires_grad_(True)
        return loss.detach()

    # ---------------------------------------------------------------- plumbing

    def _to_real(self, batch: Any) -> torch.Tensor:
        if isinstance(batch, (tuple, list)):
            batch = batch[0]
        return batch.to(self.device, non_blocking=True)

    # GAN and Small-GAN differ here only: which of the two samplers is built
    # for each side (smallgan.sampling).  Both start at the batch a resumed
    # run needs, without replaying earlier draws or selections.

    def _make_prior(self):
        c = self.config
        common = dict(distribution=c.prior, seed=self._prior_seed, device=self.device,
                      start=self._prior_batches)
        if c.uses_prior_coreset:
            return PriorCoreset(c.z_dim, c.batch_size, factor=c.prior_factor,
                                prefetch=c.prefetch, planner=c.planner, **common)
        return RandomPrior(c.z_dim, c.batch_size, **common)

    def _make_real_sampler(self):
        c = self.config
        if c.uses_target_coreset:
            return CoresetBatchSampler(self.data.embeddings, c.batch_size,
                                       factor=c.target_factor, seed=self._real_seed,
                                       drop_last=True, prefetch=c.prefetch, planner=c.planner)
        return RandomBatchSampler(len(self.data.dataset), c.batch_size,  # type: ignore[arg-type]
                                  seed=self._real_seed, drop_last=True)

    def _real_batches_from(self, sampler) -> Iterator[Any]:
        per_epoch = len(sampler)
        if per_epoch < 1:
            raise ValueError(f"the real-data sampler yields no batch per epoch "
                             f"(dataset of {len(self.data.dataset)} rows, "  # type: ignore[arg-type]
                             f"batch_size={self.config.batch_size})")
        epoch, skip = divmod(self._real_batches, per_epoch)

        def gen() -> Iterator[Any]:
            nonlocal epoch, skip
            while True:
                sampler.set_epoch(epoch, start=skip)
                workers = self.config.num_workers
                loader = DataLoader(self.data.dataset, batch_sampler=sampler,
                                    collate_fn=self.data.collate_fn, num_workers=workers,
                                    pin_memory=self.device.type == "cuda",
                                    generator=torch.Generator().manual_seed(
                                        _loader_seed(self._real_seed, epoch)),
                                    worker_init_fn=_ignore_sigint if workers else None)
                with _sigint_blocked(workers > 0):
                    batches = iter(loader)  # starts the workers
                yield from batches
                epoch, skip = epoch + 1, 0

        return gen()

    def _install_sigint(self):
        if threading.current_thread() is not threading.main_thread():
            return None
        previous = signal.getsignal(signal.SIGINT)

        def handler(signum, frame):  # noqa: ARG001
            if self._stop:  # second Ctrl-C: stop now, without a checkpoint
                raise KeyboardInterrupt
            self._stop = True

        signal.signal(signal.SIGINT, handler)
        return previous if previous is not None else signal.default_int_handler

    def _evaluate(self, logger: RunLogger) -> None:
        if self.eval_fn is None:
            return
        g = self.eval_generator
        was_training = g.training
        g.eval()
        try:
            metrics = dict(self.eval_fn(self, self.step))
        finally:
            g.train(was_training)
        self.metrics = {k: float(v) for k, v in metrics.items()}
        logger.log_metrics(self.step, self.metrics)

    def _plot(self) -> None:
        if self.plot_fn is None:
            return
        g = self.eval_generator
        was_training = g.training
        g.eval()
        with torch.no_grad():
            samples = g(self.fixed_z).float().cpu()
        g.train(was_training)
        path = self.out_dir / "samples" / f"step_{self.step:07d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        self.plot_fn(samples, path)

    def _experiment_config(self) -> Dict[str, Any]:
        # plain JSON types (paths and tuples as JSON has them), so that the
        # checkpoint holds no pickled objects and compares with a reloaded one
        return json.loads(json.dumps(self.extra_config, sort_keys=True, default=str))

    def _write_config(self) -> None:
        doc = {"train": self.config.to_dict(), "experiment": self._experiment_config()}
        text = json.dumps(doc, indent=2, sort_keys=True) + "\n"
        atomic_write(self.out_dir / "config.json", lambda f: f.write(text.encode()))

    def _state(self) -> Dict[str, Any]:
        state: Dict[str, Any] = {
            "step": self.step,
            "config": self.config.to_dict(),
            "experiment": self._experiment_config(),
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_d": self.opt_d.state_dict(),
            "sched_g": self.sched_g.state_dict(),
            "sched_d": self.sched_d.state_dict(),
            "prior_batches": self._prior_batches,
            "real_batches": self._real_batches,
            "metrics": dict(self.metrics),
            "log_sums": dict(self._acc),
            "log_count": self._n_acc,
            "torch_rng": torch.get_rng_state(),
        }
        if torch.cuda.is_available() and self.device.type == "cuda":
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.scaler_g is not None and self.scaler_d is not None:
            state["scaler_g"] = self.scaler_g.state_dict()
            state["scaler_d"] = self.scaler_d.state_dict()
        return state

    def _save(self) -> None:
        save_checkpoint(self._state(), self.checkpoint_path)

    def _load(self, state: Mapping[str, Any]) -> None:
        free = _RESUMABLE_CHANGES if self.config.lr_decay == "none" else _RESUMABLE_CHANGES - {"steps"}
        diff = _config_diff(state["config"], self.config.to_dict(), free)
        diff += _config_diff(state.get("experiment", {}), self._experiment_config(),
                             _RESUMABLE_EXPERIMENT_CHANGES, prefix="experiment.")
        if diff:
            raise ResumeError(f"cannot resume from {self.checkpoint_path}: the config differs "
                              f"({'; '.join(diff)}); use another output directory, or the "
                              f"checkpoint's settings")
        if state["step"] > self.config.steps:
            raise ResumeError(f"cannot resume: the checkpoint is at step {state['step']}, "
                              f"past steps={self.config.steps}")
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        self.opt_g.load_state_dict(state["opt_g"])
        self.opt_d.load_state_dict(state["opt_d"])
        self.sched_g.load_state_dict(state["sched_g"])
        self.sched_d.load_state_dict(state["sched_d"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if self.scaler_g is not None and self.scaler_d is not None:
            self.scaler_g.load_state_dict(state["scaler_g"])
            self.scaler_d.load_state_dict(state["scaler_d"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.step = int(state["step"])
        self._prior_batches = int(state["prior_batches"])
        self._real_batches = int(state["real_batches"])
        self.metrics = dict(state.get("metrics", {}))
        self._acc = {k: float(v) for k, v in state["log_sums"].items()}
        self._n_acc = int(state["log_count"])


def _config_diff(saved: Any, now: Any, free: frozenset, prefix: str = "") -> List[str]:
    """Human-readable differences between two JSON-like configs.

    Nested mappings are compared field by field (``prefix.field``); a field
    whose own name is in ``free`` may differ.
    """
    if isinstance(saved, Mapping) and isinstance(now, Mapping):
        out: List[str] = []
        for key in sorted(set(saved) | set(now)):
            if key in free:
                continue
            if key not in saved:
                out.append(f"{prefix}{key}: not in the checkpoint, now {now[key]!r}")
            elif key not in now:
                out.append(f"{prefix}{key}: checkpoint {saved[key]!r}, now unset")
            else:
                out += _config_diff(saved[key], now[key], free, f"{prefix}{key}.")
        return out
    if saved != now:
        return [f"{prefix.rstrip('.')}: checkpoint {saved!r} vs now {now!r}"]
    return []
