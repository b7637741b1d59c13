#!/usr/bin/env python3
# Puts ladder's training-step benchmark next to the PyTorch baseline
# (bench/pytorch/autoencoder_torch.py, eager and torch.compile) and prints one markdown table
# per resolution, for docs/PERFORMANCE.md: images/s, peak GPU memory, MFU, and whether
# ladder is faster and leaner than the best PyTorch run at the same micro-batch and the same
# recompute (ladder `recompute`, PyTorch `checkpointing`: none | blocks).
#
#   python3 bench/compare_train.py ladder.jsonl torch.jsonl
#   python3 bench/compare_train.py --configs ladder.jsonl   # "RES:MICRO:RECOMPUTE ..." of ladder's
#       finished runs: the arguments for launch/device/run_bench_torch.sh, so both sides match
#
# Input: JSON lines, in any of the files.
#   ladder:  {"impl": "ladder", "resolution", "micro_batch", "recompute", "precision",
#             "img_per_s", "step_ms", "peak_mem_bytes", "status"[, "flops_per_image"]}
#   pytorch: {"impl": "pytorch-monai"|"pytorch-replica", "mode": "eager"|"compile",
#             "checkpointing", ...} as autoencoder_torch.py prints them
#   peak:    {"impl": "peak", "tflops": x}   (autoencoder_torch.py --measure-peak)
# MFU = img_per_s × training FLOPs of one image / (peak TFLOP/s × 1e12). The FLOPs are a
# line's own "flops_per_image" (training FLOPs = 3 × forward, as bench/flops.py counts them)
# or, when it has none, bench/flops.py's count for its "channels" (default: BRIEF §4's).
# Lines that are not JSON objects are skipped; a later line for the same run replaces an
# earlier one.
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from flops import DEFAULT_CONFIG, training_flops  # noqa: E402

GIB = 1024 ** 3
RUNS = ("ladder", "eager", "compile")


def read_lines(paths):
    records = []
    for path in paths:
        with open(path) as file:
            for line in file:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    print(f"compare_train: {path}: skipping a line that is not JSON: {line[:80]}",
                          file=sys.stderr)
    return records


def run_name(record):
    """'ladder', 'eager', 'compile', 'peak' or None for anything else."""
    impl = record.get("impl", "")
    if impl in ("ladder", "peak"):
        return impl
    if impl.startswith("pytorch"):
        return record.get("mode")
    return None


def flops_per_image(record):
    if record.get("flops_per_image"):
        return record["flops_per_image"]
    channels = tuple(record.get("channels") or DEFAULT_CONFIG["channels"])
    return training_flops(record["resolution"], channels=channels,
                          attention_levels=(False,) * len(channels))


def ok(record):
    return record is not None and record.get("status") == "ok" and record.get("img_per_s")


def cell_speed(record):
    if record is None:
        return "–"
    if not ok(record):
        return record.get("status") or "?"
    return f"{record['img_per_s']:.1f}"


def cell_memory(record):
    if record is None or not record.get("peak_mem_bytes"):
        return "–"
    text = f"{record['peak_mem_bytes'] / GIB:.1f}"
    return text if ok(record) else f"({text})"  # the peak reached before an OOM


def cell_mfu(record, peak_tflops):
    if not ok(record) or not peak_tflops:
        return "–"
    mfu = record["img_per_s"] * flops_per_image(record) / (peak_tflops * 1e12)
    return f"{100 * mfu:.1f}%"


def verdicts(runs):
    """(faster, leaner) of ladder against the best PyTorch run that finished."""
    ladder = runs.get("ladder")
    torch_ok = [runs[name] for name in ("eager", "compile") if ok(runs.get(name))]
    if not torch_ok:
        if ok(ladder) and any(runs.get(name) for name in ("eager", "compile")):
            return "yes (PyTorch did not run)", "yes (PyTorch did not run)"
        return "–", "–"
    if ladder is None:
        return "–", "–"
    if not ok(ladder):
        status = ladder.get("status") or "failed"
        return f"no ({status})", f"no ({status})"
    best_speed = max(record["img_per_s"] for record in torch_ok)
    faster = ladder["img_per_s"] / best_speed
    speed_text = f"{'yes' if faster > 1 else 'no'} ({faster:.2f}×)"
    memories = [record["peak_mem_bytes"] for record in torch_ok if record.get("peak_mem_bytes")]
    if not ladder.get("peak_mem_bytes") or not memories:
        return speed_text, "–"
    leaner = ladder["peak_mem_bytes"] / min(memories)
    return speed_text, f"{'yes' if leaner < 1 else 'no'} ({leaner:.2f}×)"


def main():
    if len(sys.argv) < 2 or sys.argv[1] in ("-h", "--help"):
        sys.exit("usage: python3 bench/compare_train.py ladder.jsonl torch.jsonl [more.jsonl ...]\n"
                 "       python3 bench/compare_train.py --configs ladder.jsonl   "
                 "(RES:MICRO:RECOMPUTE of ladder's finished runs, for run_bench_torch.sh)")
    if sys.argv[1] == "--configs":
        configs = []
        for record in read_lines(sys.argv[2:]):
            if run_name(record) == "ladder" and ok(record):
                config = f"{record['resolution']}:{record['micro_batch']}:{record.get('recompute') or 'none'}"
                if config not in configs:
                    configs.append(config)
        print(" ".join(configs))
        return
    records = read_lines(sys.argv[1:])

    peaks = [record for record in records if run_name(record) == "peak" and record.get("tflops")]
    peak_tflops = peaks[-1]["tflops"] if peaks else None
    devices = sorted({record["device_name"] for record in records if record.get("device_name")})

    # table[resolution][(micro_batch, recompute)][run] = record (the last one wins)
    table = {}
    precisions = {}  # run name → the precisions its lines state
    for record in records:
        name = run_name(record)
        if name not in RUNS:
            continue
        recompute = record.get("recompute") if name == "ladder" else record.get("checkpointing")
        key = (record["micro_batch"], recompute or "none")
        table.setdefault(record["resolution"], {}).setdefault(key, {})[name] = record
        precisions.setdefault(name, set()).add(record.get("precision"))

    print("Training step, ladder vs PyTorch (AutoencoderKL, BRIEF §4). "
          f"Device: {', '.join(devices) or 'unknown'}. "
          + (f"Peak ({peaks[-1].get('dtype', 'bf16')} matmul): {peak_tflops:g} TFLOP/s." if peak_tflops
             else "No peak line: MFU not shown."))
    print("Memory: peak allocated GPU memory in GiB (in parentheses: the peak before an OOM). "
          "MFU counts model FLOPs (3 × forward; recompute not counted). "
          "Faster / leaner: ladder against the best PyTorch run that finished (ratio ladder / PyTorch).")
    if len(set().union(*precisions.values())) > 1:
        print("WARNING: not all runs use the same precision: "
              + ", ".join(f"{name} {'/'.join(sorted(map(str, values)))}" for name, values in precisions.items()))

    for resolution in sorted(table):
        print(f"\n### {resolution}²\n")
        print("| micro-batch | recompute | ladder img/s | eager img/s | compile img/s "
              "| ladder GiB | eager GiB | compile GiB | ladder MFU | eager MFU | compile MFU "
              "| ladder faster | ladder leaner |")
        print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|")
        for (micro_batch, recompute) in sorted(table[resolution], key=lambda k: (k[0], k[1] != "none", k[1])):
            runs = table[resolution][(micro_batch, recompute)]
            cells = [str(micro_batch), recompute]
            cells += [cell_speed(runs.get(name)) for name in RUNS]
            cells += [cell_memory(runs.get(name)) for name in RUNS]
            cells += [cell_mfu(runs.get(name), peak_tflops) for name in RUNS]
            cells += list(verdicts(runs))
            print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
