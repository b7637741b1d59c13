#!/usr/bin/env python3
# Why this file exists: ladder's InceptionV3 features against the tools FID numbers come from,
# with the same (random, Kaiming-initialised, seeded) weights: pytorch-fid's InceptionV3 in its
# own input mode (`--mode pytorch_fid`) and torch-fidelity's extractor in TF1 mode
# (`--mode tf1`), on images of 64² and 256² (resized to 299 by each tool's bilinear), each
# within 1e-4 relative (the largest feature difference over the largest feature). Also checks
# that the features of a store are the same bits on 1 and 2 ranks. Random weights make this
# self-contained (no download); the network is built with pytorch-fid's own constructor, and
# its weights reach ladder through launch/fid_weights.py.
# Needs numpy, h5py, torch, torchvision, safetensors, pytorch-fid and torch-fidelity: without
# them it exits 77 (CTest Skipped).
import subprocess
import sys
from pathlib import Path

try:
    import h5py
    import numpy as np
    import torch
    import torch.nn.functional as F
    import torchvision
    import pytorch_fid.inception as PI
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
except ImportError as error:
    print(f"SKIPPED: {error} (numpy, h5py, torch, torchvision, safetensors, pytorch-fid and "
          f"torch-fidelity are needed for the InceptionV3 parity test; they are optional)")
    sys.exit(77)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interop_harness as h

ROOT = Path(__file__).resolve().parents[2]


def random_fid_inception(seed):
    """pytorch-fid's FID InceptionV3 (Inception3 names), built without its download, with
    Kaiming-normal convolutions and random eval-mode BatchNorm statistics."""
    marker = object()
    PI.load_state_dict_from_url = lambda *a, **k: marker
    original = torchvision.models.inception.Inception3.load_state_dict
    torchvision.models.inception.Inception3.load_state_dict = \
        lambda self, sd, *a, **k: None if sd is marker else original(self, sd, *a, **k)
    net = PI.fid_inception_v3().eval()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=generator) * (2 / fan_in) ** 0.5)
            elif isinstance(module, torch.nn.BatchNorm2d):
                c = module.num_features
                module.weight.copy_(1 + 0.1 * torch.randn(c, generator=generator))
                module.bias.copy_(0.1 * torch.randn(c, generator=generator))
                module.running_mean.copy_(0.1 * torch.randn(c, generator=generator))
                module.running_var.copy_(0.5 + torch.rand(c, generator=generator))
    return net


def pytorch_fid_wrapper(net):
    """pytorch-fid's InceptionV3([3]), the module fid_score.py runs, with net's weights."""
    wrapper = PI.InceptionV3([3]).eval()
    names = {"blocks.0.0": "Conv2d_1a_3x3", "blocks.0.1": "Conv2d_2a_3x3", "blocks.0.2": "Conv2d_2b_3x3",
             "blocks.1.0": "Conv2d_3b_1x1", "blocks.1.1": "Conv2d_4a_3x3"}
    for i, name in enumerate(["Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c",
                              "Mixed_6d", "Mixed_6e"]):
        names[f"blocks.2.{i}"] = name
    for i, name in enumerate(["Mixed_7a", "Mixed_7b", "Mixed_7c"]):
        names[f"blocks.3.{i}"] = name
    source = net.state_dict()
    mapped = {}
    for key in wrapper.state_dict():
        prefix = ".".join(key.split(".")[:3])
        mapped[key] = source[names[prefix] + key[len(prefix):]]
    wrapper.load_state_dict(mapped, strict=True)
    return wrapper


def pytorch_fid_features(wrapper, images_u8):
    """pytorch-fid's forward on (N, H, W, 3) uint8 as fid_score.py feeds it (u8/255)."""
    x = torch.from_numpy(images_u8).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        return wrapper(x)[0].squeeze(-1).squeeze(-1).double().numpy()


def torch_fidelity_features(weights_pth, images_u8):
    extractor = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                            feature_extractor_weights_path=str(weights_pth)).eval()
    x = torch.from_numpy(images_u8).permute(0, 3, 1, 2).contiguous()
    with torch.no_grad():
        return extractor(x)[0].double().numpy()


def not_a_state_dict(hr):
    """A file that is not a PyTorch state dict."""
    path = hr.work / "not-a-state-dict.pth"
    path.write_text("not a pickle")
    return path


def relative(got, want):
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def body(hr):
    torch.set_num_threads(2)
    net = random_fid_inception(0)
    # The shared fixture: saved once as pytorch-fid's release is (a .pth state dict), converted
    # by launch/fid_weights.py as a user converts the release, and read by all three tools.
    weights_pth = hr.work / "inception_random.pth"
    torch.save(net.state_dict(), weights_pth)
    weights = hr.work / "inception_random.safetensors"
    converted = subprocess.run([sys.executable, str(ROOT / "launch" / "fid_weights.py"), "--pth", str(weights_pth),
                                "--out", str(weights)], capture_output=True, text=True)
    h.check(converted.returncode == 0 and "23,850,960 parameters" in converted.stdout,
            f"launch/fid_weights.py failed:\n{converted.stdout}{converted.stderr}")
    h.log(converted.stdout.strip())
    broken = subprocess.run([sys.executable, str(ROOT / "launch" / "fid_weights.py"), "--pth", str(not_a_state_dict(hr)),
                             "--out", str(hr.work / "x.safetensors")], capture_output=True, text=True)
    h.check(broken.returncode == 2 and broken.stderr.count("\n") == 1,
            f"launch/fid_weights.py on a non-.pth file: exit {broken.returncode}, {broken.stderr!r}")
    wrapper = pytorch_fid_wrapper(net)
    hr.pack(images=6, levels="64,256", seed=3, name="s.h5")
    store = hr.work / "s.h5"
    with h5py.File(store, "r") as f:
        levels = {r: np.asarray(f[f"levels/{r}"]) for r in (64, 256)}
    for resolution, images in levels.items():
        for mode in ("pytorch_fid", "tf1"):
            out = hr.work / f"f{resolution}-{mode}.h5"
            hr.ladder("evaluate", "--store", store, "--resolution", resolution, "--weights", weights,
                      "--mode", mode, "--save-features", out, timeout=600)
            with h5py.File(out, "r") as f:
                ours = np.asarray(f["features"], dtype=np.float64)
            want = pytorch_fid_features(wrapper, images) if mode == "pytorch_fid" else \
                torch_fidelity_features(weights_pth, images)
            h.check(ours.shape == want.shape, f"{resolution}² {mode}: shape {ours.shape} vs {want.shape}")
            error = relative(ours, want)
            h.check(error <= 1e-4, f"{resolution}² {mode}: features differ by {error:.3g} relative "
                                   f"(largest feature {np.max(np.abs(want)):.4g})")
            h.log(f"{resolution}² {mode}: {len(images)} images, features within {error:.2e} relative of "
                  f"{'pytorch-fid' if mode == 'pytorch_fid' else 'torch-fidelity'} "
                  f"(mean feature {want.mean():.4g})")
    # The comparison can tell: the two tools' features differ by their resize (64² → 299).
    with h5py.File(hr.work / "f64-pytorch_fid.h5", "r") as f:
        ours = np.asarray(f["features"], dtype=np.float64)
    other = relative(ours, torch_fidelity_features(weights_pth, levels[64]))
    h.check(other > 1e-3, f"pytorch_fid-mode features match torch-fidelity's TF1 ones ({other:.3g}): "
                          f"the comparison cannot tell the modes apart")
    h.log(f"negative control: pytorch_fid-mode features vs torch-fidelity's differ by {other:.3g}")
    one = hr.work / "f64-pytorch_fid.h5"
    two = hr.work / "f64-np2.h5"
    hr.ladder("evaluate", "--store", store, "--resolution", 64, "--weights", weights, "--save-features", two,
              ranks=2, timeout=600)
    with h5py.File(one, "r") as a, h5py.File(two, "r") as b:
        h.check(np.array_equal(np.asarray(a["features"]), np.asarray(b["features"])),
                "features of the store on 2 ranks differ from 1 rank")
    h.log("64² on 2 ranks: the same bits as on 1")


if __name__ == "__main__":
    h.main(body, h.Harness("InceptionV3 feature parity of ladder evaluate with pytorch-fid and torch-fidelity"))
