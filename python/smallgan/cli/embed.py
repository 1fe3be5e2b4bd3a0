"""``smallgan embed``: cache (projected) embeddings of every image of a dataset.

    smallgan embed cifar10 --root data/ --out cache/cifar10.npy --weights pt_inception-2015-12-05-6726825d.pth
    smallgan embed digits --out digits.npy --extractor mypkg.nets:make_encoder --dim 16

Writes ``OUT`` (an (n, dim) float32 ``.npy``), ``OUT`` with suffix ``.json``
(the manifest) and ``.projection.npz`` (the random matrix).  Run it again
after an interruption to resume; with the same arguments on a finished cache
it does nothing.  Training reads the cache with
``smallgan.embeddings.load_embeddings`` (e.g. for ``CoresetBatchSampler``).

Extractors: ``inception`` (Inception-v3 pool3, 2048-d, weights from
``--weights``, ``$SMALLGAN_INCEPTION_WEIGHTS`` or
``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``; never
downloaded), or ``MODULE:ATTR`` naming a ``torch.nn.Module``, a callable
mapping an image batch (b, C, H, W) to (b, D), or a zero-argument class or
function returning one.  The current directory is searched for MODULE first.

Projection dimension: Sinha et al. randomly project the 2048-d Inception
embeddings "to a smaller dimension" before k-center (section 3.2) without a
number in the text we could check; the default 32 is our choice: it keeps
greedy k-center on 8 x 64 candidates at well under a millisecond, and random
projections of this size keep each squared distance k-center compares within
a factor 1 +- sqrt(2/32) = 1 +- 0.25 (one standard deviation per pair).  Use
``--dim 0`` to store the raw features.
"""
from __future__ import annotations

import argparse
import importlib
import inspect
import os
import sys
import time
from pathlib import Path



def register(subparsers) -> None:
    from smallgan.projection import DEFAULT_PROJECTION_DIM

    from smallgan.data import DATASETS

    p = subparsers.add_parser(
        "embed", help="cache randomly projected embeddings of a dataset (for core-set sampling)",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("dataset", choices=sorted(DATASETS),
                   help="; ".join(f"{k}: {v[1]}" for k, v in sorted(DATASETS.items())))
    p.add_argument("--root", type=Path, default=None, help="folder with the dataset's files (mnist, cifar10, folder)")
    p.add_argument("--split", choices=("train", "test"), default="train", help="mnist/cifar10 split (default train)")
    p.add_argument("--image-size", type=int, default=None, help="folder only: resize images to this square size")
    p.add_argument("--grayscale", action="store_true", help="folder only: read images as one channel")
    p.add_argument("--out", type=Path, required=True, help="cache file to write (.npy)")
    p.add_argument("--extractor", default="inception",
                   help="'inception' (default) or MODULE:ATTR (see above)")
    p.add_argument("--weights", type=Path, default=None, help="Inception weights file (extractor 'inception')")
    p.add_argument("--dim", type=int, default=DEFAULT_PROJECTION_DIM,
                   help=f"random projection dimension (default {DEFAULT_PROJECTION_DIM}; 0 = store raw features)")
    p.add_argument("--kind", choices=("gaussian", "sparse"), default="gaussian", help="projection matrix family")
    p.add_argument("--seed", type=int, default=0, help="seed of the projection matrix (default 0)")
    p.add_argument("--device", default="cpu", help="torch device for the extractor (default cpu)")
    p.add_argument("--batch-size", type=int, default=64, help="images per extractor call (default 64)")
    p.add_argument("--num-workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=_run)


def resolve_extractor(spec: str):
    """``MODULE:ATTR`` -> the extractor callable (see the module docstring).

    Raises
    ------
    ValueError
        ``spec`` is not of the form MODULE:ATTR, the attribute is missing, or
        it does not give a callable.
    ModuleNotFoundError
        MODULE cannot be imported.
    """
    import torch

    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"--extractor must be 'inception' or MODULE:ATTR, got {spec!r}")
    cwd = os.getcwd()
    added = cwd not in sys.path
    if added:
        sys.path.insert(0, cwd)  # like `python -m`: a module next to the user is found
    try:
        module = importlib.import_module(module_name)
    finally:
        if added:
            sys.path.remove(cwd)
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"--extractor {spec!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if isinstance(obj, torch.nn.Module):
        return obj
    if not callable(obj):
        raise ValueError(f"--extractor {spec!r} is a {type(obj).__name__}, not a Module or callable")
    if inspect.isclass(obj) or _takes_no_arguments(obj):
        obj = obj()  # a factory
        if not callable(obj):
            raise ValueError(f"--extractor {spec!r} returned a {type(obj).__name__}, not a Module or callable")
    return obj


def _takes_no_arguments(fn) -> bool:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # builtins without a signature: treat as an extractor
        return False
    return all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
               for p in sig.parameters.values())


def _run(args) -> int:
    try:
        return _embed(args)
    except (ValueError, TypeError, FileNotFoundError, ModuleNotFoundError) as exc:
        print(f"smallgan embed: error: {exc}", file=sys.stderr)
        return 2


def _embed(args) -> int:
    import torch

    from smallgan.data import open_dataset
    from smallgan.embeddings import compute_embeddings, manifest_path, read_manifest

    if args.dim < 0:
        raise ValueError(f"--dim must be >= 0 (0 = no projection), got {args.dim}")
    if args.batch_size < 1:
        raise ValueError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.num_workers < 0:
        raise ValueError(f"--num-workers must be >= 0, got {args.num_workers}")
    if args.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {args.seed}")
    if args.weights is not None and args.extractor != "inception":
        raise ValueError(f"--weights only applies to --extractor inception, not {args.extractor!r}")
    if args.out.suffix != ".npy":
        raise ValueError(f"--out must end in .npy, got {str(args.out)!r}")
    try:
        device = torch.device(args.device)
    except RuntimeError:
        raise ValueError(f"--device {args.device!r} is not a torch device") from None
    folder_opts = {}
    if args.dataset == "folder":
        folder_opts = {"image_size": args.image_size, "grayscale": args.grayscale}
    elif args.image_size is not None or args.grayscale:
        raise ValueError(f"--image-size and --grayscale only apply to the folder dataset, not {args.dataset!r}")

    dataset = open_dataset(args.dataset, args.root, train=args.split == "train", **folder_opts)
    if args.extractor == "inception":
        from smallgan.inception import load_inception

        extractor = load_inception(args.weights, device=device)
    else:
        extractor = resolve_extractor(args.extractor)
    projection = None if args.dim == 0 else {"dim": args.dim, "seed": args.seed, "kind": args.kind}

    args.out.parent.mkdir(parents=True, exist_ok=True)
    before = read_manifest(args.out)["rows_done"] if manifest_path(args.out).is_file() else None
    t0 = time.perf_counter()
    emb = compute_embeddings(dataset, extractor, args.out, batch_size=args.batch_size, device=device,
                             num_workers=args.num_workers, projection=projection, progress=not args.no_progress)
    seconds = time.perf_counter() - t0
    n = len(dataset)
    if before == n:
        how = "already complete, reused"
    elif before:
        how = f"resumed at row {before}, {n - before} images in {seconds:.1f} s"
    else:
        how = f"{n} images in {seconds:.1f} s ({n / max(seconds, 1e-9):.3g} images/s)"
    print(f"{args.out}: {emb.shape[0]} x {emb.shape[1]} {emb.dtype} ({how}); manifest {manifest_path(args.out)}")
    return 0
