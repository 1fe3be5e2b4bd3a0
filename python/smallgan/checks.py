"""Argument checks shared by every public entry point.

One rule for every module (``coreset``, ``sampling``, ``embeddings``,
``projection``, ``training``): a value of the wrong *type* raises
``TypeError``, a value of the right type but outside what is allowed raises
``ValueError``; both messages name the argument and show the value.  The
checks run before any work, so a bad call changes nothing.

Example
-------
>>> check_int("batch_size", 64, minimum=1)
64
>>> check_int("batch_size", 0, minimum=1)
Traceback (most recent call last):
...
ValueError: batch_size must be >= 1, got 0
>>> check_int("batch_size", 6.4)
Traceback (most recent call last):
...
TypeError: batch_size must be an int, got 6.4 of type float
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Optional, Sequence

import numpy as np

__all__ = ["check_int", "check_float", "check_choice", "check_bool", "check_seed"]


def check_int(name: str, value: Any, minimum: Optional[int] = None,
              maximum: Optional[int] = None) -> int:
    """``value`` as an ``int``; Python and numpy integers, never ``bool``.

    Raises ``TypeError`` for a non-integer and ``ValueError`` outside
    ``[minimum, maximum]``.
    """
    # bool is an Integral but never a sensible count or size
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}")
    v = int(value)
    if minimum is not None and v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v}")
    if maximum is not None and v > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {v}")
    return v


def check_float(name: str, value: Any, lo: float = -math.inf, hi: float = math.inf, *,
                lo_open: bool = False, hi_open: bool = False) -> float:
    """``value`` as a finite ``float`` in the interval given.

    Ints and numpy floats are accepted; ``bool`` and strings are a
    ``TypeError``; NaN, Inf or a value outside the interval a ``ValueError``.
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r} of type {type(value).__name__}")
    v = float(value)
    ok = math.isfinite(v) and (v > lo if lo_open else v >= lo) and (v < hi if hi_open else v <= hi)
    if not ok:
        lb, rb = ("(" if lo_open else "["), (")" if hi_open else "]")
        raise ValueError(f"{name} must be a finite number in {lb}{lo}, {hi}{rb}, got {value!r}")
    return v


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices`` (strings); else ``TypeError``/``ValueError``."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a str, one of {', '.join(map(repr, choices))}; "
                        f"got {value!r} of type {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``value`` if it is a ``bool`` (or numpy bool); anything else is a ``TypeError``."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {value!r} of type {type(value).__name__}")
    return bool(value)


def check_seed(value: Any) -> int:
    """A non-negative ``seed``; ``None`` draws fresh entropy (returned, so it can be stored)."""
    if value is None:
        return int(np.random.SeedSequence().entropy)
    return check_int("seed", value, minimum=0)
