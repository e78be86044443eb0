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
run=(ctest --output-on-failure -j 1 "$@")
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then
  xvfb-run -a -s "-screen 0 1600x1000x24" "${run[@]}"
else
  "${run[@]}"
fi
echo "test.sh: tests took $(( $(date +%s) - built )) s"
