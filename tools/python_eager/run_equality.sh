#!/usr/bin/env bash
# run_equality.sh — `dforce extend` against dfs_eager.py on the same clip, settings and seed,
# for every setting in the matrix below; prints how many output bytes differ per setting.
#
#   tools/python_eager/run_equality.sh [DFORCE] [WORKDIR]
#
# DFORCE defaults to build/app/dforce (relative to the repository root), WORKDIR to a fresh
# temporary folder. $THREADS (default 1) is passed to both sides (--threads), $SEED (default 7),
# $FRAMES (default 8 generated frames: two windows of horizon 4), $SOURCE (default 6 clip
# frames: the rollout starts 2 frames in, so the context of 4 is exercised), $STEPS (default
# 10), $GSCALE (guidance scale of guided settings, default 1.5), $EXTRA (more options for both
# sides, e.g. "--eta 1"); $MODELS, $SCHEDULES, $GUIDANCES replace the lists of the matrix.
#
# The clip's frames that the port reads are the pinned frames of the C++ run's own PNG output
# (--range all --scale 1): exactly the pictures the engine conditioned on (fit_to_model leaves
# pins bit-identical). Decoding and resizing the video is the media layer, not ported.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
dforce="${1:-$root/build/app/dforce}"
work="${2:-$(mktemp -d /tmp/dfs_equality.XXXXXX)}"
threads="${THREADS:-1}"
seed="${SEED:-7}"
frames="${FRAMES:-8}"
source_frames="${SOURCE:-6}"
extra="${EXTRA:-}"
steps="${STEPS:-10}"
gscale="${GSCALE:-1.5}"
clip="$root/resources/samples/vtest_clip.mp4"

python="${PYTHON:-}"
if [[ -z "$python" ]]; then
  for p in python3 /usr/bin/python3; do
    if "$p" -c 'import torch' 2>/dev/null; then python="$p"; break; fi
  done
fi
[[ -n "$python" ]] || { echo "no python3 with torch"; exit 77; }

models=("${MODELS:-demo.safetensors demo-64x48.safetensors}")
schedules=("${SCHEDULES:-full_sequence pyramid}")
guidances=("${GUIDANCES:-none vanilla}")

echo "threads $threads, seed $seed, $source_frames clip frames + $frames generated, steps $steps, guided scale $gscale${extra:+, $extra}; counts are over the generated frames"
# The reference kernels, where a dforce has a faster non-exact default (see check_equal.sh).
exact_args=()
if [[ -n "${DFORCE_EXACT_ARGS+x}" ]]; then
  read -r -a exact_args <<<"$DFORCE_EXACT_ARGS"
elif "$dforce" extend --help 2>/dev/null | grep -q -- '--exact'; then
  exact_args=(--exact)
fi
printf '%-24s %-14s %-9s %8s %10s %9s %8s %8s\n' model schedule guidance frames bytes differ max_abs status
fail=0
for model in ${models[@]}; do
  for schedule in ${schedules[@]}; do
    for guidance in ${guidances[@]}; do
      tag="$(basename "${model%.safetensors}")_${schedule}_${guidance}"
      cpp="$work/$tag/cpp/" py="$work/$tag/py/" in="$work/$tag/clip/"
      rm -rf "$work/$tag" && mkdir -p "$cpp" "$py" "$in"
      gopts=(--guidance "$guidance")
      [[ "$guidance" != none ]] && gopts+=(--guidance-scale "$gscale")
      [[ "$model" == */* ]] && mpath="$model" || mpath="$root/models/$model"
      common=(--model "$mpath" --schedule "$schedule" --steps "$steps" --seed "$seed"
              "${gopts[@]}" $extra)
      "$dforce" --threads "$threads" extend "$clip" --source-frames "$source_frames" \
        -n "$frames" -o "$cpp" --scale 1 --range all -q "${exact_args[@]}" "${common[@]}" >"$work/$tag/cpp.log"
      for ((i = 0; i < source_frames; ++i)); do
        cp "$cpp/$(printf 'frame_%06d.png' "$i")" "$in/"
      done
      "$python" "$here/dfs_eager.py" extend --clip-frames "$in" -n "$frames" -o "$py" \
        --threads "$threads" --match-engine-threads "${common[@]}" >"$work/$tag/py.log" 2>&1
      report="$("$python" "$here/compare_frames.py" --json --first "$source_frames" "$cpp" "$py" || true)"
      read -r nf nb nd mx ms < <("$python" -c '
import json,sys; r=json.load(sys.stdin)
print(r["frames"], r["bytes"], r["differing_bytes"], r["max_abs"], len(r["missing"]))' <<<"$report")
      status=equal
      if [[ "$nd" != 0 || "$ms" != 0 ]]; then status=DIFFERENT; fail=1; fi
      printf '%-24s %-14s %-9s %8s %10s %9s %8s %8s\n' "$model" "$schedule" "$guidance" \
        "$nf" "$nb" "$nd" "$mx" "$status"
    done
  done
done
echo "work folder: $work"
exit $fail
