#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan, cmake/DfsFuzz.cmake) and runs each one
# over its committed seed corpus plus a fixed number of mutated inputs.
#   packaging/fuzz.sh                      every target, $DFS_FUZZ_RUNS inputs each (default 20000)
#   packaging/fuzz.sh --minutes 10 fuzz_project   one target for 10 minutes (by hand)
# Seeds: core/*/fuzz/corpus/<target without fuzz_>/. New interesting inputs go to a scratch
# corpus under the build folder, never into the committed one. A crash, leak, timeout or UB
# fails the script; the input that caused it is saved under build-fuzz/artifacts/ (add it to
# the seed corpus as a regression input once fixed).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DFS_FUZZ_BUILD_DIR:-$root/build-fuzz}
runs=${DFS_FUZZ_RUNS:-20000}
seconds=0
targets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs=$2; shift 2 ;;
    --minutes) seconds=$(( $2 * 60 )); shift 2 ;;
    *) targets+=("$1"); shift ;;
  esac
done
[ ${#targets[@]} -eq 0 ] &&
  targets=(fuzz_safetensors fuzz_dataset fuzz_probe_decode fuzz_metadata fuzz_project)
"$root/packaging/install-deps.sh" >/dev/null
cxx=$(command -v clang++ || command -v clang++-14 || true)
if [ -z "$cxx" ]; then echo "fuzz.sh: clang++ is not installed (apt-get install clang)"; exit 1; fi
start=$(date +%s)
cmake -S "$root" -B "$build" -G Ninja -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1" -DDFS_BUILD_FUZZERS=ON -DDFS_BUILD_UI=OFF \
  -DDFS_BUILD_TESTS=OFF -DDFS_USE_PCH=OFF >/dev/null
cmake --build "$build" -j "${DFS_JOBS:-$(nproc)}" --target "${targets[@]}"
echo "fuzz.sh: build took $(( $(date +%s) - start )) s"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=0
mkdir -p "$build/artifacts"
for t in "${targets[@]}"; do
  name=${t#fuzz_}
  seeds=$(ls -d "$root"/core/*/fuzz/corpus/"$name" 2>/dev/null | head -1)
  if [ -z "$seeds" ]; then echo "fuzz.sh: $t has no seed corpus"; failed=1; continue; fi
  scratch="$build/corpus/$name"
  mkdir -p "$scratch"
  # A fixed number of inputs runs from a fixed seed, so CI is reproducible; a timed run by hand
  # draws a new seed each time.
  limit=(-runs="$runs" -seed="${DFS_FUZZ_SEED:-1}")
  [ "$seconds" -gt 0 ] && limit=(-max_total_time="$seconds")
  log="$build/$t.log"
  rc=0
  # -timeout: one input taking over 10 s is a hang; -rss_limit_mb: unbounded allocation.
  "$build/fuzz/$t" "${limit[@]}" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
    -print_final_stats=1 -artifact_prefix="$build/artifacts/$t-" "$scratch" "$seeds" \
    >"$log" 2>&1 || rc=$?
  done_line=$(grep -E "^Done [0-9]+ runs in [0-9]+ second" "$log" | tail -1 || true)
  execs=$(grep -E "^stat::number_of_executed_units:" "$log" | grep -oE "[0-9]+$" || echo 0)
  secs=$(grep -E "^stat::average_exec_per_sec:" "$log" | grep -oE "[0-9]+$" || echo 0)
  cov=$(grep -oE "cov: [0-9]+" "$log" | tail -1 | grep -oE "[0-9]+" || echo "?")
  # libFuzzer reports 0 inputs/s for a run shorter than a second.
  [ "${secs:-0}" -eq 0 ] && [ "${execs:-0}" -gt 0 ] && secs="over $execs"
  nseeds=$(ls "$seeds" | wc -l)
  if [ "$rc" -ne 0 ]; then
    failed=1
    echo "fuzz.sh: $t FOUND A PROBLEM (exit $rc); artifacts in $build/artifacts/:"
    grep -E "ERROR|SUMMARY|runtime error|Test unit written|deadly signal" "$log" | head -20
  fi
  echo "fuzz.sh: $t: ${execs:-0} inputs ($nseeds seeds), ${secs:-0} inputs/s, coverage $cov," \
       "$([ "$rc" -eq 0 ] && echo "0 findings" || echo "a finding") ${done_line:+(${done_line})}"
done
echo "fuzz.sh: total $(( $(date +%s) - start )) s"
exit "$failed"
