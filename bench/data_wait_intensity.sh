#!/usr/bin/env bash
# Why this file exists: the loader's cost of data.intensity in training (issue #28): the same
# 256×256 one-channel images as an h5py dataset of uint8 (auto: x / 127.5 − 1), of uint16
# (× 257, window:1000,60000) and of float32 (as HU, percentile:0.5,99.5, the costliest), each
# trained for a few steps of a small autoencoder on one rank; prints the bytes the rank holds
# (the trainer's log) and the mean data_wait_frac and img/s of metrics.jsonl. Needs python3
# with numpy and h5py.
#   usage: bench/data_wait_intensity.sh [LADDER (build/ladder)] [STEPS (6)]
set -euo pipefail
ladder=$(realpath "${1:-build/ladder}") steps=${2:-6}
work=$(mktemp -d /tmp/ladder-data-wait-intensity-XXXXXX)
trap 'rm -rf "$work"' EXIT
python3 - "$work" <<'PY'
import sys, h5py, numpy as np
rng = np.random.default_rng(0)
y, x = np.mgrid[-1:1:256j, -1:1:256j]
images = []
for i in range(32):
    a, b = 0.5 + 0.3 * rng.random(), 0.4 + 0.3 * rng.random()
    body = (x / a) ** 2 + (y / b) ** 2 < 1
    images.append(np.where(body, 160, 20) + rng.integers(0, 40, (256, 256)))
u8 = np.clip(np.stack(images), 0, 255).astype(np.uint8)[..., None]  # (N, 256, 256, 1)
for name, data in [("u8", u8), ("u16", u8.astype(np.uint16) * 257), ("f32", u8.astype(np.float32) * 16 - 1024)]:
    with h5py.File(f"{sys.argv[1]}/{name}.h5", "w") as f:
        f["x"] = data
PY
printf '%-8s %-22s %14s %16s %10s\n' pixels data.intensity "bytes held" data_wait_frac img/s
for case in "u8 auto" "u16 window:1000,60000" "f32 percentile:0.5,99.5"; do
  set -- $case
  run="$work/run-$1"
  "$ladder" train --config /dev/null --run.dir "$run" --data.store "$work/$1.h5" --data.dataset x \
    --data.intensity "$2" --model.in_channels 1 --model.channels 16,32 --model.norm_groups 8 \
    --model.res_blocks 1 --model.latent_channels 2 --stages.resolutions 256 --stages.images $((steps * 8)) \
    --train.batch 8 --run.log_every 1 --run.sample_every 0 --log.tensorboard false > "$work/$1.log" 2>&1 ||
    { grep -m3 -i error "$work/$1.log"; exit 1; }
  held=$(sed -n 's/.* images held (\([0-9]*\) bytes.*/\1/p' "$work/$1.log" | head -1)
  python3 - "$run/metrics.jsonl" "$1" "$2" "$held" <<'PY'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()][1:]  # the first step warms up
wait = sum(r["data_wait_frac"] for r in rows) / len(rows)
rate = sum(r["img_per_s"] for r in rows) / len(rows)
print(f"{sys.argv[2]:<8} {sys.argv[3]:<22} {sys.argv[4]:>14} {wait:16.5f} {rate:10.1f}")
PY
done
