#!/usr/bin/env python3
# Why this file exists: ladder's FID and KID arithmetic against the packages papers use, on the
# same features: `ladder evaluate --features A.h5 --reference B.h5` against pytorch-fid's
# calculate_frechet_distance (scipy's sqrtm) with N above and below the 2048 dimensions, and
# against torch-fidelity's KID (its own subset draws, seed 2020, which ladder reproduces) on
# float64 features: each within 1e-6 relative. The features are synthetic (non-negative, like
# InceptionV3's pool3 after ReLU and averaging), so no network weights are needed. Needs numpy,
# h5py, scipy < 1.18 (pytorch-fid passes sqrtm's `disp`, which 1.18 drops), torch, pytorch-fid and
# torch-fidelity: without them it exits 77 (CTest Skipped).
import re
import sys
from pathlib import Path

try:
    import h5py
    import numpy as np
    import torch
    from pytorch_fid.fid_score import calculate_frechet_distance
    from torch_fidelity.metric_kid import kid_features_to_metric
except ImportError as error:
    print(f"SKIPPED: {error} (numpy, h5py, scipy, torch, pytorch-fid and torch-fidelity are needed "
          f"for the FID/KID parity test; they are optional)")
    sys.exit(77)

import scipy

# pytorch-fid 0.3.0 calls scipy.linalg.sqrtm(..., disp=False), which scipy 1.18 removes: the
# harness is pinned to scipy < 1.18 (pip install "scipy<1.18").
if tuple(int(part) for part in scipy.__version__.split(".")[:2]) >= (1, 18):
    print(f"SKIPPED: scipy {scipy.__version__}; pytorch-fid needs scipy < 1.18 (pip install 'scipy<1.18')")
    sys.exit(77)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interop_harness as h

DIMS = 2048


def synthetic_features(count, seed, shift):
    """Non-negative features with correlated structure: relu of a low-rank mix plus noise."""
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((64, DIMS)) / 8
    latent = rng.standard_normal((count, 64))
    values = latent @ mix + 0.3 * rng.standard_normal((count, DIMS)) + shift
    return np.maximum(values, 0).astype(np.float32)


def write(path, features):
    with h5py.File(path, "w") as f:
        f["features"] = features
    return path


def run_ladder(hr, a, b, subsets, subset_size):
    result = hr.ladder("evaluate", "--features", a, "--reference", b, "--kid-subsets", subsets,
                       "--kid-subset-size", subset_size, timeout=600)
    fid = re.search(r"^fid (\S+)", result.output, re.M)
    kid = re.search(r"^kid_mean (\S+) kid_std (\S+)", result.output, re.M)
    h.check(fid is not None and kid is not None, f"evaluate printed no fid/kid:\n{h.indent(result.output)}")
    return float(fid.group(1)), float(kid.group(1)), float(kid.group(2))


def relative(actual, expected):
    return abs(actual - expected) / max(abs(expected), 1e-300)


def body(hr):
    torch.set_num_threads(2)
    for count_a, count_b in ((2500, 2300), (900, 1100)):  # above, then below the 2048 dimensions
        a = synthetic_features(count_a, 1, 0.0)
        b = synthetic_features(count_b, 2, 0.05)
        subsets, subset_size = 10, 800
        fid, kid_mean, kid_std = run_ladder(hr, write(hr.work / f"a{count_a}.h5", a),
                                            write(hr.work / f"b{count_b}.h5", b), subsets, subset_size)
        a64, b64 = a.astype(np.float64), b.astype(np.float64)
        want_fid = float(calculate_frechet_distance(a64.mean(0), np.cov(a64, rowvar=False),
                                                    b64.mean(0), np.cov(b64, rowvar=False)))
        h.check(relative(fid, want_fid) <= 1e-6,
                f"N {count_a}/{count_b}: ladder FID {fid!r}, pytorch-fid {want_fid!r} "
                f"(relative {relative(fid, want_fid):.3g})")
        h.log(f"N {count_a}/{count_b}: FID ladder {fid:.10f}, pytorch-fid {want_fid:.10f}, "
              f"relative {relative(fid, want_fid):.2e}")
        kid = kid_features_to_metric(torch.from_numpy(a64), torch.from_numpy(b64), kid_subsets=subsets,
                                     kid_subset_size=subset_size, verbose=False, rng_seed=2020)
        want_mean = float(kid["kernel_inception_distance_mean"])
        want_std = float(kid["kernel_inception_distance_std"])
        h.check(relative(kid_mean, want_mean) <= 1e-6 and relative(kid_std, want_std) <= 1e-6,
                f"N {count_a}/{count_b}: ladder KID {kid_mean!r} ± {kid_std!r}, torch-fidelity "
                f"{want_mean!r} ± {want_std!r}")
        h.log(f"N {count_a}/{count_b}: KID ladder {kid_mean:.12g} ± {kid_std:.6g}, torch-fidelity "
              f"(float64) {want_mean:.12g} ± {want_std:.6g}, relative {relative(kid_mean, want_mean):.2e}")


if __name__ == "__main__":
    h.main(body, h.Harness("FID and KID parity of ladder evaluate with pytorch-fid and torch-fidelity"))
