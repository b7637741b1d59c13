#!/usr/bin/env bash
# The stage-2 quickstart (README), after launch/quickstart.sh: encodes the quickstart store
# with the newest quickstart autoencoder (once), trains configs/quickstart_diffusion.ini on the
# CPU (a few minutes on 2 cores), then generates 16 images with DDPM (250 steps) and prints how much they
# look like the training data: the spatial lag-1 autocorrelation and the std of the generated
# latents, against the training latents and against pure noise (bench/latent_statistics.py),
# and the FID of pure-noise latents decoded, beside the FID the run logged at its last rung.
# Usage: bash launch/quickstart_diffusion.sh [AE_CHECKPOINT] [--section.key value ...]
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
bash launch/install_deps.sh build python
LADDER_BUILD_TESTS=auto bash launch/build.sh ladder
autoencoder=""
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then autoencoder="$1"; shift; fi
if [ -z "$autoencoder" ]; then
  newest=$(ls -d runs/quickstart-*/checkpoints/latest 2>/dev/null | sort | tail -1 || true)
  [ -n "$newest" ] || { echo "quickstart_diffusion: no autoencoder: run launch/quickstart.sh first" >&2; exit 2; }
  autoencoder="$(dirname "$newest")/$(cat "$newest")"
fi
latents=data/quickstart-latents.h5
if [ ! -f "$latents" ] || [ "$(cat "$latents.source" 2>/dev/null)" != "$(realpath "$autoencoder")" ]; then
  ./build/ladder encode --checkpoint "$(realpath "$autoencoder")" --store data/quickstart-synthetic.h5 --out "$latents"
  realpath "$autoencoder" > "$latents.source"
fi
run_dir="runs/quickstart_diffusion-$(date +%Y%m%d-%H%M%S)"
fid_weights=${LADDER_FID_WEIGHTS:-random}  # InceptionV3 weights (python3 launch/fid_weights.py)
./build/ladder train --config configs/quickstart_diffusion.ini --run.dir "$run_dir" --eval.weights "$fid_weights" "$@"
./build/ladder sample --checkpoint "$run_dir/checkpoints/$(cat "$run_dir/checkpoints/latest")" \
  --autoencoder "$autoencoder" --count 16 --resolution 64 --sampler ddpm --steps 250 --seed 1 \
  --out "$run_dir/samples/generated.png" --save-latents "$run_dir/samples/generated.h5"
python3 bench/latent_statistics.py --latents "$latents" --resolution 64 --samples "$run_dir/samples/generated.h5"
# The floor any trained UNet must beat: the same 32 noises decoded without denoising, scored
# as the training run scored its samples at the last rung (its `fid` above).
./build/ladder evaluate --checkpoint "$run_dir/checkpoints/$(cat "$run_dir/checkpoints/latest")" \
  --autoencoder "$autoencoder" --count 32 --resolution 64 --weights "$fid_weights" \
  --reference data/quickstart-synthetic.h5 --baseline noise
echo "quickstart_diffusion: $(( $(date +%s) - start )) s in all; run in $run_dir, grid $run_dir/samples/generated.png"
