// dfs/frame.h — the plain frame type shared by dfs_diffusion, dfs_media, dfs_project and the UI.
//
// A Frame owns tightly packed 8-bit RGB pixels, row-major, top row first:
// pixel (x, y) channel c is rgb[y * stride() + 3 * x + c]. No torch, no libav, no Qt here:
// this is the only type the engine and the media library both know.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace dfs {

struct Frame {
  int width = 0;                  // pixels
  int height = 0;                 // pixels
  std::vector<std::uint8_t> rgb;  // width * height * 3 bytes, packed RGB24

  Frame() = default;
  Frame(int w, int h) : width(w), height(h), rgb(static_cast<size_t>(w) * h * 3, 0) {
    if (w < 0 || h < 0) throw std::invalid_argument("Frame: negative size");
  }

  int stride() const { return width * 3; }                  // bytes per row
  bool empty() const { return width <= 0 || height <= 0; }  // no pixels
  size_t byte_size() const { return static_cast<size_t>(width) * height * 3; }
  std::uint8_t* row(int y) { return rgb.data() + static_cast<size_t>(y) * stride(); }
  const std::uint8_t* row(int y) const { return rgb.data() + static_cast<size_t>(y) * stride(); }

  friend bool operator==(const Frame& a, const Frame& b) {
    return a.width == b.width && a.height == b.height && a.rgb == b.rgb;
  }
};

}  // namespace dfs
