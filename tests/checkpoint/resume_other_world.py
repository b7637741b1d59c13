#!/usr/bin/env python3
# Why this file exists: a run preempted on one world size and resumed on another continues the
# same training (data/data_order.h: the data cursor is a global batch index, the same on every
# world size). A 4-rank autoencoder run on 40 images (batch 8: an epoch is 5 steps) is stopped
# by a real SIGUSR1 after step 7, in the middle of its second epoch, and its run directory
# resumed three ways: on 4 ranks it must match the uninterrupted 4-rank run in bits (metrics
# and shards); on 2 ranks and on 1 it must log the same learning rate and images seen, the same
# loss, terms and gradient norm within 1e-5 relative at every later step, train on the same
# image ids in every slot of every global batch (LADDER_TEST_BATCH_TRACE), and end with the same
# weights (ladder export) within 1e-5 relative.
import shutil
import signal
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import checkpoint_harness as h

STEPS, STOP = 20, 7
CLOSE_KEYS = ("loss", "rec_loss", "kl_loss", "grad_norm")
EXACT_KEYS = ("step", "stage", "resolution", "images_seen", "lr", "skipped_steps")


def read_trace(prefix, world):
    """step -> {slot: image index} from the ranks' trace files."""
    batches = {}
    for rank in range(world):
        path = Path(f"{prefix}.rank{rank}")
        h.check(path.exists(), f"no batch trace {path}")
        for line in path.read_text().split("\n"):
            if line.strip():
                step, slot, index = map(int, line.split())
                batches.setdefault(step, {})[slot] = index
    return batches


def exported_weights(hr, run, name):
    import numpy as np
    from safetensors.numpy import load_file
    out = hr.work / f"{name}.safetensors"
    result = subprocess.run([hr.ladder, "export", "--checkpoint", str(h.latest_dir(run)), "--out", str(out)],
                            capture_output=True, text=True, env=hr.env, timeout=120)
    h.check(result.returncode == 0, f"export of {run} failed ({result.returncode}): {result.stderr}")
    tensors = load_file(str(out))
    return np.concatenate([tensors[k].astype(np.float64).ravel() for k in sorted(tensors)])


def close(a, b, tolerance=1e-5):
    return abs(a - b) <= tolerance * max(abs(a), abs(b), 1e-30)


def body(hr):
    try:
        import numpy  # noqa: F401
        import safetensors  # noqa: F401
    except ImportError:
        h.log("SKIP: numpy and safetensors are needed to compare exported weights")
        sys.exit(77)
    hr.pack(40, levels="16", seed=1)
    config = hr.write_config(stages={"resolutions": "16", "images": str(STEPS * 8)},
                             train={"batch": 8, "micro_batch": 2, "lr": "3e-3"})

    ref = hr.work / "A4"
    hr.train(config, ref, ranks=4, env={"LADDER_TEST_BATCH_TRACE": str(hr.work / "A4-trace")})
    ref_rows = h.read_metrics(ref)
    h.check([r["step"] for r in ref_rows] == list(range(1, STEPS + 1)), f"A4: steps {[r['step'] for r in ref_rows]}")
    ref_weights = exported_weights(hr, ref, "A4")
    h.log(f"A4: uninterrupted on 4 ranks, {STEPS} steps (4 epochs of 5)")

    stopped = hr.work / "B"
    hr.train(config, stopped, ranks=4, expect=h.EXIT_STOPPED,
             env={"LADDER_TEST_SIGNAL": f"2:{STOP}:{int(signal.SIGUSR1)}"})
    h.check(h.latest_name(stopped) == f"step-{STOP:08d}", f"B: latest {h.latest_name(stopped)!r}")
    h.check(h.manifest(h.latest_dir(stopped))["state"].get("data_batch") == STOP,
            f"B: the checkpoint's data cursor is {h.manifest(h.latest_dir(stopped))['state'].get('data_batch')}, "
            f"expected global batch {STOP}")

    for world in (4, 2, 1):
        run = hr.work / f"B{world}"
        shutil.copytree(stopped, run)
        trace = hr.work / f"B{world}-trace"
        hr.train(config, run, ranks=world, env={"LADDER_TEST_BATCH_TRACE": str(trace)})
        rows = h.read_metrics(run)
        if world == 4:
            h.compare_metrics(ref_rows, rows, "B4")
            h.compare_checkpoints(h.latest_dir(ref), h.latest_dir(run), "B4")
            h.log("B4: stopped after step 7 on 4 ranks, resumed on 4: metrics bit-identical, shards byte-identical")
            continue
        h.check([r["step"] for r in rows] == list(range(1, STEPS + 1)), f"B{world}: steps {[r['step'] for r in rows]}")
        h.compare_metrics(ref_rows[:STOP], rows[:STOP], f"B{world} before the stop")
        worst = 0.0
        for a, b in zip(ref_rows[STOP:], rows[STOP:]):
            for key in EXACT_KEYS:
                h.check(a[key] == b[key], f"B{world}: step {a['step']} {key} {b[key]!r}, uninterrupted {a[key]!r}")
            for key in CLOSE_KEYS:
                h.check(close(a[key], b[key]), f"B{world}: step {a['step']} {key} {b[key]!r}, uninterrupted 4-rank "
                        f"run {a[key]!r} (more than 1e-5 relative apart)")
                worst = max(worst, abs(a[key] - b[key]) / max(abs(a[key]), 1e-30))
        import numpy as np
        weights = exported_weights(hr, run, f"B{world}")
        difference = float(np.linalg.norm(weights - ref_weights) / np.linalg.norm(ref_weights))
        h.check(difference < 1e-5, f"B{world}: final weights {difference:.3g} relative from the uninterrupted run's")
        resumed = read_trace(trace, world)
        expected = {step: slots for step, slots in read_trace(hr.work / "A4-trace", 4).items() if step > STOP}
        h.check(sorted(resumed) == list(range(STOP + 1, STEPS + 1)),
                f"B{world}: traced steps {sorted(resumed)}, expected {STOP + 1}..{STEPS}")
        differing = [s for s in expected if resumed.get(s) != expected[s]]
        h.check(not differing, f"B{world}: the resumed run trained on other images than the uninterrupted one "
                f"at steps {differing}")
        h.log(f"B{world}: stopped after step 7 on 4 ranks, resumed on {world}: the same image ids in every slot of "
              f"steps 8-{STEPS}, metrics within {worst:.2g} relative, final weights {difference:.2g} relative")


if __name__ == "__main__":
    h.main(body, h.Harness("a run stopped on 4 ranks continues the same training on 4, 2 and 1"))
