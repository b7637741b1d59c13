#!/usr/bin/env bash
# Installs what ladder needs on Debian 12, by purpose, only the packages that are missing (a
# machine that has them pays nothing; safe to re-run). apt runs with --no-install-recommends,
# so every package a step needs is named here, with the reason, and launch/clean_room.sh proves
# the list on a bare Debian 12 root.
#
# Usage: bash launch/install_deps.sh [SET ...]   (default: build)
#   build   compile ladder and train with it, on one process or under mpirun (launch/quickstart.sh)
#   python  the Python packages of the interop tests and bench/*.py: numpy, safetensors, h5py
#           (pip, only when python3 cannot import them; never used by the engine)
#   test    build + python + GoogleTest (launch/test.sh, launch/sanitize.sh)
#   fuzz    build + GoogleTest + clang 14 with libFuzzer and its OpenMP (launch/fuzz.sh)
set -euo pipefail

sets=("$@")
[ ${#sets[@]} -gt 0 ] || sets=(build)

build_packages=(
  build-essential                # g++, make, libc headers
  cmake pkg-config               # configure (pkg-config finds libxxhash)
  libboost-program-options-dev   # config and flags
  libopenblas-openmp-dev         # CPU double GEMM: the finite-difference gradient tests (OpenMP threads)
  libdnnl-dev                    # oneDNN: the CPU convolutions and float GEMMs (OpenMP runtime)
  ocl-icd-opencl-dev             # only recommended by libdnnl-dev, but its dnnl-config.cmake requires OpenCL
  libpng-dev libjpeg-dev         # images: grids, `ladder pack`
  libhdf5-dev                    # image stores, checkpoint shards
  libxxhash-dev                  # XXH3-64 checksums (stores, checkpoints)
  nlohmann-json3-dev             # checkpoint manifests
  libzip-dev                     # pytorch-fid's .npz reference statistics (zip archives of .npy arrays)
  libnifti2-dev                  # NIfTI volumes (CT, MRI) for ladder pack --nifti
  libopenmpi-dev openmpi-bin     # multi-rank training: MPI headers and libraries, mpirun (openssh-client comes with it)
)
test_packages=(
  libgtest-dev                   # GoogleTest
  python3                        # the script tests under tests/ (checkpoint/*.py use the standard library only)
)
fuzz_packages=(
  clang-14 libclang-rt-14-dev libomp-14-dev  # clang, libFuzzer and sanitizer runtimes, OpenMP for clang
)

packages=() want_python=0
for set in "${sets[@]}"; do
  case "$set" in
    build) packages+=("${build_packages[@]}") ;;
    python) want_python=1 ;;
    test) packages+=("${build_packages[@]}" "${test_packages[@]}"); want_python=1 ;;
    fuzz) packages+=("${build_packages[@]}" libgtest-dev "${fuzz_packages[@]}") ;;
    *) echo "install_deps.sh: unknown set '$set' (build, python, test, fuzz)" >&2; exit 2 ;;
  esac
done
[ "$want_python" -eq 0 ] || packages+=(python3)

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
  # One line each, sorted and without repeats, so a log shows exactly what a machine lacked.
  mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
  echo "installing: ${missing[*]}"
  apt_install "${missing[@]}"
fi

[ "$want_python" -eq 1 ] || exit 0
# Python packages of tests/interop/check_export.py, tests/diffusion/pipeline.py and
# bench/latent_statistics.py (never of the engine). Optional, not installed here: torch, monai,
# lpips and tensorboard, for the interop scripts that skip (CTest "Skipped", exit 77) without
# them. Debian 12 has no safetensors package, so all three come from PyPI, for whichever
# python3 is first on PATH.
python_packages=(numpy safetensors h5py)
if ! python3 -c "import numpy, safetensors, h5py" 2>/dev/null; then
  echo "installing (pip): ${python_packages[*]}"
  if ! python3 -m pip --version >/dev/null 2>&1; then
    apt_install python3-pip  # pip (and, through its dependencies, the CA certificates it uses)
  fi
  pip_flags=(--quiet --disable-pip-version-check)
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
