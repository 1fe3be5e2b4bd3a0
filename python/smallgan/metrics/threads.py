"""One switch for the thread pools an evaluation uses: torch's intra-op pool
and the native BLAS / OpenMP pools (numpy's OpenBLAS, faiss's OpenBLAS and
OpenMP), the latter through threadpoolctl when it is installed (it comes
with scikit-learn).

Why: an evaluation mixes small torch convolutions, 384 x 384 eigendecompositions
and blocked matrix products.  On an oversubscribed machine (more runnable
threads than cores) their spinning worker threads stall each other: on a
busy 2-core machine ``numpy.linalg.eigh`` of a 384 x 384 covariance took
2.3 s with 2 OpenBLAS threads and 0.02 s with 1, and the classifier ran
3-5x faster on 1 torch thread than on 2 (measured 2026-11-30).
"""
from __future__ import annotations

import contextlib
from typing import Iterator, Optional

from smallgan.checks import check_int

__all__ = ["limit_threads"]


@contextlib.contextmanager
def limit_threads(threads: Optional[int]) -> Iterator[None]:
    """Run the block with at most ``threads`` threads in torch (if imported)
    and in every BLAS/OpenMP pool threadpoolctl finds; ``None`` changes
    nothing.  Restores the previous settings afterwards.

    Thread safety: the limits are process-wide while the block runs.
    """
    if threads is None:
        yield
        return
    check_int("threads", threads, 1)
    with contextlib.ExitStack() as stack:
        try:
            from threadpoolctl import threadpool_limits
        except ModuleNotFoundError:  # optional: torch's pool is still limited
            pass
        else:
            stack.enter_context(threadpool_limits(limits=threads))
        import sys

        if "torch" in sys.modules:
            from smallgan.metrics.classifier import torch_threads

            stack.enter_context(torch_threads(threads))
        yield
