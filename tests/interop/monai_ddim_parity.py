#!/usr/bin/env python3
# Why this file exists: stage 2's sampler against MONAI's, on two UNets: (1) a MONAI 1.6.1
# DiffusionModelUNet with random non-zero weights (the tiny configuration of the reference)
# saved with safetensors.torch.save_file; (2) a UNet trained by ladder (on the latents of a
# small ladder autoencoder) and exported with `ladder export`, which MONAI loads with
# strict=True from the export's monai_arguments. `ladder sample --sampler ddim --steps 20
# --save-latents` runs each from its own noise; MONAI's DDIMScheduler (scaled_linear_beta
# 0.0015 -> 0.0195, clip_sample, eta 0) replays the saved noise over the saved timesteps with
# MONAI's UNet (the trained one also with clip_sample off). The final latents must agree within
# 1e-3 relative L2 per image (what the stage-2 issue asks). Needs torch and monai (exit 77, "SKIPPED", without them).
import json
import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

try:
    import h5py
    import numpy as np
    import torch
    import einops  # noqa: F401  (MONAI builds AutoencoderKL and DiffusionModelUNet with it)
    from monai.networks.nets import DiffusionModelUNet
    from monai.networks.schedulers import DDIMScheduler
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
except ImportError as error:
    print(f"SKIPPED: {error} (torch, monai, safetensors, numpy and h5py are needed)")
    sys.exit(77)

TOLERANCE = 1e-3
parser = argparse.ArgumentParser()
parser.add_argument("--ladder", required=True)
parser.add_argument("--mpiexec", default="mpiexec")  # unused: one process
args = parser.parse_args()


def run(command):
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="2"))
    if result.returncode != 0:
        print(f"{' '.join(command[:2])} failed:\n" + result.stdout + result.stderr)
        sys.exit(1)
    return result.stdout


def compare(label, unet, sample_args, work, clip_sample=True):
    """ladder sample with sample_args, then MONAI's DDIM with `unet` on the saved noise."""
    unet.eval()
    out = work / f"{label}.h5"
    print(run([args.ladder, "sample"] + sample_args + ["--sampler", "ddim", "--steps", "20", "--count", "2",
                                                      "--latent-resolution", "16", "--seed", "9",
                                                      "--diffusion.clip_sample", str(clip_sample).lower(),
                                                      "--save-latents", str(out)]).strip())
    with h5py.File(out) as f:
        noise, latents, timesteps = f["noise"][:], f["latents"][:], [int(t) for t in f["timesteps"][:]]
    scheduler = DDIMScheduler(num_train_timesteps=1000, schedule="scaled_linear_beta", beta_start=0.0015,
                              beta_end=0.0195, clip_sample=clip_sample)
    scheduler.set_timesteps(20)  # MONAI steps by 1000 // 20 = 50, the stride of ladder's timesteps
    x = torch.from_numpy(noise).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        for t in timesteps:
            output = unet(x, timesteps=torch.full((x.shape[0],), float(t)))
            x, _ = scheduler.step(output, t, x)
    monai_latents = x.permute(0, 2, 3, 1).numpy()
    worst = 0.0
    for b in range(len(latents)):
        error = np.linalg.norm(latents[b] - monai_latents[b]) / np.linalg.norm(monai_latents[b])
        print(f"{label} image {b}: relative L2 {error:.3e} (ladder vs MONAI DDIM, {len(timesteps)} steps "
              f"{timesteps[0]}..{timesteps[-1]})")
        worst = max(worst, error)
    drift = np.linalg.norm(latents - noise) / np.linalg.norm(noise)
    if not drift > 0.1:
        print(f"{label}: the samples barely moved from the noise ({drift:.3e}): the comparison would prove nothing")
        sys.exit(1)
    if not worst < TOLERANCE:
        print(f"FAILED: {label}: worst relative L2 {worst:.3e} >= {TOLERANCE}")
        sys.exit(1)
    print(f"{label}: passed, worst relative L2 {worst:.3e} < {TOLERANCE}")


MODEL_FLAGS = ["--model.kind", "diffusion_unet", "--model.in_channels", "4", "--model.res_blocks", "1",
               "--model.channels", "32,64", "--model.attention_levels", "0,1", "--model.head_channels", "0,32",
               "--model.norm_groups", "16"]
DIFFUSION_FLAGS = ["--diffusion.schedule", "scaled_linear_beta", "--diffusion.beta_start", "0.0015",
                   "--diffusion.beta_end", "0.0195"]

with tempfile.TemporaryDirectory() as work:
    work = Path(work)
    # (1) MONAI's own random weights.
    torch.manual_seed(5)
    unet = DiffusionModelUNet(spatial_dims=2, in_channels=4, out_channels=4, num_res_blocks=1, channels=(32, 64),
                              attention_levels=(False, True), num_head_channels=(0, 32), norm_num_groups=16)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            p.copy_(0.05 * torch.randn_like(p) + (1.0 if ".norm" in name and name.endswith("weight") else 0.0))
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, str(work / "unet.safetensors"))
    compare("monai-weights", unet, ["--checkpoint", str(work / "unet.safetensors")] + MODEL_FLAGS + DIFFUSION_FLAGS,
            work)

    # (2) A UNet ladder trained (stage 1 autoencoder -> latents -> stage 2), exported.
    run([args.ladder, "pack", "--synthetic", "32", "--out", str(work / "s.h5"), "--levels", "64", "--seed", "3"])
    run([args.ladder, "train", "--config", "/dev/null", "--run.dir", str(work / "ae"), "--run.device", "cpu",
         "--run.sample_every", "0", "--log.tensorboard", "false", "--model.channels", "16,16,32",
         "--model.norm_groups", "8", "--model.res_blocks", "1", "--model.latent_channels", "4",
         "--data.store", str(work / "s.h5"), "--stages.resolutions", "64", "--stages.images", "64",
         "--train.batch", "8", "--train.lr", "2e-3"])
    ae = work / "ae" / "checkpoints" / (work / "ae" / "checkpoints" / "latest").read_text().strip()
    run([args.ladder, "encode", "--checkpoint", str(ae), "--store", str(work / "s.h5"), "--out", str(work / "l.h5")])
    run([args.ladder, "train", "--config", "/dev/null", "--run.dir", str(work / "unet"), "--run.device", "cpu",
         "--run.sample_every", "0", "--log.tensorboard", "false", "--data.store", str(work / "l.h5"),
         "--stages.resolutions", "64", "--stages.images", "320", "--train.batch", "8", "--train.lr", "2e-3",
         "--ema.decay", "0.9"] + MODEL_FLAGS + DIFFUSION_FLAGS)
    unet_dir = work / "unet" / "checkpoints" / (work / "unet" / "checkpoints" / "latest").read_text().strip()
    for weights in ("master", "ema"):
        exported = work / f"export-{weights}.safetensors"
        run([args.ladder, "export", "--checkpoint", str(unet_dir), "--out", str(exported)]
            + (["--ema"] if weights == "ema" else []))
        with safe_open(str(exported), "pt") as f:
            kwargs = json.loads(f.metadata()["monai_arguments"])
        trained = DiffusionModelUNet(**kwargs)
        trained.load_state_dict(load_file(str(exported)), strict=True)
        compare(f"ladder-trained-{weights}", trained, ["--checkpoint", str(exported)], work)
        compare(f"ladder-trained-{weights}-unclipped", trained, ["--checkpoint", str(exported)], work,
                clip_sample=False)
