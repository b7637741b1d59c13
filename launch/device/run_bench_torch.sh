#!/usr/bin/env bash
# The PyTorch side of the ladder-vs-PyTorch training benchmark, run ON a GPU machine from the
# repository root. It installs the carried wheels (.whl/, from launch/device/fetch_wheels.sh)
# into /tmp/site, measures the bf16 matmul peak, then runs bench/pytorch/autoencoder_torch.py
# for every configuration RES:MICRO:CHECKPOINTING (checkpointing none|blocks) in eager and in
# compile mode, each in its own python process so that an OOM, a crash or a compile failure
# spoils only its own line. JSON lines are appended to FILE (a failed run gets a line with
# its status too); each run's stderr goes to FILE.log; stdout shows one summary line per run.
#
# Usage (here: bash launch/device/fetch_wheels.sh once; then with the device tool, carry
# [".whl"], one call of at most 10 minutes, so split long lists across calls):
#   bash launch/device/run_bench_torch.sh --out $OUT/torch.jsonl 256:8:none 256:8:blocks 512:4:blocks
#   options: --steps N (20) --warmup N (5) --timeout S per run (300) --modes "eager compile"
#            --no-peak (skip the matmul peak line)
# Then, with ladder's JSON lines: python3 bench/compare_train.py ladder.jsonl torch.jsonl
set -euo pipefail
cd "$(dirname "$0")/../.."

out=""
steps=20
warmup=5
run_timeout=300
modes="eager compile"
peak=1
configs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) out=$2; shift 2 ;;
    --steps) steps=$2; shift 2 ;;
    --warmup) warmup=$2; shift 2 ;;
    --timeout) run_timeout=$2; shift 2 ;;
    --modes) modes=$2; shift 2 ;;
    --no-peak) peak=0; shift ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *:*:*) configs+=("$1"); shift ;;
    *) echo "run_bench_torch: unknown argument '$1' (expected RES:MICRO:CHECKPOINTING or an option)" >&2; exit 2 ;;
  esac
done
[ -n "$out" ] || { echo "run_bench_torch: --out FILE is required" >&2; exit 2; }
mkdir -p "$(dirname "$out")"
log=$out.log
python=${PYTHON:-python3}

if compgen -G ".whl/*.whl" > /dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "nvidia-smi: not found"
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda)'
"$python" -c 'import monai; print("monai", monai.__version__)' 2>/dev/null || echo "monai: not importable (the replica will be used)"

# Runs one python process; appends its JSON line, or a failure line when it printed none.
run_one() {
  local description=$1 fallback=$2; shift 2
  local line rc=0
  line=$(timeout "$run_timeout" "$python" "$@" 2>>"$log" | tail -n 1) || rc=$?
  if [ "$rc" -eq 124 ]; then
    line=""
    fallback=${fallback/\"status\": \"error\"/\"status\": \"timeout\"}
  fi
  if [[ "$line" != "{"* ]]; then
    line=${fallback%\}}", \"exit_code\": $rc}"
  fi
  echo "$line" >> "$out"
  echo "$description: rc=$rc $line"
}

echo "=== $(date -u) run_bench_torch ${configs[*]}" >> "$log"
if [ "$peak" -eq 1 ]; then
  run_one "peak" '{"impl": "peak", "status": "error"}' bench/pytorch/autoencoder_torch.py --measure-peak
fi
for config in "${configs[@]}"; do
  IFS=: read -r resolution micro_batch checkpointing <<< "$config"
  for mode in $modes; do
    echo "=== $config $mode" >> "$log"
    fallback="{\"impl\": \"pytorch\", \"mode\": \"$mode\", \"resolution\": $resolution, \"micro_batch\": $micro_batch, \"checkpointing\": \"$checkpointing\", \"precision\": \"bf16\", \"status\": \"error\"}"
    run_one "$config $mode" "$fallback" bench/pytorch/autoencoder_torch.py \
      --resolution "$resolution" --micro-batch "$micro_batch" --checkpointing "$checkpointing" \
      --mode "$mode" --steps "$steps" --warmup "$warmup"
  done
done
echo "run_bench_torch: $(wc -l < "$out") lines in $out"
