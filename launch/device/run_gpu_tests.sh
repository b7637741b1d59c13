#!/usr/bin/env bash
# Runs on a GPU machine over the bundle made by launch/device/bundle.sh: reports the GPU and
# the CUDA/cuDNN/NCCL libraries found there, then runs every GPU test program (label `gpu`),
# then the CPU op tests as a sanity check. Output goes to stdout and, when $OUT is set (the
# device tool), to $OUT/gpu-tests.log. Exit status: non-zero if any test program failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
bundle=.device
[ -d "$bundle/bin" ] || { echo "run_gpu_tests: no $bundle/bin (run launch/device/bundle.sh first)" >&2; exit 2; }
log=${OUT:-/tmp}/gpu-tests.log
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  # The machine's CUDA stack: add the usual places to the search path.
  for dir in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu /usr/local/nvidia/lib64; do
    [ -d "$dir" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$dir"
  done
  export LD_LIBRARY_PATH="$PWD/$bundle/lib:${LD_LIBRARY_PATH#:}"
  ldconfig -p 2>/dev/null | grep -E "libcudnn\.so|libnccl\.so|libcublas\.so" | head -5
  status=0
  for program in "$bundle"/bin/test_cuda_* "$bundle"/bin/test_ops_grad; do
    [ -x "$program" ] || continue
    echo "=== $(basename "$program")"
    "$program" --gtest_color=no || status=1
  done
  echo "run_gpu_tests: $([ $status -eq 0 ] && echo all passed || echo FAILURES)"
  exit $status
} 2>&1 | tee "$log"
exit "${PIPESTATUS[0]}"
