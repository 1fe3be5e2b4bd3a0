"""``smallgan.show_config()``: what this build and machine will use."""
from __future__ import annotations

import os
import platform
import sys
from typing import Any, Dict, Optional

from smallgan import _core


def _cuda_version(v: int) -> Optional[str]:
    # CUDART_VERSION the kernel was built with (statically linked), e.g. 13000 -> "13.0"
    return f"{v // 1000}.{v % 1000 // 10}" if v else None


def config() -> Dict[str, Any]:
    """The build and run-time configuration as a dict (see :func:`show_config`)."""
    import numpy as np

    info: Dict[str, Any] = {
        "smallgan": __import__("smallgan").__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "numpy": np.__version__,
        "simd_level": _core.simd_level(),
        "simd_detected": _core.detected_simd_level(),
        "simd_available": list(_core.available_simd_levels()),
        "simd_env": os.environ.get("SMALLGAN_SIMD"),
        "openmp": bool(_core.openmp()),
        "threads": int(_core.max_threads()),
        "omp_num_threads_env": os.environ.get("OMP_NUM_THREADS"),
        "pool_threads": int(_core.pool_size()),
        "cuda_kernel": bool(_core.cuda),
        "cuda_architectures": _core.cuda_architectures or None,
        "cuda_runtime": _cuda_version(int(_core.cuda_runtime_version)),
    }
    torch = sys.modules.get("torch")
    if torch is None:
        try:
            import torch  # noqa: F401  (optional)
        except ImportError:
            torch = None
    info["torch"] = getattr(torch, "__version__", None)
    info["torch_cuda_available"] = bool(torch is not None and torch.cuda.is_available())
    if info["torch_cuda_available"] and _core.cuda:
        dev = torch.cuda.current_device()
        info["cuda_device"] = torch.cuda.get_device_name(dev)
        cc = int(_core.cuda_compute_capability(dev))
        info["cuda_device_capability"] = f"{cc // 10}.{cc % 10}"
    return info


def show_config() -> Dict[str, Any]:
    """Print and return what smallgan will use on this machine.

    SIMD level (and the levels this CPU and build can run), OpenMP, default
    thread count (``OMP_NUM_THREADS`` honoured), background pool size, whether
    the CUDA kernel was built (its GPU architectures and CUDA runtime, and the
    current GPU when torch sees one), and library versions.  Include its output in bug
    reports.

    Thread safety: read-only; safe from any thread.
    """
    info = config()
    width = max(len(k) for k in info)
    for key, value in info.items():
        print(f"{key:<{width}} : {value}")
    return info
