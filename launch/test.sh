#!/usr/bin/env bash
# The second command of the README (and what CI runs): installs what is missing, builds
# everything, runs the whole CTest suite. GPU tests (label gpu) skip cleanly without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash launch/install_deps.sh test
bash launch/build.sh
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
