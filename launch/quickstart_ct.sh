#!/usr/bin/env bash
# The CT quickstart (README, medical images): installs what is missing, builds `ladder` and the
# phantom writer, writes 6 synthetic CT volumes in HU as NIfTI (once), packs their axial slices
# into a float32 store with `ladder pack --nifti` (once), and trains configs/quickstart_ct.ini
# (a 1-channel autoencoder through a soft-tissue window) on the CPU in a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash launch/install_deps.sh build
LADDER_BUILD_TESTS=auto bash launch/build.sh ladder ct_phantoms
volumes=data/ct-phantoms store=data/quickstart-ct.h5
[ -d "$volumes" ] || ./build/ct_phantoms --out "$volumes" --count 6 --size 64 --slices 32 --seed 0
[ -f "$store" ] || ./build/ladder pack --nifti "$volumes" --out "$store" --levels 32,64 --axis axial
./build/ladder inspect "$store" | head -8
run_dir="runs/quickstart_ct-$(date +%Y%m%d-%H%M%S)"
./build/ladder train --config configs/quickstart_ct.ini --run.dir "$run_dir" "$@"
echo "quickstart_ct: $(( $(date +%s) - start )) s in all (install, build, phantoms, pack, train); run in $run_dir"
