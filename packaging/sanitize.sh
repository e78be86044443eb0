#!/usr/bin/env bash
# Builds the engine, media and project tests with AddressSanitizer + UndefinedBehaviorSanitizer
# (the CMake preset `asan`, gcc) and runs them within a time box. Any memory error, leak or
# undefined behaviour aborts the test that hit it and fails this script.
#   packaging/sanitize.sh            time box from $DFS_ASAN_SECONDS, default 480 s
#   packaging/sanitize.sh 1200       a longer box (by hand: everything, [slow] included)
# The libraries are built as unity builds (16 files per translation unit: each parses the torch
# headers once, which halves this build on 2 cores); the tests are not (see tests/CMakeLists.txt).
# What runs: test_diffusion, test_media and test_project without their [slow] cases (with a box
# over 900 s, the [slow] cases too), one executable after another until the box is spent. The
# last line says how many test cases and assertions ran, and what the box cut off.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DFS_ASAN_BUILD_DIR:-$root/build-asan}
box=${1:-${DFS_ASAN_SECONDS:-480}}
jobs=${DFS_JOBS:-$(nproc)}
"$root/packaging/install-deps.sh" >/dev/null
start=$(date +%s)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" -DDFS_SANITIZE=ON -DDFS_BUILD_UI=OFF \
  -DCMAKE_UNITY_BUILD=ON -DCMAKE_UNITY_BUILD_BATCH_SIZE=16 >/dev/null
cmake --build "$build" -j "$jobs" --target test_diffusion test_media test_project
built=$(date +%s)
echo "sanitize.sh: asan+ubsan build took $((built - start)) s"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:check_initialization_order=1:strict_init_order=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/packaging/lsan.supp:print_suppressions=0}
export DFS_THREADS=2 QT_QPA_PLATFORM=offscreen

filter=("~[slow]")
[ "$box" -gt 900 ] && filter=()
deadline=$((built + box))
cases=0 asserts=0 failed=0 cut=()
for t in diffusion/test_diffusion media/test_media project/test_project; do
  exe="$build/tests/${t#*/}"
  left=$((deadline - $(date +%s)))
  if [ "$left" -le 5 ]; then cut+=("${t#*/} (not started)"); continue; fi
  log=$(mktemp)
  rc=0
  timeout --signal=INT --kill-after=10 "$left" "$exe" "${filter[@]}" --order decl >"$log" 2>&1 || rc=$?
  grep -E "^(==[0-9]+==ERROR|SUMMARY)|runtime error" "$log" | head -20 || true
  line=$(grep -E "^(All tests passed|test cases:)" "$log" | tail -1 || true)
  n=$(echo "$line" | grep -oE "[0-9]+ test case" | grep -oE "^[0-9]+" || echo 0)
  [ -z "$n" ] && n=$(echo "$line" | grep -oE "test cases: *[0-9]+" | grep -oE "[0-9]+$" || echo 0)
  a=$(echo "$line" | grep -oE "[0-9]+ assertion" | grep -oE "^[0-9]+" || echo 0)
  [ -z "$a" ] && a=$(echo "$line" | grep -oE "assertions: *[0-9]+" | grep -oE "[0-9]+$" || echo 0)
  cases=$((cases + ${n:-0})); asserts=$((asserts + ${a:-0}))
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 130 ]; then
    cut+=("${t#*/} (cut by the time box after ${n:-0} cases)")
  elif [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
    failed=$((failed + 1))
    echo "sanitize.sh: ${t#*/} FAILED (exit $rc); its full log:"
    tail -n 80 "$log"
  fi
  echo "sanitize.sh: ${t#*/}: ${line:-no summary} ($(($(date +%s) - deadline + left)) s)"
  rm -f "$log"
done
echo "sanitize.sh: summary: $cases test cases, $asserts assertions under ASan+UBSan," \
     "$failed executable(s) failed, $(( $(date +%s) - built )) s${cut:+; cut off: ${cut[*]}}"
[ "$failed" -eq 0 ]
