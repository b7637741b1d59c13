#!/usr/bin/env bash
# Configures and builds ladder into build/ (Release, CPU backend; CUDA when nvcc is found and
# LADDER_CUDA is not OFF). Extra arguments are build targets (default: everything).
# Environment: BUILD_DIR (default build), LADDER_CUDA (default AUTO), JOBS (default nproc).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build}"
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DLADDER_CUDA="${LADDER_CUDA:-AUTO}" >/dev/null
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build "$build_dir" -j "${JOBS:-$(nproc)}" "${targets[@]}"
