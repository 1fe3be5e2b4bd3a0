"""smallgan: effectively large GAN mini-batches at the cost of small ones.

Implements "Small-GAN: Speeding up GAN Training using Core-Sets" (Sinha et
al., ICML 2020) on an exact C++/OpenMP/SIMD greedy k-center engine.

>>> import numpy as np, smallgan
>>> x = np.random.default_rng(0).normal(size=(1024, 32)).astype(np.float32)
>>> idx = smallgan.kcenter(x, 128, seed=0)
>>> idx.shape, idx.dtype
((128,), dtype('int64'))
"""
from __future__ import annotations

try:
    from importlib.metadata import PackageNotFoundError, version as _version

    __version__ = _version("smallgan")
except Exception:  # running from a source tree without installing
    __version__ = "0+unknown"

from smallgan.coreset import kcenter, kcenter_async
from smallgan.batched import kcenter_batched
from smallgan._config import show_config

__all__ = ["kcenter", "kcenter_async", "kcenter_batched", "show_config", "__version__"]
