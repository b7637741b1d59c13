#!/usr/bin/env python3
# Why this file exists: BRIEF §4 says ladder's autoencoder has MONAI AutoencoderKL semantics,
# and §5 that exports load into MONAI and MONAI state dicts load into ladder. This test
# proves it numerically in both directions with the real MONAI: (a) a small model with
# attention and the mid block, trained by ladder, exported, loaded with strict=True, must
# reconstruct (z = mu) ladder's `reconstruct` output to 1e-4 relative L2 per image (fp32 and
# bf16 exports); (b) the same for the high-resolution default (128,256,512,512, no
# attention) at 32x32; (c) a MONAI model with random weights saved with
# safetensors.torch.save_file is reconstructed by `ladder reconstruct` to 1e-4, and
# `train.init_from` of it logs a step-0 sample PSNR equal (1e-3 dB) to MONAI's on the same
# images, with and without data.flip. Needs torch and monai: without them it prints
# "SKIPPED: ..." and exits 77 (CTest SKIP_RETURN_CODE); they are optional, never installed.
import json
import sys
from pathlib import Path

try:
    import h5py  # noqa: F401
    import numpy as np
    import safetensors  # noqa: F401
    import torch
    import einops  # noqa: F401  (MONAI builds AutoencoderKL and DiffusionModelUNet with it)
    import monai
    from monai.networks.nets import AutoencoderKL
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file
except ImportError as error:
    print(f"SKIPPED: {error} (torch, monai, safetensors, numpy and h5py are needed for the "
          f"MONAI parity test; torch and monai are optional)")
    sys.exit(77)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interop_harness as h

TOLERANCE = 1e-4  # relative L2 per image, ladder vs MONAI (both fp32 on the CPU)
PSNR_TOLERANCE = 1e-3  # dB

ATTENTION_MODEL = {"channels": "32,64", "res_blocks": 1, "norm_groups": 8,
                   "latent_channels": 3, "attention_levels": "0,1", "mid_attention": "true"}
DEFAULT_MODEL = {"channels": "128,256,512,512", "res_blocks": 2, "norm_groups": 32,
                 "latent_channels": 4, "attention_levels": "0,0,0,0", "mid_attention": "false"}
RANDOM_MONAI = {"spatial_dims": 2, "in_channels": 3, "out_channels": 3, "channels": (16, 32),
                "num_res_blocks": 2, "attention_levels": (False, True), "latent_channels": 3,
                "norm_num_groups": 8, "norm_eps": 1e-6, "with_encoder_nonlocal_attn": True,
                "with_decoder_nonlocal_attn": True}
RANDOM_LADDER = {"channels": "16,32", "res_blocks": 2, "norm_groups": 8, "latent_channels": 3,
                 "attention_levels": "0,1", "mid_attention": "true"}

FIGURES = []  # (what, value) printed at the end


def monai_from_export(path):
    with safe_open(str(path), framework="pt") as f:
        arguments = json.loads(f.metadata()["monai_arguments"])
    model = AutoencoderKL(**arguments)
    result = model.load_state_dict(load_file(str(path)), strict=True)
    h.check(not result.missing_keys and not result.unexpected_keys,
            f"{path}: load_state_dict: {result}")
    return model.eval(), arguments


def monai_reconstruct(model, images_nhwc):
    """MONAI's reconstruction with z = mu (AutoencoderKL.reconstruct), NHWC in and out."""
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(images_nhwc)).permute(0, 3, 1, 2).contiguous()
        mu, _ = model.encode(x)
        direct = model.decoder(model.post_quant_conv(mu))
        rec = model.reconstruct(x)
        h.check(torch.equal(direct, rec), "MONAI: reconstruct() is not decoder(post_quant_conv(mu))")
    return rec.permute(0, 2, 3, 1).contiguous().numpy()


def compare(what, ladder_h5, model, tolerance=TOLERANCE):
    originals, ladder_rec = h.read_reconstruction(ladder_h5)
    reference = monai_reconstruct(model, originals)
    h.check(reference.shape == ladder_rec.shape,
            f"{what}: MONAI output {reference.shape}, ladder's {ladder_rec.shape}")
    errors = h.relative_l2_per_image(ladder_rec, reference)
    worst = float(errors.max())
    FIGURES.append((what, worst))
    h.log(f"{what}: {len(errors)} images at {originals.shape[1]}x{originals.shape[2]}, relative "
          f"L2 ladder vs MONAI per image: worst {worst:.3e}, mean {float(errors.mean()):.3e}")
    h.check(np.all(np.isfinite(ladder_rec)), f"{what}: ladder's reconstruction is not finite")
    h.check(worst < tolerance, f"{what}: relative L2 {worst:.3e} >= {tolerance:g} (per image: "
            f"{', '.join(f'{e:.2e}' for e in errors)})")
    return originals, reference


def part_a(hr):
    run = hr.work / "a"
    hr.train(run, ATTENTION_MODEL, stages_resolutions="16,32", stages_images="8,8",
             train_lr="1e-3")
    final = h.latest_checkpoint(run)
    for dtype in ("fp32", "bf16"):
        export = hr.work / f"a-{dtype}.safetensors"
        hr.export(final, export, dtype)
        model, arguments = monai_from_export(export)
        if dtype == "fp32":
            h.log(f"(a) {export.name}: MONAI AutoencoderKL({json.dumps(arguments)}) loads it "
                  f"strictly ({sum(p.numel() for p in model.parameters())} parameters)")
        for resolution in (32, 16):
            out = hr.work / f"a-{dtype}-{resolution}.h5"
            hr.reconstruct(export if dtype == "bf16" else final, out, resolution=resolution,
                           count=8)
            compare(f"(a) attention + mid block, {dtype} export, {resolution}x{resolution}",
                    out, model)
    # The comparison can fail: MONAI with the bf16-rounded weights against ladder's fp32
    # reconstruction must be far outside the tolerance.
    originals, fp32_rec = h.read_reconstruction(hr.work / "a-fp32-32.h5")
    control = float(h.relative_l2_per_image(fp32_rec, monai_reconstruct(model, originals)).min())
    FIGURES.append(("(a) control: fp32 ladder vs bf16 MONAI, best image", control))
    h.log(f"(a) control: ladder fp32 vs MONAI with the bf16 weights: relative L2 at least "
          f"{control:.3e} (must exceed {TOLERANCE:g})")
    h.check(control > TOLERANCE, f"(a) control: a model with other (bf16-rounded) weights is "
            f"within {TOLERANCE:g} ({control:.3e}): the comparison cannot tell")


def part_b(hr):
    run = hr.work / "b"
    hr.train(run, DEFAULT_MODEL, stages_images=2, train_batch=2, train_micro_batch=2,
             timeout=240)
    final = h.latest_checkpoint(run)
    export = hr.work / "b.safetensors"
    hr.export(final, export)
    model, arguments = monai_from_export(export)
    h.check(not arguments["with_encoder_nonlocal_attn"] and not any(arguments["attention_levels"]),
            f"(b) monai_arguments {arguments}: expected no attention")
    parameters = sum(p.numel() for p in model.parameters())
    h.log(f"(b) high-resolution default: {parameters / 1e6:.1f}M parameters, loaded strictly")
    out = hr.work / "b.h5"
    hr.reconstruct(final, out, resolution=32, count=2, timeout=240)
    compare("(b) default 128,256,512,512 (no attention), 32x32", out, model)


def part_c(hr):
    torch.manual_seed(1234)
    model = AutoencoderKL(**RANDOM_MONAI)
    with torch.no_grad():  # GroupNorm affine away from (1, 0), so a mix-up of norms shows
        for name, parameter in model.named_parameters():
            if parameter.ndim == 1 and "norm" in name:
                parameter.add_(0.2 * torch.randn_like(parameter))
    model.eval()
    path = hr.work / "monai.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    flags = h.model_flags(RANDOM_LADDER)

    out = hr.work / "c.h5"
    _, printed = hr.reconstruct(path, out, resolution=32, count=8, flags=flags)
    originals, reference = compare("(c) MONAI random weights -> ladder reconstruct, 32x32", out,
                                   model)
    store_originals = h.store_images(hr.store, 32, 8)
    h.check(np.max(np.abs(originals - store_originals)) <= 1e-6,
            "(c) ladder's originals are not the store's uint8 / 127.5 - 1")
    monai_psnr = h.psnr(store_originals, monai_reconstruct(model, store_originals))
    FIGURES.append(("(c) MONAI PSNR, first 8 images at 32x32 (dB)", monai_psnr))
    h.log(f"(c) MONAI's reconstruction PSNR on the store's first 8 images at 32x32: "
          f"{monai_psnr:.5f} dB; ladder reconstruct printed {printed['psnr']} dB")
    h.check(abs(printed["psnr"] - monai_psnr) <= 1.5e-3,
            f"(c) ladder reconstruct printed PSNR {printed['psnr']} dB, MONAI's {monai_psnr:.5f}")

    # Without the model flags ladder cannot know the architecture: a clean error, not a crash.
    result = hr.ladder("reconstruct", "--checkpoint", path, "--store", hr.store, "--out",
                       hr.work / "c-noflags.h5", expect=None, label="reconstruct without flags")
    lines = result.lines()
    h.check(result.code == 2 and len(lines) == 1 and str(path) in lines[0],
            f"(c) reconstruct of a MONAI file without --model flags (default model): exit "
            f"{result.code}, expected 2 and one line naming {path}:\n{h.indent(result.output)}")
    h.log(f"(c) without --model flags: exit 2, '{lines[0]}'")

    for flip in ("true", "false"):
        train = hr.train(hr.work / f"c-init-flip-{flip}", RANDOM_LADDER, stages_images=4,
                         flags={"train.init_from": str(path), "data.flip": flip})
        ladder_psnr, line = h.sample_psnr(train.output, step=0)
        FIGURES.append((f"(c) init_from step-0 sample PSNR, data.flip {flip} (dB)", ladder_psnr))
        h.log(f"(c) train.init_from monai.safetensors, data.flip {flip}: '{line}' "
              f"(MONAI {monai_psnr:.5f} dB, difference {abs(ladder_psnr - monai_psnr):.2e} dB)")
        h.check(abs(ladder_psnr - monai_psnr) <= PSNR_TOLERANCE,
                f"(c) init_from: step-0 sample PSNR {ladder_psnr} dB with data.flip {flip}, "
                f"MONAI's on the same 8 images {monai_psnr:.5f} dB (tolerance "
                f"{PSNR_TOLERANCE} dB)")


def body(hr):
    torch.set_num_threads(2)
    h.log(f"torch {torch.__version__}, monai {monai.__version__}")
    hr.pack(24, levels="16,32", seed=1)
    part_a(hr)
    part_b(hr)
    part_c(hr)
    h.log("figures: " + "; ".join(f"{what}: {value:.6g}" for what, value in FIGURES))


if __name__ == "__main__":
    h.main(body, h.Harness("MONAI AutoencoderKL parity of ladder's export, reconstruct and "
                           "init_from"))
