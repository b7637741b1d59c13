#!/usr/bin/env python3
# Why this file exists: the speed of FID on the CPU, ladder beside pytorch-fid on the same
# images, alternating in one run. Each round times the whole FID of the set against the same
# reference statistics (mu, sigma of --reference-images other images, computed once by
# pytorch-fid's network and saved as pytorch-fid's .npz; not timed):
#   ladder: `ladder evaluate --store S.h5 --reference R.npz` (start-up, store read, weights,
#     InceptionV3 one image per pass, statistics and FID);
#   pytorch-fid: its get_activations-equivalent forward of the same uint8 images (batches of
#     50, its default, torch threads = THREADS), np.mean/np.cov and calculate_frechet_distance.
# Both use the same random weights. Prints images/s per round, both FIDs (which must agree),
# and the medians' ratio ladder / pytorch-fid.
# Needs torch, torchvision, pytorch-fid, scipy, safetensors, h5py and build/ladder.
# Usage: python3 bench/compare_fid_features.py [--images 200] [--resolution 64] [--rounds 3]
#        [--reference-images 2100] [--threads nproc]
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import torch
from pytorch_fid.fid_score import calculate_frechet_distance
from safetensors.torch import save_file

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "interop"))
from inception_parity import pytorch_fid_features, pytorch_fid_wrapper, random_fid_inception  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("--images", type=int, default=200)
parser.add_argument("--resolution", type=int, default=64)
parser.add_argument("--rounds", type=int, default=3)
parser.add_argument("--reference-images", type=int, default=2100)
parser.add_argument("--threads", type=int, default=os.cpu_count())
args = parser.parse_args()
torch.set_num_threads(args.threads)
ladder = ROOT / "build" / "ladder"
env = dict(os.environ, OMP_NUM_THREADS=str(args.threads))


def features_of(wrapper, images):
    return np.concatenate([pytorch_fid_features(wrapper, images[first:first + 50])
                           for first in range(0, len(images), 50)])


with tempfile.TemporaryDirectory(prefix="ladder-fid-bench-") as work:
    work = Path(work)
    stores = {}
    for name, count, seed in (("s", args.images, 1), ("r", args.reference_images, 2)):
        stores[name] = work / f"{name}.h5"
        subprocess.run([ladder, "pack", "--synthetic", str(count), "--out", stores[name], "--levels",
                        str(args.resolution), "--seed", str(seed)], check=True, capture_output=True)
    with h5py.File(stores["s"], "r") as f:
        images = np.asarray(f[f"levels/{args.resolution}"])
    with h5py.File(stores["r"], "r") as f:
        reference_images = np.asarray(f[f"levels/{args.resolution}"])
    net = random_fid_inception(0)
    wrapper = pytorch_fid_wrapper(net)
    weights = work / "w.safetensors"
    save_file({k: v.contiguous() for k, v in net.state_dict().items()}, str(weights))
    reference = features_of(wrapper, reference_images)  # not timed
    mu_ref, sigma_ref = reference.mean(0), np.cov(reference, rowvar=False)
    np.savez(work / "reference.npz", mu=mu_ref, sigma=sigma_ref)
    rates = {"ladder": [], "pytorch-fid": []}
    fids = {}
    for round_ in range(args.rounds):
        start = time.perf_counter()
        result = subprocess.run([ladder, "evaluate", "--store", stores["s"], "--weights", weights, "--device", "cpu",
                                 "--reference", work / "reference.npz"], check=True, capture_output=True, text=True,
                                env=env)
        rates["ladder"].append(args.images / (time.perf_counter() - start))
        fids["ladder"] = float(re.search(r"^fid (\S+)", result.stdout, re.M).group(1))
        start = time.perf_counter()
        with torch.no_grad():
            ours = features_of(wrapper, images)
        fids["pytorch-fid"] = float(calculate_frechet_distance(ours.mean(0), np.cov(ours, rowvar=False),
                                                               mu_ref, sigma_ref))
        rates["pytorch-fid"].append(args.images / (time.perf_counter() - start))
        print(f"round {round_ + 1}: ladder {rates['ladder'][-1]:.2f} img/s, "
              f"pytorch-fid {rates['pytorch-fid'][-1]:.2f} img/s; FID ladder {fids['ladder']:.6f}, "
              f"pytorch-fid {fids['pytorch-fid']:.6f}", flush=True)
    ours, theirs = statistics.median(rates["ladder"]), statistics.median(rates["pytorch-fid"])
    print(f"FID of {args.images} images at {args.resolution}² (-> 299²) against {args.reference_images} reference "
          f"images' statistics, {args.threads} threads: ladder {ours:.2f} img/s, pytorch-fid {theirs:.2f} img/s, "
          f"ratio {ours / theirs:.2f} (medians of {args.rounds} rounds); FID relative difference "
          f"{abs(fids['ladder'] - fids['pytorch-fid']) / abs(fids['pytorch-fid']):.2e}")
