#!/usr/bin/env bash
# ladder's UNet training step beside MONAI's in PyTorch on this CPU, alternating, in one run:
# ROUNDS rounds of (ladder, MONAI) for each preset; prints the JSON lines and per-preset
# medians with the ratio ladder / MONAI. Needs torch and monai (pip) and build/bench/bench_unet.
# Usage: bench/compare_unet.sh [ROUNDS (3)] [THREADS (nproc)]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
export OMP_NUM_THREADS="${2:-$(nproc)}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
for preset in "tiny 8 5" "tutorial 4 3"; do
  for _ in $(seq "$rounds"); do
    ./build/bench/bench_unet $preset | tee -a "$out"
    python3 bench/pytorch/unet_torch.py $preset | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1])]
for preset in ("tiny", "tutorial"):
    ladder = statistics.median(r["img_per_s"] for r in rows if r["preset"] == preset and r["tool"] == "ladder")
    monai = statistics.median(r["img_per_s"] for r in rows if r["preset"] == preset and r["tool"] == "monai")
    print(f"{preset}: ladder {ladder:.2f} img/s, MONAI {monai:.2f} img/s, ratio {ladder / monai:.2f}")
PY
