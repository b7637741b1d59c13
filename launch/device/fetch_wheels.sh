#!/usr/bin/env bash
# The lent GPU machines have python3 with torch and numpy but no MONAI, and cannot download
# anything. Run this HERE (a machine that reaches PyPI): it downloads the pure-Python wheels
# the PyTorch baseline needs (MONAI, plus einops, which MONAI's attention blocks import) into
# .whl/, which git ignores and the device tool carries (carry: [".whl"]). There,
# launch/device/run_bench_torch.sh installs them into /tmp/site.
# Usage: bash launch/device/fetch_wheels.sh          (MONAI_VERSION=1.6.1 by default)
set -euo pipefail
cd "$(dirname "$0")/../.."

monai_version=${MONAI_VERSION:-1.6.1}   # needs torch>=2.8 and numpy: fine with torch 2.11
wheels=.whl

# .whl/ must stay out of git (it is carried to the device as an ignored path).
exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
grep -qxF '.whl/' "$exclude" 2>/dev/null || echo '.whl/' >> "$exclude"

download() {
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --platform any \
    -q -d "$wheels" "$@"
}

mkdir -p "$wheels"
download "monai==$monai_version" einops

# What MONAI requires beyond torch and numpy (which the GPU machine has) is fetched too.
monai_wheel=$(ls "$wheels"/monai-"$monai_version"-*.whl)
requires=$(unzip -p "$monai_wheel" '*.dist-info/METADATA' | sed -n 's/^Requires-Dist: //p' | grep -v 'extra ==' || true)
echo "monai $monai_version requires: $(echo "$requires" | paste -sd ' ' -)"
for requirement in $(echo "$requires" | sed 's/[ ;<>=!~\[].*//' | tr 'A-Z_' 'a-z-'); do
  case "$requirement" in
    torch|numpy) ;;
    *) echo "fetching $requirement (not on the GPU machine)"; download "$requirement" ;;
  esac
done

ls -l "$wheels"
echo "fetch_wheels: $(find "$wheels" -type f -name "*.whl" | wc -l) wheels in $wheels ($(du -sh "$wheels" | cut -f1)); carry \".whl\" to the device"
