#!/usr/bin/env python3
# Why this file exists: how we judge that a diffusion model generates structure rather than
# noise. Pure noise is white: neighbouring latent pixels are uncorrelated. Latents of real
# images are smooth: neighbours correlate strongly. So the spatial lag-1 autocorrelation (the
# mean of the horizontal and vertical ones, over images and channels) and the std of
# generated latents (`ladder sample --save-latents`, /latents, in the scaled space the UNet
# learns in) are compared with the same statistics of the training latents
# (z = (mu + sigma * eps) * scale_factor from the latent store) and of pure noise (/noise, the
# sampler's own x_T). Prints one line per set and the verdict; --check exits 1 when the
# generated autocorrelation is not closer to the training latents' than to the noise's.
import argparse
import sys

import h5py
import numpy as np


def statistics(z):
    """(lag-1 autocorrelation, std) of latents (N, H, W, C)."""
    z = np.asarray(z, dtype=np.float64)
    z = z - z.mean(axis=(1, 2), keepdims=True)
    var = (z * z).mean(axis=(1, 2))
    horizontal = (z[:, :, 1:, :] * z[:, :, :-1, :]).mean(axis=(1, 2))
    vertical = (z[:, 1:, :, :] * z[:, :-1, :, :]).mean(axis=(1, 2))
    correlation = 0.5 * (horizontal + vertical) / np.maximum(var, 1e-12)
    return float(correlation.mean()), float(np.asarray(z).std())


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--latents", required=True, help="the latent store the model trained on")
    parser.add_argument("--resolution", type=int, required=True, help="its image resolution to compare with")
    parser.add_argument("--samples", required=True, help="ladder sample --save-latents output")
    parser.add_argument("--check", action="store_true", help="exit 1 unless samples are nearer the training data")
    args = parser.parse_args()
    with h5py.File(args.latents, "r") as store:
        scale = float(store.attrs["scale_factor"])
        mu = store[f"levels/{args.resolution}/mu"][()]
        logvar = np.clip(store[f"levels/{args.resolution}/logvar"][()], -30, 20)
    rng = np.random.default_rng(0)
    training = (mu + np.exp(0.5 * logvar) * rng.standard_normal(mu.shape)) * scale
    with h5py.File(args.samples, "r") as samples:
        generated, noise = samples["latents"][()], samples["noise"][()]
    rows = [("training latents", statistics(training)), ("generated", statistics(generated)),
            ("pure noise (x_T)", statistics(noise))]
    for name, (correlation, std) in rows:
        print(f"{name:18s} lag-1 autocorrelation {correlation:+.3f}  std {std:.3f}")
    train_c, gen_c, noise_c = rows[0][1][0], rows[1][1][0], rows[2][1][0]
    nearer = abs(gen_c - train_c) < abs(gen_c - noise_c)
    print("verdict: the samples' spatial structure is " +
          ("nearer the training latents than pure noise" if nearer else "NOT nearer the training latents than noise"))
    if args.check and not nearer:
        sys.exit(1)


if __name__ == "__main__":
    main()
