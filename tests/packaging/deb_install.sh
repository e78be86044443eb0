#!/usr/bin/env bash
# Installs the .deb on this machine the way a user does, checks the desktop integration, runs the
# installed programs, and removes the package again:
#   1. `cpack -G DEB` in BUILD_DIR, then `apt-get install -y ./<package>.deb`;
#   2. man pages: `man -w dforce dfstudio`, `man dforce` names its subcommands;
#   3. the .dfsproj MIME type is installed and known to the MIME database (globs2) and to the
#      desktop database (`xdg-mime query default` when xdg-utils is there), the desktop entry passes
#      desktop-file-validate (when installed), the AppStream metainfo passes appstreamcli;
#   4. the installed `dforce --version`, `dfstudio --help` without a display, and `dforce extend`
#      on the installed sample clip (from /usr/share) with the installed demo model, saving a
#      project (.dfsproj);
#   5. the installed `dfstudio` opened on that project *through the desktop entry's Exec line*
#      (as a file manager does on a double click), under Xvfb, with --quit-after: it must print
#      the project and its clip and exit 0;
#   6. `apt-get remove -y` the package; its programs are gone.
#
#   bash tests/packaging/deb_install.sh BUILD_DIR
#
# It changes the machine (installs, then removes a package), so it runs only when asked:
# DFS_DEB_INSTALL_TEST=1, as root, with dpkg and apt-get. Otherwise it exits 77 (CTest: skipped).
# Takes a few minutes (cpack compresses LibTorch-free binaries and the demo model).
set -euo pipefail

build=${1:?usage: deb_install.sh BUILD_DIR}
skip() { echo "deb_install: SKIPPED: $*"; exit 77; }
[ "${DFS_DEB_INSTALL_TEST:-0}" = 1 ] || skip "set DFS_DEB_INSTALL_TEST=1 to install the package on this machine"
[ "$(id -u)" -eq 0 ] || skip "needs root (apt-get install)"
command -v dpkg >/dev/null && command -v apt-get >/dev/null || skip "needs dpkg and apt-get"
command -v cpack >/dev/null || skip "needs cpack"
command -v xvfb-run >/dev/null || skip "needs xvfb-run for the installed dfstudio"

pkg=diffusion-forcing-studio
if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
  skip "$pkg is already installed here; not touching it"
fi
work=$(mktemp -d /tmp/dfs_deb_test.XXXXXX)
cleanup() {
  if dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    apt-get remove -y -q "$pkg" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "deb_install: FAIL: $*" >&2; exit 1; }
step() { echo; echo "== $*"; }

step "1. build the .deb (cpack) and install it with apt-get"
(cd "$build" && cpack -G DEB -B "$work/cpack" >"$work/cpack.log" 2>&1) || { tail -30 "$work/cpack.log"; fail "cpack failed"; }
deb=$(ls "$work"/cpack/*.deb | head -1)
[ -f "$deb" ] || fail "cpack wrote no .deb"
ls -l "$deb"
dpkg-deb -f "$deb" Package Version Section Depends | sed 's/^/   /'
[ "$(dpkg-deb -f "$deb" Section)" = video ] || fail "Section is not 'video'"
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$deb" >"$work/apt.log" 2>&1 || { tail -30 "$work/apt.log"; fail "apt-get install failed"; }
grep -E "^(Setting up|Processing triggers)" "$work/apt.log" | sed 's/^/   /'
dpkg -L "$pkg" | grep -E "bin/|man1|mime|applications|metainfo|icons|samples|models/.*safetensors" | sed 's/^/   /'

step "2. man pages"
man -w dforce dfstudio | sed 's/^/   /' || fail "man -w found no page"
MANWIDTH=100 man dforce 2>/dev/null >"$work/dforce.man" || fail "man dforce failed"
head -12 "$work/dforce.man" | sed 's/^/   /'
for sub in extend generate learn "dataset pack"; do
  grep -q "dforce $sub" "$work/dforce.man" || fail "man dforce does not describe 'dforce $sub'"
done
MANWIDTH=100 man dfstudio 2>/dev/null | grep -q -- "--quit-after" || fail "man dfstudio lacks its options"
echo "   man dforce: $(wc -l <"$work/dforce.man") lines; subcommands described"

step "3. MIME type, desktop entry, AppStream"
mime_xml=/usr/share/mime/packages/dfstudio.xml
desktop=/usr/share/applications/dfstudio.desktop
[ -f "$mime_xml" ] || fail "$mime_xml not installed"
[ -f "$desktop" ] || fail "$desktop not installed"
grep -q "^MimeType=.*application/x-dfstudio-project;" "$desktop" || fail "desktop entry lacks the project MIME type"
grep -q "^Exec=dfstudio %f" "$desktop" || fail "desktop entry's Exec does not take a file"
if [ -f /usr/share/mime/globs2 ]; then
  grep -q "application/x-dfstudio-project:\*.dfsproj" /usr/share/mime/globs2 ||
    fail "the MIME database does not know *.dfsproj (update-mime-database trigger)"
  echo "   MIME database: $(grep dfsproj /usr/share/mime/globs2)"
else
  echo "   (shared-mime-info not installed: MIME database not checked)"
fi
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$desktop" || fail "desktop-file-validate"
  echo "   desktop-file-validate: ok"
else
  echo "   (desktop-file-validate not installed)"
fi
metainfo=$(ls /usr/share/metainfo/*.metainfo.xml | grep -i dfstudio || true)
[ -n "$metainfo" ] || fail "no metainfo installed"
if command -v appstreamcli >/dev/null; then
  appstreamcli validate --no-net "$metainfo" | sed 's/^/   /' || fail "appstreamcli validate"
fi
for icon in /usr/share/icons/hicolor/128x128/apps/dfstudio.png /usr/share/icons/hicolor/scalable/apps/dfstudio.svg; do
  [ -f "$icon" ] || fail "$icon not installed"
done

step "4. the installed programs"
[ "$(command -v dforce)" = /usr/bin/dforce ] || fail "dforce is not /usr/bin/dforce"
/usr/bin/dforce --version | sed 's/^/   /'
env -u DISPLAY -u WAYLAND_DISPLAY /usr/bin/dfstudio --help >"$work/help.txt" || fail "dfstudio --help without a display"
head -2 "$work/help.txt" | sed 's/^/   /'
sample=/usr/share/dfstudio/samples/vtest_clip.mp4
[ -f "$sample" ] || fail "the sample clip is not installed at $sample"
project="$work/my project.dfsproj"
# The installed demo model (no --model: dforce finds it beside the installed binary).
DFS_THREADS=2 /usr/bin/dforce extend "$sample" -n 2 --steps 2 -o "$work/extended.mp4" \
  --save-project "$project" >"$work/extend.log" 2>&1 || { cat "$work/extend.log"; fail "dforce extend"; }
tail -2 "$work/extend.log" | sed 's/^/   /'
[ -s "$work/extended.mp4" ] && [ -s "$project" ] || fail "dforce extend wrote no video or project"
# Which application opens a project: the desktop database (update-desktop-database, run by
# desktop-file-utils' trigger) and xdg-mime, when installed.
if [ -f /usr/share/applications/mimeinfo.cache ]; then
  grep -q "^application/x-dfstudio-project=.*dfstudio.desktop" /usr/share/applications/mimeinfo.cache ||
    fail "the desktop database does not associate projects with dfstudio.desktop"
  echo "   desktop database: $(grep '^application/x-dfstudio-project=' /usr/share/applications/mimeinfo.cache)"
fi
if command -v xdg-mime >/dev/null; then
  default=$(xdg-mime query default application/x-dfstudio-project)
  echo "   xdg-mime query default application/x-dfstudio-project: $default"
  [ "$default" = dfstudio.desktop ] || fail "xdg-mime opens projects with '$default'"
  # Outside a desktop session xdg-mime guesses a file's type with file(1), which sees JSON: for
  # information only (the MIME database's answer is checked above).
  echo "   (xdg-mime query filetype, file(1) fallback here: $(xdg-mime query filetype "$project"))"
fi

step "5. open the project from the desktop entry, as a double click does"
exec_line=$(sed -n 's/^Exec=//p' "$desktop")
read -r -a argv <<<"$exec_line"
for i in "${!argv[@]}"; do [ "${argv[$i]}" = %f ] && argv[$i]=$project; done
echo "   running: ${argv[*]} --quit-after 20"
DFS_THREADS=2 xvfb-run -a -s "-screen 0 1366x768x24" "${argv[@]}" --quit-after 20 \
  >"$work/studio.out" 2>"$work/studio.err" || { cat "$work/studio.out" "$work/studio.err"; fail "dfstudio exited non-zero"; }
cat "$work/studio.out" | sed 's/^/   /'
grep -q "project '$project'" "$work/studio.out" || fail "dfstudio did not open the project"
grep -q "clip '$sample'" "$work/studio.out" || fail "the project's clip is not the sample"
grep -q "model (not loaded)" "$work/studio.out" && fail "the installed demo model did not load"

step "6. remove the package"
DEBIAN_FRONTEND=noninteractive apt-get remove -y -q "$pkg" >"$work/remove.log" 2>&1 || { tail "$work/remove.log"; fail "apt-get remove"; }
[ ! -e /usr/bin/dforce ] && [ ! -e /usr/bin/dfstudio ] && [ ! -e "$mime_xml" ] || fail "files left after remove"
echo "   removed; /usr/bin/dforce and the MIME type are gone"
echo
echo "deb_install: PASS"
