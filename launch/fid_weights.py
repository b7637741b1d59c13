#!/usr/bin/env python3
# Why this file exists: ladder reads InceptionV3 weights as safetensors with pytorch-fid's
# parameter names and never downloads anything. This converts the weights pytorch-fid itself
# uses (its release pt_inception-2015-12-05-6726825d.pth, the TF1 FID network ported to
# PyTorch) into that file, checking the parameter count (23,850,960 with the 1008-class fc,
# which ladder ignores) so that a wrong file is caught here rather than as odd scores.
#
#   python3 launch/fid_weights.py --out inception-fid.safetensors [--pth FILE]
#
# Without --pth it looks where pytorch-fid's first run cached the download
# (~/.cache/torch/hub/checkpoints/); where the file is nowhere, it prints the URL to fetch by
# hand. Needs torch and safetensors (pip install torch safetensors).
import argparse
import os
import sys
from pathlib import Path

RELEASE = "pt_inception-2015-12-05-6726825d.pth"
URL = "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + RELEASE
PARAMETERS_WITH_FC = 23_850_960
PARAMETERS_WITHOUT_FC = 21_785_568


def find_release():
    hub = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch")) / "hub" / "checkpoints" / RELEASE
    return hub if hub.is_file() else None


def main():
    parser = argparse.ArgumentParser(description="pytorch-fid's InceptionV3 weights (.pth) to ladder's safetensors")
    parser.add_argument("--pth", help=f"the release file ({RELEASE}); default: torch hub's cache")
    parser.add_argument("--out", required=True, help="the safetensors file to write (ladder --weights / eval.weights)")
    args = parser.parse_args()
    try:
        import torch
        from safetensors.torch import save_file
    except ImportError as error:
        print(f"fid_weights: {error}: pip install torch safetensors", file=sys.stderr)
        return 2
    pth = Path(args.pth) if args.pth else find_release()
    if pth is None or not pth.is_file():
        print(f"fid_weights: {args.pth or RELEASE + ' is not in torch hub cache'}: no such file; download it by hand "
              f"(ladder never downloads):\n  curl -LO {URL}\nthen: python3 launch/fid_weights.py --pth {RELEASE} "
              f"--out {args.out}", file=sys.stderr)
        return 2
    try:
        state = torch.load(pth, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged or foreign file: one line, the file named
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        print(f"fid_weights: {pth}: cannot be read as a PyTorch state dict ({reason})", file=sys.stderr)
        return 2
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        print(f"fid_weights: {pth}: not a state dict of tensors", file=sys.stderr)
        return 2
    tensors = {k: v.detach().contiguous() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    count = sum(v.numel() for k, v in tensors.items() if not k.endswith(("running_mean", "running_var")))
    if count not in (PARAMETERS_WITH_FC, PARAMETERS_WITHOUT_FC) or "Mixed_7c.branch_pool.conv.weight" not in tensors:
        print(f"fid_weights: {pth}: {count:,} parameters; pytorch-fid's InceptionV3 has {PARAMETERS_WITH_FC:,} "
              f"({PARAMETERS_WITHOUT_FC:,} without fc): not its weights", file=sys.stderr)
        return 2
    out = Path(args.out)
    temporary = out.with_name(out.name + ".tmp")
    save_file(tensors, str(temporary))
    temporary.replace(out)
    print(f"fid_weights: {len(tensors)} tensors, {count:,} parameters -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
