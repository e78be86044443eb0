#!/usr/bin/env bash
# Trains the demo model on a GPU machine that has only a pip PyTorch (LibTorch + CUDA), cmake,
# ninja and g++ — no FFmpeg, OpenCV, Qt or apt. Builds the core-only dforce, trains the latent
# autoencoder and then the latent transformer from a dataset built beforehand on a full machine,
# evaluates, and copies the results to $OUT (or out/).
#
# On the full machine, first (see models/README.md):
#   packaging/install-deps.sh --data
#   build/app/dforce dataset build -o data/broad.safetensors
# then carry data/ to the GPU machine and run:
#   packaging/gpu-train.sh [ae-minutes=3] [minutes=8] [data=data/broad.safetensors]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
ae_minutes=${1:-3}
minutes=${2:-8}
data=${3:-$root/data/broad.safetensors}
out=${OUT:-$root/out}
mkdir -p "$out"
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
cmake -S "$root" -B "$root/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DDFS_WITH_MEDIA=OFF -DDFS_BUILD_UI=OFF -DDFS_BUILD_TESTS=OFF -DCMAKE_PREFIX_PATH="$prefix"
cmake --build "$root/build-gpu" --target dforce
dforce="$root/build-gpu/app/dforce"
"$dforce" --version | tee "$out/version.txt"
"$dforce" ae train --data "$data" -o "$out/ae.safetensors" --minutes "$ae_minutes" --batch 64 \
  --crop 192 2>&1 | tee "$out/ae_train.log"
"$dforce" ae eval "$out/ae.safetensors" "$data" --json "$out/ae_eval.json" 2>&1 | tee "$out/ae_eval.log"
"$dforce" train --data "$data" --config latent-gpu --autoencoder "$out/ae.safetensors" \
  -o "$out/demo.safetensors" --minutes "$minutes" 2>&1 | tee "$out/train.log"
"$dforce" eval "$out/demo.safetensors" --data "$data" \
  --clips vtest,Megamind,visp_mire2,tree,visp_mbt_cube --json "$out/eval.json" \
  --sheet "$out/demo_contact_sheet.png" 2>&1 | tee "$out/eval.log"
echo "gpu-train: results in $out"
