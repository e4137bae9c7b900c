#!/usr/bin/env bash
# Install the project (editable) with the extras named in $1 (e.g. `dev`), building llama-cpp-python for this CPU.
#
# Why the CMake flags: llama.cpp's default native build turns on AMX kernels on Sapphire Rapids CPUs, and those
# crash (SIGSEGV in ggml_backend_amx_mul_mat) inside containers that do not grant AMX tile state, as on this
# project's machines; with AMX off, a native-like AVX2 build gives the same replies at full speed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF}"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
extras="${1:-}"
pip install -e ".${extras:+[$extras]}"
