"""``smallgan select``: greedy k-center on an array stored in a ``.npy`` file.

    smallgan select points.npy -k 128 --seed 0 --out picks.npy --radius

The input is memory-mapped (never loaded twice, never modified); the indices
are written as int64 ``.npy`` (atomically: temp file + rename) or printed.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    p = subparsers.add_parser("select", help="k-center core-set of the rows of a .npy array",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", type=Path, help="2-D .npy array, one point per row")
    p.add_argument("-k", type=int, required=True, help="number of rows to select")
    p.add_argument("--seed", type=int, default=None, help="seed for the first centre")
    p.add_argument("--first", type=int, default=None, help="index of the first centre")
    p.add_argument("--selected", type=Path, default=None, help=".npy of indices already selected")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", type=Path, default=None, help="write indices here (.npy); default: print")
    p.add_argument("--radius", action="store_true", help="print the covering radius")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import numpy as np

    from smallgan import kcenter
    from smallgan.atomic import atomic_write

    def load(what: str, path: Path, **kw):
        if not path.is_file():
            raise ValueError(f"{what} file {str(path)!r} does not exist")
        try:
            # allow_pickle=False: an .npy of objects would run code on load
            return np.load(path, allow_pickle=False, **kw)
        except (OSError, ValueError, EOFError) as exc:
            raise ValueError(f"{what} file {str(path)!r} is not a readable .npy array "
                             f"({type(exc).__name__}: {exc})") from None

    try:
        x = load("input", args.input, mmap_mode="r")
        selected = load("--selected", args.selected) if args.selected else None
    except ValueError as exc:
        print(f"smallgan select: {exc}", file=sys.stderr)
        return 2
    try:
        idx, radius = kcenter(x, args.k, first=args.first, seed=args.seed, selected=selected,
                              threads=args.threads, return_radius=True)
    except (ValueError, TypeError) as exc:
        print(f"smallgan select: {exc}", file=sys.stderr)
        return 2
    if args.out is not None:
        atomic_write(args.out, lambda f: np.save(f, idx))
    else:
        print(" ".join(str(int(i)) for i in idx))
    if args.radius:
        print(f"radius {radius:.6g}", file=sys.stderr if args.out is None else sys.stdout)
    return 0
