#!/usr/bin/env python3
# Why this file exists: ladder's TensorBoard files read by TensorBoard's own reader
# (EventAccumulator): a two-rung run that crashes after logging past its last checkpoint
# (the test-only LADDER_TEST_FAIL) and is resumed with --resume auto. Every scalar series must
# have strictly increasing steps (the superseded steps dropped), the loss terms, lr and
# grad_norm series must equal metrics.jsonl to float32 precision, the sample grids must be there as images and
# the config as text. Needs the `tensorboard` package (exit 77, "SKIPPED", without it).
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import numpy as np
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
except ImportError as error:
    print(f"SKIPPED: {error} (the tensorboard package is optional: python3 -m pip install tensorboard)")
    sys.exit(77)

parser = argparse.ArgumentParser()
parser.add_argument("--ladder", required=True)
parser.add_argument("--mpiexec", default="mpiexec")  # unused: one process
args = parser.parse_args()


def fail(message):
    print("FAILED: " + message)
    sys.exit(1)


with tempfile.TemporaryDirectory() as work:
    work = Path(work)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    subprocess.run([args.ladder, "pack", "--synthetic", "12", "--out", str(work / "s.h5"), "--levels", "16,32"],
                   check=True, capture_output=True)
    flags = ["train", "--config", "/dev/null", "--run.dir", str(work / "run"), "--run.device", "cpu",
             "--run.log_every", "1", "--run.sample_every", "4", "--model.channels", "8,16", "--model.norm_groups", "4",
             "--model.res_blocks", "1", "--model.latent_channels", "2", "--data.store", str(work / "s.h5"),
             "--stages.resolutions", "16,32", "--stages.images", "24,16", "--train.batch", "4",
             "--train.micro_batch", "2", "--checkpoint.every", "3", "--resume", "auto"]
    crashed = subprocess.run([args.ladder] + flags, env=dict(env, LADDER_TEST_FAIL="0:6"), capture_output=True, text=True)
    if crashed.returncode == 0:
        fail("the test-only failure did not stop the first run")
    resumed = subprocess.run([args.ladder] + flags, env=env, capture_output=True, text=True)
    if resumed.returncode != 0:
        fail("the resumed run failed:\n" + resumed.stdout + resumed.stderr)
    events = sorted((work / "run" / "tb").iterdir())
    if len(events) != 2:
        fail(f"expected two event files (one per launch), found {len(events)}")
    accumulator = EventAccumulator(str(work / "run" / "tb"), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    accumulator.Reload()
    tags = accumulator.Tags()
    rows = [json.loads(line) for line in open(work / "run" / "metrics.jsonl")]
    steps = [row["step"] for row in rows]
    print(f"metrics.jsonl steps {steps}; scalar tags {len(tags['scalars'])}; images {tags['images']}; "
          f"text {tags['tensors']}")
    for field in rows[0]:
        if field not in tags["scalars"]:
            fail(f"metrics field {field} is not a TensorBoard scalar")
        series = accumulator.Scalars(field)
        got = [event.step for event in series]
        if got != steps:
            fail(f"{field}: steps {got}, metrics.jsonl has {steps}")
    for field in ("loss", "rec_loss", "kl_loss", "lr", "grad_norm"):
        values = np.array([event.value for event in accumulator.Scalars(field)], dtype=np.float64)
        expected = np.array([row[field] for row in rows], dtype=np.float64)
        # TensorBoard keeps float32; metrics.jsonl 9 significant digits of the double.
        worst = float(np.max(np.abs(values - expected) / np.maximum(np.abs(expected), 1e-30)))
        if worst > 1.2e-7:
            fail(f"{field}: TensorBoard differs from metrics.jsonl by {worst:.2e} (relative)")
    if sorted(tags["images"]) != ["samples/16", "samples/32"]:
        fail(f"images {tags['images']}")
    image = accumulator.Images("samples/32")[-1]
    if image.width <= 0 or image.height <= 0 or not image.encoded_image_string.startswith(b"\x89PNG"):
        fail("the sample image is not a PNG with a size")
    config = accumulator.Tensors("config")[-1].tensor_proto.string_val[0].decode()
    if "[train]" not in config or "batch = 4" not in config:
        fail("the config text is not the resolved config")
    print(f"passed: {len(tags['scalars'])} scalar series with steps {steps[0]}..{steps[-1]} strictly increasing "
          f"after a crash at step 6 and a resume from step 3, equal to metrics.jsonl")
