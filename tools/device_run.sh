#!/usr/bin/env bash
# Every GPU check of the project in one run (issues 12, 13 and the CUDA part of
# 16), for a lent GPU machine with a hard time budget.  From the repository
# root, with nvcc, torch (CUDA), cmake, pybind11, scikit-build-core, pytest and
# pytest-benchmark installed and no package index:
#
#     OUT=/some/dir bash tools/device_run.sh
#
# Steps, in order of what matters most if time runs out (each has its own
# limit; every step runs even if an earlier one failed, except after a failed
# build):
#   1. build in place with SMALLGAN_CUDA=ON                  -> build.log
#   2. the CUDA kernel's gpu tests                           -> cuda.log
#   3. bench/bench_cuda.py (kernel vs torch loop vs CPU)     -> cuda.log, bench_cuda.md
#   4. the never-run CUDA paths + the GPU overhead check     -> paths.log, bench.json
#   5. Table 5 (smallgan train timing)                       -> paths.log, timing.md, timing.csv
#   6. compute-sanitizer memcheck/racecheck on tools/cuda_smoke.py, only if
#      the run is still under SANITIZE_BEFORE_S seconds     -> cuda.log
# That is at most 8 files under $OUT (the device tool's limit).
set -uo pipefail
export PYTHONUNBUFFERED=1
: "${OUT:?set OUT to the folder for logs and results}"
SANITIZE_BEFORE_S=${SANITIZE_BEFORE_S:-330}
# STEPS: which of "sanitize-first cuda-tests cuda-bench paths timing sanitize" to run
STEPS=" ${STEPS:-cuda-tests cuda-bench paths timing sanitize} "
PATHS_K=${PATHS_K:-}
want() { [[ "$STEPS" == *" $1 "* ]]; }
mkdir -p "$OUT"
# steps run in pipelines (subshells): failures are recorded in a file
FAILED=/tmp/device_run.failed; rm -f "$FAILED"
fail() { echo "$1" >>"$FAILED"; }

# `python` for the scripts and subprocesses that call it by that name
if ! command -v python >/dev/null 2>&1; then
  mkdir -p /tmp/pybin && ln -sf "$(command -v python3)" /tmp/pybin/python && export PATH=/tmp/pybin:$PATH
fi
if ! command -v nvcc >/dev/null 2>&1; then
  for c in /usr/local/cuda/bin/nvcc /usr/local/cuda-13.0/bin/nvcc; do
    if [ -x "$c" ]; then export CUDACXX="$c" PATH="$(dirname "$c"):$PATH"; break; fi
  done
fi

step() { echo; echo "== [$(date -u +%H:%M:%S), ${SECONDS}s] $*"; }

{
  step "environment"
  git rev-parse --short HEAD 2>/dev/null || true
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv 2>&1 || true
  python -V; nproc
  python -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  nvcc --version | tail -2
  step "build (SMALLGAN_CUDA=ON)"
} 2>&1 | tee "$OUT/cuda.log"
if ! SMALLGAN_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL=16 timeout 300 python -m pip install --no-build-isolation \
    --no-deps --no-index -v -e . >"$OUT/build.log" 2>&1; then
  tail -40 "$OUT/build.log"
  echo "BUILD FAILED (see build.log)" | tee -a "$OUT/cuda.log"
  exit 1
fi
python -m smallgan config 2>&1 | tee -a "$OUT/cuda.log" || fail "config"

# pytest options for this machine's packages: pyproject.toml turns warnings
# into errors and sets pytest-timeout's `timeout` under --strict-config
compat=(-p no:cacheprovider -W "ignore::pytest_benchmark.logger.PytestBenchmarkWarning")
if ! python -c "import pytest_timeout" 2>/dev/null; then
  compat+=(-o "addopts=-ra --strict-markers" -W "ignore::pytest.PytestConfigWarning")
fi

sanitize() {
  for tool in memcheck racecheck; do
    step "compute-sanitizer --tool $tool"
    timeout -k 5 90 compute-sanitizer --tool "$tool" --error-exitcode 86 --show-backtrace device \
      python tools/cuda_smoke.py 2>&1 | grep -v "Host Frame" | head -150 || fail "sanitizer $tool"
  done
}

{
  if want sanitize-first; then sanitize; fi
  if want cuda-tests; then
    step "CUDA kernel: gpu tests"
    timeout -k 10 150 python -m pytest -q -rfE -m gpu "${compat[@]}" tests/test_coreset_cuda.py || fail "cuda tests"
  fi
  if want cuda-bench; then
    step "CUDA kernel: benchmark"
    timeout -k 10 150 python bench/bench_cuda.py --out "$OUT/bench_cuda.md" || fail "bench_cuda"
  fi
} 2>&1 | tee -a "$OUT/cuda.log"

{
  if want paths; then
  step "CUDA paths (sampling, embeddings, AMP, SIGINT + resume) and the GPU overhead check"
  timeout -k 10 170 python -m pytest -q -rfE -m gpu "${compat[@]}" ${PATHS_K:+-k "$PATHS_K"} \
    tests/test_gpu_paths.py bench/test_bench_gpu_step.py tests/test_sampling.py tests/test_coreset_torch.py \
    --benchmark-json "$OUT/bench.json" || fail "gpu paths"
  fi
  if want timing; then
  step "Table 5"
  rm -rf /tmp/timing
  # TIMING_ARGS replaces the sizes for a dry run on a CPU (TIMING_ARGS=--tiny)
  read -r -a timing_args <<<"${TIMING_ARGS:---batch-sizes 64 128 256 --n-dis 1 5 --window 10 --windows 5 --warmup 5}"
  timeout -k 10 200 python -m smallgan train timing "${timing_args[@]}" --out /tmp/timing || fail "timing"
  cp /tmp/timing/timing.md /tmp/timing/timing.csv "$OUT/" 2>/dev/null || fail "timing files"
  fi
} 2>&1 | tee "$OUT/paths.log"

{
  if ! want sanitize; then
    :
  elif command -v compute-sanitizer >/dev/null 2>&1 && [ "$SECONDS" -lt "$SANITIZE_BEFORE_S" ]; then
    sanitize
  else
    step "compute-sanitizer skipped (not found, or ${SECONDS}s >= ${SANITIZE_BEFORE_S}s)"
  fi
  step "done; failed steps: $(cat "$FAILED" 2>/dev/null | tr '\n' ' ')"
} 2>&1 | tee -a "$OUT/cuda.log"

echo; cat "$OUT/bench_cuda.md" 2>/dev/null | tail -30
echo; cat "$OUT/timing.md" 2>/dev/null | tail -30
[ ! -s "$FAILED" ]
