#!/usr/bin/env bash
# Configures and builds ladder into build/ (Release, CPU backend; CUDA when nvcc is found and
# LADDER_CUDA is not OFF). Extra arguments are build targets (default: everything).
# Environment: BUILD_DIR (default build), LADDER_CUDA (default AUTO), JOBS (default nproc),
# LADDER_BUILD_TESTS (default ON; OFF configures without GoogleTest; auto, as the quickstarts
# use it: ON where GoogleTest is installed, so that building one target there does not turn a
# developer's test build off, else OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
build_dir="${BUILD_DIR:-build}"
tests="${LADDER_BUILD_TESTS:-ON}"
if [ "$tests" = auto ]; then
  tests=OFF
  if [ -f /usr/include/gtest/gtest.h ]; then tests=ON; fi
fi
cmake -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release -DLADDER_CUDA="${LADDER_CUDA:-AUTO}" \
  -DLADDER_BUILD_TESTS="$tests" >/dev/null
targets=()
for target in "$@"; do targets+=(--target "$target"); done
cmake --build "$build_dir" -j "${JOBS:-$(nproc)}" "${targets[@]}"
