#!/usr/bin/env bash
# Issue 13 on a CUDA machine: the gpu-marked tests (test_gpu_paths.py and the
# older CUDA cases in test_sampling.py / test_coreset_torch.py), the GPU overhead check and
# Table 5.  Run from the repository root with smallgan already built and
# installed (e.g. `pip install --no-build-isolation .`) and OUT set to an empty
# folder:
#
#     OUT=/some/dir bash tools/device_gpu_paths.sh
#
# Writes 7 files: $OUT/env.log, $OUT/pytest.log, $OUT/bench.json (pytest-
# benchmark, per-mode numbers in extra_info), $OUT/timing.log and
# $OUT/timing/timing.{md,csv,json}.  Expected on an H200: about 1.5 min of
# tests, 1-2 min of timing.  Each step has its own time limit, so one hang
# cannot eat the budget; the timing rewrites its files after every cell, so a
# cut-short run keeps the cells it finished.  Exit status: 0 when every step
# passed, else 1 (all steps still run).
set -uo pipefail
export PYTHONUNBUFFERED=1
: "${OUT:?set OUT to the folder for logs and results}"
mkdir -p "$OUT/timing"
status=0

{
  date -u +"%Y-%m-%d %H:%M:%S UTC"
  git rev-parse HEAD 2>/dev/null || true
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
  nproc
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'available', torch.cuda.is_available())"
  python -m smallgan config
} 2>&1 | tee "$OUT/env.log" || status=1

# pyproject.toml sets pytest-timeout's `timeout` under --strict-config; without
# that plugin pytest would refuse to start, so drop both for this run only.
# pytest-benchmark warns (an error under filterwarnings=error) when no benchmark
# ran, e.g. every case skipped or failed early: let the results speak instead.
compat=(-W "ignore::pytest_benchmark.logger.PytestBenchmarkWarning")
if ! python -c "import pytest_timeout" 2>/dev/null; then
  compat+=(-o "addopts=-ra --strict-markers" -W "ignore::pytest.PytestConfigWarning")
fi

echo "== gpu tests and the overhead check"
timeout -k 10 170 python -m pytest -q -rA -m gpu "${compat[@]}" \
  tests/test_gpu_paths.py bench/test_bench_gpu_step.py tests/test_sampling.py tests/test_coreset_torch.py \
  --benchmark-json "$OUT/bench.json" 2>&1 | tee "$OUT/pytest.log" || status=1

echo "== Table 5"
# TIMING_ARGS replaces the sizes for a dry run on a CPU (TIMING_ARGS=--tiny)
read -r -a timing_args <<< "${TIMING_ARGS:---batch-sizes 64 128 256 --n-dis 1 5 --window 10 --windows 5 --warmup 5}"
timeout -k 10 170 python -m smallgan train timing "${timing_args[@]}" --out "$OUT/timing" 2>&1 \
  | tee "$OUT/timing.log" || status=1

echo
echo "== Table 5 (timing.md)"
cat "$OUT/timing/timing.md" 2>/dev/null || { echo "no timing.md written"; status=1; }
exit $status
