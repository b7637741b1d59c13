#!/usr/bin/env python3
# Why this file exists: issue #16's "exportable with MONAI names" for the discriminator. A tiny
# autoencoder run with the adversarial loss on (BatchNorm, then InstanceNorm) is exported with
# `ladder export --discriminator`; MONAI 1.6.1's PatchDiscriminator(**monai_arguments) must load
# it with strict=True, hold exactly the checkpoint's discriminator weights and BatchNorm running
# statistics (its manifest's buffers), and run forward (eval mode, and training mode, as the
# tutorial uses it) to finite logits of the shape ladder's
# output_shape gives. Needs torch, monai and safetensors: without them it prints
# "SKIPPED: ..." and exits 77 (CTest SKIP_RETURN_CODE); they are optional, never installed.
import json
import sys
from pathlib import Path

try:
    import numpy as np
    import torch
    from monai.networks.nets import PatchDiscriminator
    from safetensors import safe_open
    from safetensors.torch import load_file
except ImportError as error:
    print(f"SKIPPED: {error} (torch, monai and safetensors are needed for the discriminator's MONAI "
          f"interop test; they are optional)")
    sys.exit(77)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interop_harness as h

PREFIX = "discriminator."


def body(hr):
    torch.set_num_threads(2)
    hr.pack(24, levels="32", seed=2)
    for norm in ["batch", "instance"]:
        run = hr.work / f"adv-{norm}"
        hr.train(run, flags={"adversarial.weight": 0.1, "adversarial.start_step": 2, "adversarial.layers": 2,
                             "adversarial.channels": 8, "adversarial.norm": norm, "stages.images": 24})
        step_dir = h.latest_checkpoint(run)
        out = hr.work / f"d-{norm}.safetensors"
        hr.ladder("export", "--checkpoint", step_dir, "--out", out, "--discriminator",
                  label=f"export --discriminator ({norm})")
        with safe_open(str(out), "pt") as f:
            metadata = f.metadata()
        kwargs = json.loads(metadata["monai_arguments"])
        h.check(kwargs["norm"] == norm.upper(), f"{norm}: monai_arguments {kwargs}")
        model = PatchDiscriminator(**kwargs)
        state = load_file(str(out))
        model.load_state_dict(state, strict=True)  # raises on a missing or unexpected name
        _, saved = h.checkpoint_tensors(step_dir)
        weights = {name[len(PREFIX):]: value for name, value in saved.items() if name.startswith(PREFIX)}
        h.check(weights and set(weights) == {n for n, _ in model.named_parameters()},
                f"{norm}: checkpoint names {sorted(weights)} vs MONAI's {[n for n, _ in model.named_parameters()]}")
        for name, parameter in model.named_parameters():
            h.check(np.array_equal(parameter.detach().numpy(), weights[name]),
                    f"{norm}: {name} differs from the checkpoint's")
        # BatchNorm's buffers: the manifest's running statistics (rank 0's), bit for bit.
        manifest, _ = h.checkpoint_tensors(step_dir)
        saved_buffers = {b["name"][len(PREFIX):]: b for b in manifest.get("buffers", [])}
        torch_buffers = dict(model.named_buffers())
        h.check(set(saved_buffers) == set(torch_buffers),
                f"{norm}: manifest buffers {sorted(saved_buffers)} vs MONAI's {sorted(torch_buffers)}")
        for name, buffer in torch_buffers.items():
            want = np.array(saved_buffers[name]["values"], dtype=np.int64 if name.endswith("tracked") else np.float32)
            h.check(np.array_equal(buffer.numpy().reshape(-1), want),
                    f"{norm}: MONAI's {name} differs from the checkpoint's buffer")
        if norm == "batch":
            h.check(metadata["batch_norm_running_statistics"] == "checkpoint", f"metadata {metadata}")
            tracked = {int(b.item()) for n, b in torch_buffers.items() if n.endswith("num_batches_tracked")}
            moved = max(float((b - (0 if n.endswith("mean") else 1)).abs().max())
                        for n, b in torch_buffers.items() if n.endswith(("running_mean", "running_var")))
            h.check(tracked and min(tracked) > 0 and moved > 1e-3,
                    f"{norm}: running statistics at their reset values (tracked {tracked}, moved {moved})")
        images = torch.from_numpy(h.store_images(hr.store, 32, 4)).permute(0, 3, 1, 2).contiguous()
        model.eval()  # the running statistics
        with torch.no_grad():
            eval_logits = model(images)[-1]
        h.check(bool(torch.isfinite(eval_logits).all()), f"{norm}: MONAI's eval forward is not finite")
        model.train()
        logits = model(images)[-1]
        h.check(tuple(logits.shape) == (4, 1, 6, 6) and bool(torch.isfinite(logits).all()),
                f"{norm}: MONAI's forward gave {tuple(logits.shape)}, finite {bool(torch.isfinite(logits).all())}")
        h.log(f"{norm}: {len(state)} tensors loaded by MONAI with strict=True, {len(weights)} parameters "
              f"equal to the checkpoint's, logits {tuple(logits.shape)} mean {float(logits.mean()):.4f}")


if __name__ == "__main__":
    h.main(body, h.Harness("MONAI loads ladder's exported PatchDiscriminator"))
