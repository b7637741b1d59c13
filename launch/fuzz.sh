#!/usr/bin/env bash
# Why this file exists: long fuzzing runs of the libFuzzer targets in tests/fuzz/ (CTest only
# replays their corpora). Builds build-fuzz/ with clang 14 and LADDER_FUZZ=ON (libFuzzer +
# AddressSanitizer + UndefinedBehaviorSanitizer; no CUDA, no benchmarks), then runs each
# target (or the ones named) from its seed corpus tests/fuzz/corpus/<name>/, with
# tests/fuzz/<name>.dict when there is one. New inputs go to build-fuzz/fuzz-work/<name>/
# (the repository's corpus is never written); crashes, leaks, timeouts and out-of-memory
# inputs to build-fuzz/findings/<name>/. Prints executions and findings per target.
#
# Usage: bash launch/fuzz.sh [--runs N] [--time S] [--jobs J] [--build-only] [TARGET ...]
#   --runs N     executions per target, all processes together (default 100000)
#   --time S     seconds per target (libFuzzer -max_total_time); with --runs, whichever first
#   --jobs J     parallel fuzzing processes per target (libFuzzer -fork; default 1, 2 on 2 cores)
#   TARGET       config, image_store, latent_store, checkpoint_manifest, checkpoint,
#                safetensors, image_decode, run_directory (default: all)
# Example: bash launch/fuzz.sh --runs 500000 --jobs 2 safetensors
# Extra libFuzzer flags: FUZZ_FLAGS="-max_len=65536" bash launch/fuzz.sh ...
# Replay one finding: build-fuzz/tests/fuzz/fuzz_NAME build-fuzz/findings/NAME/crash-...
set -euo pipefail
cd "$(dirname "$0")/.."
runs="" time_s="" jobs=1 build_only=0 targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --time) time_s="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --build-only) build_only=1; shift ;;
    -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
    -*) echo "fuzz.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
if [ ${#targets[@]} -eq 0 ]; then
  for source in tests/fuzz/fuzz_*.cpp; do
    name=$(basename "$source" .cpp); targets+=("${name#fuzz_}")
  done
fi

bash launch/install_deps.sh fuzz
build=build-fuzz
cmake -S . -B "$build" -DCMAKE_C_COMPILER=clang-14 -DCMAKE_CXX_COMPILER=clang++-14 \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLADDER_FUZZ=ON -DLADDER_CUDA=OFF -DLADDER_BUILD_BENCH=OFF >/dev/null
build_targets=()
for target in "${targets[@]}"; do build_targets+=(--target "fuzz_$target"); done
cmake --build "$build" -j "$(nproc)" "${build_targets[@]}"
[ "$build_only" -eq 1 ] && exit 0

root=$(pwd)
bound=()  # both given: whichever comes first
[ -n "$runs" ] && bound+=(-runs="$runs")
[ -n "$time_s" ] && bound+=(-max_total_time="$time_s")
[ ${#bound[@]} -eq 0 ] && bound=(-runs=100000)
export TMPDIR="${TMPDIR:-/dev/shm}"  # the targets write every input to a file there
# Leaks are findings, except libhdf5's own on damaged files (tests/fuzz/lsan.supp; the HDF5
# targets check instead that ladder closed every HDF5 object).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$root/tests/fuzz/lsan.supp}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
printf "%-22s %12s %8s %9s\n" target executions seconds findings | tee "$build/fuzz-summary.txt"
for target in "${targets[@]}"; do
  binary="$root/$build/tests/fuzz/fuzz_$target"
  work="$root/$build/fuzz-work/$target" findings="$root/$build/findings/$target"
  mkdir -p "$work" "$findings"
  dict=()
  [ -f "tests/fuzz/$target.dict" ] && dict=(-dict="$root/tests/fuzz/$target.dict")
  start=$(date +%s)
  echo "== fuzz_$target: ${bound[*]}, $jobs job(s), findings in $findings"
  # Fork mode: J child processes fuzz in turns of a few seconds and the parent merges what they
  # find, carrying on after a crash, leak or out-of-memory (each saved under $findings), so
  # one finding does not end the run and libhdf5's leaks on damaged files die with each child.
  # An input running over 10 s is a finding (timeout-*): ladder must never hang on a file.
  "$binary" "${bound[@]}" -fork="$jobs" -ignore_crashes=1 -ignore_ooms=1 -ignore_timeouts=1 -timeout=10 \
    -artifact_prefix="$findings/" "${dict[@]}" ${FUZZ_FLAGS:-} \
    "$work" "$root/tests/fuzz/corpus/$target" >"$findings/fuzz.log" 2>&1 || true
  seconds=$(( $(date +%s) - start ))
  executions=$(grep -oE '^#[0-9]+' "$findings/fuzz.log" | tail -1 | tr -d '#')
  found=$(find "$findings" -maxdepth 1 -type f ! -name 'fuzz*.log' | wc -l)
  printf "%-22s %12s %8s %9s\n" "$target" "$executions" "$seconds" "$found" | tee -a "$build/fuzz-summary.txt"
  grep -h "ERROR: \|SUMMARY: \|runtime error" "$findings"/fuzz*.log 2>/dev/null | sort | uniq -c | head -5 || true
done
echo "summary: $build/fuzz-summary.txt"
