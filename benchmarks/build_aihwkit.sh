#!/usr/bin/env bash
# Build IBM aihwkit 1.2.0 (CPU) from its PyPI source into its own virtual environment, for
# benchmarks/bench_aihwkit.py (a side-by-side run; aihwkit is not a dependency of synapse_sim).
#
# Usage: bash benchmarks/build_aihwkit.sh [VENV_DIR]   (default: ../aihwkit-venv)
# then:  python benchmarks/bench_aihwkit.py --aihwkit-python VENV_DIR/bin/python
#
# Needs OpenBLAS's headers (Debian: `apt-get install libopenblas-dev`), a C++ compiler and about
# 4-5 minutes on 2 cores. torch is pinned to the CPU build this project uses, so both simulators
# run on the same torch. The build runs without isolation (aihwkit's CMake build finds torch in
# the environment) and needs mypy's `stubgen` on PATH.
set -euo pipefail
VENV="${1:-../aihwkit-venv}"
PY="${PYTHON:-python3}"
if [ -z "$(find /usr/include -maxdepth 2 -name cblas.h 2>/dev/null | head -n 1)" ]; then
  echo "OpenBLAS headers not found (cblas.h): install them first, e.g. apt-get install libopenblas-dev" >&2
  exit 1
fi
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0 numpy scipy tqdm requests protobuf scikit-learn
"$VENV/bin/pip" install -q "setuptools>=77" wheel "scikit-build>=0.18.1" "pybind11>=3.0.1" \
  ninja "cmake>=4.2.1" mypy
PATH="$VENV/bin:$PATH" CMAKE_BUILD_PARALLEL_LEVEL="${JOBS:-2}" \
  "$VENV/bin/pip" install --no-build-isolation --no-deps aihwkit==1.2.0
"$VENV/bin/python" -c "import aihwkit; print('aihwkit', aihwkit.__version__, 'in $VENV')"
