"""Sub-commands of the ``smallgan`` CLI; each module has ``register(subparsers)``."""
