#!/usr/bin/env bash
# Builds the CPU engine with AddressSanitizer + UndefinedBehaviorSanitizer (LADDER_SANITIZE=ON,
# no CUDA, no benchmarks) into build-sanitize/ and runs the CPU CTest suite under it; any
# report fails the test that caused it (UBSan halts on the first error). Leak checking is off:
# Open MPI's own allocations at exit would drown ladder's. About 8 min to build and 11 min to
# test on 2 cores. Usage: bash launch/sanitize.sh [ctest arguments, e.g. -R checkpoint]
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install_deps.sh test
build=build-sanitize
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLADDER_CUDA=OFF -DLADDER_SANITIZE=ON \
  -DLADDER_BUILD_BENCH=OFF >/dev/null
cmake --build "$build" -j "$(nproc)"
cd "$build"
ASAN_OPTIONS=detect_leaks=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest -L cpu --output-on-failure -j "$(nproc)" "$@"
