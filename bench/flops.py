#!/usr/bin/env python3
# Analytic FLOPs of AutoencoderKL (BRIEF §4, MONAI semantics), so that benchmarks of ladder
# and of PyTorch can state model FLOP utilisation (MFU) on the same footing.
#
# Convention:
#   - A multiply-add is 2 FLOPs. Only convolutions count (and, when attention is on, its
#     q/k/v/out linears and the q·kᵀ and attention·v matmuls). GroupNorm, SiLU, residual
#     adds, padding, upsampling, biases and the loss are left out (a few percent at most).
#   - forward_flops() is one image through encoder, latent convs and decoder.
#   - training FLOPs = 3 × forward (backward ≈ 2 × forward: grad of the input and grad of
#     the weights). These are model FLOPs: the extra forward done by activation
#     recompute/checkpointing is NOT counted, so MFU stays comparable across settings.
#
# Use: from flops import training_flops; training_flops(256)      (bench/ on sys.path)
#      python3 bench/flops.py --resolution 256 [--channels 128,256,512,512 ...]   (JSON)
import argparse
import json

# The high-resolution default of BRIEF §4.
DEFAULT_CONFIG = dict(
    in_channels=3,
    channels=(128, 256, 512, 512),
    res_blocks=2,
    attention_levels=(False, False, False, False),
    mid_attention=False,
    latent_channels=4,
)


def conv_macs(out_size, c_in, c_out, kernel):
    """Multiply-adds of one kernel×kernel conv producing an out_size² × c_out map."""
    return out_size * out_size * c_out * c_in * kernel * kernel


def resblock_macs(size, c_in, c_out):
    macs = conv_macs(size, c_in, c_out, 3) + conv_macs(size, c_out, c_out, 3)
    if c_in != c_out:
        macs += conv_macs(size, c_in, c_out, 1)  # nin_shortcut
    return macs


def attention_macs(size, c):
    """q, k, v and out linears (c×c each) over size² tokens, plus q·kᵀ and attention·v.
    The total does not depend on the number of heads."""
    tokens = size * size
    return 4 * tokens * c * c + 2 * tokens * tokens * c


def forward_macs(resolution, in_channels, channels, res_blocks, attention_levels,
                 mid_attention, latent_channels):
    levels = len(channels)
    if len(attention_levels) != levels:
        raise ValueError("attention_levels needs one entry per level of channels")
    if resolution % (2 ** (levels - 1)) != 0:
        raise ValueError(f"resolution {resolution} is not divisible by 2^{levels - 1}")
    latent_size = resolution // 2 ** (levels - 1)
    macs = 0

    # Encoder.
    size = resolution
    macs += conv_macs(size, in_channels, channels[0], 3)  # conv_in
    c = channels[0]
    for level in range(levels):
        for _ in range(res_blocks):
            macs += resblock_macs(size, c, channels[level])
            c = channels[level]
            if attention_levels[level]:
                macs += attention_macs(size, c)
        if level != levels - 1:
            size //= 2
            macs += conv_macs(size, c, c, 3)  # Downsample: pad (0,1,0,1), 3×3 stride 2
    if mid_attention:
        macs += 2 * resblock_macs(size, c, c) + attention_macs(size, c)
    macs += conv_macs(size, c, latent_channels, 3)  # GroupNorm → conv to latent

    # Latent: quant_conv_mu, quant_conv_log_sigma, post_quant_conv (1×1).
    macs += 3 * conv_macs(latent_size, latent_channels, latent_channels, 1)

    # Decoder (mirror).
    reversed_channels = list(reversed(channels))
    reversed_attention = list(reversed(attention_levels))
    c = reversed_channels[0]
    macs += conv_macs(size, latent_channels, c, 3)  # conv_in
    if mid_attention:
        macs += 2 * resblock_macs(size, c, c) + attention_macs(size, c)
    for level in range(levels):
        for _ in range(res_blocks):
            macs += resblock_macs(size, c, reversed_channels[level])
            c = reversed_channels[level]
            if reversed_attention[level]:
                macs += attention_macs(size, c)
        if level != levels - 1:
            size *= 2
            macs += conv_macs(size, c, c, 3)  # Upsample: nearest ×2, then 3×3
    macs += conv_macs(size, c, in_channels, 3)  # GroupNorm → conv to image
    return macs


def forward_flops(resolution, **config):
    """FLOPs of one image's forward pass; config keys as DEFAULT_CONFIG (missing = default)."""
    return 2 * forward_macs(resolution, **{**DEFAULT_CONFIG, **config})


def training_flops(resolution, **config):
    """FLOPs of one image's training step (forward + backward) = 3 × forward."""
    return 3 * forward_flops(resolution, **config)


def parse_levels(text, count):
    """'none', 'all', or a comma list of level indices → one bool per level."""
    if text == "none":
        return (False,) * count
    if text == "all":
        return (True,) * count
    chosen = {int(part) for part in text.split(",")}
    return tuple(level in chosen for level in range(count))


def main():
    parser = argparse.ArgumentParser(description="Analytic FLOPs of one AutoencoderKL image.")
    parser.add_argument("--resolution", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--in-channels", type=int, default=3)
    parser.add_argument("--channels", default="128,256,512,512")
    parser.add_argument("--res-blocks", type=int, default=2)
    parser.add_argument("--attention-levels", default="none",
                        help="none | all | comma list of level indices (0 = first level)")
    parser.add_argument("--mid-attention", action="store_true")
    parser.add_argument("--latent-channels", type=int, default=4)
    args = parser.parse_args()

    channels = tuple(int(part) for part in args.channels.split(","))
    config = dict(
        in_channels=args.in_channels,
        channels=channels,
        res_blocks=args.res_blocks,
        attention_levels=parse_levels(args.attention_levels, len(channels)),
        mid_attention=args.mid_attention,
        latent_channels=args.latent_channels,
    )
    for resolution in args.resolution:
        forward = forward_flops(resolution, **config)
        print(json.dumps({
            "resolution": resolution,
            "channels": list(channels),
            "res_blocks": args.res_blocks,
            "attention_levels": list(config["attention_levels"]),
            "mid_attention": args.mid_attention,
            "latent_channels": args.latent_channels,
            "forward_flops_per_image": forward,
            "training_flops_per_image": 3 * forward,
        }))


if __name__ == "__main__":
    main()
