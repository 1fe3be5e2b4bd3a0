"""limit_threads: torch's pool and the native BLAS/OpenMP pools, restored after."""
from __future__ import annotations

import pytest
import threadpoolctl
import torch

import faiss  # noqa: F401  (load its OpenMP runtime and BLAS, as an evaluation does)
from smallgan.metrics.threads import limit_threads


def test_limits_every_pool_and_restores_them() -> None:
    before_torch = torch.get_num_threads()
    before_native = [p["num_threads"] for p in threadpoolctl.threadpool_info()]
    with limit_threads(1):
        assert torch.get_num_threads() == 1
        assert all(p["num_threads"] == 1 for p in threadpoolctl.threadpool_info())
    assert torch.get_num_threads() == before_torch
    assert [p["num_threads"] for p in threadpoolctl.threadpool_info()] == before_native
    with limit_threads(None):
        assert torch.get_num_threads() == before_torch


def test_bad_thread_counts() -> None:
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        with limit_threads(0):
            pass
    with pytest.raises(TypeError, match="threads must be an int, got 1.5"):
        with limit_threads(1.5):
            pass
