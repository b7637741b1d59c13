#!/usr/bin/env python3
# Why this file exists: how sharp an autoencoder's reconstructions are, to compare runs trained
# with and without the adversarial (and perceptual) loss on the same images. For each run
# directory, `ladder reconstruct` (z = mu) writes the originals and reconstructions of the
# first N images of a store at one resolution; this prints, per run:
#   L1, PSNR            the reconstruction error (model range [-1, 1]);
#   hf_ratio            the energy above half the Nyquist frequency (radius > 0.25
#                       cycles/pixel of the mean-free 2D spectrum, per image and channel) of
#                       the reconstructions over that of the originals: 1 is as much fine
#                       detail as the originals, blur is below 1;
#   grad_ratio          mean squared finite-difference gradient of the reconstructions over
#                       the originals' (edges).
# Usage: python3 bench/sharpness.py --ladder build/ladder --store S.h5 --resolution R
#            [--count N] RUN_DIR [RUN_DIR ...]
# Needs numpy and h5py.
import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np


def latest_checkpoint(run_dir):
    name = (Path(run_dir) / "checkpoints" / "latest").read_text().strip()
    return Path(run_dir) / "checkpoints" / name


def high_frequency_energy(images):
    """(N, R, R, C) → per-image-channel fraction of spectral energy above 0.25 cycles/pixel,
    summed over images and channels (numerator, denominator)."""
    x = images - images.mean(axis=(1, 2), keepdims=True)
    spectrum = np.abs(np.fft.fft2(x, axes=(1, 2))) ** 2
    fy = np.fft.fftfreq(images.shape[1])[:, None]
    fx = np.fft.fftfreq(images.shape[2])[None, :]
    high = (np.sqrt(fy ** 2 + fx ** 2) > 0.25)[None, :, :, None]
    return float((spectrum * high).sum()), float(spectrum.sum())


def gradient_energy(images):
    dy = np.diff(images, axis=1)
    dx = np.diff(images, axis=2)
    return float((dy ** 2).mean() + (dx ** 2).mean())


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ladder", default="build/ladder")
    parser.add_argument("--store", required=True)
    parser.add_argument("--resolution", type=int, required=True)
    parser.add_argument("--count", type=int, default=64)
    parser.add_argument("runs", nargs="+")
    args = parser.parse_args()
    print(f"{'run':<28} {'L1':>8} {'PSNR dB':>8} {'hf_ratio':>9} {'grad_ratio':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for run in args.runs:
            out = Path(tmp) / (Path(run).name + ".h5")
            done = subprocess.run([args.ladder, "reconstruct", "--checkpoint", str(latest_checkpoint(run)),
                                   "--store", args.store, "--resolution", str(args.resolution),
                                   "--count", str(args.count), "--out", str(out)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                sys.exit(f"reconstruct of {run} failed ({done.returncode}): {done.stderr.strip()}")
            with h5py.File(out, "r") as f:
                originals = f["originals"][...].astype(np.float64)
                reconstructions = f["reconstructions"][...].astype(np.float64)
            l1 = float(np.abs(reconstructions - originals).mean())
            psnr = 10 * np.log10(4.0 / float(((reconstructions - originals) ** 2).mean()))
            hf_rec, total_rec = high_frequency_energy(reconstructions)
            hf_orig, total_orig = high_frequency_energy(originals)
            hf_ratio = (hf_rec / total_rec) / (hf_orig / total_orig)
            grad_ratio = gradient_energy(reconstructions) / gradient_energy(originals)
            print(f"{Path(run).name:<28} {l1:8.4f} {psnr:8.2f} {hf_ratio:9.3f} {grad_ratio:10.3f}")


if __name__ == "__main__":
    main()
