"""Type stub for the compiled engine (csrc/bindings.cpp).  Private: use smallgan.kcenter."""
from concurrent.futures import Future
from typing import Any, Dict, Optional, Tuple

import numpy as np
import numpy.typing as npt

block_rows: int
cuda: bool  # the CUDA kernel was built (csrc/cuda/)
cuda_architectures: str  # e.g. "80,90"; "" without the kernel
cuda_runtime_version: int  # CUDART_VERSION it was built with (statically linked), 0 without
cuda_aux_len: int
compiled_avx2: bool
compiled_avx512: bool

def kcenter(
    x: npt.NDArray[np.floating],
    k: int,
    first: int,
    selected: npt.NDArray[np.int64],
    threads: int = 0,
    simd: int = -1,
    want_distances: bool = False,
    prune: bool = True,
    path: int = 0,  # 0 auto, 1 blocked, 2 spatial (results never depend on it)
    stats: bool = False,  # True: a fifth element {"path": str, "block_updates": int}
) -> Tuple[Any, ...]: ...
def submit(
    x: npt.NDArray[np.floating],
    k: int,
    first: int,
    selected: npt.NDArray[np.int64],
    threads: int,
    simd: int,
    want_distances: bool,
    future: Future,
    prune: bool = True,
    path: int = 0,
) -> None: ...
def shutdown() -> None: ...
def pool_size() -> int: ...
def pool_started() -> bool: ...
def pending_jobs() -> int: ...
def set_pool_size(n: int) -> None: ...
def _after_fork_child() -> None: ...
def simd_level() -> str: ...
def detected_simd_level() -> str: ...
def simd_level_id(name: str) -> int: ...
def available_simd_levels() -> list[str]: ...
def openmp() -> bool: ...
def max_threads() -> int: ...
def choose_threads(n: int, d: int, threads: int = 0) -> int: ...
def choose_path(n: int, d: int, centres: int) -> str: ...  # "blocked" or "spatial"

# CUDA kernel.  Device memory as integers (torch's data_ptr()), strides in
# elements, dtype 0/1/2/3 = float32/float64/float16/bfloat16, stream as
# torch.cuda.Stream.cuda_stream.  Enqueues the work and returns at once.
# Without the kernel (cuda is False) these raise RuntimeError.
def cuda_workspace_bytes(n: int, d: int) -> int: ...
def cuda_kcenter(
    x: int,
    n: int,
    d: int,
    row_stride: int,
    col_stride: int,
    dtype: int,
    k: int,
    first: int,
    selected: int,
    n_selected: int,
    indices: int,
    distances: int,
    distances_f64: bool,
    workspace: int,
    workspace_bytes: int,
    aux: int,
    skip_if_bad: bool,
    device: int,
    stream: int,
    blocks: int = 0,
) -> None: ...
def cuda_plan(n: int, d: int, device: int, blocks: int = 0) -> Dict[str, Any]: ...
def cuda_compute_capability(device: int) -> int: ...
def cuda_supported(device: int) -> bool: ...
