#!/usr/bin/env bash
# Installs the Debian packages ladder builds against, only those that are missing (so a
# machine that has them pays nothing). Used by quickstart.sh and test.sh; safe to re-run.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost-program-options-dev   # config and flags
  libopenblas-openmp-dev         # CPU GEMM under the convolutions (OpenMP threads)
  libpng-dev libjpeg-dev         # images: grids, `ladder pack`
  libhdf5-dev                    # image stores, checkpoint shards
  libxxhash-dev                  # XXH3-64 checksums (stores, checkpoints)
  nlohmann-json3-dev             # checkpoint manifests
  libgtest-dev                   # tests
  libopenmpi-dev openmpi-bin     # multi-rank training (mpirun)
  python3                        # tests/checkpoint/*.py (standard library only)
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "installing: ${missing[*]}"
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
