"""``smallgan bench``: the k-center comparison table (see smallgan.benchmark)."""
from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from smallgan import benchmark

    p = subparsers.add_parser(
        "bench", help="time kcenter against numpy/torch/faiss/fpsample loops and the machine floor",
        description=benchmark.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    benchmark.add_arguments(p)
    p.set_defaults(func=benchmark.run)
