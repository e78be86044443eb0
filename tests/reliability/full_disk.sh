#!/usr/bin/env bash
# Every writer on a full disk, simulated with a file-size limit (ulimit -f; dforce ignores
# SIGXFSZ, so a write past the limit fails with EFBIG as on a full disk):
#   full_disk.sh DFORCE SAVE_LOOP CLIP
# Each must fail with a clear message, keep the previous good file byte for byte, and leave no
# file under the final name and no partial file behind.
set -uo pipefail
dforce=$(realpath "$1") save_loop=$(realpath "$2") clip=$(realpath "$3")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work" || exit 1
export DFS_THREADS=${DFS_THREADS:-1}
failures=0 checks=0
check() {  # check "what" CONDITION...
  local what=$1
  shift
  checks=$((checks + 1))
  if ! "$@"; then
    echo "full_disk: FAILED: $what"
    failures=$((failures + 1))
  fi
}
says_why() { grep -qiE "file too large|no space|disk is full|size limit" "$1"; }
no_partials() { ! ls -a | grep -q '\.partial-'; }
same() { [ "$(sha256sum <"$1")" = "$2" ]; }
limited() {  # limited KIB LOG CMD...: runs CMD under a file-size limit; true if it failed
  local kib=$1 log=$2
  shift 2
  (ulimit -f "$kib" && exec "$@") >"$log" 2>&1 && return 1
  return 0
}

# Export: a previous export survives a failed one of the same name; a new name is not created.
"$dforce" extend "$clip" -n 8 --steps 2 --seed 1 -o x.mp4 -q >/dev/null 2>&1 ||
  { echo "full_disk: the unlimited export failed"; exit 1; }
x=$(sha256sum <x.mp4)
for target in x.mp4 y.mp4 y.webm y.gif; do
  check "export $target under 16 KiB fails" limited 16 log "$dforce" extend "$clip" -n 8 --steps 2 \
    --seed 2 -o "$target" -q
  check "export $target: the message says why" says_why log
  [ "$target" = x.mp4 ] && check "export x.mp4: the previous file is intact" same x.mp4 "$x"
  [ "$target" != x.mp4 ] && check "export $target: no file under the final name" test ! -e "$target"
  check "export $target: no partial file" no_partials
done
sed -n 1,3p log | sed 's/^/full_disk: export message: /'
# A PNG sequence: the frames that are there are whole (each decodes), the failed one is not.
check "PNG sequence under 48 KiB fails" limited 48 log "$dforce" extend "$clip" -n 8 --steps 2 \
  -o seq/ -q
check "PNG sequence: the message says why" says_why log
check "PNG sequence: no partial frame" bash -c '! ls -a seq | grep -q "\.partial-"'
if ls seq/*.png >/dev/null 2>&1; then
  check "PNG sequence: every frame decodes" "$dforce" export seq -o whole.mp4 --fps 10
fi

# Project save and autosave (the product's writers, in save_loop): the last good file survives.
for mode in save autosave; do
  "$save_loop" "$mode" p.dfsproj 1 >/dev/null || { echo "full_disk: $mode failed unlimited"; exit 1; }
  p=$(sha256sum <p.dfsproj)
  check "$mode under 100 KiB fails" limited 100 log "$save_loop" "$mode" p.dfsproj 1
  check "$mode: the message says why" says_why log
  check "$mode: the previous project is intact" same p.dfsproj "$p"
  check "$mode: no partial file" no_partials
  sed -n 1p log | sed "s/^/full_disk: $mode message: /"
done

# Training checkpoint: a failed checkpoint stops training with a message; the previous
# checkpoint is intact and --resume continues from it.
"$dforce" dataset synth -o d.safetensors --clips 4 --frames 12 --size 32x24 >/dev/null
train=("$dforce" train --data d.safetensors --config tiny -o m.safetensors --seed 1
       --checkpoint-minutes 0.0001)
"${train[@]}" --steps 3 >/dev/null 2>&1 || { echo "full_disk: unlimited training failed"; exit 1; }
c=$(sha256sum <m.ckpt.safetensors)
check "training under 300 KiB fails" limited 300 log "${train[@]}" --steps 6 --resume
check "training: the message says why" says_why log
check "training: the checkpoint is intact" same m.ckpt.safetensors "$c"
check "training: no partial file" no_partials
sed -n '/error/p' log | head -2 | sed 's/^/full_disk: training message: /'
"${train[@]}" --steps 6 --resume >log 2>&1
check "training: --resume continues after the failure" grep -q "at step 3" log

echo "full_disk: $checks checks, $failures failed"
[ "$failures" -eq 0 ]
