#!/usr/bin/env bash
# Runs on a GPU machine over the bundle made by launch/device/bundle.sh: reports the GPU and
# the CUDA/cuDNN/NCCL libraries found there, then runs every GPU test program (label `gpu`):
# the single-process ones directly, the multi-rank ones under mpirun (2 ranks sharing the GPU
# through MPI; 1 rank over NCCL), then the CPU op tests as a sanity check. Output goes to
# stdout and, when $OUT is set (the device tool), to $OUT/gpu-tests.log.
# Exit status: non-zero if any test program failed.
set -uo pipefail
cd "$(dirname "$0")/../.."
source launch/device/env.sh || exit 2
log=${OUT:-/tmp}/gpu-tests.log
{
  date -u
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  ldconfig -p 2>/dev/null | grep -E "libcudnn\.so|libnccl\.so|libcublas\.so" | head -5
  mpirun --version 2>&1 | head -1
  status=0
  : > "$log.partial"
  run() {
    echo "=== $*"
    "$@" --gtest_color=no 2>&1 | tee -a "$log.partial"
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  }
  for program in "$bundle"/bin/test_cuda_* "$bundle"/bin/test_ops_grad; do
    [ -x "$program" ] && run "$program"
  done
  [ -x "$bundle/bin/test_zero_gpu" ] && run mpirun --oversubscribe -np 2 "$bundle/bin/test_zero_gpu"
  [ -x "$bundle/bin/test_nccl_gpu" ] && run mpirun -np 1 "$bundle/bin/test_nccl_gpu"
  # A GPU that the tests cannot use (e.g. a driver older than the CUDA runtime) makes every
  # test skip ("no CUDA device") and exit 0: with a GPU present, such a skip is a failure.
  if nvidia-smi -L >/dev/null 2>&1 && grep -q "no CUDA device" "$log.partial" 2>/dev/null; then
    echo "run_gpu_tests: tests SKIPPED although nvidia-smi lists a GPU (driver too old for the runtime?)"
    status=1
  fi
  echo "run_gpu_tests: $([ $status -eq 0 ] && echo all passed || echo FAILURES)"
  exit $status
} 2>&1 | tee "$log"
exit "${PIPESTATUS[0]}"
