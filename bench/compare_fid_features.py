#!/usr/bin/env python3
# Why this file exists: the speed of FID's feature extraction, ladder's InceptionV3 on the CPU
# beside pytorch-fid's on the same images, alternating in one run. Each round times
# `ladder evaluate --store S.h5 --save-features` (one image per pass, the whole command:
# start-up, store read, weights) and pytorch-fid's get_activations-equivalent forward of the
# same uint8 images (batches of 50, its default, torch threads = THREADS), both with the same
# random weights, and prints images/s per round and the medians' ratio ladder / pytorch-fid.
# Needs torch, torchvision, pytorch-fid, safetensors, h5py and build/ladder.
# Usage: python3 bench/compare_fid_features.py [--images 200] [--resolution 64] [--rounds 3]
#        [--threads nproc]
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "interop"))
from inception_parity import pytorch_fid_features, pytorch_fid_wrapper, random_fid_inception  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--images", type=int, default=200)
parser.add_argument("--resolution", type=int, default=64)
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--threads", type=int, default=os.cpu_count())
args = parser.parse_args()
torch.set_num_threads(args.threads)
ladder = ROOT / "build" / "ladder"
env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))

with tempfile.TemporaryDirectory(prefix="ladder-fid-bench-") as work:
    work = Path(work)
    store = work / "s.h5"
    subprocess.run([ladder, "pack", "--synthetic", str(args.images), "--out", store, "--levels",
                    str(args.resolution), "--seed", "1"], check=True, capture_output=True)
    with h5py.File(store, "r") as f:
        images = np.asarray(f[f"levels/{args.resolution}"])
    net = random_fid_inception(0)
    wrapper = pytorch_fid_wrapper(net)
    weights = work / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    rates = {"ladder": [], "pytorch-fid": []}
    for round_ in range(args.rounds):
        start = time.perf_counter()
        subprocess.run([ladder, "evaluate", "--store", store, "--weights", weights, "--save-features",
                        work / "f.h5"], check=True, capture_output=True, env=env)
        rates["ladder"].append(args.images / (time.perf_counter() - start))
        start = time.perf_counter()
        for first in range(0, args.images, 50):
            with torch.no_grad():
                pytorch_fid_features(wrapper, images[first:first + 50])
        rates["pytorch-fid"].append(args.images / (time.perf_counter() - start))
        print(f"round {round_ + 1}: ladder {rates['ladder'][-1]:.2f} img/s, "
              f"pytorch-fid {rates['pytorch-fid'][-1]:.2f} img/s", flush=True)
    ours, theirs = statistics.median(rates["ladder"]), statistics.median(rates["pytorch-fid"])
    print(f"{args.images} images at {args.resolution}² -> 299², {args.threads} threads: ladder {ours:.2f} img/s, "
          f"pytorch-fid {theirs:.2f} img/s, ratio {ours / theirs:.2f} (medians of {args.rounds} rounds)")
