#!/usr/bin/env bash
# Why this file exists: a change to the data path (the order, the prefetcher) must not make the
# trainer wait on data. This trains the quickstart config, shortened, with two ladder binaries
# in turn (alternating, ROUNDS times each, RANKS ranks under mpirun) and prints each run's
# mean data_wait_frac and img/s from metrics.jsonl.
#   usage: bench/compare_data_wait.sh BEFORE_LADDER AFTER_LADDER [ROUNDS] [RANKS]
set -euo pipefail
before=$1 after=$2 rounds=${3:-2} ranks=${4:-2}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/ladder-data-wait-XXXXXX)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
store="$root/data/quickstart-synthetic.h5"
[ -f "$store" ] || "$after" pack --synthetic 256 --levels 32,64 --out "$store" > /dev/null
printf '%-8s %-6s %16s %10s\n' binary round data_wait_frac img/s
for round in $(seq 1 "$rounds"); do
  for which in before after; do
    binary=$before
    [ "$which" = after ] && binary=$after
    run="$work/$which-$round"
    mpirun --oversubscribe --bind-to none -np "$ranks" "$binary" train --config "$root/configs/quickstart.ini" \
      --data.store "$store" --run.dir "$run" --stages.images 1600,160 --train.micro_batch auto --run.sample_every 0 --run.log_every 5 \
      --eval.count 0 --log.tensorboard false > "$work/$which-$round.log" 2>&1 ||
      { grep -m3 -i error "$work/$which-$round.log"; exit 1; }
    python3 - "$run/metrics.jsonl" "$which" "$round" <<'EOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
wait = sum(r["data_wait_frac"] for r in rows) / len(rows)
rate = sum(r["img_per_s"] for r in rows) / len(rows)
print(f"{sys.argv[2]:<8} {sys.argv[3]:<6} {wait:16.5f} {rate:10.1f}")
EOF
  done
done
