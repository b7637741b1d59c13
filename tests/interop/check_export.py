#!/usr/bin/env python3
# Why this file exists: BRIEF §5 promises that `ladder export` writes a safetensors file that
# other tools read (MONAI names, PyTorch layouts, config in __metadata__), that the weights
# are the checkpoint's, consolidated from any world size, and that `train.init_from` and
# `reconstruct` accept such files and reject damaged ones with one clear line. This test
# checks all of that with the official safetensors library, numpy and h5py only (no torch), so
# it runs in CI everywhere (launch/install_deps.sh installs the three). Under mpirun: a
# 3-rank checkpoint is exported and compared byte for byte with the same state re-saved on 1
# rank; reconstruct on 2 ranks.
import json
import sys
from pathlib import Path

try:
    import h5py  # noqa: F401
    import numpy as np
    import safetensors
    from safetensors import safe_open
    from safetensors.numpy import load_file, save_file
except ImportError as error:  # never skipped: CI installs these (launch/install_deps.sh)
    print(f"FAIL: {error}; install numpy, safetensors and h5py (bash launch/install_deps.sh python)")
    sys.exit(1)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import interop_harness as h

MODEL = h.TINY_ATTENTION  # channels 8,16, attention at level 1, mid block with attention
IN_CHANNELS = 3
METADATA_KEYS = ("config", "monai_arguments", "step", "ladder_version", "format")
DTYPES = {"fp32": ("F32", np.uint32), "bf16": ("BF16", np.uint16), "fp16": ("F16", np.uint16)}


def expected_monai_arguments(model):
    channels = [int(c) for c in str(model["channels"]).split(",")]
    levels = [v.strip() in ("1", "true") for v in str(model.get("attention_levels", "0,0"))
              .split(",")]
    mid = str(model.get("mid_attention", "false")) == "true"
    return {"spatial_dims": 2, "in_channels": IN_CHANNELS, "out_channels": IN_CHANNELS,
            "channels": channels, "num_res_blocks": int(model["res_blocks"]),
            "attention_levels": levels, "latent_channels": int(model["latent_channels"]),
            "norm_num_groups": int(model["norm_groups"]), "norm_eps": 1e-6,
            "with_encoder_nonlocal_attn": mid, "with_decoder_nonlocal_attn": mid}


def check_file(path, dtype, manifest, reference):
    """One export against the checkpoint it came from: parsed by the official library,
    metadata, names, dtypes, PyTorch shapes, values (exact for fp32; exact roundings of the
    fp32 values for bf16 and fp16)."""
    label = f"{Path(path).name} ({dtype})"
    with safe_open(str(path), framework="np") as f:
        metadata = f.metadata() or {}
        names = set(f.keys())
    for key in METADATA_KEYS:
        h.check(key in metadata, f"{label}: __metadata__ lacks '{key}' (has {sorted(metadata)})")
    h.check(metadata["step"] == str(manifest["step"]),
            f"{label}: metadata step {metadata['step']!r}, checkpoint step {manifest['step']}")
    h.check(metadata["format"] == "pt", f"{label}: metadata format {metadata['format']!r}, "
            f"expected 'pt' (what safetensors.torch writes)")
    h.check(metadata["ladder_version"] == str(manifest.get("ladder_version")),
            f"{label}: ladder_version {metadata['ladder_version']!r}, checkpoint's "
            f"{manifest.get('ladder_version')!r}")
    config = json.loads(metadata["config"])
    h.check(isinstance(config, dict) and config and all(isinstance(v, str)
                                                        for v in config.values()),
            f"{label}: metadata config is not a JSON object of strings: {metadata['config']}")
    model_keys = {k: v for k, v in manifest["config"].items() if k.startswith("model.")}
    h.check(config == model_keys, f"{label}: metadata config {config} differs from the "
            f"checkpoint's model keys {model_keys}")
    arguments = json.loads(metadata["monai_arguments"])
    expected = expected_monai_arguments(MODEL)
    for key, value in expected.items():
        h.check(key in arguments and arguments[key] == value,
                f"{label}: monai_arguments[{key!r}] = {arguments.get(key)!r}, expected "
                f"{value!r} (all: {arguments})")

    h.check(names == set(reference), f"{label}: tensor names differ from the checkpoint's: "
            f"missing {sorted(set(reference) - names)[:5]}, extra {sorted(names - set(reference))[:5]}")

    # Every tensor through the library's own deserializer (it knows BF16, numpy does not).
    st_dtype, bits_type = DTYPES[dtype]
    raw = {name: view for name, view in safetensors.deserialize(Path(path).read_bytes())}
    if dtype != "bf16":  # numpy's loader, too, where numpy has the dtype
        loaded = load_file(str(path))
        h.check(set(loaded) == names, f"{label}: load_file names differ from safe_open's")
    channels = set(expected["channels"]) | {IN_CHANNELS, expected["latent_channels"]}
    convs = 0
    for name, want in reference.items():
        view = raw[name]
        h.check(view["dtype"] == st_dtype, f"{label}: {name} is {view['dtype']}, expected {st_dtype}")
        shape = tuple(view["shape"])
        h.check(shape == want.shape, f"{label}: {name} has shape {shape}, expected "
                f"{want.shape} (the checkpoint's, in PyTorch layout)")
        if len(shape) == 4:
            convs += 1
            cout, cin, kh, kw = shape
            h.check(kh == kw and kh in (1, 3), f"{label}: {name} kernel {kh}x{kw}, expected "
                    f"(Cout, Cin, 3|1, 3|1)")
            h.check(cout in channels and cin in channels,
                    f"{label}: {name} (Cout, Cin) = ({cout}, {cin}), not channel counts of "
                    f"the model {sorted(channels)}")
            h.check((kh == 1) == ("nin_shortcut" in name or "quant_conv" in name),
                    f"{label}: {name} has a {kh}x{kw} kernel")
        got = np.frombuffer(bytes(view["data"]), dtype=bits_type).reshape(shape)
        if dtype == "fp32":
            expected_bits = want.view(np.uint32)
        elif dtype == "bf16":
            expected_bits = h.bf16_bits(want)
        else:
            expected_bits = h.fp16_bits(want)
        if not np.array_equal(got, expected_bits):
            bad = np.flatnonzero(got.ravel() != expected_bits.ravel())
            i = int(bad[0])
            raise h.TestFailure(
                f"{label}: {name}: {bad.size} of {got.size} values differ from the checkpoint's "
                f"master weights {'' if dtype == 'fp32' else 'rounded to ' + dtype}; first at "
                f"flat index {i}: bits {int(got.ravel()[i]):#x}, expected "
                f"{int(expected_bits.ravel()[i]):#x} (fp32 {float(want.ravel()[i])!r})")
    # Known shapes that pin the channel order of the PyTorch layout.
    c = expected["channels"]
    latent = expected["latent_channels"]
    last = max(int(n.split(".")[2]) for n in reference if n.startswith("decoder.blocks."))
    pinned = {"encoder.blocks.0.conv.weight": (c[0], IN_CHANNELS, 3, 3),
              "quant_conv_mu.conv.weight": (latent, latent, 1, 1),
              "post_quant_conv.conv.weight": (latent, latent, 1, 1),
              "decoder.blocks.0.conv.weight": (c[-1], latent, 3, 3),
              f"decoder.blocks.{last}.conv.weight": (IN_CHANNELS, c[0], 3, 3)}
    for name, shape in pinned.items():
        h.check(name in raw and tuple(raw[name]["shape"]) == shape,
                f"{label}: {name} shape {raw.get(name, {}).get('shape')}, expected {shape}")
    return len(names), convs, arguments


def expect_rejected(hr, bad, run_dir, what):
    """train.init_from = bad: exit 2 and exactly one output line, naming the file."""
    result = hr.train(run_dir, MODEL, expect=None, stages_images=4,
                      flags={"train.init_from": str(bad)})
    lines = result.lines()
    h.check(result.code == 2, f"init_from {what} ({bad}): exit {result.code}, expected 2:\n"
            f"{h.indent(result.output)}")
    h.check(len(lines) == 1 and str(bad) in lines[0],
            f"init_from {what}: expected exactly one output line naming {bad}, got "
            f"{len(lines)}:\n{h.indent(result.output)}")
    h.log(f"  init_from {what}: exit 2, '{lines[0]}'")


def body(hr):
    hr.pack(24, levels="16,32", seed=1)
    work = hr.work

    # ---- 1 rank: export in three dtypes, compared with the shards read by h5py ----------
    run_a = work / "A"
    train_a = hr.train(run_a, MODEL, checkpoint_every=2)
    final_a = h.latest_checkpoint(run_a)
    manifest, reference = h.checkpoint_tensors(final_a)
    h.check(manifest["step"] == 10, f"A: final checkpoint at step {manifest['step']}, expected 10")
    exports = {}
    for dtype in DTYPES:
        exports[dtype] = work / f"A-{dtype}.safetensors"
        hr.export(final_a, exports[dtype], dtype)
        count, convs, arguments = check_file(exports[dtype], dtype, manifest, reference)
        h.log(f"export {dtype}: {count} tensors ({convs} convolutions) parse with safetensors "
              f"{safetensors.__version__}; metadata ok; values "
              f"{'bit-equal to the master weights' if dtype == 'fp32' else 'bit-equal to the master weights rounded to ' + dtype}")
    h.log(f"  monai_arguments: {json.dumps(arguments, sort_keys=True)}")
    # An older checkpoint of the same run is another state: the export must follow it.
    older = [d for d in h.checkpoint_dirs(run_a) if d != final_a][-1]
    older_manifest, older_reference = h.checkpoint_tensors(older)
    hr.export(older, work / "A-older.safetensors")
    check_file(work / "A-older.safetensors", "fp32", older_manifest, older_reference)
    h.check(any(not np.array_equal(older_reference[n], reference[n]) for n in reference),
            f"checkpoints {older.name} and {final_a.name} hold the same weights")
    h.log(f"export of {older.name} equals its own master weights (and differs from "
          f"{final_a.name})")

    # ---- 3 ranks vs the same state re-saved on 1 rank: byte-identical exports ------------
    flags3 = dict(train_batch=6, train_micro_batch=2, stages_images=36)
    run_m = work / "M3"
    hr.train(run_m, MODEL, ranks=3, **flags3)
    final_m = h.latest_checkpoint(run_m)
    manifest_m, reference_m = h.checkpoint_tensors(final_m)
    h.check(manifest_m["world"] == 3 and len(list(final_m.glob("shard-*.h5"))) == 3,
            f"M3: checkpoint world {manifest_m['world']}, expected 3 shards")
    export_m = work / "M3.safetensors"
    hr.export(final_m, export_m)
    check_file(export_m, "fp32", manifest_m, reference_m)
    h.log(f"export of the 3-rank checkpoint {final_m.name} (3 shards, ZeRO "
          f"{manifest_m['zero_stage']}) equals its master weights")
    run_n = work / "N1"
    resumed = hr.train(run_n, MODEL, extra=["--resume", str(final_m)], **flags3)
    saved = h.checkpoint_dirs(run_n)
    h.check(saved, f"N1: resuming the finished 3-rank run on 1 rank (nothing left to train) "
            f"wrote no checkpoint into {run_n}/checkpoints (expected step-"
            f"{manifest_m['step']:08d} holding the loaded state):\n{h.indent(resumed.output)}")
    final_n = h.latest_checkpoint(run_n)
    manifest_n, reference_n = h.checkpoint_tensors(final_n)
    h.check(manifest_n["step"] == manifest_m["step"] and manifest_n["world"] == 1,
            f"N1: checkpoint step {manifest_n['step']} world {manifest_n['world']}, expected "
            f"step {manifest_m['step']} world 1")
    export_n = work / "N1.safetensors"
    hr.export(final_n, export_n)
    bytes_m, bytes_n = export_m.read_bytes(), export_n.read_bytes()
    if bytes_m != bytes_n:
        diff = next(i for i, (a, b) in enumerate(zip(bytes_m, bytes_n)) if a != b) \
            if len(bytes_m) == len(bytes_n) else min(len(bytes_m), len(bytes_n))
        raise h.TestFailure(f"exports of the same state written by 3 ranks ({export_m}, "
                            f"{len(bytes_m)} bytes) and by 1 rank ({export_n}, {len(bytes_n)} "
                            f"bytes) differ, first at byte {diff}")
    h.log(f"3-rank checkpoint and the same state on 1 rank: exports byte-identical "
          f"({len(bytes_m)} bytes)")

    # ---- reconstruct: checkpoint dir, its export, 2 ranks, .png ---------------------------
    count = 8
    originals_ref = h.store_images(hr.store, 32, count)
    _, from_dir = hr.reconstruct(final_a, work / "r-dir.h5", count=count)
    orig, rec_dir = h.read_reconstruction(work / "r-dir.h5")
    h.check(orig.shape == (count, 32, 32, IN_CHANNELS), f"reconstruct: originals {orig.shape}")
    h.check(np.max(np.abs(orig - originals_ref)) <= 1e-6,
            f"reconstruct: originals differ from the store's uint8 / 127.5 - 1 by "
            f"{np.max(np.abs(orig - originals_ref)):.3g}")
    h.check(from_dir["count"] == count and from_dir["resolution"] == 32,
            f"reconstruct printed {from_dir}")
    l1, p = float(np.mean(np.abs(orig.astype(np.float64) - rec_dir))), h.psnr(orig, rec_dir)
    h.check(abs(l1 - from_dir["l1"]) <= 2e-6 and abs(p - from_dir["psnr"]) <= 1.5e-3,
            f"reconstruct printed L1 {from_dir['l1']} PSNR {from_dir['psnr']}, its .h5 gives "
            f"L1 {l1:.6f} PSNR {p:.4f}")
    h.log(f"reconstruct {final_a.name}: {count} images, L1 {l1:.6f}, PSNR {p:.4f} dB (printed "
          f"{from_dir['l1']}, {from_dir['psnr']}); originals = store / 127.5 - 1")
    _, from_file = hr.reconstruct(exports["fp32"], work / "r-file.h5", count=count)
    _, rec_file = h.read_reconstruction(work / "r-file.h5")
    h.check(np.array_equal(rec_file, rec_dir), "reconstruct from the fp32 export differs from "
            f"reconstruct from the checkpoint (max {np.max(np.abs(rec_file - rec_dir)):.3g})")
    h.log("reconstruct from the fp32 export: bit-identical to the checkpoint's")
    _, from_bf16 = hr.reconstruct(exports["bf16"], work / "r-bf16.h5", count=count)
    _, rec_bf16 = h.read_reconstruction(work / "r-bf16.h5")
    worst = float(np.max(h.relative_l2_per_image(rec_bf16, rec_dir)))
    h.check(worst < 0.05, f"reconstruct from the bf16 export: relative L2 {worst:.3g} vs fp32")
    h.log(f"reconstruct from the bf16 export: relative L2 to fp32 at most {worst:.2e}")
    _, two = hr.reconstruct(final_a, work / "r-np2.h5", count=count, ranks=2)
    orig2, rec2 = h.read_reconstruction(work / "r-np2.h5")
    worst2 = float(np.max(h.relative_l2_per_image(rec2, rec_dir)))
    # One image per forward pass and the sums in image order: the same bits on any world size.
    h.check(np.array_equal(orig2, orig) and np.array_equal(rec2, rec_dir)
            and all(two[k] == from_dir[k] for k in ("count", "l1", "psnr")),
            f"reconstruct on 2 ranks: printed {two} (1 rank: {from_dir}), originals equal "
            f"{np.array_equal(orig2, orig)}, relative L2 to 1 rank {worst2:.3g}")
    h.log(f"reconstruct on 2 ranks: the same bits and printed values as on 1 rank")
    _, small = hr.reconstruct(final_a, work / "r16.h5", resolution=16, count=3)
    orig16, _ = h.read_reconstruction(work / "r16.h5")
    h.check(orig16.shape == (3, 16, 16, IN_CHANNELS) and small["resolution"] == 16,
            f"reconstruct --resolution 16 --count 3: {orig16.shape}, printed {small}")
    _, everything = hr.reconstruct(final_a, work / "r-all.h5", count=1000)
    h.check(everything["count"] == 24, f"reconstruct --count 1000 on a 24-image store printed "
            f"{everything['count']} images")
    hr.reconstruct(final_a, work / "grid.png", count=4)
    grid = work / "grid.png"
    h.check(grid.exists() and grid.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n",
            f"reconstruct --out grid.png wrote no PNG")
    h.log("reconstruct --resolution 16 --count 3, --count 1000 (all 24), --out grid.png: ok")

    # ---- train.init_from = a safetensors file ---------------------------------------------
    last_sample, _ = h.sample_psnr(train_a.output, step=manifest["step"])
    init_fp32 = hr.train(work / "I32", MODEL, stages_images=4,
                         flags={"train.init_from": str(exports["fp32"])})
    first, line = h.sample_psnr(init_fp32.output, step=0)
    h.check(first == last_sample, f"init_from the fp32 export: step-0 sample PSNR {first} dB, "
            f"the exported run's last sample {last_sample} dB (same weights, same images)")
    h.log(f"init_from fp32 export: runs; step-0 sample PSNR {first} dB = the source run's "
          f"last sample")
    f64 = work / "A-f64.safetensors"
    with safe_open(str(exports["fp32"]), framework="np") as f:
        metadata = f.metadata()
    save_file({n: v.astype(np.float64) for n, v in load_file(str(exports["fp32"])).items()},
              str(f64), metadata=metadata)
    init_f64 = hr.train(work / "I64", MODEL, stages_images=4, flags={"train.init_from": str(f64)})
    first64, _ = h.sample_psnr(init_f64.output, step=0)
    h.check(first64 == last_sample, f"init_from an F64 copy: step-0 sample PSNR {first64} dB, "
            f"expected {last_sample} dB (F64 of fp32 values converts back exactly)")
    for dtype in ("bf16", "fp16"):
        init = hr.train(work / f"I-{dtype}", MODEL, stages_images=4,
                        flags={"train.init_from": str(exports[dtype])})
        got, _ = h.sample_psnr(init.output, step=0)
        h.check(abs(got - last_sample) < 0.5, f"init_from the {dtype} export: step-0 PSNR {got}")
        h.log(f"init_from {dtype} export: exit 0, step-0 sample PSNR {got} dB")
    h.log(f"init_from F64 copy: exit 0, step-0 sample PSNR {first64} dB (exact)")

    # ---- damaged and mismatched files: exit 2, one line naming the file -------------------
    good = exports["fp32"]
    header, data = h.read_safetensors_raw(good)
    meta = {k: v for k, v in header.items() if k == "__metadata__"}
    tensors = {k: v for k, v in header.items() if k != "__metadata__"}
    bad = work / "bad"
    bad.mkdir()
    cases = []

    text = bad / "notes.safetensors"
    text.write_text("these are not weights\njust text\n")
    cases.append((text, "a text file"))

    truncated = bad / "truncated.safetensors"
    blob = good.read_bytes()
    header_end = len(blob) - len(data)
    truncated.write_bytes(blob[:header_end + len(data) // 2])
    cases.append((truncated, "an export cut in its data"))

    oversized = bad / "header-too-big.safetensors"
    oversized.write_bytes((len(blob) + 1000).to_bytes(8, "little") + blob[8:])
    cases.append((oversized, "an 8-byte header size larger than the file"))

    overlap = bad / "overlap.safetensors"
    order = sorted(tensors, key=lambda n: tensors[n]["data_offsets"][0])
    first_name, second_name = next(
        (a, b) for a, b in zip(order, order[1:])
        if tensors[a]["data_offsets"][1] - tensors[a]["data_offsets"][0] >= 8)
    hand = {k: dict(v) for k, v in tensors.items()}
    begin, end = hand[second_name]["data_offsets"]
    hand[second_name]["data_offsets"] = [begin - 4, end - 4]  # 4 bytes inside its neighbour
    h.write_safetensors_raw(overlap, dict(meta, **hand), data)
    try:
        safetensors.deserialize(overlap.read_bytes())
        raise h.TestFailure("the hand-made overlapping file is accepted by the safetensors "
                            "library itself; the test builds it wrongly")
    except h.TestFailure:
        raise
    except Exception as error:  # the library rejects it, as ladder must
        h.log(f"  (safetensors rejects the overlapping file too: {str(error)[:80]})")
    cases.append((overlap, f"overlapping data_offsets ({second_name} 4 bytes into {first_name})"))

    weights = load_file(str(good))
    extra = bad / "extra-name.safetensors"
    save_file(dict(weights, **{"encoder.blocks.99.conv.weight": np.zeros((8, 8, 3, 3),
                                                                         np.float32)}),
              str(extra), metadata=metadata)
    cases.append((extra, "an extra tensor name"))

    missing = bad / "missing-name.safetensors"
    dropped = "decoder.blocks.0.conv.bias"
    save_file({n: v for n, v in weights.items() if n != dropped}, str(missing), metadata=metadata)
    cases.append((missing, f"a missing tensor ({dropped})"))

    wrong = bad / "wrong-shape.safetensors"
    name = next(n for n in sorted(weights) if weights[n].ndim == 4 and
                weights[n].transpose(0, 2, 3, 1).shape != weights[n].shape)
    save_file(dict(weights, **{name: np.ascontiguousarray(weights[name].transpose(0, 2, 3, 1))}),
              str(wrong), metadata=metadata)  # ladder's own layout: the classic mistake
    cases.append((wrong, f"one wrong shape ({name} in (Cout, kh, kw, Cin))"))

    h.log("init_from bad files (exit 2, one line naming the file):")
    for index, (path, what) in enumerate(cases):
        expect_rejected(hr, path, work / f"X{index}", what)

    h.log(f"train A (10 steps, {sum(v.size for v in reference.values())} parameters): "
          f"{train_a.seconds:.1f} s")


if __name__ == "__main__":
    h.main(body, h.Harness("ladder export / reconstruct / init_from with safetensors"))
