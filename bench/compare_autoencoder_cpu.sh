#!/usr/bin/env bash
# ladder's autoencoder training step beside MONAI's AutoencoderKL in PyTorch (fp32, eager) on
# this CPU, alternating, in one run: ROUNDS rounds of (ladder, PyTorch) for each configuration
# of the CPU-speed figures (the quickstart model at 32² micro-batch 16 and 64² micro-batch 8,
# the 51.7M model at 32² micro-batch 4 and 64² micro-batch 2); prints the JSON lines and the
# per-configuration medians with the ratio ladder / PyTorch. Needs torch (and monai, else the
# script's replica) and build/bench/bench_autoencoder_cpu; exits 77 without torch.
# Usage: bench/compare_autoencoder_cpu.sh [ROUNDS (3)] [THREADS (nproc)]
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -c "import torch" 2>/dev/null || { echo "SKIPPED: torch is not importable"; exit 77; }
rounds="${1:-3}"
export OMP_NUM_THREADS="${2:-$(nproc)}"
out=$(mktemp)
trap 'rm -f "$out"' EXIT
# channels resolution micro res_blocks norm_groups steps
for config in "32,64,64 32 16 1 16 6" "32,64,64 64 8 1 16 4" "128,256,512,512 32 4 2 32 3" "128,256,512,512 64 2 2 32 2"; do
  read -r channels resolution micro blocks groups steps <<< "$config"
  for _ in $(seq "$rounds"); do
    ./build/bench/bench_autoencoder_cpu "$channels" "$resolution" "$micro" "$steps" "$blocks" "$groups" | tee -a "$out"
    python3 bench/pytorch/autoencoder_torch.py --device cpu --channels "$channels" --resolution "$resolution" \
      --micro-batch "$micro" --steps "$steps" --warmup 1 --res-blocks "$blocks" --norm-groups "$groups" \
      | tee -a "$out"
  done
done
python3 - "$out" <<'PY'
import json, statistics, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.startswith("{")]
ladder = [r for r in rows if r.get("tool") == "ladder"]
torch_rows = [r for r in rows if r.get("impl", "").startswith("pytorch")]
for key in dict.fromkeys((r["channels"], r["resolution"], r["micro_batch"]) for r in ladder):
    ours = statistics.median(r["img_per_s"] for r in ladder if (r["channels"], r["resolution"], r["micro_batch"]) == key)
    theirs = [r["img_per_s"] for r in torch_rows
              if r.get("resolution") == key[1] and r.get("micro_batch") == key[2]
              and ",".join(str(c) for c in r.get("channels", [])) == key[0]]
    if theirs:
        t = statistics.median(theirs)
        print(f"{key[0]} at {key[1]}^2, micro-batch {key[2]}: ladder {ours:.2f} img/s, PyTorch {t:.2f} img/s, "
              f"ratio {ours / t:.2f}")
PY
