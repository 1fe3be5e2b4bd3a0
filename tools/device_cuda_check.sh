#!/usr/bin/env bash
# GPU check of the CUDA kernel (issue 12), run from the repository root on a
# machine with an NVIDIA GPU, nvcc, torch, cmake, pybind11, scikit-build-core
# and pytest already installed (no package index needed):
#
#     OUT=/some/dir bash tools/device_cuda_check.sh
#
# 1. builds the package in place with SMALLGAN_CUDA=ON (a missing nvcc fails)
# 2. runs the GPU tests (pytest -m gpu)
# 3. runs bench/bench_cuda.py, writing $OUT/bench_cuda.md
# 4. runs tools/cuda_smoke.py under compute-sanitizer memcheck, racecheck and
#    synccheck, if compute-sanitizer is there
# Everything is logged under $OUT.  Exit status: 0 only if every step passed.
# About 3 minutes on an H200.
set -u -o pipefail
OUT=${OUT:-out/device_cuda_check}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
PY=${PYTHON:-python3}
status=0

if ! command -v nvcc >/dev/null 2>&1; then
  for c in /usr/local/cuda/bin/nvcc /usr/local/cuda-13.0/bin/nvcc; do
    if [ -x "$c" ]; then export CUDACXX="$c"; export PATH="$(dirname "$c"):$PATH"; break; fi
  done
fi

{
  echo "== $(date -u '+%Y-%m-%d %H:%M:%S UTC')  $(git rev-parse --short HEAD 2>/dev/null)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1 || true
  "$PY" -V
  "$PY" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0))"
  nvcc --version | tail -2
  cmake --version | head -1
} 2>&1 | tee "$OUT/env.log"

echo "== build (SMALLGAN_CUDA=ON)" | tee "$OUT/build.log"
if ! SMALLGAN_CUDA=ON "$PY" -m pip install --no-build-isolation --no-deps --no-index -v -e . 2>&1 | tee -a "$OUT/build.log"; then
  echo "BUILD FAILED (see $OUT/build.log)"
  exit 1
fi
"$PY" -c "import smallgan; smallgan.show_config()" 2>&1 | tee "$OUT/config.log" || status=1

echo "== GPU tests" | tee "$OUT/pytest.log"
timeout 150 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_coreset_cuda.py tests/test_coreset_torch.py 2>&1 \
  | tee -a "$OUT/pytest.log" || status=1

echo "== benchmark" | tee "$OUT/bench.log"
timeout 150 "$PY" bench/bench_cuda.py --out "$OUT/bench_cuda.md" 2>&1 | tee -a "$OUT/bench.log" || status=1

if command -v compute-sanitizer >/dev/null 2>&1; then
  for tool in memcheck racecheck synccheck; do
    echo "== compute-sanitizer --tool $tool" | tee "$OUT/sanitizer_$tool.log"
    timeout 60 compute-sanitizer --tool "$tool" --error-exitcode 86 "$PY" tools/cuda_smoke.py 2>&1 \
      | tee -a "$OUT/sanitizer_$tool.log" || status=1
  done
else
  echo "compute-sanitizer not found: skipped" | tee "$OUT/sanitizer.log"
  "$PY" tools/cuda_smoke.py 2>&1 | tee "$OUT/smoke.log" || status=1
fi

echo "== done, status $status" | tee -a "$OUT/env.log"
exit $status
