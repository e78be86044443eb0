#!/usr/bin/env bash
# Trains the demo model on a GPU machine that has only a pip PyTorch (LibTorch + CUDA), cmake,
# ninja and g++ — no FFmpeg, OpenCV, Qt or apt. Builds the core-only dforce, trains from a
# dataset packed beforehand on a full machine, and copies the results to $OUT (or out/).
#
# On the full machine, first:
#   build/app/dforce dataset pack /usr/share/doc/opencv-doc/examples/data/{vtest,Megamind,tree}.avi \
#       --size 64x48 --fit letterbox -o data/demo_data.safetensors
# then carry data/ to the GPU machine and run:
#   packaging/gpu-train.sh [minutes=10] [data=data/demo_data.safetensors]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
minutes=${1:-10}
data=${2:-$root/data/demo_data.safetensors}
out=${OUT:-$root/out}
mkdir -p "$out"
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S "$root" -B "$root/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DDFS_WITH_MEDIA=OFF -DDFS_BUILD_UI=OFF -DDFS_BUILD_TESTS=OFF -DCMAKE_PREFIX_PATH="$prefix"
cmake --build "$root/build-gpu" --target dforce
dforce="$root/build-gpu/app/dforce"
"$dforce" --version | tee "$out/version.txt"
"$dforce" train --data "$data" --config demo -o "$out/demo.safetensors" --minutes "$minutes" \
  2>&1 | tee "$out/train.log"
"$dforce" eval "$out/demo.safetensors" --data "$data" --json "$out/eval.json" 2>&1 | tee "$out/eval.log"
echo "gpu-train: results in $out"
