#!/usr/bin/env bash
# The first command of the README: installs what is missing, builds the `ladder` binary,
# packs a synthetic image store (once), and trains configs/quickstart.ini on the CPU (a few
# minutes on 2 cores). Prints where the metrics and the reconstruction grids are.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash launch/install_deps.sh build
LADDER_BUILD_TESTS=auto bash launch/build.sh ladder
store=data/quickstart-synthetic.h5
if [ ! -f "$store" ]; then
  mkdir -p data
  ./build/ladder pack --synthetic 256 --out "$store" --levels 32,64 --seed 0
fi
run_dir="runs/quickstart-$(date +%Y%m%d-%H%M%S)"
# InceptionV3 weights for the rFID (python3 launch/fid_weights.py); else the config's random ones.
fid_weights=()
if [ -n "${LADDER_FID_WEIGHTS:-}" ]; then fid_weights=(--eval.weights "$LADDER_FID_WEIGHTS"); fi
./build/ladder train --config configs/quickstart.ini --run.dir "$run_dir" "${fid_weights[@]}" "$@"
echo "quickstart: $(( $(date +%s) - start )) s in all (install, build, pack, train); run in $run_dir"
