"""``smallgan config``: print SIMD level, OpenMP, threads, CUDA, versions."""
from __future__ import annotations


def register(subparsers) -> None:
    p = subparsers.add_parser("config", help="show what the engine will use on this machine")
    p.set_defaults(func=_run)


def _run(_args) -> int:
    from smallgan import show_config

    show_config()
    return 0
