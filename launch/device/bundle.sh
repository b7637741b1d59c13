#!/usr/bin/env bash
# Builds ladder for the GPU machines (sm_90, CUDA on) on this CPU-only machine and bundles
# what a bare GPU machine lacks into .device/ (ignored by git, carried by the device tool):
# the binaries (ladder, GPU and CPU test programs, benchmarks) and the non-CUDA shared
# libraries they load (OpenMPI, HDF5, Boost, OpenBLAS, libpng, libjpeg, libgomp, gtest).
# CUDA runtime, cuBLAS, cuDNN and NCCL are NOT bundled: the GPU machine's own are used.
# Usage: bash launch/device/bundle.sh     then run launch/device/run_gpu_tests.sh there.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash launch/install_deps.sh
BUILD_DIR=build-device LADDER_CUDA=ON bash launch/build.sh

out=.device
rm -rf "$out"
mkdir -p "$out/bin" "$out/lib"
cp build-device/ladder "$out/bin/"
for program in build-device/tests/test_* build-device/bench/bench_*; do
  [ -x "$program" ] && [ -f "$program" ] && cp "$program" "$out/bin/"
done

# Shared libraries each program needs, minus the system's core and the CUDA stack.
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libgcc_s|libstdc\+\+|libcuda\.|libcudart|libcublas|libcudnn|libnccl|libnvrtc|libnvJitLink)'
for program in "$out"/bin/*; do
  ldd "$program" | awk '/=> \// {print $1, $3}' | while read -r name path; do
    [[ "$name" =~ $skip ]] && continue
    [ -e "$out/lib/$name" ] || cp -L "$path" "$out/lib/$name"
  done
done
echo "bundled $(ls "$out/bin" | wc -l) programs and $(ls "$out/lib" | wc -l) libraries in $out ($(du -sh "$out" | cut -f1))"
