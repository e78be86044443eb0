#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (GUI tests under a virtual display).
#   packaging/test.sh               all tests
#   packaging/test.sh -L slow       extra ctest arguments are passed through
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${DFS_BUILD_DIR:-$root/build}
start=$(date +%s)
"$root/packaging/install-deps.sh"
"$root/packaging/build.sh" -DDFS_WERROR=ON
built=$(date +%s)
echo "test.sh: build took $((built - start)) s"
cd "$build"
junit="$build/ctest-results.xml"
run=(ctest --output-on-failure -j 1 --output-junit "$junit" "$@")
status=0
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then
  xvfb-run -a -s "-screen 0 1600x1000x24" "${run[@]}" || status=$?
else
  "${run[@]}" || status=$?
fi
echo "test.sh: tests took $(( $(date +%s) - built )) s"
# One summary line with what ran: CTest's own counts skipped tests inside "passed".
if [ -f "$junit" ]; then
  # CTest writes the <testsuite> attributes one per line; the first match of each is the suite's.
  attr() { { grep -m1 -oE "^[[:space:]]*$1=\"[0-9]+\"" "$junit" || echo 0; } | tr -dc 0-9; }
  total=$(attr tests); failed=$(attr failures); skipped=$(attr skipped)
  echo "test.sh: summary: $((total - failed - skipped)) passed, $failed failed, $skipped skipped" \
       "(of $total)"
  if [ "${skipped:-0}" -gt 0 ]; then
    echo "test.sh: skipped tests (why: their output, or ctest --output-on-failure -R NAME -V):"
    grep -o '<testcase name="[^"]*"[^>]*status="notrun"' "$junit" | sed 's/<testcase name="\([^"]*\)".*/  \1/'
  fi
fi
exit "$status"
