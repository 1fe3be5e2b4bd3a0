"""pytest-benchmark suite for kcenter at the issue's sizes (not part of CI).

    python -m pytest bench/test_bench_kcenter.py --benchmark-columns=median,iqr,rounds
    python -m pytest bench/test_bench_kcenter.py -k "1024-32" --benchmark-compare

Each size is timed for the engine (1 thread and all threads) and for the best
numpy loop around BLAS in the same session, so their medians can be read as a
ratio.  Correctness is spot-checked against the float64 brute force first.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from smallgan import _core, kcenter
from smallgan.compare import numpy_blas

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from kcenter_reference import reference_kcenter  # noqa: E402

SIZES = [(512, 128, 128), (1024, 32, 128), (1024, 256, 128), (2048, 128, 256),
         (8192, 128, 1024), (65536, 64, 1024)]
IDS = [f"{n}-{d}-{k}" for n, d, k in SIZES]


def data(n, d):
    return np.random.default_rng(n * 7 + d).normal(size=(n, d)).astype(np.float32)


@pytest.mark.parametrize("n,d,k", SIZES, ids=IDS)
@pytest.mark.parametrize("threads", [1, _core.max_threads()], ids=lambda t: f"{t}t")
def test_engine(benchmark, n, d, k, threads):
    x = data(n, d)
    if n * k <= 2048 * 256:
        np.testing.assert_array_equal(kcenter(x, k, first=0), reference_kcenter(x, k, first=0)[0])
    benchmark.group = f"{n},{d},{k}"
    idx = benchmark(kcenter, x, k, first=0, threads=threads)
    assert len(idx) == k


@pytest.mark.parametrize("n,d,k", SIZES, ids=IDS)
def test_numpy_blas_loop(benchmark, n, d, k):
    x = data(n, d)
    benchmark.group = f"{n},{d},{k}"
    if n >= 65536:
        benchmark.pedantic(numpy_blas, args=(x, k, 0), rounds=3, iterations=1)
    else:
        benchmark(numpy_blas, x, k, 0)
