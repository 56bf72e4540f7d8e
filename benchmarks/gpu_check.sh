#!/usr/bin/env bash
# The GPU checks, for a machine with an NVIDIA GPU: what the machine has, the GPU tests
# (tests/devices/test_gpu_cupy.py, tests/synapse_sim/test_gpu_train.py: backend="cupy" against the
# numpy reference), then bench_update.py on the cupy backend (pulse, pulse_update at 4096, and
# aihwkit's dense tile benchmark at 512, 1024 and 4096), then gpu_kernels.py (a pulse() call split
# into its kernel and the rest; each kernel's registers). Logs and JSON go to $OUT (default
# ./gpu_out). Runs with $PYTHON (default python3) from the repository root:
#   bash benchmarks/gpu_check.sh          (or: make gpu-check)
# TEST_S, BENCH_S, DENSE_S and KERNELS_S cap the parts' seconds (default 240, 150, 120, 90).
set -o pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT=${OUT:-gpu_out}
PY=${PYTHON:-python3}  # the interpreter (a GPU machine's own, or PYTHON=.venv/bin/python)
mkdir -p "$OUT"
{
  date -u
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
  nproc
  "$PY" -c "import sys, numpy, numba, cupy, torch; print(sys.version.split()[0], 'numpy', \
numpy.__version__, 'numba', numba.__version__, 'cupy', cupy.__version__, 'torch', torch.__version__)"
  "$PY" -m pip show numba-cuda 2>/dev/null | head -2
  "$PY" -c "from devices.gpu import gpu_backend_status; print(gpu_backend_status())"
} 2>&1 | tee "$OUT/env.txt"
t0=$SECONDS
timeout "${TEST_S:-240}" "$PY" -m pytest -q -p no:cacheprovider -ra --durations=8 \
  tests/devices/test_gpu_cupy.py tests/synapse_sim/test_gpu_train.py 2>&1 | tee "$OUT/gpu_tests.log"
echo "tests: rc ${PIPESTATUS[0]}, $((SECONDS - t0)) s" | tee -a "$OUT/gpu_tests.log"
t0=$SECONDS
timeout "${BENCH_S:-150}" "$PY" benchmarks/bench_update.py --backend cupy \
  --json "$OUT/bench_update_gpu.json" 2>&1 | tee "$OUT/bench_update_gpu.log"
echo "bench_update: rc ${PIPESTATUS[0]}, $((SECONDS - t0)) s" | tee -a "$OUT/bench_update_gpu.log"
t0=$SECONDS
timeout "${DENSE_S:-120}" "$PY" benchmarks/bench_update.py --backend cupy --dense \
  --sizes 512 1024 4096 --repeats 3 --json "$OUT/bench_update_dense_gpu.json" 2>&1 |
  tee "$OUT/bench_update_dense_gpu.log"
echo "dense: rc ${PIPESTATUS[0]}, $((SECONDS - t0)) s" | tee -a "$OUT/bench_update_dense_gpu.log"
t0=$SECONDS
timeout "${KERNELS_S:-90}" "$PY" benchmarks/gpu_kernels.py --json "$OUT/gpu_kernels.json" 2>&1 |
  tee "$OUT/gpu_kernels.log"
echo "kernels: rc ${PIPESTATUS[0]}, $((SECONDS - t0)) s" | tee -a "$OUT/gpu_kernels.log"
