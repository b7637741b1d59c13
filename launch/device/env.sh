# Sourced by the launch/device/run_*.sh scripts ON the GPU machine: puts the bundle of
# launch/device/bundle.sh to use. It unpacks Open MPI at / when the machine has none (the
# machines are bare and lent whole; nothing else is written outside the repository), adds
# the bundled libraries and the machine's CUDA stack to the library path, and sets what
# mpirun needs as root on one node without ssh (the `isolated` launcher).
[ -f .device/bundle.tar.xz ] || { echo "no .device/bundle.tar.xz: run launch/device/bundle.sh here first and carry .device" >&2; return 2; }
bundle=/tmp/ladder-device
if [ ! -d "$bundle/bin" ]; then
  mkdir -p "$bundle" && tar -xJf .device/bundle.tar.xz -C "$bundle" || return 2
fi
if ! command -v mpirun >/dev/null 2>&1; then
  tar -xzf "$bundle/openmpi.tar.gz" -C / && ldconfig 2>/dev/null || true
fi
for dir in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/lib/x86_64-linux-gnu /usr/local/nvidia/lib64; do
  [ -d "$dir" ] && LD_LIBRARY_PATH="${LD_LIBRARY_PATH:-}:$dir"
done
export LD_LIBRARY_PATH="$bundle/lib:${LD_LIBRARY_PATH#:}"
export PATH="$bundle/bin:$PATH"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_plm=isolated
