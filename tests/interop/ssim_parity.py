#!/usr/bin/env python3
# Why this file exists: the SSIM and MS-SSIM that `ladder evaluate --checkpoint AE` prints
# against MONAI's SSIMMetric and MultiScaleSSIMMetric (2D, data range 1, their defaults) on the
# same images: a tiny autoencoder's reconstructions of 3 images at 192 px (MS-SSIM needs 176),
# read back from `ladder reconstruct --out R.h5` and mapped from [-1, 1] to [0, 1]: within 1e-7
# relative of MONAI's algorithm run in float64, and within 1e-4 of MONAI as shipped (float32,
# whose own rounding is about 1e-5). Also: below 176 px ladder prints nan for MS-SSIM, as MONAI
# refuses it; and `evaluate --store S --diversity` (the MS-SSIM diversity of MONAI's generative
# tutorials: kernel_size 4 over every pair) against MultiScaleSSIMMetric(kernel_size=4) on the
# same images. Needs torch and monai: without them it exits 77 (CTest Skipped).
import contextlib
import re
import sys
from pathlib import Path

try:
    import numpy as np
    import torch
    import monai.metrics.regression as monai_regression
    from monai.metrics import MultiScaleSSIMMetric, SSIMMetric
except ImportError as error:
    print(f"SKIPPED: {error} (torch and monai are needed for the SSIM parity test; they are optional)")
    sys.exit(77)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interop_harness as h


def printed(output, name):
    found = re.search(rf"\b{name} (\S+)", output)
    h.check(found is not None, f"evaluate printed no {name}:\n{h.indent(output)}")
    return float(found.group(1))


@contextlib.contextmanager
def monai_in_float64():
    """MONAI's metrics computed in float64: its cast of the inputs and its Gaussian window."""
    original_convert = monai_regression.convert_data_type
    monai_regression.convert_data_type = lambda data, *a, dtype=None, **k: original_convert(
        data, *a, dtype=torch.float64 if dtype == torch.float else dtype, **k)
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        monai_regression.convert_data_type = original_convert
        torch.set_default_dtype(torch.float32)


def body(hr):
    torch.set_num_threads(2)
    hr.pack(images=8, levels="32,192", seed=2, name="s.h5")
    hr.train(hr.work / "ae", stages_images=8)
    checkpoint = h.latest_checkpoint(hr.work / "ae")
    hr.reconstruct(checkpoint, hr.work / "r.h5", resolution=192, count=3)
    originals, reconstructions = h.read_reconstruction(hr.work / "r.h5")  # (N, H, W, C) in [-1, 1]
    result = hr.ladder("evaluate", "--checkpoint", checkpoint, "--store", hr.store, "--resolution", 192,
                       "--count", 3, "--weights", "random", timeout=300)
    ssim, ms_ssim = printed(result.output, "ssim"), printed(result.output, "ms_ssim")
    # (N, C, H, W) in [0, 1], mapped in float64 as ladder maps them
    x = torch.from_numpy((reconstructions.astype(np.float64) + 1) / 2).permute(0, 3, 1, 2)
    y = torch.from_numpy((originals.astype(np.float64) + 1) / 2).permute(0, 3, 1, 2)

    def monai_scores():
        return (float(SSIMMetric(spatial_dims=2, data_range=1.0)(x, y).mean()),
                float(MultiScaleSSIMMetric(spatial_dims=2, data_range=1.0)(x, y).mean()))

    # MONAI computes in float32 (it casts its inputs), whose rounding of E[x²] − μ² is itself
    # about 1e-5 of SSIM; its algorithm run in float64 is what ladder's double loops must equal.
    shipped = monai_scores()
    with monai_in_float64():
        exact = monai_scores()
    for name, got, want, want32 in (("SSIM", ssim, exact[0], shipped[0]), ("MS-SSIM", ms_ssim, exact[1], shipped[1])):
        error, error32 = abs(got - want) / abs(want), abs(got - want32) / abs(want32)
        h.check(error <= 1e-7 and error32 <= 1e-4,
                f"{name}: ladder {got!r}, MONAI in float64 {want!r} (relative {error:.3g}), MONAI as shipped "
                f"(float32) {want32!r} ({error32:.3g})")
        h.log(f"{name} of 3 reconstructions at 192 px: ladder {got:.10f}; MONAI's algorithm in float64 "
              f"{want:.10f} (relative {error:.2e}); MONAI as shipped, float32, {want32:.10f} ({error32:.2e})")
    small = hr.ladder("evaluate", "--checkpoint", checkpoint, "--store", hr.store, "--resolution", 32,
                      "--count", 3, "--weights", "random", timeout=300)
    h.check(printed(small.output, "ms_ssim") != printed(small.output, "ms_ssim"),  # nan
            f"MS-SSIM at 32 px should be nan (too small for 5 scales):\n{h.indent(small.output)}")
    h.log("MS-SSIM at 32 px: nan, as MONAI refuses images under 176 px")

    # Diversity: MONAI's tutorials' MS-SSIM (kernel_size 4) over itertools.combinations of the images.
    import itertools
    import h5py
    with h5py.File(hr.store, "r") as f:
        images = torch.from_numpy(np.asarray(f["levels/192"], dtype=np.float64) / 255).permute(0, 3, 1, 2)
    diverse = hr.ladder("evaluate", "--store", hr.store, "--resolution", 192, "--diversity", timeout=300)
    got = printed(diverse.output, "ms_ssim_diversity")

    def monai_diversity():
        metric = MultiScaleSSIMMetric(spatial_dims=2, data_range=1.0, kernel_size=4)
        scores = [float(metric(images[[a]], images[[b]]).mean())
                  for a, b in itertools.combinations(range(len(images)), 2)]
        return float(np.mean(scores)), len(scores)

    shipped, pairs = monai_diversity()
    with monai_in_float64():
        exact, _ = monai_diversity()
    error, error32 = abs(got - exact) / abs(exact), abs(got - shipped) / abs(shipped)
    h.check(f"({pairs} pairs" in diverse.output and error <= 1e-7 and error32 <= 1e-4,
            f"diversity: ladder {got!r}, MONAI in float64 {exact!r} ({error:.3g}), as shipped {shipped!r} "
            f"({error32:.3g}):\n{h.indent(diverse.output)}")
    h.log(f"MS-SSIM diversity of {len(images)} images at 192 px ({pairs} pairs, kernel 4): ladder {got:.10f}; "
          f"MONAI in float64 {exact:.10f} ({error:.2e}); as shipped {shipped:.10f} ({error32:.2e})")


if __name__ == "__main__":
    h.main(body, h.Harness("SSIM and MS-SSIM parity of ladder evaluate with MONAI"))
