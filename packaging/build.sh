#!/usr/bin/env bash
# Configures and builds into build/ (Release, Ninja, ccache when present, torch PCH).
# Extra arguments go to CMake's configure step, e.g. -DDFS_BUILD_UI=OFF.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DFS_BUILD_DIR:-$root/build}
jobs=${DFS_JOBS:-$(nproc)}
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@"
cmake --build "$build" -j "$jobs"
