"""``smallgan bench``: the k-center comparison table (see smallgan.compare)."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from smallgan import compare

    p = subparsers.add_parser(
        "bench", help="time kcenter against numpy/torch/faiss/fpsample loops and the machine floor",
        description=compare.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    compare.add_arguments(p)
    p.set_defaults(func=compare.run)
