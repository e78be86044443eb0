#!/usr/bin/env bash
# Installs what is missing, builds, and starts Diffusion Forcing Studio on the shipped demo
# model and sample clip. Without a display it runs the command-line demo instead.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DFS_BUILD_DIR:-$root/build}
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh"
model="$root/models/demo.safetensors"
clip="$root/resources/samples/vtest_clip.mp4"
if [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ] && [ -x "$build/app/dfstudio" ]; then
  exec "$build/app/dfstudio" --model "$model" --clip "$clip" "$@"
fi
echo "run.sh: no display; running the command-line demo"
out="$root/out"
mkdir -p "$out"
"$build/app/dforce" --version
"$build/app/dforce" extend "$clip" --model "$model" --frames 16 -o "$out/demo_extended.mp4"
echo "run.sh: wrote $out/demo_extended.mp4 (the sample clip extended by 16 generated frames)"
