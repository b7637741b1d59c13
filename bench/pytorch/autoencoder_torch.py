#!/usr/bin/env python3
# The PyTorch baseline that ladder's training step is compared against: the high-resolution
# AutoencoderKL of BRIEF §4 trained the way PyTorch users do it (bf16 autocast,
# channels_last, AdamW, optional gradient checkpointing per ResBlock, eager or
# torch.compile). One process = one configuration; it prints one JSON line on stdout.
#
# The model is MONAI's AutoencoderKL when `import monai` works, otherwise the faithful
# plain-PyTorch replica below (same parameter names, same semantics, same 51,725,251
# parameters). The training step matches ladder's: loss = mean L1 + kl_weight × KL
# (KL summed over latent elements, averaged over images), global grad-norm clip 1.0, AdamW
# (lr 1e-4, betas 0.9/0.999, weight decay 0.01 on conv weights only; fused on CUDA), one
# optimizer step per micro-batch. Inputs are random images in [-1, 1] made once on the device.
#
#   python3 bench/pytorch/autoencoder_torch.py --resolution 256 --micro-batch 8 --mode compile
#   python3 bench/pytorch/autoencoder_torch.py --measure-peak          # bf16 GEMM TFLOP/s
#   python3 bench/pytorch/autoencoder_torch.py --device cpu --channels 32,64 --resolution 32 \
#       --micro-batch 2 --steps 2 --warmup 1                          # CPU smoke test (fp32)
import argparse
import contextlib
import json
import math
import os
import sys
import time

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from flops import training_flops  # noqa: E402  (bench/flops.py)

DEFAULT_CHANNELS = (128, 256, 512, 512)
DEFAULT_PARAMETERS = 51_725_251  # MONAI's count for the default; ladder's tests assert it too


# ---------------------------------------------------------------------------------------
# Plain-PyTorch replica of monai.networks.nets.AutoencoderKL (2-D, no attention).
# Module and parameter names follow MONAI's, so state dicts load either way.


class Convolution(nn.Sequential):
    """MONAI's Convolution with conv_only=True: a Sequential holding one conv named `conv`."""

    def __init__(self, c_in, c_out, kernel, stride=1, padding=None):
        super().__init__()
        self.add_module("conv", nn.Conv2d(c_in, c_out, kernel, stride,
                                          kernel // 2 if padding is None else padding))


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv3×3 → GroupNorm → SiLU → conv3×3, plus the skip."""

    def __init__(self, c_in, c_out, groups, eps):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in, eps=eps)
        self.conv1 = Convolution(c_in, c_out, 3)
        self.norm2 = nn.GroupNorm(groups, c_out, eps=eps)
        self.conv2 = Convolution(c_out, c_out, 3)
        self.nin_shortcut = Convolution(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return self.nin_shortcut(x) + h


class Downsample(nn.Module):
    """Zero-pad right and bottom by one, then conv3×3 stride 2 with no other padding."""

    def __init__(self, c):
        super().__init__()
        self.conv = Convolution(c, c, 3, stride=2, padding=0)

    def forward(self, x):
        return self.conv(F.pad(x, (0, 1, 0, 1)))


class Upsample(nn.Sequential):
    """Nearest ×2, then conv3×3 (MONAI's UpSample in "nontrainable" mode with a post_conv)."""

    def __init__(self, c):
        super().__init__()
        self.add_module("upsample_non_trainable", nn.Upsample(scale_factor=2.0, mode="nearest"))
        self.add_module("postconv", Convolution(c, c, 3))


class Encoder(nn.Module):
    def __init__(self, in_channels, channels, res_blocks, latent_channels, groups, eps):
        super().__init__()
        blocks = [Convolution(in_channels, channels[0], 3)]
        c = channels[0]
        for level, c_out in enumerate(channels):
            for _ in range(res_blocks):
                blocks.append(ResBlock(c, c_out, groups, eps))
                c = c_out
            if level != len(channels) - 1:
                blocks.append(Downsample(c))
        blocks.append(nn.GroupNorm(groups, c, eps=eps))
        blocks.append(Convolution(c, latent_channels, 3))  # no SiLU before it (MONAI)
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class Decoder(nn.Module):
    def __init__(self, out_channels, channels, res_blocks, latent_channels, groups, eps):
        super().__init__()
        reversed_channels = list(reversed(channels))
        c = reversed_channels[0]
        blocks = [Convolution(latent_channels, c, 3)]
        for level, c_out in enumerate(reversed_channels):
            for _ in range(res_blocks):
                blocks.append(ResBlock(c, c_out, groups, eps))
                c = c_out
            if level != len(channels) - 1:
                blocks.append(Upsample(c))
        blocks.append(nn.GroupNorm(groups, c, eps=eps))
        blocks.append(Convolution(c, out_channels, 3))  # no SiLU before it (MONAI)
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        for block in self.blocks:
            x = block(x)
        return x


class AutoencoderKLReplica(nn.Module):
    """forward(x) → (reconstruction, z_mu, z_sigma), exactly as MONAI's AutoencoderKL."""

    def __init__(self, in_channels, channels, res_blocks, latent_channels, groups, eps):
        super().__init__()
        self.encoder = Encoder(in_channels, channels, res_blocks, latent_channels, groups, eps)
        self.decoder = Decoder(in_channels, channels, res_blocks, latent_channels, groups, eps)
        self.quant_conv_mu = Convolution(latent_channels, latent_channels, 1)
        self.quant_conv_log_sigma = Convolution(latent_channels, latent_channels, 1)
        self.post_quant_conv = Convolution(latent_channels, latent_channels, 1)

    def encode(self, x):
        h = self.encoder(x)
        z_mu = self.quant_conv_mu(h)
        z_log_var = torch.clamp(self.quant_conv_log_sigma(h), -30.0, 20.0)
        return z_mu, torch.exp(z_log_var / 2)

    def decode(self, z):
        return self.decoder(self.post_quant_conv(z))

    def forward(self, x):
        z_mu, z_sigma = self.encode(x)
        z = z_mu + torch.randn_like(z_sigma) * z_sigma
        return self.decode(z), z_mu, z_sigma


# ---------------------------------------------------------------------------------------


def build_model(args):
    """MONAI's AutoencoderKL when importable (unless --impl replica); else the replica."""
    channels = tuple(int(part) for part in args.channels.split(","))
    if args.impl in ("auto", "monai"):
        try:
            try:
                from monai.networks.nets import AutoencoderKL
            except ImportError:
                from monai.networks.nets.autoencoderkl import AutoencoderKL
        except ImportError:
            if args.impl == "monai":
                raise
        else:
            model = AutoencoderKL(
                spatial_dims=2, in_channels=args.in_channels, out_channels=args.in_channels,
                channels=channels, num_res_blocks=args.res_blocks,
                attention_levels=(False,) * len(channels), latent_channels=args.latent_channels,
                norm_num_groups=args.norm_groups, norm_eps=1e-6,
                with_encoder_nonlocal_attn=False, with_decoder_nonlocal_attn=False)
            return model, "pytorch-monai", channels
    model = AutoencoderKLReplica(args.in_channels, channels, args.res_blocks,
                                 args.latent_channels, args.norm_groups, 1e-6)
    return model, "pytorch-replica", channels


def checkpoint_resblocks(model):
    """Gradient checkpointing per ResBlock: each block's insides are recomputed in the
    backward (non-reentrant torch.utils.checkpoint). Parameter names are unchanged."""
    def checkpointed(plain_forward):
        return lambda x: checkpoint(plain_forward, x, use_reentrant=False)

    count = 0
    for module in model.modules():
        if type(module).__name__ in ("AEKLResBlock", "ResBlock"):  # MONAI's, the replica's
            module.forward = checkpointed(module.forward)
            count += 1
    if count == 0:
        raise RuntimeError("no ResBlock found to checkpoint")
    return count


def make_optimizer(model, device):
    """AdamW as ladder: decay on conv weights only (not on norms and biases)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=1e-4, betas=(0.9, 0.999), fused=(device.type == "cuda"))


def forward_loss(model, x, kl_weight):
    """BRIEF §4: mean L1 + kl_weight × KL, KL = ½ Σ(μ² + σ² − log σ² − 1) summed over latent
    elements and averaged over images (computed in fp32)."""
    reconstruction, z_mu, z_sigma = model(x)
    rec_loss = F.l1_loss(reconstruction.float(), x.float())
    mu, sigma = z_mu.float(), z_sigma.float()
    kl = 0.5 * torch.sum(mu.pow(2) + sigma.pow(2) - torch.log(sigma.pow(2)) - 1)
    return rec_loss + kl_weight * kl / x.shape[0]


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def run_training(args, device, record):
    model, impl, channels = build_model(args)
    record["impl"] = impl
    print(f"autoencoder_torch: model = {impl}", file=sys.stderr)
    parameters = sum(p.numel() for p in model.parameters())
    record["parameters"] = parameters
    default_model = (channels == DEFAULT_CHANNELS and args.in_channels == 3 and args.res_blocks == 2
                     and args.latent_channels == 4)
    if default_model:
        assert parameters == DEFAULT_PARAMETERS, f"{parameters} parameters, expected {DEFAULT_PARAMETERS}"
    record["flops_per_image"] = training_flops(
        args.resolution, in_channels=args.in_channels, channels=channels,
        res_blocks=args.res_blocks, attention_levels=(False,) * len(channels),
        latent_channels=args.latent_channels)

    if args.checkpointing == "blocks":
        record["checkpointed_blocks"] = checkpoint_resblocks(model)
    model = model.to(device)
    cuda = device.type == "cuda"
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, device)

    step_loss = lambda x: forward_loss(model, x, args.kl_weight)  # noqa: E731
    if args.mode == "compile":
        step_loss = torch.compile(step_loss)

    generator = torch.Generator(device=device).manual_seed(0)
    images = torch.rand(args.micro_batch, args.in_channels, args.resolution, args.resolution,
                        device=device, generator=generator) * 2 - 1
    if cuda:
        images = images.contiguous(memory_format=torch.channels_last)

    # bf16 autocast on the GPU; plain fp32 on the CPU (no autocast context at all there).
    precision = (lambda: torch.autocast(device_type="cuda", dtype=torch.bfloat16)) if cuda \
        else contextlib.nullcontext

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        with precision():
            loss = step_loss(images)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        return loss

    started = time.perf_counter()
    for _ in range(args.warmup):
        loss = train_step()
    synchronize(device)
    record["warmup_s"] = round(time.perf_counter() - started, 3)  # includes compilation

    if cuda:
        torch.cuda.reset_peak_memory_stats()  # peak of the steady state: weights, Adam, activations
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(args.steps):
            loss = train_step()
        end.record()
        torch.cuda.synchronize()
        elapsed_ms = start.elapsed_time(end)
        record["peak_mem_bytes"] = torch.cuda.max_memory_allocated()
    else:
        started = time.perf_counter()
        for _ in range(args.steps):
            loss = train_step()
        elapsed_ms = (time.perf_counter() - started) * 1e3
    final_loss = loss.detach().item()
    if not math.isfinite(final_loss):
        raise RuntimeError(f"loss is not finite: {final_loss}")
    record["step_ms"] = round(elapsed_ms / args.steps, 3)
    record["img_per_s"] = round(args.micro_batch * args.steps / (elapsed_ms / 1e3), 3)
    record["loss"] = round(final_loss, 6)
    record["status"] = "ok"


def is_out_of_memory(error):
    return isinstance(error, torch.cuda.OutOfMemoryError) or "out of memory" in str(error).lower()


def measure_peak(args, device):
    """bf16 (fp32 on the CPU) square matmul: 3 warm-ups, then the mean of 10."""
    n = args.peak_size
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    for _ in range(3):
        torch.matmul(a, b)
    synchronize(device)
    started = time.perf_counter()
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(10):
            torch.matmul(a, b)
        end.record()
        torch.cuda.synchronize()
        ms = start.elapsed_time(end) / 10
    else:
        for _ in range(10):
            torch.matmul(a, b)
        ms = (time.perf_counter() - started) * 1e3 / 10
    tflops = 2 * n ** 3 / (ms / 1e3) / 1e12
    print(json.dumps({"impl": "peak", "tflops": round(tflops, 2), "ms": round(ms, 4),
                      "m": n, "n": n, "k": n, "dtype": str(dtype).replace("torch.", ""),
                      "torch_version": torch.__version__, "device_name": device_name(device)}))


def device_name(device):
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def main():
    parser = argparse.ArgumentParser(description="PyTorch AutoencoderKL training-step benchmark.")
    parser.add_argument("--resolution", type=int, default=256)
    parser.add_argument("--micro-batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=20, help="timed steps")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (compilation)")
    parser.add_argument("--mode", choices=["eager", "compile"], default="eager")
    parser.add_argument("--checkpointing", choices=["none", "blocks"], default="none")
    parser.add_argument("--channels", default="128,256,512,512")
    parser.add_argument("--res-blocks", type=int, default=2)
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--latent-channels", type=int, default=4)
    parser.add_argument("--norm-groups", type=int, default=32)
    parser.add_argument("--kl-weight", type=float, default=1e-6)
    parser.add_argument("--impl", choices=["auto", "monai", "replica"], default="auto",
                        help="auto: MONAI when importable, else the replica")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda",
                        help="cuda: bf16 autocast + channels_last; cpu: fp32 smoke test")
    parser.add_argument("--measure-peak", action="store_true",
                        help="only time a square matmul and print its TFLOP/s")
    parser.add_argument("--peak-size", type=int, default=8192)
    args = parser.parse_args()
    if args.steps < 1 or args.warmup < 0:
        parser.error("--steps must be at least 1 and --warmup at least 0")

    device = torch.device(args.device)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            sys.exit("autoencoder_torch: no CUDA device (use --device cpu for a smoke test)")
        torch.backends.cudnn.benchmark = True
    if args.measure_peak:
        measure_peak(args, device)
        return

    torch.manual_seed(0)
    record = {
        "impl": None, "mode": args.mode, "resolution": args.resolution,
        "micro_batch": args.micro_batch, "checkpointing": args.checkpointing,
        "precision": "bf16" if device.type == "cuda" else "fp32", "steps": args.steps,
        "step_ms": None, "img_per_s": None, "peak_mem_bytes": None, "status": None,
        "torch_version": torch.__version__, "device_name": device_name(device),
        "channels": [int(part) for part in args.channels.split(",")],
    }
    exit_code = 0
    try:
        run_training(args, device, record)
    except Exception as error:  # one JSON line whatever happens; the caller goes on
        if is_out_of_memory(error):
            record["status"] = "oom"
        else:
            record["status"] = "error"
            record["error"] = f"{type(error).__name__}: {error}"[:500]
            exit_code = 1
        if device.type == "cuda":
            record["peak_mem_bytes"] = torch.cuda.max_memory_allocated()
    print(json.dumps(record), flush=True)
    sys.exit(exit_code)


if __name__ == "__main__":
    main()
