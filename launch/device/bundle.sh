#!/usr/bin/env bash
# Builds ladder for the GPU machines (sm_90, CUDA on) on this CPU-only machine and bundles
# what a bare GPU machine lacks into .device/bundle.tar.xz (ignored by git, carried by the
# device tool, which moves at most 64 MiB; xz keeps the bundle near 20 MB), holding
#   bin/               ladder, the GPU test programs, test_ops_grad and the benchmarks the
#                      GPU machine runs (bench_train, bench_conv);
#   lib/               the non-CUDA shared libraries they and Open MPI's plugins load (HDF5,
#                      Boost, OpenBLAS, libpng, libjpeg, libgomp, gtest, hwloc, ucx, ...);
#   openmpi.tar.gz     Open MPI itself (libmpi, mpirun/orterun, orted, the MCA plugins, help
#                      files) at its Debian paths, unpacked at / there by launch/device/env.sh
#                      when the machine has no Open MPI of its own.
# CUDA runtime, cuBLAS, cuDNN and NCCL are NOT bundled: the GPU machine's own are used.
# Usage: bash launch/device/bundle.sh   (BUILD_DIR=build reuses an existing CUDA build)
# then, on the GPU machine: launch/device/run_gpu_tests.sh or launch/device/run_bench.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
bash launch/install_deps.sh test
build_dir=${BUILD_DIR:-build-device}
BUILD_DIR=$build_dir LADDER_CUDA=ON bash launch/build.sh

rm -rf .device
out=.device/stage
mkdir -p "$out/bin" "$out/lib"
cp "$build_dir/ladder" "$out/bin/"
for program in "$build_dir"/tests/test_cuda_* "$build_dir"/tests/test_*_gpu \
               "$build_dir"/tests/test_ops_grad "$build_dir"/bench/bench_train "$build_dir"/bench/bench_conv; do
  if [ -x "$program" ] && [ -f "$program" ]; then cp "$program" "$out/bin/"; fi
done

# Open MPI at its own paths (it finds its plugins and help files there).
mpi_packages="libopenmpi3 openmpi-bin openmpi-common"
dpkg -L $mpi_packages | while read -r path; do
  if [ -f "$path" ] || [ -L "$path" ]; then echo "$path"; fi
done |
  sed 's|^/||' | tar -czf "$out/openmpi.tar.gz" -C / -T -
mpi_files=$(dpkg -L $mpi_packages | grep -E '\.so(\.[0-9]+)*$|/bin/' || true)

# Shared libraries each program and plugin needs, minus the system's core, the CUDA stack and
# Open MPI's own (in the tarball).
skip='^(linux-vdso|ld-linux|libc\.|libm\.|libdl\.|libpthread\.|librt\.|libgcc_s|libstdc\+\+|libcuda\.|libcudart|libcublas|libcudnn|libnccl|libnvrtc|libnvJitLink|libmpi|libopen-rte|libopen-pal|libmca_common)'
for file in "$out"/bin/* $mpi_files; do
  [ -f "$file" ] || continue
  { ldd "$file" 2>/dev/null || true; } | awk '/=> \// {print $1, $3}' | while read -r name path; do
    if [[ "$name" =~ $skip ]] || [ -e "$out/lib/$name" ]; then continue; fi
    cp -L "$path" "$out/lib/$name"
  done
done
programs=$(ls "$out/bin" | wc -l)
libraries=$(ls "$out/lib" | wc -l)
XZ_OPT=-6T0 tar -cJf .device/bundle.tar.xz -C "$out" .
rm -rf "$out"
echo "bundled $programs programs and $libraries libraries: .device/bundle.tar.xz ($(du -sh .device/bundle.tar.xz | cut -f1))"
