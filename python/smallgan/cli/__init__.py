"""The ``smallgan`` command line.

A thin layer: each sub-command lives in its own module in this package
(``smallgan.cli.select``, ``smallgan.cli.train``, ...) and exposes ``register(subparsers)``, which adds its
parser and sets ``func`` to a callable taking the parsed arguments and
returning an exit code.  Modules are imported lazily so that ``smallgan --help``
and ``smallgan select`` do not pay for importing torch.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

# sub-command name -> module in smallgan.cli
COMMANDS = {
    "select": "select",
    "embed": "embed",
    "train": "train",
    "models": "models",
    "bench": "bench",
    "config": "config",
}


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    from smallgan import __version__

    parser = argparse.ArgumentParser(
        prog="smallgan",
        description="Small-GAN: fast exact greedy k-center core-sets for GAN training.",
    )
    parser.add_argument("--version", action="version", version=f"smallgan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, module in COMMANDS.items():
        if only is not None and name != only:
            # keep the full list visible in --help without importing every module
            sub.add_parser(name, help=f"(see `smallgan {name} --help`)")
            continue
        try:
            mod = importlib.import_module(f"smallgan.cli.{module}")
        except ModuleNotFoundError as exc:  # an optional dependency (torch, ...) is missing
            if exc.name and exc.name.startswith("smallgan"):
                raise
            p = sub.add_parser(name, help=f"unavailable: {exc}")
            p.set_defaults(func=_missing(name, exc))
            continue
        mod.register(sub)
    return parser


def _missing(name: str, exc: Exception):
    def run(_args) -> int:
        print(f"smallgan {name}: needs an optional dependency that is not installed: {exc}. "
              f"Install it with `pip install 'smallgan[train]'`.", file=sys.stderr)
        return 2
    return run


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    only = argv[0] if argv and argv[0] in COMMANDS else None
    parser = build_parser(only)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
