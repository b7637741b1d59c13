# Why this file exists: the helpers shared by the Python interop tests (check_export.py,
# monai_parity.py): a temporary work directory, running `ladder` (pack, train, export,
# reconstruct; optionally under mpirun) with a time limit, reading a checkpoint's fp32 master
# weights straight from its HDF5 shards with h5py, ladder -> PyTorch layouts, the reference
# fp32 -> bf16/fp16 roundings, raw safetensors headers (to build damaged files) and the
# PASS / FAIL / SKIPPED protocol (exit 0 / 1 / 77). Needs numpy and h5py (installed by
# launch/install_deps.sh); torch and monai are imported only by monai_parity.py.
import argparse
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np

EXIT_SKIPPED = 77  # CTest SKIP_RETURN_CODE

# The tiny model of the tests (ladder's model.* keys).
TINY_MODEL = {"channels": "8,16", "res_blocks": 1, "norm_groups": 4, "latent_channels": 2}
TINY_ATTENTION = dict(TINY_MODEL, attention_levels="0,1", mid_attention="true")

# The rest of a tiny CPU run (section.key -> value); a test overrides what it needs.
BASE_TRAIN = {
    "run.device": "cpu", "run.seed": 3, "run.log_every": 1, "run.sample_every": 0,
    "stages.resolutions": 32, "stages.images": 40, "train.batch": 4, "train.micro_batch": 2,
}

RECONSTRUCT_LINE = re.compile(
    r"reconstruct: (\d+) images at (\d+)x(\d+) from (.*): mean L1 ([-+0-9.eE]+|nan|inf), "
    r"PSNR ([-+0-9.eE]+|nan|inf) dB -> (.*)$", re.M)


class TestFailure(Exception):
    pass


class Skipped(Exception):
    pass


def check(condition, message):
    if not condition:
        raise TestFailure(message)


def log(message):
    print(message, flush=True)


def model_flags(model):
    """{'channels': '8,16', ...} -> ['--model.channels', '8,16', ...]"""
    flags = []
    for key, value in model.items():
        flags += [f"--model.{key}", str(value)]
    return flags


def indent(text, lines=30):
    rows = text.rstrip("\n").splitlines()[-lines:]
    return "\n".join("    | " + row for row in rows)


class Result:
    def __init__(self, argv, code, output, seconds):
        self.argv, self.code, self.output, self.seconds = argv, code, output, seconds

    def lines(self):
        return [line for line in self.output.splitlines() if line.strip()]


class Harness:
    def __init__(self, description, prefix="ladder-interop-"):
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--ladder", required=True, help="the ladder binary")
        parser.add_argument("--mpiexec", default="mpiexec")
        parser.add_argument("--keep", action="store_true", help="keep the work directory")
        self.args = parser.parse_args()
        self.ladder_path = str(Path(self.args.ladder).resolve())
        self.mpiexec = self.args.mpiexec
        self.work = Path(tempfile.mkdtemp(prefix=prefix))
        self.env = dict(os.environ)
        self.env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        self.env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
        self.env.setdefault("OMP_NUM_THREADS", "1")
        for name in [n for n in self.env if n.startswith("LADDER_TEST_")]:
            del self.env[name]
        self.store = None
        self.timings = []  # (label, seconds)

    # ---- running ---------------------------------------------------------------------------
    def run(self, argv, expect=0, timeout=120, label=None):
        """Runs argv (cwd = the work directory), stdout and stderr merged; checks the exit
        code unless expect is None."""
        argv = [str(a) for a in argv]
        label = label or " ".join(Path(a).name if i == 0 else a for i, a in enumerate(argv[:3]))
        started = time.monotonic()
        try:
            proc = subprocess.run(argv, cwd=self.work, env=self.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True, errors="replace",
                                  timeout=timeout, start_new_session=True)
        except subprocess.TimeoutExpired as error:
            raise TestFailure(f"{label}: did not end within {timeout} s: {' '.join(argv)}\n"
                              f"{indent(error.output or '')}")
        seconds = time.monotonic() - started
        self.timings.append((label, seconds))
        result = Result(argv, proc.returncode, proc.stdout, seconds)
        check(expect is None or result.code == expect,
              f"{label}: exit {result.code}, expected {expect}: {' '.join(argv)}\n"
              f"{indent(result.output)}")
        return result

    def ladder(self, *args, ranks=1, **kwargs):
        argv = [self.ladder_path] + list(args)
        if ranks > 1:
            argv = [self.mpiexec, "--oversubscribe", "--bind-to", "none", "-np", str(ranks)] + argv
        kwargs.setdefault("label", f"ladder {args[0]}" + (f" on {ranks} ranks" if ranks > 1 else ""))
        return self.run(argv, **kwargs)

    # ---- commands --------------------------------------------------------------------------
    def pack(self, images=24, levels="16,32", seed=1, name="s.h5"):
        path = self.work / name
        self.ladder("pack", "--synthetic", images, "--out", path, "--levels", levels,
                    "--seed", seed)
        self.store = path
        return path

    def train_args(self, run_dir, model=TINY_MODEL, store=None, **overrides):
        """overrides: section_key=value (e.g. train_batch=6), or a dict via flags=."""
        flags = dict(BASE_TRAIN)
        flags["data.store"] = str(store or self.store)
        flags.update(overrides.pop("flags", {}))
        for key, value in overrides.items():
            flags[key.replace("_", ".", 1)] = value
        argv = ["train", "--config", "/dev/null", "--run.dir", str(run_dir)]
        for key, value in flags.items():
            argv += [f"--{key}", str(value)]
        return argv + model_flags(model)

    def train(self, run_dir, model=TINY_MODEL, ranks=1, expect=0, timeout=120, extra=(),
              **overrides):
        argv = self.train_args(run_dir, model, **overrides) + list(extra)
        return self.ladder(*argv, ranks=ranks, expect=expect, timeout=timeout,
                           label=f"train {Path(run_dir).name}"
                                 + (f" on {ranks} ranks" if ranks > 1 else ""))

    def export(self, checkpoint, out, dtype="fp32", expect=0):
        return self.ladder("export", "--checkpoint", checkpoint, "--out", out, "--dtype", dtype,
                           expect=expect, label=f"export {dtype} {Path(out).name}")

    def reconstruct(self, checkpoint, out, store=None, resolution=None, count=None, flags=(),
                    ranks=1, expect=0, timeout=120):
        """Runs `ladder reconstruct`; returns (result, {count, resolution, l1, psnr, out})
        parsed from its summary line (checked to be printed exactly once)."""
        argv = ["reconstruct", "--checkpoint", checkpoint, "--store", store or self.store,
                "--out", out]
        if resolution is not None:
            argv += ["--resolution", resolution]
        if count is not None:
            argv += ["--count", count]
        result = self.ladder(*(argv + list(flags)), ranks=ranks, expect=expect, timeout=timeout,
                             label=f"reconstruct {Path(out).name}"
                                   + (f" on {ranks} ranks" if ranks > 1 else ""))
        if expect != 0:
            return result, None
        found = RECONSTRUCT_LINE.findall(result.output)
        check(len(found) == 1, f"reconstruct: expected one summary line 'reconstruct: N images "
              f"at RxR from ...: mean L1 X, PSNR Y dB -> OUT', found {len(found)}:\n"
              f"{indent(result.output)}")
        n, r1, r2, source, l1, psnr, target = found[0]
        check(r1 == r2, f"reconstruct: non-square resolution {r1}x{r2}")
        return result, {"count": int(n), "resolution": int(r1), "l1": float(l1),
                        "psnr": float(psnr), "source": source, "out": target.strip()}

    # ---- cleanup ---------------------------------------------------------------------------
    def cleanup(self, failed):
        if self.args.keep or failed:
            log(f"work directory kept: {self.work}")
        else:
            shutil.rmtree(self.work, ignore_errors=True)

    def print_timings(self):
        total = sum(s for _, s in self.timings)
        log(f"timings: {len(self.timings)} ladder commands, {total:.1f} s in all; slowest: "
            + ", ".join(f"{label} {s:.1f} s"
                        for label, s in sorted(self.timings, key=lambda t: -t[1])[:5]))


# ---- run directories and checkpoints -----------------------------------------------------
def checkpoint_dirs(run_dir):
    directory = Path(run_dir) / "checkpoints"
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir()
                  if p.is_dir() and re.fullmatch(r"step-\d{8}", p.name))


def latest_checkpoint(run_dir):
    path = Path(run_dir) / "checkpoints" / "latest"
    check(path.exists(), f"{run_dir}: no checkpoints/latest")
    step_dir = path.parent / path.read_text().strip()
    check(step_dir.is_dir(), f"{path} names {step_dir.name}, which does not exist")
    return step_dir


def read_manifest(step_dir):
    return json.loads((Path(step_dir) / "manifest.json").read_text())


def read_master(step_dir):
    """(manifest, flat fp32 master weights of length `count`) assembled with h5py from every
    shard: each shard's /ranges (K, 2) int64 [begin, end) global offsets and /master (fp32,
    its ranges' values concatenated in order). Checks that the shards cover [0, count) once."""
    step_dir = Path(step_dir)
    manifest = read_manifest(step_dir)
    padded = int(manifest.get("padded_count", manifest["count"]))
    count = int(manifest["count"])
    flat = np.full(padded, np.nan, dtype=np.float32)
    owner = np.zeros(padded, dtype=np.int32)
    shards = sorted(step_dir.glob("shard-*.h5"))
    check(len(shards) == int(manifest["world"]),
          f"{step_dir}: {len(shards)} shard files, manifest world {manifest['world']}")
    for shard in shards:
        with h5py.File(shard, "r") as f:
            ranges = np.asarray(f["ranges"][...])
            master = np.asarray(f["master"][...])
        check(ranges.dtype == np.int64 and ranges.ndim == 2 and ranges.shape[1] == 2,
              f"{shard}: /ranges is {ranges.dtype} {ranges.shape}, expected int64 (K, 2)")
        check(master.dtype == np.float32 and master.ndim == 1,
              f"{shard}: /master is {master.dtype} {master.shape}, expected float32 (n,)")
        sizes = ranges[:, 1] - ranges[:, 0]
        check(np.all(sizes >= 0) and int(sizes.sum()) == master.size,
              f"{shard}: ranges {ranges.tolist()} hold {int(sizes.sum())} values, /master "
              f"has {master.size}")
        position = 0
        for begin, end in ranges.tolist():
            check(0 <= begin <= end <= padded, f"{shard}: range [{begin}, {end}) outside "
                  f"[0, {padded})")
            flat[begin:end] = master[position:position + end - begin]
            owner[begin:end] += 1
            position += end - begin
    check(np.all(owner[:count] == 1), f"{step_dir}: shards cover parameters 0..{count} "
          f"{int(np.sum(owner[:count] == 0))} missing, {int(np.sum(owner[:count] > 1))} twice")
    return manifest, flat[:count]


def ladder_to_pytorch(array):
    """Ladder layout -> PyTorch: conv (Cout, kh, kw, Cin) -> (Cout, Cin, kh, kw); linear
    (out, in) and vectors unchanged."""
    if array.ndim == 4:
        return np.ascontiguousarray(array.transpose(0, 3, 1, 2))
    return array


def checkpoint_tensors(step_dir):
    """(manifest, {name: fp32 array in PyTorch layout}) from the shards' master weights."""
    manifest, flat = read_master(step_dir)
    tensors = {}
    for param in manifest["params"]:
        offset, numel, shape = int(param["offset"]), int(param["numel"]), param["shape"]
        check(int(np.prod(shape)) == numel, f"manifest: {param['name']} shape {shape} but "
              f"numel {numel}")
        tensors[param["name"]] = ladder_to_pytorch(flat[offset:offset + numel].reshape(shape))
    return manifest, tensors


# ---- reference roundings ------------------------------------------------------------------
def bf16_bits(values):
    """fp32 -> bf16 bit patterns (uint16), round to nearest, ties to even (finite inputs)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def fp16_bits(values):
    return np.ascontiguousarray(values, dtype=np.float32).astype(np.float16).view(np.uint16)


def bf16_to_fp32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


# ---- raw safetensors -----------------------------------------------------------------------
def read_safetensors_raw(path):
    """(header dict, data bytes) of a safetensors file, parsed by hand (to build damaged
    copies; the tests read good files with the safetensors library)."""
    blob = Path(path).read_bytes()
    (size,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8:8 + size])
    return header, blob[8 + size:]


def write_safetensors_raw(path, header, data):
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # the format pads the header with spaces to 8 bytes
    Path(path).write_bytes(struct.pack("<Q", len(text)) + text + data)


# ---- images --------------------------------------------------------------------------------
def store_images(store, resolution, count):
    """The first `count` images of a ladder image store's level, in the model range as ladder
    feeds them: uint8 / 127.5 - 1, NHWC float32."""
    with h5py.File(store, "r") as f:
        images = np.asarray(f[f"levels/{resolution}"][:count])
    check(images.dtype == np.uint8, f"{store}: levels/{resolution} is {images.dtype}")
    return images.astype(np.float32) / np.float32(127.5) - np.float32(1)


def read_reconstruction(path):
    with h5py.File(path, "r") as f:
        check("originals" in f and "reconstructions" in f,
              f"{path}: datasets {list(f)}, expected originals and reconstructions")
        originals = np.asarray(f["originals"][...])
        reconstructions = np.asarray(f["reconstructions"][...])
    for name, array in (("originals", originals), ("reconstructions", reconstructions)):
        check(array.dtype == np.float32 and array.ndim == 4,
              f"{path}: /{name} is {array.dtype} {array.shape}, expected float32 (N, R, R, C)")
    check(originals.shape == reconstructions.shape,
          f"{path}: originals {originals.shape} vs reconstructions {reconstructions.shape}")
    return originals, reconstructions


def psnr(a, b):
    """10 log10(4 / MSE) over every pixel (model range [-1, 1], peak-to-peak 2), in float64."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return 10.0 * np.log10(4.0 / mse) if mse > 0 else float("inf")


def relative_l2_per_image(actual, expected):
    a = np.asarray(actual, np.float64).reshape(len(actual), -1)
    e = np.asarray(expected, np.float64).reshape(len(expected), -1)
    return np.linalg.norm(a - e, axis=1) / np.maximum(np.linalg.norm(e, axis=1), 1e-30)


def sample_psnr(output, step=0):
    """The PSNR of the first `sample .../step-NNNNNNNN-...: ... PSNR X dB` line of a train log."""
    pattern = re.compile(rf"^sample .*step-{step:08d}.*PSNR ([-+0-9.eE]+|nan|inf) dB", re.M)
    found = pattern.search(output)
    check(found is not None, f"train log has no 'sample ...step-{step:08d}... PSNR X dB' "
          f"line:\n{indent(output)}")
    return float(found.group(1)), found.group(0)


# ---- main ----------------------------------------------------------------------------------
def main(body, harness):
    """Runs body(harness); prints PASS, FAIL or SKIPPED; exit code 0, 1 or 77."""
    started = time.monotonic()
    failed, code = True, 1

    def interrupted(signum, _frame):  # CTest's timeout, Ctrl-C: still clean up
        raise TestFailure(f"interrupted by {signal.Signals(signum).name}")

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, interrupted)
    verdict = "FAIL"
    try:
        body(harness)
        failed, code, verdict = False, 0, "PASS"
    except Skipped as reason:
        failed, code, verdict = False, EXIT_SKIPPED, "SKIPPED"
        log(f"SKIPPED: {reason}")
    except TestFailure as error:
        log(f"FAIL: {error}")
    except Exception:
        import traceback
        traceback.print_exc()
        log("FAIL: the test itself raised (see above)")
    finally:
        harness.cleanup(failed)
    if harness.timings:
        harness.print_timings()
    log(f"{verdict} in {time.monotonic() - started:.1f} s")
    sys.exit(code)
