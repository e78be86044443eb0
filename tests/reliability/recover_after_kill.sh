#!/usr/bin/env bash
# Kill -9 the real Studio mid-edit and mid-autosave, restart it, recover (issue 11).
#   recover_after_kill.sh DFSTUDIO DFORCE SAVE_LOOP CLIP [RUNS]
#
# Each run starts `dfstudio --project P --test-edits ...` (numbered edits every 15 ms, an
# autosave after every edit: --autosave-edits 1; edit K sets the seed to 100000 + K; the
# document after it is written to LOG/edit-K.json just before the edit, and "edit K" printed
# after it and its autosave), SIGKILLs it, then runs
# `dfstudio --recover-to R.json` and checks:
#   - the project file P is byte for byte what it was (autosave never writes it; nor does
#     recovering);
#   - R.json is byte for byte the document after edit K, where K is the last edit printed
#     before the kill or the one after it (killed between its autosave and its print); the
#     loss is (last printed) - K edits, which must be 0;
#   - the recovered document stands for P and is unsaved.
# Odd runs kill at a random moment; even runs aim the kill inside an autosave (save_loop
# kill-in-write: when "P.autosave.partial-*" appears, after a random 0..3 ms), so the old
# autosave must stay whole. A last case runs two Studios on P at once, kills one, and checks
# that the survivor's session is not offered and the killed one's is, from its own autosave.
# Needs a display; re-runs itself under xvfb-run when there is none.
set -uo pipefail
if [ -z "${DISPLAY:-}" ] && [ -z "${DFS_IN_XVFB:-}" ] && command -v xvfb-run >/dev/null; then
  DFS_IN_XVFB=1 exec xvfb-run -a -s "-screen 0 1280x800x24" bash "$0" "$@"
fi
studio=$(realpath "$1") dforce=$(realpath "$2") save_loop=$(realpath "$3") clip=$(realpath "$4")
runs=${5:-10}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done; rm -rf "$work"; }
trap cleanup EXIT
export DFS_THREADS=${DFS_THREADS:-1} XDG_DATA_HOME="$work/xdg" XDG_CONFIG_HOME="$work/xdg"
failures=0
fail() { echo "recover_after_kill: $*"; failures=$((failures + 1)); }
rand_ms() { echo $(( $1 + (RANDOM * 32768 + RANDOM) % ($2 - $1 + 1) )); }
sleep_ms() { sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"; }
last_edit() { grep -oE "^edit [0-9]+" "$1" | tail -1 | grep -oE "[0-9]+" || echo 0; }
seed_of() { grep -oE '"seed": *[0-9]+' "$1" | head -1 | grep -oE "[0-9]+$"; }
# wait_for_edit LOG PID: until the Studio has printed its first edit (up to 60 s).
wait_for_edit() {
  for _ in $(seq 1 600); do
    grep -q "^edit " "$1" 2>/dev/null && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

mkdir -p "$work/proj"
p="$work/proj/p.dfsproj"
"$dforce" extend "$clip" -n 4 --steps 1 -q -o "$work/p.mp4" --save-project "$p" >/dev/null 2>&1 ||
  { echo "recover_after_kill: cannot make the project"; exit 1; }
before=$(sha256sum <"$p")
studio_args=(--random-model tiny --project "$p" --autosave-edits 1 --autosave-seconds 30
             --test-edits 100000 --test-edit-ms 15)

lost_total=0 inside=0 recovered=0 max_k=0 ahead=0
# One kill and recovery; stderr goes nowhere when called (no "Killed" notices from the shell).
one_run() {
  local i=$1 pid printed k out
  # run.log goes before the start: the shell truncates it in the child, maybe only after
  # wait_for_edit has looked at the last run's.
  rm -rf "$work/xdg" "$work/log" "$work/proj/"*.autosave* "$work/r.json" "$work/run.log"
  "$studio" "${studio_args[@]}" --test-edit-log "$work/log" >"$work/run.log" 2>"$work/run.err" &
  pid=$!
  pids+=("$pid")
  if ! wait_for_edit "$work/run.log" "$pid"; then
    fail "run $i: the Studio made no edit: $(tail -3 "$work/run.err")"; kill -KILL "$pid"; return
  fi
  if [ $((i % 2)) -eq 0 ]; then
    sleep_ms "$(rand_ms 0 1500)"
    "$save_loop" kill-in-write "$work/proj" "$pid" 3000 20 >/dev/null || kill -KILL "$pid" 2>/dev/null
  else
    sleep_ms "$(rand_ms 0 3000)"
    kill -KILL "$pid" 2>/dev/null
  fi
  { wait "$pid"; } 2>/dev/null
  ls "$work/proj" | grep -q '\.autosave\.partial-' && inside=$((inside + 1))
  printed=$(last_edit "$work/run.log")
  [ "$(sha256sum <"$p")" = "$before" ] || fail "run $i: the project file changed while editing"
  if ! out=$("$studio" --recover-to "$work/r.json" 2>&1); then
    fail "run $i: nothing recovered after $printed edits: $out"; return
  fi
  k=$(( $(seed_of "$work/r.json") - 100000 ))
  if [ "$k" -ne "$printed" ] && [ "$k" -ne $((printed + 1)) ]; then
    fail "run $i: recovered edit $k, but edit $printed had been made (and autosaved)"
  elif ! cmp -s "$work/r.json" "$work/log/edit-$k.json"; then
    fail "run $i: the recovered document differs from the document after edit $k (printed $printed)"
  else
    recovered=$((recovered + 1))
    [ "$k" -lt "$printed" ] && lost_total=$((lost_total + printed - k))
    [ "$k" -gt "$printed" ] && ahead=$((ahead + 1))
    [ "$k" -gt "$max_k" ] && max_k=$k
  fi
  echo "$out" | grep -q "as $p, unsaved" || fail "run $i: not recovered as an unsaved $p: $out"
  [ "$(sha256sum <"$p")" = "$before" ] || fail "run $i: recovering changed the project file"
}
for ((i = 1; i <= runs; i++)); do one_run "$i" 2>/dev/null; done
echo "recover_after_kill: $runs kills ($inside inside an autosave), $recovered recovered equal," \
     "$lost_total edits lost (up to edit $max_k; $ahead killed between an autosave and its print)"

# Two Studios on the same project: A keeps running, B is killed. B must autosave under its own
# name (A holds P.autosave), and only B's session is offered.
rm -rf "$work/xdg" "$work/log" "$work/log2" "$work/proj/"*.autosave* "$work/r.json" "$work/a.log" "$work/b.log"
"$studio" "${studio_args[@]}" --test-edit-ms 200 --test-edit-log "$work/log" >"$work/a.log" 2>&1 &
a=$!
pids+=("$a")
wait_for_edit "$work/a.log" "$a" || fail "two: Studio A made no edit"
"$studio" "${studio_args[@]}" --test-edit-log "$work/log2" >"$work/b.log" 2>&1 &
b=$!
pids+=("$b")
wait_for_edit "$work/b.log" "$b" || fail "two: Studio B made no edit"
sleep 1
kill -KILL "$b"
{ wait "$b"; } 2>/dev/null
printed=$(last_edit "$work/b.log")
if out=$("$studio" --recover-to "$work/r.json" 2>&1); then
  k=$(( $(seed_of "$work/r.json") - 100000 ))
  echo "$out" | grep -q "pid $b," || fail "two: recovered another session than B's: $out"
  echo "$out" | grep -q "p.dfsproj.$b.autosave" || fail "two: B did not autosave under its own name: $out"
  cmp -s "$work/r.json" "$work/log2/edit-$k.json" || fail "two: B's recovered document differs"
  [ "$k" -ge "$printed" ] || fail "two: B lost edits ($k < $printed)"
else
  fail "two: B's session was not offered: $out"
fi
# Nothing else is offered: with B's session gone (the recoverer took it over), A's record is
# the only one left, and A is running.
for f in "$work/xdg"/*/*/recovery/session-*.json; do
  [ "$f" = "$(dirname "$f")/session-$a.json" ] || rm -f "$f"
done
out=$("$studio" --recover-to "$work/r2.json" 2>&1) && fail "two: a running Studio's session was offered: $out"
[ -f "$work/proj/p.dfsproj.autosave" ] || fail "two: A's autosave is missing"
kill -KILL "$a"
{ wait "$a"; } 2>/dev/null
[ "$(sha256sum <"$p")" = "$before" ] || fail "two: the project file changed"
echo "recover_after_kill: two Studios: B killed after edit $printed, recovered its edit ${k:-?}; A (running) not offered"
exit $((failures > 0))
