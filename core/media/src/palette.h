// palette.h — internal: 256-colour quantisation of RGB frames for GIF export.
//
// Median cut (Heckbert 1982, "Color image quantization for frame buffer display") over a
// 5-bit-per-channel histogram, palette entries are the pixel-weighted means of their boxes;
// optional Floyd–Steinberg error diffusion (Floyd & Steinberg 1976; 7/16, 3/16, 5/16, 1/16).
// Frames with at most 256 distinct colours get an exact palette and no dithering, so such
// GIFs round-trip bit-exactly.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "dfs/frame.h"

namespace dfs::media {

struct IndexedImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> indices;         // width * height palette indices
  std::array<std::uint32_t, 256> palette{};  // 0xAARRGGBB (FFmpeg PAL8 layout), unused = 0
  int colors = 0;                            // entries in use
  bool exact = false;                        // palette holds every colour of the frame
};

IndexedImage quantize(const Frame& frame, bool dither);

}  // namespace dfs::media
