#!/usr/bin/env bash
# check_layering.sh — the include rules that keep the layers one-way (docs/ARCHITECTURE.md).
#
#   bash tests/layering/check_layering.sh REPO_ROOT        (CTest: layering.include_graph)
#
# Reads the #include lines of every *.h, *.hpp, *.cpp, *.cc under core/, ui/, app/ and tests/
# (not third_party/, not build*/ folders) and checks them against the rules below. Prints each
# offending "file:line: #include ..." with the rule it breaks, then one summary line.
# Exit status: 0 = no violations, 1 = violations, 2 = bad usage.
#
# The rules — what may include what:
#
#   1  Qt stays in ui/.  No Qt header (<QString>, <QtCore/...>, any <Q...> / <Qt.../>) anywhere
#      in core/: the engine, the media library and the project build and run without Qt
#      (dforce, the core-only training build on a GPU machine).
#   2  LibTorch stays behind dfs_diffusion.  No torch/, ATen/ or c10/ header in ui/,
#      core/project/, core/media/ or core/frame/, and none through a dfs header that pulls
#      LibTorch in (dfs/diffusion/sampler.h, model.h, ...): those layers use the torch-free
#      facade dfs/diffusion/api.h and dfs::Frame.
#   3  FFmpeg stays in core/media/src/ffmpeg/.  No libavcodec/, libavformat/, libavutil/,
#      libswscale/, libswresample/ (or other libav*/libsw*) header anywhere else — the fuzz
#      targets in core/media/fuzz/ included. Everyone else uses dfs/media/*.h.
#   4  src/ is private.  A library's public headers (core/<lib>/include/, ui/include/) never
#      include a header from a src/ folder (another library's or their own: users of the public
#      API do not have src/ on their include path), and no file of core/, ui/ or app/ includes
#      a header from another library's src/ folder.
#   5  Dependencies go one way: app -> ui -> project -> {diffusion, media} -> frame.
#      core/frame includes no other dfs library; core/diffusion and core/media include only
#      core/frame and themselves (they do not know each other); core/project adds diffusion
#      and media; ui adds project; nothing outside app/ and tests/ includes app/.
#   6  OpenCV stays in core/media/src/.  No opencv2/ header in core/ outside it, in ui/ or app/
#      (dfs_diffusion must build without OpenCV; frames cross libraries as dfs::Frame).
#
# Rules 1 and 2 are about the folders they name; rules 4-6 skip tests/ (a test may reach into
# what it tests). So in tests/ only rule 3 applies: FFmpeg stays in core/media/src/ffmpeg/.
set -euo pipefail

if [[ $# -ne 1 || ! -d "$1" ]]; then
  echo "usage: $0 REPO_ROOT  (the folder that holds core/, ui/, app/, tests/)" >&2
  exit 2
fi
cd "$1"

dirs=()
for d in core ui app tests; do
  [[ -d $d ]] && dirs+=("$d")
done
if [[ ${#dirs[@]} -eq 0 ]]; then
  echo "layering: no core/, ui/, app/ or tests/ folder under '$1'" >&2
  exit 2
fi

mapfile -d '' files < <(find "${dirs[@]}" \( -name third_party -o -name 'build*' \) -prune -o \
  -type f \( -name '*.h' -o -name '*.hpp' -o -name '*.cpp' -o -name '*.cc' \) -print0 | sort -z)
if [[ ${#files[@]} -eq 0 ]]; then
  echo "layering: 0 files checked, 0 violations"
  exit 0
fi

# Input to awk: the file list (one per line), then every include line as "file:line:text".
# grep exits 1 when no file includes anything; that is not an error here.
{ grep -HnE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]' "${files[@]}" || [[ $? -eq 1 ]]; } |
  awk -v nfiles="${#files[@]}" '
# [SECTION] What each rule says, in words for the person who broke it --------------------------
BEGIN {
  why[1] = "rule 1, Qt stays in ui/: core/ builds without Qt (dforce, the GPU training build). " \
           "Pass plain types (dfs::Frame, std::string) and convert to Qt types in ui/."
  why[2] = "rule 2, LibTorch stays behind dfs_diffusion: ui/, core/project/, core/media/ and " \
           "core/frame/ use the torch-free facade dfs/diffusion/api.h and dfs::Frame."
  why[3] = "rule 3, FFmpeg stays in core/media/src/ffmpeg/: everyone else uses the dfs/media/*.h " \
           "headers, which include no libav."
  why[4] = "rule 4, src/ is private: a public header may include only other public headers " \
           "(include/ folders), and a library may not include another library'"'"'s src/ headers."
  why[5] = "rule 5, dependencies go one way (app -> ui -> project -> {diffusion, media} -> frame)"
  why[6] = "rule 6, OpenCV stays in core/media/src/: dfs_diffusion must build without it; " \
           "use dfs/media/frame_ops.h or dfs::Frame."
  # Which dfs libraries each layer may include (rule 5).
  allowed["frame"] = " frame "
  allowed["diffusion"] = " frame diffusion "
  allowed["media"] = " frame media "
  allowed["project"] = " frame diffusion media project "
  allowed["ui"] = " frame diffusion media project ui "
  allowed_words["frame"] = "core/frame may include no other dfs library"
  allowed_words["diffusion"] = "core/diffusion may include only dfs/diffusion/ and core/frame " \
                               "(dfs/frame.h, dfs/limits.h, ...); it does not know media or project"
  allowed_words["media"] = "core/media may include only dfs/media/ and core/frame " \
                           "(dfs/frame.h, dfs/limits.h, ...); it does not know diffusion or project"
  allowed_words["project"] = "core/project may include core/frame, dfs/diffusion/api.h, " \
                             "dfs/media/ and itself, never ui/ or app/"
  allowed_words["ui"] = "ui/ may include core/ and itself, never app/"
}

# [SECTION] Helpers ------------------------------------------------------------------------------
function dirname(p,   i) { i = match(p, /\/[^\/]*$/); return i ? substr(p, 1, i - 1) : "." }
function normalize(p,   parts, n, i, out, k) {
  n = split(p, parts, "/"); k = 0
  for (i = 1; i <= n; i++) {
    if (parts[i] == "" || parts[i] == ".") continue
    if (parts[i] == "..") { if (k == 0) return ""; k--; continue }
    out[++k] = parts[i]
  }
  p = ""
  for (i = 1; i <= k; i++) p = p (i > 1 ? "/" : "") out[i]
  return p
}
# The layer a path belongs to: frame, diffusion, media, project (core/<lib>/), ui, app, tests.
function layer(p,   a) {
  if (p ~ /^core\/[^\/]+\//) { split(p, a, "/"); return a[2] }
  if (p ~ /^(ui|app|tests)\//) { split(p, a, "/"); return a[1] }
  return ""
}
function src_root_of(l) { return l == "ui" ? "ui/src" : (l == "app" || l == "tests" || l == "") ? "" : "core/" l "/src" }
function is_public(p) { return p ~ /^core\/[^\/]+\/include\// || p ~ /^ui\/include\// }
function is_private(p) { return p ~ /^core\/[^\/]+\/src\// || p ~ /^ui\/src\// }
function is_torch(inc) { return inc ~ /^(torch|ATen|c10)\// }
function torch_free_zone(p) { return p ~ /^(ui|core\/project|core\/media|core\/frame)\// }
# The file an include names, as the compiler would find it in this tree ("" = not ours:
# system, third-party or generated). Quoted includes: the includer'"'"'s folder first, then the
# public include/ folders, then the includer'"'"'s own src/ (tests/: tests/), then any other src/
# (so that a reach into another library'"'"'s src/ is found and reported).
function resolve(from, inc, quoted,   c, i, own) {
  if (quoted) { c = normalize(dirname(from) "/" inc); if (c in FILE) return c }
  for (i = 1; i <= npub; i++) { c = pub[i] "/" inc; if (c in FILE) return c }
  if (!quoted) return ""
  own = layer(from) == "tests" ? "tests" : src_root_of(layer(from))
  if (own != "") { c = own "/" inc; if (c in FILE) return c }
  for (i = 1; i <= npriv; i++) { c = priv[i] "/" inc; if (c in FILE) return c }
  return ""
}
function report(k, rule, extra) {
  printf "%s:%s: %s\n    %s%s\n", F[k], L[k], D[k], why[rule], extra
  violations++
}

# [SECTION] Read the file list and the include lines --------------------------------------------
NR <= nfiles {
  FILE[$0] = 1
  if (match($0, /^core\/[^\/]+\/include\//) || match($0, /^ui\/include\//)) {
    r = substr($0, 1, RLENGTH - 1); if (!(r in seen)) { seen[r] = 1; pub[++npub] = r }
  }
  if (match($0, /^core\/[^\/]+\/src\//) || match($0, /^ui\/src\//)) {
    r = substr($0, 1, RLENGTH - 1); if (!(r in seen)) { seen[r] = 1; priv[++npriv] = r }
  }
  next
}
{
  i = index($0, ":"); f = substr($0, 1, i - 1); rest = substr($0, i + 1)
  i = index(rest, ":"); ln = substr(rest, 1, i - 1); text = substr(rest, i + 1)
  if (!match(text, /[<"][^>"]+[>"]/)) next
  n++
  F[n] = f; L[n] = ln
  I[n] = substr(text, RSTART + 1, RLENGTH - 2)
  Q[n] = substr(text, RSTART, 1) == "\""
  D[n] = "#include " substr(text, RSTART, RLENGTH)
}

# [SECTION] Check --------------------------------------------------------------------------------
END {
  # Every include resolved once. Then the headers outside the torch-free layers that pull
  # LibTorch in, directly or through each other (a torch include inside those layers is
  # reported where it is written, not again at every file that includes it).
  for (k = 1; k <= n; k++) {
    R[k] = resolve(F[k], I[k], Q[k])
    if (is_torch(I[k]) && !torch_free_zone(F[k]) && !(F[k] in torchy)) {
      torchy[F[k]] = 1; via[F[k]] = I[k]
    }
  }
  for (changed = 1; changed; ) {
    changed = 0
    for (k = 1; k <= n; k++)
      if (R[k] != "" && (R[k] in torchy) && !torch_free_zone(F[k]) && !(F[k] in torchy)) {
        torchy[F[k]] = 1; via[F[k]] = R[k]; changed = 1
      }
  }

  for (k = 1; k <= n; k++) {
    f = F[k]; inc = I[k]; to = R[k]; from = layer(f)
    test = from == "tests"

    # Rule 1: no Qt in core/.
    if (f ~ /^core\// && (inc ~ /^Q[A-Z]/ || inc ~ /^Qt[A-Za-z0-9]*(\/|$)/)) report(k, 1, "")

    # Rule 2: no LibTorch in the torch-free layers, not even through a dfs header.
    if (torch_free_zone(f)) {
      if (is_torch(inc)) report(k, 2, "")
      else if (to != "" && (to in torchy)) {
        chain = to; h = to
        for (hops = 0; hops < 8 && (h in via); hops++) { h = via[h]; chain = chain " -> " h }
        report(k, 2, "\n    It pulls LibTorch in through: " chain)
      }
    }

    # Rule 3: libav only in core/media/src/ffmpeg/.
    if (inc ~ /^lib(av|sw|postproc)[a-z]*\// && f !~ /^core\/media\/src\/ffmpeg\//) report(k, 3, "")

    # Rule 4: src/ is private.
    if (to != "" && is_private(to)) {
      if (is_public(f))
        report(k, 4, "\n    " to " is a private header (a src/ folder).")
      else if (!test && layer(to) != from)
        report(k, 4, "\n    " to " is private to " layer(to) ".")
    }

    # Rule 5: one-way dependencies between the libraries.
    if (!test && from != "app" && (from in allowed)) {
      target = ""
      if (to != "") target = layer(to)
      else if (inc ~ /^dfs\/[^\/]+\//) { split(inc, a, "/"); target = a[2] }
      else if (inc ~ /^dfs\/[^\/]+$/) target = "frame"
      if (target != "" && target != "tests" && index(allowed[from], " " target " ") == 0)
        report(k, 5, ":\n    " allowed_words[from] ".")
    }

    # Rule 6: OpenCV only in core/media/src/.
    if (!test && inc ~ /^opencv2?\// && f !~ /^core\/media\/src\//) report(k, 6, "")
  }
  printf "layering: %d files checked, %d violation%s\n", nfiles, violations, violations == 1 ? "" : "s"
  if (violations > 0)
    print "layering: the rules and why are at the top of tests/layering/check_layering.sh " \
          "and in docs/ARCHITECTURE.md"
  exit violations > 0 ? 1 : 0
}
' <(printf '%s\n' "${files[@]}") -
