"""``smallgan models``: the image GAN architectures and their sizes.

``smallgan models --sizes`` prints, for every generator and discriminator,
the number of trainable parameters and the bytes they occupy (float32,
parameters only: no BatchNorm statistics, spectral-norm vectors, optimizer
state or activations). For the LSGAN discriminators it also prints the
activation memory of one forward pass at the study's batch size (32), since
the study's "MB" figures were most likely memory in use, not parameter bytes.
"""
from __future__ import annotations

import argparse
from typing import Callable, Iterator

MB = 1e6  # decimal megabytes, stated in the table header


FAMILIES = ("sngan", "sagan", "lsgan")


def _catalogue(families: tuple[str, ...] = FAMILIES
               ) -> Iterator[tuple[str, str, Callable[[], "object"], tuple[int, ...] | None]]:
    """(name, role, factory, input shape for activation measurement or None)."""
    from smallgan.models import lsgan, sagan, sngan

    if "sngan" in families:
        yield "sngan-32", "G", lambda: sngan.SNGANGenerator(), None
        yield "sngan-32", "D", lambda: sngan.SNGANDiscriminator(), None
    if "sagan" in families:
        for res in (64, 128):
            yield f"sagan-{res}", "G", (lambda r=res: sagan.SAGANGenerator(r)), None
            yield f"sagan-{res}", "D", (lambda r=res: sagan.SAGANDiscriminator(r)), None
    if "lsgan" in families:
        yield "lsgan-28", "G", lambda: lsgan.LSGANGenerator(), None
        for name in lsgan.DISCRIMINATORS:
            yield (f"lsgan-28/{name}", "D", (lambda n=name: lsgan.make_discriminator(n)),
                   (1, 28, 28))


def sizes_table(batch: int = 32, families: tuple[str, ...] = FAMILIES) -> list[dict]:
    """One row per model: name, role, parameters, parameter MB, activation MB."""
    from smallgan.models.blocks import activation_bytes, count_parameters, parameter_bytes

    rows = []
    for name, role, factory, shape in _catalogue(families):
        model = factory()
        rows.append({
            "model": name, "role": role, "parameters": count_parameters(model),
            "param_mb": parameter_bytes(model) / MB,
            "activation_mb": (activation_bytes(model, shape, batch) / MB
                              if shape is not None else None),
        })
    return rows


def _run(args: argparse.Namespace) -> int:
    if args.batch < 1:
        raise ValueError(f"--batch must be >= 1, got {args.batch}")
    families = tuple(args.family) if args.family else FAMILIES
    if not args.sizes:
        for name, role, _, _ in _catalogue(families):
            print(f"{name} {role}")
        return 0
    rows = sizes_table(args.batch, families)
    print(f"{'model':<30} {'role':<4} {'parameters':>12} {'param MB':>9} "
          f"{'act. MB (b=' + str(args.batch) + ')':>14}")
    for r in rows:
        act = f"{r['activation_mb']:14.3f}" if r["activation_mb"] is not None else f"{'-':>14}"
        print(f"{r['model']:<30} {r['role']:<4} {r['parameters']:>12,} {r['param_mb']:9.3f} {act}")
    print("param MB = parameter bytes (float32) / 1e6: weights only, no BatchNorm statistics, "
          "spectral-norm vectors or optimizer state. act. MB = bytes of all layer outputs in one "
          "forward pass at that batch size (LSGAN discriminators only).")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``smallgan models`` to the CLI."""
    p = subparsers.add_parser("models", help="list the image GAN models and their sizes",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", action="store_true",
                   help="print parameter counts and sizes in MB")
    p.add_argument("--batch", type=int, default=32,
                   help="batch size for the activation memory column (default: 32, the "
                        "LSGAN study's)")
    p.add_argument("--family", action="append", choices=FAMILIES,
                   help="only this family (repeatable; default: all)")
    p.set_defaults(func=_run)
