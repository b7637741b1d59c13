#!/usr/bin/env bash
# Installs the Debian packages ladder builds against, only those that are missing (so a
# machine that has them pays nothing), then the light Python packages of the interop tests
# (numpy, safetensors, h5py), only when python3 cannot import them. Used by quickstart.sh and
# test.sh; safe to re-run.
set -euo pipefail

packages=(
  build-essential cmake pkg-config
  libboost-program-options-dev   # config and flags
  libopenblas-openmp-dev         # CPU double GEMM: the finite-difference gradient tests (OpenMP threads)
  libdnnl-dev                    # oneDNN: the CPU convolutions and float GEMMs (OpenMP runtime)
  libpng-dev libjpeg-dev         # images: grids, `ladder pack`
  libhdf5-dev                    # image stores, checkpoint shards
  libxxhash-dev                  # XXH3-64 checksums (stores, checkpoints)
  nlohmann-json3-dev             # checkpoint manifests
  libgtest-dev                   # tests
  libopenmpi-dev openmpi-bin     # multi-rank training (mpirun)
  python3                        # tests/checkpoint/*.py (standard library only)
  clang-14 libclang-rt-14-dev libomp-14-dev  # fuzzing only (launch/fuzz.sh): clang, libFuzzer, OpenMP for clang
)

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
export DEBIAN_FRONTEND=noninteractive
apt_updated=0
apt_install() {
  [ "$apt_updated" -eq 1 ] || { "${sudo_cmd[@]}" apt-get update -qq; apt_updated=1; }
  "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt_install "${missing[@]}"
fi

# Python packages of tests/interop/check_export.py (never of the engine). Optional, not
# installed here: torch and monai, for tests/interop/monai_parity.py, which skips (CTest
# "Skipped", exit 77) without them: `python3 -m pip install torch monai` to run it.
python_packages=(numpy safetensors h5py)
if ! python3 -c "import numpy, safetensors, h5py" 2>/dev/null; then
  echo "installing (pip): ${python_packages[*]}"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip
  fi
  pip_flags=(--quiet)
  # Debian's own python3 is "externally managed" (PEP 668): pip needs to be told; it installs
  # into /usr/local (or ~/.local), apart from the Debian packages.
  if python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(
      sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))'; then
    pip_flags+=(--break-system-packages)
  fi
  if python3 -c 'import os, sys, sysconfig; sys.exit(os.access(sysconfig.get_path("purelib"),
      os.W_OK))'; then
    pip_flags+=(--user)  # site-packages not writable (a system python, not root)
  fi
  python3 -m pip install "${pip_flags[@]}" "${python_packages[@]}"
  python3 -c "import numpy, safetensors, h5py"
fi
