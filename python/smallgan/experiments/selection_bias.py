"""What the core-sets feed the networks: the batches' distribution, measured without training.

Small-GAN changes two distributions.  The discriminator sees real batches
chosen by k-center instead of uniform ones, and the generator is trained on
prior batches chosen by k-center instead of the prior it is evaluated on.
This command draws ``n`` rows exactly as the trainer's samplers would (same
data, embeddings, seeds and factors as ``smallgan train stacked-mnist`` /
``mnist`` and the ``image-grid`` table) and measures both shifts:

- **real side**, one row per sampler (``random``, the GAN; ``core-set raw``,
  Small-GAN-64; ``core-set mnist-cnn``, Small-GAN-64-cnn): the modes and the
  KL from uniform of the selected images' *true* labels (Stacked MNIST:
  the digit triple each image was built from; MNIST: its label), then the
  selected images scored like a generator's samples
  (:func:`smallgan.metrics.digits.evaluate_digits` against the grid's
  evaluation images: classifier modes and KL, FD[mnist-cnn], CS[mnist-cnn],
  precision/recall/density/coverage).  The ``random`` row is what the
  training data itself scores under the protocol; a core-set row that
  scores worse shows a shift the discriminator is trained on.  Over a whole
  run's real draws (``steps x 64``) it also counts the share of the
  training set the discriminator ever sees and the share of draws that go
  to the most-drawn 10 % of the images.
- **prior side**, one row per sampler (``random`` and ``core-set``, prior
  factor 4): the mean ``|z_i|``, root mean square and share of coordinates
  with ``|z_i| > 0.9`` of the ``z`` the generator trains on (uniform on
  [-1, 1]: 0.5, 0.577 and 0.1 exactly).

Writes ``OUT/real.csv``, ``OUT/prior.csv`` and ``OUT/table.md``.  Costs a
few seconds of selection and, per real row, one evaluation (about a minute
for Stacked MNIST at 26,000 / 26,000 on a busy core).

Example
-------
``smallgan train selection-bias --experiment stacked-mnist --out runs/selection-bias``
"""
from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from smallgan.atomic import atomic_write

__all__ = ["selected_rows", "prior_batches", "prior_moments", "run", "format_markdown",
           "add_arguments", "run_from_args"]

EXPERIMENTS = ("stacked-mnist", "mnist")
#: Target-side embeddings a row can select on (the image-grid variants').
EMBEDDINGS = ("raw", "mnist-cnn")
#: Where a coordinate counts as "outer" in :func:`prior_moments`.
OUTER = 0.9


def selected_rows(embeddings: Any, n: int, *, batch_size: int, factor: int, seed: int,
                  sampling: str) -> Any:
    """The first ``n`` dataset rows the trainer's real-data sampler yields.

    ``sampling="coreset"``: :class:`~smallgan.sampling.CoresetBatchSampler`
    on ``embeddings`` (rows, d) with ``factor``; ``"random"``:
    :class:`~smallgan.sampling.RandomBatchSampler` over as many rows.  Both
    with ``seed`` and ``drop_last``, epoch after epoch, as the trainer.
    Returns an int64 array of shape ``(n,)``.
    """
    import numpy as np

    from smallgan.sampling import CoresetBatchSampler, RandomBatchSampler

    if sampling == "coreset":
        sampler = CoresetBatchSampler(embeddings, batch_size, factor=factor, seed=seed,
                                      drop_last=True, prefetch=0)
    elif sampling == "random":
        sampler = RandomBatchSampler(len(embeddings), batch_size, seed=seed, drop_last=True)
    else:
        raise ValueError(f"sampling must be 'random' or 'coreset', got {sampling!r}")
    if len(sampler) < 1:
        raise ValueError(f"no full batch of {batch_size} in {len(embeddings)} rows")
    rows: List[int] = []
    epoch = 0
    with sampler:
        while len(rows) < n:
            sampler.set_epoch(epoch)
            for batch in sampler:
                rows.extend(batch)
                if len(rows) >= n:
                    break
            epoch += 1
    return np.asarray(rows[:n], dtype=np.int64)


def prior_batches(dim: int, n: int, *, batch_size: int, factor: int, seed: int,
                  sampling: str) -> Any:
    """The first ``n`` prior draws (rows of z, uniform on [-1, 1]^dim) the
    trainer's prior sampler yields (:class:`~smallgan.sampling.PriorCoreset`
    with ``factor`` or :class:`~smallgan.sampling.RandomPrior`), as an
    ``(n, dim)`` float array."""
    import numpy as np
    import torch

    from smallgan.sampling import PriorCoreset, RandomPrior

    if sampling == "coreset":
        prior = PriorCoreset(dim, batch_size, factor=factor, distribution="uniform", seed=seed,
                             device="cpu", prefetch=0)
    elif sampling == "random":
        prior = RandomPrior(dim, batch_size, distribution="uniform", seed=seed, device="cpu")
    else:
        raise ValueError(f"sampling must be 'random' or 'coreset', got {sampling!r}")
    out: List[Any] = []
    with prior:
        for _ in range(math.ceil(n / batch_size)):
            z = next(prior)
            out.append(z.detach().to(torch.float64).numpy())
    return np.concatenate(out)[:n]


def prior_moments(z: Any) -> Dict[str, float]:
    """Mean ``|z_i|``, root mean square of ``z_i`` and the share of
    coordinates with ``|z_i| > 0.9`` (:data:`OUTER`) over all of ``z``."""
    import numpy as np

    a = np.abs(np.asarray(z, dtype=np.float64))
    return {"mean_abs": float(a.mean()), "rms": float(np.sqrt((a * a).mean())),
            "outer_share": float((a > OUTER).mean())}


def _data(experiment: str):
    """(config, training images in [-1, 1] (GANImages), true labels, dataset
    name, evaluation images in [0, 1]) exactly as the experiment builds them."""
    import numpy as np

    from smallgan.experiments.images import GANImages

    if experiment == "stacked-mnist":
        from smallgan.data.stacked_mnist import StackedMNIST
        from smallgan.experiments.stacked_mnist import StackedMNISTConfig

        cfg: Any = StackedMNISTConfig()
        base = StackedMNIST(cfg.n_train, seed=cfg.data_seed, split=cfg.data_split)
        labels = np.asarray(base.modes)
        name = f"stacked-mnist-{cfg.data_split}-n{cfg.n_train}-seed{cfg.data_seed}"
        pool = StackedMNIST(cfg.fid_real, seed=cfg.data_seed + 1, split="train")
        real = pool.images(np.arange(cfg.fid_real))
    else:
        from smallgan.experiments.mnist import MNISTConfig, evaluation_digits, training_digits

        cfg = MNISTConfig()
        base = training_digits(cfg.data_split, cfg.data_seed)
        labels = np.asarray(base.dataset.labels)[np.asarray(base.indices)]
        name = f"mnist5k-{cfg.data_split}-seed{cfg.data_seed}"
        real = evaluation_digits(cfg.fid_real, cfg.data_seed + 1)
    return cfg, GANImages(base), labels, name, real


def run(experiment: str, out: Union[str, Path], *, n: Optional[int] = None,
        embeddings: Sequence[str] = EMBEDDINGS, seed: int = 0,
        cache_dir: Optional[Union[str, Path]] = None, threads: Optional[int] = None,
        evaluate: bool = True, echo: Any = print) -> Dict[str, List[Dict[str, Any]]]:
    """Measure both sides (module docstring) and write the files.

    Parameters
    ----------
    experiment : {"stacked-mnist", "mnist"}
        Whose data, embeddings, batch size (64), factors (prior 4, target 8)
        and evaluation to use: the experiment's defaults, as the grid's.
    out : path
    n : int, optional
        Rows drawn per sampler; default the experiment's evaluation sample
        count (26,000 Stacked MNIST, 10,000 MNIST).
    embeddings : sequence of {"raw", "mnist-cnn"}
        The core-set rows of the real side.
    seed : int
        The samplers' seed (the trainer derives its own from the run's seed:
        this is a fresh draw of the same process, not a replay of a run).
    cache_dir : path, optional
        Embeddings and the classifier (default ``$SMALLGAN_CACHE``).
    threads : int, optional
        Threads for the evaluation.
    evaluate : bool
        Score the selected images with the classifier (else true labels only).

    Returns
    -------
    dict
        ``{"real": rows, "prior": rows}``, as written.
    """
    import numpy as np

    from smallgan.checks import check_choice, check_int
    from smallgan.experiments.images import default_cache_dir, real_embeddings
    from smallgan.metrics.digits import kl_to_uniform

    check_choice("experiment", experiment, EXPERIMENTS)
    bad = [e for e in embeddings if e not in EMBEDDINGS]
    if bad or len(set(embeddings)) != len(embeddings):
        raise ValueError(f"embeddings must be distinct values among {EMBEDDINGS}, "
                         f"got {list(embeddings)}")
    check_int("seed", seed, 0)
    cfg, images, labels, name, real = _data(experiment)
    n = cfg.fid_fake if n is None else check_int("n", n, cfg.batch_size)
    n_modes = 1000 if experiment == "stacked-mnist" else 10
    cache = Path(cache_dir) if cache_dir else default_cache_dir()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)

    prior_rows: List[Dict[str, Any]] = []
    for sampling in ("random", "coreset"):
        t0 = time.perf_counter()
        z = prior_batches(cfg.z_dim, n, batch_size=cfg.batch_size, factor=cfg.prior_factor,
                          seed=seed, sampling=sampling)
        row = {"sampling": sampling, "factor": cfg.prior_factor if sampling == "coreset" else 1,
               "z_dim": cfg.z_dim, "batch_size": cfg.batch_size, "n": n, **prior_moments(z),
               "seconds": time.perf_counter() - t0}
        prior_rows.append(row)
        echo(f"prior {sampling:<8} mean|z| {row['mean_abs']:.3f}  rms {row['rms']:.3f}  "
             f"|z|>{OUTER} {row['outer_share']:.3f}")

    real_rows: List[Dict[str, Any]] = []
    net = None
    for sampling, emb_kind in [("random", "")] + [("coreset", e) for e in embeddings]:
        t0 = time.perf_counter()
        if sampling == "coreset":
            emb, emb_name = real_embeddings(images, emb_kind, cfg.projection_dim,
                                            seed=cfg.projection_seed, cache_dir=cache,
                                            dataset=name)
        else:
            emb, emb_name = np.zeros((len(images), 1), np.float32), ""
        draws = cfg.steps * cfg.batch_size  # a whole run's real draws (n_dis = 1)
        run_rows = selected_rows(emb, max(n, draws), batch_size=cfg.batch_size,
                                 factor=cfg.target_factor, seed=seed, sampling=sampling)
        rows = run_rows[:n]
        counts = np.bincount(run_rows[:draws], minlength=len(images))
        top = np.sort(counts)[::-1][:max(1, len(images) // 10)]
        hist = np.bincount(labels[rows], minlength=n_modes)
        row: Dict[str, Any] = {
            "sampling": sampling, "embedding": emb_name,
            "factor": cfg.target_factor if sampling == "coreset" else 1, "n": n,
            "distinct_rows": int(np.unique(rows).size),
            "true_modes": int(np.count_nonzero(hist)), "true_kl": kl_to_uniform(hist),
            "true_top_share": float(hist.max() / n), "true_bottom_share": float(hist.min() / n),
            "run_draws": draws, "run_seen_share": float(np.count_nonzero(counts) / len(images)),
            "run_top10_share": float(top.sum() / draws)}
        if evaluate:
            from smallgan.metrics.classifier import load_mnist_classifier
            from smallgan.metrics.digits import evaluate_digits

            if net is None:
                net = load_mnist_classifier(cache_dir=cache,
                                            log=lambda s: print(s, file=sys.stderr))
            report = evaluate_digits(images.__getitems__(rows.tolist()), real, classifier=net,
                                     fake_range=(-1.0, 1.0), real_range=(0.0, 1.0),
                                     threads=threads)
            row.update(report.as_dict())
        row["seconds"] = time.perf_counter() - t0
        real_rows.append(row)
        label = "random" if sampling == "random" else f"core-set {emb_name}"
        echo(f"real  {label:<24} true modes {row['true_modes']}/{n_modes} KL "
             f"{row['true_kl']:.4f}" + (f" | FD[mnist-cnn] {row['fd_mnist_cnn']:.2f} P "
                                         f"{row['precision']:.3f} R {row['recall']:.3f} C "
                                         f"{row['coverage']:.3f}" if evaluate else "")
             + f" [{row['seconds']:.0f} s]")

    from smallgan.experiments.grid import write_csv

    write_csv(real_rows, out / "real.csv")
    write_csv(prior_rows, out / "prior.csv")
    text = format_markdown(experiment, real_rows, prior_rows) + "\n"
    atomic_write(out / "table.md", lambda f: f.write(text), text=True)
    return {"real": real_rows, "prior": prior_rows}


def format_markdown(experiment: str, real_rows: Sequence[Dict[str, Any]],
                    prior_rows: Sequence[Dict[str, Any]]) -> str:
    """Both tables as markdown."""
    n_modes = 1000 if experiment == "stacked-mnist" else 10
    scored = any("fd_mnist_cnn" in r for r in real_rows)
    head = ["real batches", "n", "distinct rows", "true modes", "true KL",
            "most / least common mode", "run: images seen", "run: draws on top 10 %"]
    if scored:
        head += ["FD[mnist-cnn]", "CS[mnist-cnn]", "precision", "recall", "density", "coverage"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for r in real_rows:
        label = ("random (GAN)" if r["sampling"] == "random"
                 else f"core-set x{r['factor']} on {r['embedding']}")
        cells = [label, str(r["n"]), str(r["distinct_rows"]), f"{r['true_modes']} / {n_modes}",
                 f"{r['true_kl']:.4f}",
                 f"{100 * r['true_top_share']:.2f} % / {100 * r['true_bottom_share']:.2f} %",
                 f"{100 * r['run_seen_share']:.1f} %", f"{100 * r['run_top10_share']:.1f} %"]
        if scored:
            cells += [f"{r['fd_mnist_cnn']:.2f}", f"{r['cs_mnist_cnn']:.2f}",
                      f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['density']:.3f}",
                      f"{r['coverage']:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"| prior batches | n | mean abs(z_i) | rms z_i | share abs(z_i) > {OUTER} |",
              "|---|---:|---:|---:|---:|"]
    for r in prior_rows:
        label = "random (GAN)" if r["sampling"] == "random" else f"core-set x{r['factor']}"
        lines.append(f"| {label} | {r['n']} | {r['mean_abs']:.3f} | {r['rms']:.3f} | "
                     f"{r['outer_share']:.3f} |")
    lines.append(f"| uniform on [-1, 1] (exact) | | 0.500 | {1 / math.sqrt(3):.3f} | "
                 f"{1 - OUTER:.3f} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``smallgan train selection-bias``."""
    parser.add_argument("--experiment", choices=EXPERIMENTS, required=True,
                        help="whose data, embeddings, batch size, factors and evaluation")
    parser.add_argument("--n", type=int, default=None,
                        help="rows drawn per sampler (default: the experiment's evaluation "
                             "sample count)")
    parser.add_argument("--embeddings", nargs="+", choices=EMBEDDINGS, default=list(EMBEDDINGS),
                        help="core-set rows of the real side (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="samplers' seed (default 0)")
    parser.add_argument("--cache-dir", dest="cache_dir", default=None,
                        help="embeddings and classifier cache (default $SMALLGAN_CACHE)")
    parser.add_argument("--threads", type=int, default=None,
                        help="threads for the evaluation (default: unchanged)")
    parser.add_argument("--no-evaluate", dest="evaluate", action="store_false",
                        help="true labels only: no classifier, no FD or PRDC")
    parser.add_argument("--out", required=True, help="output directory")


def run_from_args(args: argparse.Namespace) -> int:
    """Entry point of ``smallgan train selection-bias``."""
    if args.threads is not None and args.threads < 1:
        print(f"smallgan train selection-bias: --threads must be >= 1, got {args.threads}",
              file=sys.stderr)
        return 2
    try:
        result = run(args.experiment, args.out, n=args.n, embeddings=args.embeddings,
                     seed=args.seed, cache_dir=args.cache_dir, threads=args.threads,
                     evaluate=args.evaluate, echo=lambda s: None)
    except (ValueError, TypeError) as exc:
        print(f"smallgan train selection-bias: {exc}", file=sys.stderr)
        return 2
    print(format_markdown(args.experiment, result["real"], result["prior"]))
    print(f"\nresults in {args.out}/real.csv, prior.csv, table.md")
    return 0
