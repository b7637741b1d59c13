#!/usr/bin/env python3
# Why this file exists: stage 2's sampler against MONAI's. A MONAI 1.6.1 DiffusionModelUNet
# with random non-zero weights (the tiny configuration of the reference) is saved with
# safetensors.torch.save_file; `ladder sample --sampler ddim --steps 20 --save-latents` runs it
# from its own noise; MONAI's DDIMScheduler (scaled_linear_beta 0.0015 -> 0.0195, clip_sample,
# eta 0) replays the saved noise over the saved timesteps with MONAI's UNet. The final latents
# must agree within 1e-3 relative L2 per image (what the stage-2 issue asks). Needs torch and
# monai (exit 77, "SKIPPED", without them).
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
    from monai.networks.nets import DiffusionModelUNet
    from monai.networks.schedulers import DDIMScheduler
    from safetensors.torch import save_file
except ImportError as error:
    print(f"SKIPPED: {error} (torch, monai, safetensors, numpy and h5py are needed)")
    sys.exit(77)

TOLERANCE = 1e-3
parser = argparse.ArgumentParser()
parser.add_argument("--ladder", required=True)
parser.add_argument("--mpiexec", default="mpiexec")  # unused: one process
args = parser.parse_args()

with tempfile.TemporaryDirectory() as work:
    work = Path(work)
    torch.manual_seed(5)
    unet = DiffusionModelUNet(spatial_dims=2, in_channels=4, out_channels=4, num_res_blocks=1, channels=(32, 64),
                              attention_levels=(False, True), num_head_channels=(0, 32), norm_num_groups=16)
    with torch.no_grad():
        for name, p in unet.named_parameters():
            p.copy_(0.05 * torch.randn_like(p) + (1.0 if ".norm" in name and name.endswith("weight") else 0.0))
    unet.eval()
    save_file({k: v.contiguous() for k, v in unet.state_dict().items()}, str(work / "unet.safetensors"))
    command = [args.ladder, "sample", "--checkpoint", str(work / "unet.safetensors"), "--model.kind", "diffusion_unet",
               "--model.in_channels", "4", "--model.res_blocks", "1", "--model.channels", "32,64",
               "--model.attention_levels", "0,1", "--model.head_channels", "0,32", "--model.norm_groups", "16",
               "--diffusion.schedule", "scaled_linear_beta", "--diffusion.beta_start", "0.0015",
               "--diffusion.beta_end", "0.0195", "--sampler", "ddim", "--steps", "20", "--count", "2",
               "--latent-resolution", "16", "--seed", "9", "--save-latents", str(work / "s.h5")]
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="2"))
    if result.returncode != 0:
        print("ladder sample failed:\n" + result.stdout + result.stderr)
        sys.exit(1)
    print(result.stdout.strip())
    with h5py.File(work / "s.h5") as f:
        noise, latents, timesteps = f["noise"][:], f["latents"][:], [int(t) for t in f["timesteps"][:]]
    scheduler = DDIMScheduler(num_train_timesteps=1000, schedule="scaled_linear_beta", beta_start=0.0015,
                              beta_end=0.0195, clip_sample=True)
    scheduler.set_timesteps(20)  # MONAI steps by 1000 // 20 = 50, the stride of ladder's timesteps
    x = torch.from_numpy(noise).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        for t in timesteps:
            out = unet(x, timesteps=torch.full((x.shape[0],), float(t)))
            x, _ = scheduler.step(out, t, x)
    monai_latents = x.permute(0, 2, 3, 1).numpy()
    worst = 0.0
    for b in range(len(latents)):
        error = np.linalg.norm(latents[b] - monai_latents[b]) / np.linalg.norm(monai_latents[b])
        print(f"image {b}: relative L2 {error:.3e} (ladder vs MONAI DDIM, {len(timesteps)} steps {timesteps[0]}..{timesteps[-1]})")
        worst = max(worst, error)
    drift = np.linalg.norm(latents - noise) / np.linalg.norm(noise)
    if not drift > 0.1:
        print(f"the samples barely moved from the noise ({drift:.3e}): the comparison would prove nothing")
        sys.exit(1)
    if not worst < TOLERANCE:
        print(f"FAILED: worst relative L2 {worst:.3e} >= {TOLERANCE}")
        sys.exit(1)
    print(f"passed: worst relative L2 {worst:.3e} < {TOLERANCE}")
