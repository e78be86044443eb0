#!/usr/bin/env bash
# Installs every Debian package that the build, the tests and the app need. Idempotent:
# skips what is present and prints what it installs. Needs root (or sudo).
#   packaging/install-deps.sh            everything (full build, tests, GUI)
#   packaging/install-deps.sh --core     only what the core-only build needs
#   packaging/install-deps.sh --data     everything, plus the footage and photographs that
#                                        `dforce dataset build` makes the training set from
set -euo pipefail

core=(cmake ninja-build g++ pkg-config ccache libtorch-dev nlohmann-json3-dev libcli11-dev
      # Data-parallel training (dforce launch, torchrun): the Gloo headers c10d compiles against.
      libgloo-dev
      catch2
      # Debian's LibTorch multiplies matrices on the reference BLAS (~30x slower) unless an
      # optimised libblas.so.3 alternative is installed.
      libopenblas0-pthread
      # oneDNN's headers: the decoder runs on its Winograd convolutions (the library itself
      # comes with libtorch-dev).
      libdnnl-dev)
full=(libavcodec-dev libavformat-dev libavutil-dev libswscale-dev ffmpeg
      libopencv-core-dev libopencv-imgproc-dev
      qt6-base-dev libqt6opengl6-dev libgl-dev libimgui-dev
      # GUI tests and screenshots run under a virtual X display.
      xvfb xauth imagemagick
      # The .deb install test (tests/packaging/deb_install.sh) checks the desktop entry with these.
      desktop-file-utils xdg-utils
      # Real footage for the sample clip, the tests and the demo model; sprites for synthetic data.
      opencv-doc dataset-fashion-mnist
      # The plain PyTorch eager port (tools/python_eager) that the exact mode is checked against
      # byte for byte, and the Python side of the speed comparison (the same LibTorch 1.13).
      python3-torch python3-numpy python3-pil)

# Training data only (models/README.md): real image sequences with camera motion, and still
# photographs for synthetic motion.
data=(visp-images-data gnome-backgrounds plasma-workspace-wallpapers mate-backgrounds)

pkgs=("${core[@]}")
[ "${1:-}" = "--core" ] || pkgs+=("${full[@]}")
[ "${1:-}" = "--data" ] && pkgs+=("${data[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#pkgs[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-deps: done"
