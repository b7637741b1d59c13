#!/usr/bin/env python3
# The PyTorch side of bench/bench_unet.cpp: MONAI's DiffusionModelUNet (the reference's tiny
# configuration, or the 2D LDM tutorial's), the same training step on the CPU in fp32 (forward
# at per-image timesteps, MSE against a random target, backward, AdamW), on 16×16 latents.
# Prints one JSON line.   python3 bench/pytorch/unet_torch.py tiny 8 [steps]
import json
import sys
import time

import torch
from monai.networks.nets import DiffusionModelUNet

preset = sys.argv[1] if len(sys.argv) > 1 else "tiny"
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 8
steps = int(sys.argv[3]) if len(sys.argv) > 3 else 5
torch.set_num_threads(int(__import__("os").environ.get("OMP_NUM_THREADS", "2")))
if preset == "tutorial":
    model = DiffusionModelUNet(spatial_dims=2, in_channels=3, out_channels=3, num_res_blocks=2, channels=(128, 256, 512),
                               attention_levels=(False, True, True), num_head_channels=(0, 256, 512))
    channels = 3
else:
    model = DiffusionModelUNet(spatial_dims=2, in_channels=4, out_channels=4, num_res_blocks=1, channels=(32, 64),
                               attention_levels=(False, True), num_head_channels=(0, 32), norm_num_groups=16)
    channels = 4
optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
torch.manual_seed(2)
x = torch.randn(batch, channels, 16, 16)
target = torch.randn_like(x)
timesteps = torch.tensor([(b * 97) % 1000 for b in range(batch)], dtype=torch.float32)


def step():
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.mse_loss(model(x, timesteps=timesteps), target)
    loss.backward()
    optimizer.step()


step()  # warm-up
start = time.perf_counter()
for _ in range(steps):
    step()
seconds = time.perf_counter() - start
print(json.dumps({"tool": "monai", "preset": preset, "parameters": sum(p.numel() for p in model.parameters()),
                  "batch": batch, "latent": f"{channels}x16x16", "threads": torch.get_num_threads(), "steps": steps,
                  "step_s": round(seconds / steps, 4), "img_per_s": round(batch * steps / seconds, 3)}))
