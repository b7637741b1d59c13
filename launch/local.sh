#!/usr/bin/env bash
# Runs ladder on N MPI ranks on this machine:  launch/local.sh N [ladder args...]
#   launch/local.sh 2 --config configs/quickstart.ini          (leading options mean `train`)
#   launch/local.sh 4 train --config configs/quickstart.ini --run.dir runs/four-ranks
# mpirun with --oversubscribe (N may exceed the cores) and --bind-to none; each rank gets
# OMP_NUM_THREADS = max(1, cores / N) unless OMP_NUM_THREADS is already set. As root, sets
# the variables Open MPI requires to run as root. Builds build/ladder first if it is missing
# (BUILD_DIR overrides the build directory, as in launch/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

usage="usage: launch/local.sh N [ladder args...]  (e.g. launch/local.sh 2 --config configs/quickstart.ini)"
if [ $# -lt 1 ] || ! [[ "$1" =~ ^[1-9][0-9]*$ ]]; then
  echo "$usage" >&2
  exit 2
fi
ranks=$1
shift
if ! command -v mpirun >/dev/null; then
  echo "local.sh: mpirun not found (bash launch/install_deps.sh installs Open MPI)" >&2
  exit 1
fi

binary="${BUILD_DIR:-build}/ladder"
[ -x "$binary" ] || LADDER_BUILD_TESTS=auto bash launch/build.sh ladder

# `launch/local.sh 2 --config F.ini` means `ladder train --config F.ini`.
if [ $# -gt 0 ] && [[ "$1" == --* ]] && [[ "$1" != "--help" && "$1" != "--version" ]]; then
  set -- train "$@"
fi

cores=$(nproc)
threads=$(( cores / ranks ))
[ "$threads" -ge 1 ] || threads=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$threads}"
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

exec mpirun -np "$ranks" --oversubscribe --bind-to none -x OMP_NUM_THREADS "$binary" "$@"
