// colors.h — the Studio's few shared colours, so the timeline (QPainter) and the ImGui panels
// mark pinned / generated / selected frames the same way. Values are 0xRRGGBB.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>

namespace dfs::ui::colors {

inline constexpr std::uint32_t kPinned = 0xF2A93B;     // amber: a conditioning frame
inline constexpr std::uint32_t kGenerated = 0x3DC7A4;  // teal: produced by the model
inline constexpr std::uint32_t kSelection = 0x5B9BF0;  // blue: the selected range
inline constexpr std::uint32_t kCurrent = 0xF5F5F5;    // near-white: the playhead
inline constexpr std::uint32_t kPreview = 0xC46BE0;    // violet: live x0 estimate, not final

struct Rgb {
  float r, g, b;  // 0..1
};

inline Rgb unpack(std::uint32_t rgb) {
  return {static_cast<float>((rgb >> 16) & 0xFF) / 255.0f,
          static_cast<float>((rgb >> 8) & 0xFF) / 255.0f, static_cast<float>(rgb & 0xFF) / 255.0f};
}

// Viridis (matplotlib's perceptually uniform map, van der Walt & Smith 2015) sampled at five
// stops and interpolated linearly: level 0 (clean) is dark purple, level 1 (noise) yellow.
inline Rgb level_color(double level) {
  static constexpr std::array<Rgb, 5> kStops = {{{0.267f, 0.005f, 0.329f},
                                                 {0.230f, 0.322f, 0.546f},
                                                 {0.128f, 0.567f, 0.551f},
                                                 {0.369f, 0.789f, 0.383f},
                                                 {0.993f, 0.906f, 0.144f}}};
  const double x = std::clamp(level, 0.0, 1.0) * (kStops.size() - 1);
  const auto i = std::min<size_t>(static_cast<size_t>(std::floor(x)), kStops.size() - 2);
  const float f = static_cast<float>(x - static_cast<double>(i));
  const Rgb& a = kStops[i];
  const Rgb& b = kStops[i + 1];
  return {a.r + (b.r - a.r) * f, a.g + (b.g - a.g) * f, a.b + (b.b - a.b) * f};
}

}  // namespace dfs::ui::colors
