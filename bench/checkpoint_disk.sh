#!/usr/bin/env bash
# Checkpoint cost beside the disk's own speed, in one run: dd's fsynced sequential write and
# read of 640 MiB in the target directory, then bench_checkpoint (stall vs synchronous write,
# read throughput of a resume) for the 51.7M autoencoder under mpirun with 1, 2 and 4 ranks.
# Usage: bench/checkpoint_disk.sh [DIR (default /tmp/ladder-bench-checkpoint)] [REPEATS (3)]
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-/tmp/ladder-bench-checkpoint}"
repeats="${2:-3}"
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
echo "# dd, 640 MiB, bs 64M, conv=fsync"
dd if=/dev/zero of="$dir/dd.bin" bs=64M count=10 conv=fsync 2>&1 | tail -1
echo "# dd read back (page cache unless dropped)"
dd if="$dir/dd.bin" of=/dev/null bs=64M 2>&1 | tail -1
rm -f "$dir/dd.bin"
cores=$(nproc)
for ranks in 1 2 4; do
  threads=$(( cores / ranks > 0 ? cores / ranks : 1 ))
  OMP_NUM_THREADS=$threads mpirun --oversubscribe --bind-to none -np "$ranks" -x OMP_NUM_THREADS \
    ./build/bench/bench_checkpoint "$dir/run-$ranks" "$repeats" | grep -E '^[#{]'
done
