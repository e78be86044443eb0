#!/usr/bin/env bash
# The GPU path's check, for a machine that has only a pip PyTorch (LibTorch + CUDA), cmake,
# ninja and g++ — no FFmpeg, OpenCV, Qt or apt: builds the core-only dforce, runs the fast
# [gpu] bench of the shipped model (batch 1 and windows batched; bf16 and fp32; with and
# without CUDA graphs), the engine tests that need CUDA, and a short training run, and copies
# every log and JSON report to $OUT (or out/).
#   packaging/gpu-bench.sh [train-steps=50]
# Run it once with a timeout that leaves room for a rerun; everything it writes is in $OUT.
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
train_steps=${1:-50}
out=${OUT:-$root/out}
mkdir -p "$out"
log() { echo "gpu-bench: $*" | tee -a "$out/summary.txt"; }
prefix=$(python3 -c 'import torch;print(torch.utils.cmake_prefix_path)')
start=$(date +%s)
cmake -S "$root" -B "$root/build-gpu" -G Ninja -DCMAKE_BUILD_TYPE=Release \
      -DDFS_WITH_MEDIA=OFF -DDFS_BUILD_UI=OFF -DDFS_BUILD_TESTS=ON -DCMAKE_PREFIX_PATH="$prefix" \
      > "$out/configure.log" 2>&1 || { log "configure failed (configure.log)"; exit 1; }
cmake --build "$root/build-gpu" --target dforce test_diffusion > "$out/build.log" 2>&1 \
  || { log "build failed (build.log)"; tail -40 "$out/build.log"; exit 1; }
log "built in $(( $(date +%s) - start )) s"
dforce="$root/build-gpu/app/dforce"
"$dforce" --version > "$out/version.txt" 2>&1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$out/gpu.txt" 2>&1
model="$root/models/demo.safetensors"

# 1. The CUDA tests (bf16 model against the CPU float32 one, ...).
"$root/build-gpu/tests/test_diffusion" "[gpu]" > "$out/test_gpu.log" 2>&1
log "test_diffusion [gpu]: exit $? (test_gpu.log)"

# 2. Sampling speed: batch 1 (the rollout cases) and windows batched into one forward.
run_bench() {  # name, extra args...
  local name="$1"; shift
  timeout 240 "$dforce" bench --device cuda --model "$model" --quick --frames 48 \
    --batch 1 8 32 128 "$@" --json > "$out/bench_$name.json" 2> "$out/bench_$name.err"
  log "bench $name: exit $? (bench_$name.json)"
}
run_bench bf16 --precision bf16
run_bench bf16_graphs --precision bf16 --cuda-graphs
run_bench fp32 --precision fp32
run_bench bf16_graphs_dpmpp5 --precision bf16 --cuda-graphs --solver dpmpp-2m --steps 5

# 3. A short training run of the GPU recipes (synthetic data, no dataset needed).
for recipe in demo-gpu latent-gpu; do
  timeout 180 "$dforce" bench --train --recipe "$recipe" --train-steps "$train_steps" --json \
    > "$out/train_$recipe.json" 2> "$out/train_$recipe.err"
  log "train bench $recipe: exit $? (train_$recipe.json)"
done

# One line per result, for the README table.
python3 - "$out" <<'EOF' | tee -a "$out/summary.txt"
import json, pathlib, sys
out = pathlib.Path(sys.argv[1])
for f in sorted(out.glob("bench_*.json")):
    try:
        j = json.loads(f.read_text())
    except Exception as e:
        print(f"{f.name}: unreadable ({e})"); continue
    cases = ", ".join(f"{c['case']} {c['frames_per_second']:.0f}" for c in j.get("cases", []))
    batched = ", ".join(f"{b['windows']} windows {b['frames_per_second']:.0f}"
                        for b in j.get("batched", []))
    print(f"{f.stem}: frames/s {cases}; model-bound {batched}")
for f in sorted(out.glob("train_*.json")):
    try:
        j = json.loads(f.read_text())
        print(f"{f.stem}: {j.get('samples_per_second', 0):.1f} samples/s")
    except Exception as e:
        print(f"{f.name}: unreadable ({e})")
EOF
log "done in $(( $(date +%s) - start )) s; results in $out"
