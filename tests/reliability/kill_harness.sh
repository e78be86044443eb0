#!/usr/bin/env bash
# Kills real processes with SIGKILL at random moments while they write, then checks the disk.
#   kill_harness.sh DFORCE SAVE_LOOP CLIP [RUNS] [CASES...]
# CASES: save autosave checkpoint export (default: all). RUNS per case (default 50).
#
#   save       save_loop save P: the project is saved over and over (Document::save)
#   autosave   save_loop autosave P.autosave: the Studio's autosave write, over and over
#   checkpoint dforce train, checkpointing as often as it can; after each kill
#              `dforce train --resume` must continue from the checkpoint
#   export     dforce extend -o x.mp4 (frames stream into the file while they are generated)
#   studio     dfstudio (beside DFORCE) with a project and an edit, autosaving every 50 ms; the
#              project file stays untouched and its .autosave is whole (needs a display)
#
# Half the kills come at a random time, half are aimed inside a write (kill_after). After
# every kill: the file under the final name is the previous good one or a complete new
# one; a kill that lands inside a write leaves at most a "<name>.partial-<pid>" file; the next
# write of the same name sweeps it. One line per case: "N runs, L lost, K inside a write".
set -uo pipefail
dforce=$(realpath "$1") save_loop=$(realpath "$2") clip=$(realpath "$3")
runs=${4:-50}
shift 4 2>/dev/null || shift $#
cases=("$@")
[ ${#cases[@]} -eq 0 ] && cases=(save autosave checkpoint export studio)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export DFS_THREADS=${DFS_THREADS:-1}
failures=0

# rand_ms LO HI: a random whole number of milliseconds in [LO, HI].
rand_ms() { echo $(( $1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1) )); }
# kill_after MS LOG CMD...: runs CMD, SIGKILLs it after MS ms (if still running), reaps it.
# Every other run (kill_mode=write) the kill is aimed instead: save_loop kill-in-write watches
# the folder and kills when a partial file appears, after a random 0..WRITE_US microseconds, so
# that kills land inside writes and not only between them.
kill_mode=time
kill_after() { kill_after_quiet "$@" 2>/dev/null; }  # no "Killed" notices from the shell
kill_after_quiet() {
  local ms=$1 log=$2
  shift 2
  if [ "$kill_mode" = write ]; then
    # The short sleep lets the watcher start before the first write.
    bash -c 'sleep 0.05; exec "$@"' _ "$@" >"$log" 2>&1 &
    local pid=$!
    "$save_loop" kill-in-write "$work" "$pid" "$write_us" 20 >/dev/null || kill -KILL "$pid" 2>/dev/null
  else
    "$@" >"$log" 2>&1 &
    local pid=$!
    sleep "$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))"
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  echo "$pid"
}
# next_mode RUN: alternate timed and aimed kills.
next_mode() { if [ $(($1 % 2)) -eq 0 ]; then kill_mode=write; else kill_mode=time; fi; }
partials() { ls "$work" | grep -c '\.partial-' || true; }
report() {  # case runs lost inside
  echo "kill_harness: $1: $2 runs, $3 lost, $4 killed inside a write"
  [ "$3" -eq 0 ] || failures=$((failures + 1))
}

case_save() {  # $1 = save|autosave
  local mode=$1 file="$work/p.dfsproj" lost=0 inside=0
  [ "$mode" = autosave ] && file="$work/p.dfsproj.autosave"
  rm -f "$work"/p.dfsproj*
  write_us=600
  for ((i = 1; i <= runs; i++)); do
    next_mode "$i"
    local had=0 last=0
    [ -f "$file" ] && had=1 && last=$("$save_loop" check "$file" | grep -oE "version [0-9]+" | grep -oE "[0-9]+")
    local pid
    pid=$(kill_after "$(rand_ms 30 700)" "$work/loop.log" "$save_loop" "$mode" "$file")
    [ "$(partials)" -gt 0 ] && inside=$((inside + 1))
    local printed
    printed=$(grep -oE "^saved [0-9]+" "$work/loop.log" | tail -1 | grep -oE "[0-9]+" || echo 0)
    if [ -f "$file" ]; then
      if ! out=$("$save_loop" check "$file"); then
        lost=$((lost + 1)); echo "kill_harness: $mode run $i: $out"; continue
      fi
      local v
      v=$(echo "$out" | grep -oE "version [0-9]+" | grep -oE "[0-9]+")
      # Each run counts from 1 again: the file holds the last save that returned (printed), the
      # one after it (renamed just before the kill), or, if none returned, the previous run's.
      if [ "$printed" -gt 0 ] && [ "$v" -ne "$printed" ] && [ "$v" -ne $((printed + 1)) ]; then
        lost=$((lost + 1)); echo "kill_harness: $mode run $i: version $v after save $printed"
      elif [ "$printed" -eq 0 ] && [ "$had" -eq 1 ] && [ "$v" -ne "$last" ] && [ "$v" -ne 1 ]; then
        lost=$((lost + 1)); echo "kill_harness: $mode run $i: version $v, expected $last or 1"
      fi
    elif [ "$had" -eq 1 ] || [ "$printed" -gt 0 ]; then
      lost=$((lost + 1)); echo "kill_harness: $mode run $i: the file is gone"
    fi
  done
  # The sweep: one more complete save removes what the killed ones left. It waits for that save
  # (up to 20 s), not a fixed 400 ms: on a loaded machine a save may not finish that soon, and
  # when no run had finished one either there was no file to check (a false "lost").
  "$save_loop" "$mode" "$file" >"$work/sweep.log" 2>&1 &
  local sweep=$!
  for _ in $(seq 1 400); do
    grep -q "^saved " "$work/sweep.log" 2>/dev/null && break
    sleep 0.05
  done
  kill -KILL "$sweep" 2>/dev/null
  wait "$sweep" 2>/dev/null
  "$save_loop" check "$file" >/dev/null || lost=$((lost + 1))
  report "$mode" "$runs" "$lost" "$inside"
  left=$(ls "$work" | grep -E '^p\.dfsproj.*\.partial-' | wc -l)
  [ "$left" -le 1 ] || { echo "kill_harness: $mode: $left partial files were not swept"; failures=$((failures + 1)); }
  rm -f "$work"/p.dfsproj*
}

case_checkpoint() {
  local lost=0 inside=0 data="$work/d.safetensors" model="$work/m.safetensors"
  local ckpt="$work/m.ckpt.safetensors"
  "$dforce" dataset synth -o "$data" --clips 4 --frames 12 --size 32x24 >/dev/null 2>&1 ||
    { echo "kill_harness: cannot make the dataset"; failures=$((failures + 1)); return; }
  local train=("$dforce" train --data "$data" --config tiny -o "$model" --steps 1000000
               --checkpoint-minutes 0.0001 --seed 1)
  local step=0
  write_us=2000
  for ((i = 1; i <= runs; i++)); do
    next_mode "$i"
    local extra=()
    [ -f "$ckpt" ] && extra=(--resume)
    kill_after "$(rand_ms 300 2500)" "$work/train.log" "${train[@]}" "${extra[@]}" >/dev/null
    ls "$work" | grep -q '^m\.ckpt\.safetensors\.partial-' && inside=$((inside + 1))
    [ -f "$ckpt" ] || { [ "$step" -eq 0 ] && continue; }
    # --resume must load the checkpoint (with --steps 1 it trains nothing and writes the model)
    # at a step not before the last one seen.
    local now
    if ! now=$("${train[@]:0:8}" --steps 1 --resume --seed 1 2>&1); then
      lost=$((lost + 1)); echo "kill_harness: checkpoint run $i: resume failed: $now"; continue
    fi
    local s
    s=$(echo "$now" | grep -oE "at step [0-9]+" | head -1 | grep -oE "[0-9]+")
    if [ -z "$s" ] || [ "$s" -lt "$step" ]; then
      lost=$((lost + 1)); echo "kill_harness: checkpoint run $i: resumed at '${s}', before $step"
    else
      step=$s
    fi
  done
  report checkpoint "$runs" "$lost" "$inside"
  echo "kill_harness: checkpoint: training reached step $step across $runs kills"
  left=$(ls "$work" | grep -cE '^m\..*\.partial-' || true)
  [ "$left" -le 1 ] || { echo "kill_harness: checkpoint: $left partial files were not swept"; failures=$((failures + 1)); }
  rm -f "$work"/m.* "$data"
}

case_export() {
  local lost=0 inside=0 out="$work/x.mp4" first
  local extend=("$dforce" extend "$clip" -n 12 --steps 4 --seed 5 -q -o "$out")
  "${extend[@]}" >/dev/null 2>&1 || { echo "kill_harness: the first export failed"; failures=$((failures + 1)); return; }
  first=$(sha256sum "$out" | cut -d' ' -f1)
  local frames
  frames=$("$dforce" probe "$out" 2>/dev/null | grep -oE "frames +: [0-9]+" | head -1 | grep -oE "[0-9]+")
  write_us=1500000
  for ((i = 1; i <= runs; i++)); do
    next_mode "$i"
    kill_after "$(rand_ms 100 1500)" "$work/extend.log" "${extend[@]}" >/dev/null
    ls "$work" | grep -q '^x\.mp4\.partial-' && inside=$((inside + 1))
    if [ ! -f "$out" ]; then
      lost=$((lost + 1)); echo "kill_harness: export run $i: the previous export is gone"; continue
    fi
    local now
    now=$(sha256sum "$out" | cut -d' ' -f1)
    if [ "$now" != "$first" ]; then
      # Not the previous file: it must be a whole new one (same settings, so the same frames).
      local n
      n=$("$dforce" probe "$out" 2>/dev/null | grep -oE "frames +: [0-9]+" | head -1 | grep -oE "[0-9]+")
      if [ "${n:-0}" != "$frames" ]; then
        lost=$((lost + 1)); echo "kill_harness: export run $i: x.mp4 has ${n:-no} frames, not $frames"
      fi
    fi
  done
  kill_mode=time
  "${extend[@]}" >/dev/null 2>&1 || lost=$((lost + 1))
  report export "$runs" "$lost" "$inside"
  left=$(ls "$work" | grep -cE '^x\.mp4\.partial-' || true)
  [ "$left" -eq 0 ] || { echo "kill_harness: export: $left partial files were not swept"; failures=$((failures + 1)); }
}

case_studio() {
  local studio lost=0 inside=0 present=0
  studio="$(dirname "$dforce")/dfstudio"
  if [ ! -x "$studio" ] || [ -z "${DISPLAY:-}" ]; then
    echo "kill_harness: studio: skipped (needs $studio and a display)"
    return
  fi
  local p="$work/s.dfsproj"
  "$dforce" extend "$clip" -n 4 --steps 1 -q -o "$work/s.mp4" --save-project "$p" >/dev/null 2>&1 ||
    { echo "kill_harness: studio: cannot make the project"; failures=$((failures + 1)); return; }
  local before
  before=$(sha256sum <"$p")
  write_us=600
  for ((i = 1; i <= runs; i++)); do
    next_mode "$i"
    rm -rf "$work/xdg"  # a first session each time (a crashed one's autosave is not reused)
    XDG_DATA_HOME="$work/xdg" XDG_CONFIG_HOME="$work/xdg" \
      kill_after "$(rand_ms 1000 4000)" "$work/studio.log" "$studio" --project "$p" --frames $((5 + i)) \
      --autosave-seconds 0.05 >/dev/null
    ls "$work" | grep -q '^s\.dfsproj\.autosave\.partial-' && inside=$((inside + 1))
    if [ "$(sha256sum <"$p")" != "$before" ]; then
      lost=$((lost + 1)); echo "kill_harness: studio run $i: the project file changed"
    fi
    if [ -f "$p.autosave" ]; then
      present=$((present + 1))
      if ! out=$("$save_loop" valid "$p.autosave"); then
        lost=$((lost + 1)); echo "kill_harness: studio run $i: $out"
      fi
    fi
  done
  report studio "$runs" "$lost" "$inside"
  echo "kill_harness: studio: an autosave was on disk after $present of $runs kills"
}

for c in "${cases[@]}"; do
  case "$c" in
    save | autosave) case_save "$c" ;;
    checkpoint) case_checkpoint ;;
    export) case_export ;;
    studio) case_studio ;;
    *) echo "kill_harness: unknown case '$c'"; exit 2 ;;
  esac
done
exit $((failures > 0))
