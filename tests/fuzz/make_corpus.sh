#!/usr/bin/env bash
# Why this file exists: regenerates the seed corpora of the fuzz targets (tests/fuzz/corpus/
# <target>/seed-*) from real files made by ladder itself (pack, a tiny training run, encode,
# export) and by the Python ecosystem it reads (h5py datasets, safetensors, Pillow images).
# Seeds stay tiny (a few KB each) so that CTest replays them in seconds and libFuzzer mutates
# them fast. regression-* inputs (crashes found and fixed) are never touched.
# Usage: bash tests/fuzz/make_corpus.sh [LADDER_BINARY]   (default build-replay/ladder,
# then build/ladder). Needs python3 with numpy, h5py, safetensors and Pillow.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
ladder="${1:-}"
[ -z "$ladder" ] && for candidate in build-replay/ladder build/ladder; do
  [ -x "$candidate" ] && { ladder="$root/$candidate"; break; }
done
[ -x "$ladder" ] || { echo "make_corpus.sh: no ladder binary (build one, or pass its path)" >&2; exit 2; }
corpus="$root/tests/fuzz/corpus"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
targets=(config image_store latent_store checkpoint_manifest checkpoint safetensors image_decode run_directory nifti)
for target in "${targets[@]}"; do mkdir -p "$corpus/$target"; rm -f "$corpus/$target"/seed-*; done
sep=$'\n%%\n'
quiet() { "$@" >/dev/null 2>&1 || { echo "make_corpus.sh: failed: $*" >&2; "$@"; exit 1; }; }

# ---- images: tiny PNGs and JPEGs of every kind ladder decodes (Pillow), and pack inputs.
mkdir -p images
python3 - <<'PY'
import numpy as np
from PIL import Image
rng = np.random.default_rng(0)
def pixels(h, w, c):
    return rng.integers(0, 256, (h, w, c) if c > 1 else (h, w), dtype=np.uint8)
Image.fromarray(pixels(9, 7, 3), "RGB").save("images/rgb.png")
Image.fromarray(pixels(6, 6, 1), "L").save("images/gray.png")
Image.fromarray(pixels(5, 8, 4), "RGBA").save("images/rgba.png")
Image.fromarray(pixels(8, 8, 3), "RGB").convert("P", palette=Image.ADAPTIVE, colors=8).save("p-palette.png")
Image.fromarray(pixels(4, 4, 1), "L").convert("1").save("p-bilevel.png")
Image.fromarray((rng.integers(0, 65536, (5, 5))).astype(np.uint16)).save("p-gray16.png")
Image.fromarray(pixels(8, 8, 3), "RGB").save("p-interlaced.png", interlace=1)
Image.fromarray(pixels(8, 8, 3), "RGB").save("images/rgb.jpg", quality=90)
Image.fromarray(pixels(8, 8, 1), "L").save("j-gray.jpg", quality=75)
Image.fromarray(pixels(16, 16, 3), "RGB").save("j-progressive.jpg", quality=60, progressive=True)
Image.fromarray(pixels(8, 8, 4), "RGBA").convert("CMYK").save("j-cmyk.jpg", quality=80)
PY
for file in images/* p-*.png j-*.jpg; do cp "$file" "$corpus/image_decode/seed-$(basename "$file")"; done

# ---- image stores: synthetic and packed format-1 stores, and h5py's plain datasets.
quiet "$ladder" pack --synthetic 2 --out synthetic.h5 --levels 4,8 --seed 1
quiet "$ladder" pack --images images --out packed.h5 --levels 4 --channels 1
python3 - <<'PY'
import h5py, numpy as np
images = np.random.default_rng(1).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
with h5py.File("foreign.h5", "w") as f:
    f.create_dataset("images", data=images)
with h5py.File("foreign-gzip.h5", "w") as f:
    f.create_dataset("images", data=images, chunks=(1, 8, 8, 3), compression="gzip", shuffle=True)
PY
for file in synthetic packed foreign foreign-gzip; do cp "$file.h5" "$corpus/image_store/seed-$file.h5"; done

# ---- a tiny autoencoder run (1 rank, EMA on) and a 2-rank one: checkpoints, run directory.
tiny=(--config "$root/configs/quickstart.ini" --data.store synthetic.h5 --model.channels 4,4
      --model.norm_groups 2 --model.latent_channels 2 --model.res_blocks 1
      --stages.resolutions 4,8 --stages.images 4,4 --stages.lr_scale 1 --train.batch 2
      --train.micro_batch 2,1 --train.warmup_images 0 --run.sample_every 0 --run.log_every 1
      --checkpoint.keep 1 --log.tensorboard false --log.progress lines)
quiet "$ladder" train "${tiny[@]}" --run.dir run --ema.decay 0.9
step=$(cat run/checkpoints/latest)
cp "run/checkpoints/$step/manifest.json" "$corpus/checkpoint_manifest/seed-world1-ema.json"
{ cat "run/checkpoints/$step/manifest.json"; printf '%s' "$sep";
  cat "run/checkpoints/$step/shard-00000-of-00001.h5"; } > "$corpus/checkpoint/seed-world1-ema"
{ cat run/config.ini; printf '%s' "$sep"; cat run/metrics.jsonl; printf '%s' "$sep";
  cat run/checkpoints/latest; } > "$corpus/run_directory/seed-run"
# The adversarial loss from step 2 on (BatchNorm): a manifest with buffers.
quiet "$ladder" train "${tiny[@]}" --run.dir run-adv --adversarial.weight 0.1 --adversarial.start_step 2 \
  --adversarial.layers 1 --adversarial.channels 4
step_adv=$(cat run-adv/checkpoints/latest)
cp "run-adv/checkpoints/$step_adv/manifest.json" "$corpus/checkpoint_manifest/seed-world1-adversarial.json"
{ cat "run-adv/checkpoints/$step_adv/manifest.json"; printf '%s' "$sep";
  cat "run-adv/checkpoints/$step_adv/shard-00000-of-00001.h5"; } > "$corpus/checkpoint/seed-world1-adversarial"
if command -v mpirun >/dev/null; then
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 \
    quiet mpirun --oversubscribe -np 2 "$ladder" train "${tiny[@]}" --run.dir run2 --train.zero_stage 2 --train.micro_batch 1
  step2=$(cat run2/checkpoints/latest)
  cp "run2/checkpoints/$step2/manifest.json" "$corpus/checkpoint_manifest/seed-world2-zero2.json"
  { cat "run2/checkpoints/$step2/manifest.json"; printf '%s' "$sep";
    cat "run2/checkpoints/$step2/shard-00000-of-00002.h5"; printf '%s' "$sep";
    cat "run2/checkpoints/$step2/shard-00001-of-00002.h5"; } > "$corpus/checkpoint/seed-world2-zero2"
fi

# ---- a latent store (ladder encode with the tiny autoencoder).
quiet "$ladder" encode --checkpoint "run/checkpoints/$step" --store synthetic.h5 --out latents.h5
cp latents.h5 "$corpus/latent_store/seed-latents.h5"

# ---- safetensors: ladder's export (fp32, bf16), the golden fixtures, and one with every
# dtype ladder converts and a config in __metadata__.
quiet "$ladder" export --checkpoint "run/checkpoints/$step" --out export.safetensors
quiet "$ladder" export --checkpoint "run/checkpoints/$step" --out export-bf16.safetensors --dtype bf16 --ema
cp export.safetensors export-bf16.safetensors "$corpus/safetensors/"
for file in "$corpus/safetensors"/export*.safetensors; do mv "$file" "$corpus/safetensors/seed-$(basename "$file")"; done
for file in schedulers_golden unet_tiny_golden; do
  cp "$root/tests/fixtures/$file.safetensors" "$corpus/safetensors/seed-$file.safetensors"
done
python3 - "$corpus/safetensors/seed-dtypes.safetensors" <<'PY'
import sys, json, numpy as np
from safetensors.numpy import save_file
rng = np.random.default_rng(2)
tensors = {"conv.weight": rng.standard_normal((2, 3, 3, 3)).astype(np.float16),
           "conv.bias": rng.standard_normal(2).astype(np.float64),
           "linear.weight": rng.standard_normal((2, 2)).astype(np.float32)}
save_file(tensors, sys.argv[1], metadata={"config": json.dumps({"model.kind": "autoencoder_kl"})})
PY

# ---- configs: the shipped INI files, and two with flags that override them.
for file in "$root"/configs/*.ini; do cp "$file" "$corpus/config/seed-$(basename "$file")"; done
{ cat "$root/configs/quickstart.ini"; printf '%s' "$sep";
  printf '%s\n' --train.lr 0.01 --stages.images 10,20 --train.micro_batch auto; } > "$corpus/config/seed-flags"
{ cat run/config.ini; printf '%s' "$sep"; printf '%s\n' --model.kind diffusion_unet --train.zero_stage 1; } \
  > "$corpus/config/seed-resolved-flags"

# ---- NIfTI volumes: tiny NIfTI-1 files written field by field (float32, int16 with scaling,
# gzip, a 4-D series), as `ladder pack --nifti` reads them.
python3 - "$corpus/nifti" <<'PY'
import gzip, struct, sys
def nifti(nx, ny, nz, datatype, bitpix, data, slope=0.0, inter=0.0, frames=1):
    header = bytearray(348)
    struct.pack_into('<i', header, 0, 348)
    struct.pack_into('<8h', header, 40, 4 if frames > 1 else 3, nx, ny, nz, frames, 1, 1, 1)
    struct.pack_into('<2h', header, 70, datatype, bitpix)
    struct.pack_into('<8f', header, 76, 1, 1, 1, 1, 1, 1, 1, 1)
    struct.pack_into('<3f', header, 108, 352.0, slope, inter)
    header[344:348] = b'n+1\0'
    return bytes(header) + b'\0' * 4 + data
out = sys.argv[1] + '/'
f32 = b''.join(struct.pack('<f', (i % 7) * 10.0 - 20) for i in range(4 * 3 * 2))
open(out + 'seed-float32-4x3x2.nii', 'wb').write(nifti(4, 3, 2, 16, 32, f32))
i16 = b''.join(struct.pack('<h', (i * 37) % 300) for i in range(3 * 3 * 3))
open(out + 'seed-int16-scaled-3x3x3.nii', 'wb').write(nifti(3, 3, 3, 4, 16, i16, 1.0, -1024.0))
open(out + 'seed-float32-gzip.nii.gz', 'wb').write(gzip.compress(nifti(4, 3, 2, 16, 32, f32), mtime=0))
open(out + 'seed-uint8-4d.nii', 'wb').write(nifti(2, 2, 2, 2, 8, bytes(range(16)), frames=2))
PY

chmod -R a+rX "$corpus"
du -sh "$corpus"; for target in "${targets[@]}"; do echo "$target: $(ls "$corpus/$target" | wc -l) files"; done
