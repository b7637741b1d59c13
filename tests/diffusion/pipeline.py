#!/usr/bin/env python3
# Why this file exists: stage 2 end to end through the real binary, as a user runs it: pack
# synthetic images, train a small autoencoder, `ladder encode` its latents, train a small
# diffusion UNet on them (two rungs, 2 ranks under mpirun), then `ladder sample` with DDPM and
# the autoencoder. It checks that the loss fell, that the run wrote its grids, and that the
# generated latents have the spatial structure of the training latents rather than of noise
# (bench/latent_statistics.py: lag-1 autocorrelation nearer the training latents' than the
# noise's, and a std within a factor 2.5 of theirs, a guard against collapse or blow-up); that
# the run logged FID at the end of both rungs, lower than that of pure-noise latents decoded;
# and that `ladder evaluate` of the samples prints the same scores on 2 ranks as on 1.
# Needs numpy and h5py (installed by launch/install_deps.sh).
import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
try:
    import h5py  # noqa: F401 (latent_statistics needs it)
    import latent_statistics as stats
except ImportError as error:
    print(f"SKIPPED: {error} (numpy and h5py are needed)")
    sys.exit(77)

parser = argparse.ArgumentParser()
parser.add_argument("--ladder", required=True)
parser.add_argument("--mpiexec", default="mpiexec")
args = parser.parse_args()
env = dict(os.environ, OMP_NUM_THREADS="1", OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")


def run(command):
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env, timeout=400)
    if result.returncode != 0:
        print(f"FAILED: {' '.join(str(c) for c in command)}\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
        sys.exit(1)
    return result.stdout


def latest(run_dir):
    checkpoints = Path(run_dir) / "checkpoints"
    return checkpoints / (checkpoints / "latest").read_text().strip()


with tempfile.TemporaryDirectory(prefix="ladder-diffusion-") as work:
    work = Path(work)
    run([args.ladder, "pack", "--synthetic", "64", "--out", work / "s.h5", "--levels", "32,64", "--seed", "4"])
    run([args.ladder, "train", "--config", "/dev/null", "--run.dir", work / "ae", "--run.device", "cpu",
         "--run.sample_every", "0", "--log.tensorboard", "false", "--model.channels", "16,32,32",
         "--model.norm_groups", "8", "--model.res_blocks", "1", "--model.latent_channels", "4",
         "--model.attention_levels", "none", "--model.mid_attention", "false",
         "--data.store", work / "s.h5", "--stages.resolutions", "32", "--stages.images", "1600",
         "--train.batch", "16", "--train.lr", "2e-3", "--train.kl_weight", "1e-6"])
    run([args.ladder, "encode", "--checkpoint", latest(work / "ae"), "--store", work / "s.h5",
         "--out", work / "l.h5"])
    unet = work / "unet"
    run([args.mpiexec, "--oversubscribe", "--bind-to", "none", "-np", "2", args.ladder, "train", "--config",
         ROOT / "configs" / "quickstart_diffusion.ini", "--run.dir", unet, "--data.store", work / "l.h5",
         "--stages.images", "4000,1600", "--run.sample_every", "0", "--log.tensorboard", "false",
         "--eval.count", "16", "--eval.reference", work / "s.h5", "--eval.weights", "random:1",
         "--eval.steps", "50"])
    rows = [json.loads(line) for line in (unet / "metrics.jsonl").read_text().splitlines()]
    first = sum(r["loss"] for r in rows[:2]) / 2
    last = sum(r["loss"] for r in rows[-3:]) / 3
    print(f"UNet: {rows[-1]['step']} steps, loss {first:.4f} (first logged) -> {last:.4f} (last 3 logged)")
    if not (first > 0.5 and last < 0.5 * first):
        print("FAILED: the diffusion loss did not fall to half")
        sys.exit(1)
    scored = [r for r in rows if "fid" in r]
    if [r["resolution"] for r in scored] != [32, 64] or scored[-1]["eval_count"] != 16:
        print(f"FAILED: expected fid at the end of both rungs, 16 samples each: {scored}")
        sys.exit(1)
    # The floor: the same 16 noises decoded without the UNet score worse than its samples.
    baseline = run([args.ladder, "evaluate", "--checkpoint", latest(unet), "--autoencoder", latest(work / "ae"),
                    "--count", "16", "--resolution", "64", "--weights", "random:1", "--reference", work / "s.h5",
                    "--baseline", "noise"])
    noise_fid = float(next(line for line in baseline.splitlines() if line.startswith("fid ")).split()[1])
    print(f"FID of 16 samples at the last rung {scored[-1]['fid']:.4f}; of pure-noise latents decoded {noise_fid:.4f} "
          f"(random InceptionV3 weights)")
    if not scored[-1]["fid"] < noise_fid:
        print("FAILED: the trained UNet's samples do not score better than decoded noise")
        sys.exit(1)
    grids = sorted(p.name for p in (unet / "samples").glob("*.png"))
    if not any("r64" in g for g in grids):
        print(f"FAILED: no generated grid at 64 in samples/ ({grids})")
        sys.exit(1)
    print(run([args.ladder, "sample", "--checkpoint", latest(unet), "--autoencoder", latest(work / "ae"),
               "--count", "16", "--resolution", "64", "--sampler", "ddpm", "--steps", "100", "--seed", "3",
               "--out", work / "g.png", "--save-latents", work / "g.h5"]).strip())
    import h5py as h5
    import numpy as np
    with h5.File(work / "l.h5") as store:
        scale = float(store.attrs["scale_factor"])
        mu, logvar = store["levels/64/mu"][()], np.clip(store["levels/64/logvar"][()], -30, 20)
    training = (mu + np.exp(0.5 * logvar) * np.random.default_rng(0).standard_normal(mu.shape)) * scale
    with h5.File(work / "g.h5") as f:
        generated, noise = f["latents"][()], f["noise"][()]
    (tc, ts), (gc, gs), (nc, ns) = stats.statistics(training), stats.statistics(generated), stats.statistics(noise)
    print(f"lag-1 autocorrelation: training {tc:+.3f}, generated {gc:+.3f}, noise {nc:+.3f}; "
          f"std: training {ts:.3f}, generated {gs:.3f}, noise {ns:.3f}")
    if not abs(gc - tc) < abs(gc - nc):
        print("FAILED: the samples' spatial structure is not nearer the training latents than noise")
        sys.exit(1)
    if not ts / 2.5 < gs < 2.5 * ts:
        print("FAILED: the samples' std is not within a factor 2.5 of the training latents' (collapse or blow-up)")
        sys.exit(1)
    # ladder evaluate of the UNet's samples (random InceptionV3 weights: a sanity check), on 1 and
    # 2 ranks: the same lines, and a finite positive FID against the training store.
    evaluate = [args.ladder, "evaluate", "--checkpoint", latest(unet), "--autoencoder", latest(work / "ae"),
                "--count", "12", "--resolution", "64", "--steps", "20", "--seed", "5", "--weights", "random:1",
                "--reference", work / "s.h5", "--kid-subset-size", "12", "--kid-subsets", "4"]
    one = run(evaluate)
    two = run([args.mpiexec, "--oversubscribe", "--bind-to", "none", "-np", "2"] + evaluate)
    scores = [line for line in one.splitlines() if line.startswith(("fid ", "kid_mean ", "ms_ssim_diversity "))]
    if len(scores) != 3 or any(line not in two for line in scores):
        print(f"FAILED: evaluate of samples on 2 ranks differs from 1 rank:\n{one}\n---\n{two}")
        sys.exit(1)
    fid = float(scores[0].split()[1])
    if not (fid > 0 and fid == fid):
        print(f"FAILED: FID of the samples is {fid}")
        sys.exit(1)
    print(f"evaluate of 12 samples (random InceptionV3 weights): {'; '.join(scores)}; the same on 2 ranks")
    print("passed: the loss fell and the samples have the training latents' structure, not noise's")
