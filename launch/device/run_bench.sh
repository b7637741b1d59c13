#!/usr/bin/env bash
# The ladder-vs-PyTorch training benchmark of issue #5, run ON a GPU machine over the bundle of
# launch/device/bundle.sh (and the wheels of launch/device/fetch_wheels.sh): for the given
# resolutions, bench_train finds ladder's largest micro-batch with and without recompute and
# times it; then PyTorch (bench/pytorch/autoencoder_torch.py, eager and torch.compile) runs at
# exactly those micro-batches and settings; then bench/compare_train.py prints the tables
# (images/s, peak memory, MFU against the measured bf16 matmul peak).
# Results: $OUT/ladder.jsonl, $OUT/torch.jsonl (+ .log), $OUT/compare.md, or under /tmp/bench
# without $OUT. One device call runs at most 10 minutes: one resolution per call.
# Usage (device tool, carry [".device", ".whl"]):
#   bash launch/device/run_bench.sh 256 [--steps 10] [--modes "eager compile"]
set -uo pipefail
cd "$(dirname "$0")/../.."
source launch/device/env.sh || exit 2
resolutions=${1:?usage: run_bench.sh RESOLUTIONS [--steps N] [--modes "eager compile"]}
shift
steps=10
modes="eager compile"
while [ $# -gt 0 ]; do
  case "$1" in
    --steps) steps=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    *) echo "run_bench: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
out=${OUT:-/tmp/bench}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$bundle/bin/bench_train" --resolutions "$resolutions" --steps "$steps" | tee -a "$out/ladder.jsonl"
configs=$(python3 bench/compare_train.py --configs "$out/ladder.jsonl")
echo "PyTorch configurations: $configs"
# shellcheck disable=SC2086  # one argument per configuration
bash launch/device/run_bench_torch.sh --out "$out/torch.jsonl" --steps "$steps" --modes "$modes" $configs
python3 bench/compare_train.py "$out/ladder.jsonl" "$out/torch.jsonl" | tee "$out/compare.md"
