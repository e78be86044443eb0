// Frame processing: fitting into a model resolution, upscaling, PSNR, SSIM, colour layouts.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "dfs/media/frame_ops.h"
#include "media_test_util.h"

using namespace dfs::media;
using dfs::Frame;

namespace {
Frame solid(int w, int h, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
  Frame f(w, h);
  for (size_t i = 0; i < f.rgb.size(); i += 3) {
    f.rgb[i] = r;
    f.rgb[i + 1] = g;
    f.rgb[i + 2] = b;
  }
  return f;
}
bool is_black(const Frame& f, int x, int y) {
  const std::uint8_t* p = f.row(y) + 3 * x;
  return p[0] == 0 && p[1] == 0 && p[2] == 0;
}
}  // namespace

TEST_CASE("fit geometry letterboxes, crops and stretches as documented", "[media][frame_ops]") {
  // 768x576 (4:3) into 64x48 (4:3): all three fill exactly.
  for (FitMode m : {FitMode::Letterbox, FitMode::Crop, FitMode::Stretch}) {
    const auto g = fit_geometry(768, 576, 0, 64, 48, m);
    CHECK(g.scaled_width == 64);
    CHECK(g.scaled_height == 48);
    CHECK(g.offset_x == 0);
    CHECK(g.offset_y == 0);
  }
  // 16:9 into 4:3: letterbox pads top/bottom, crop cuts left/right.
  const auto lb = fit_geometry(1920, 1080, 0, 64, 48, FitMode::Letterbox);
  CHECK(lb.scaled_width == 64);
  CHECK(lb.scaled_height == 36);
  CHECK(lb.offset_y == 6);
  const auto cr = fit_geometry(1920, 1080, 0, 64, 48, FitMode::Crop);
  CHECK(cr.scaled_height == 48);
  CHECK(cr.scaled_width == 85);
  CHECK(cr.offset_x == -10);
  // Non-square pixels: a 720x480 frame shown at 16:9 letterboxes like 16:9.
  CHECK(fit_geometry(720, 480, 16.0 / 9.0, 64, 48, FitMode::Letterbox).scaled_height == 36);
}

TEST_CASE("resize with letterbox pads with black and keeps the picture's colour",
          "[media][frame_ops]") {
  const Frame wide = solid(160, 90, 200, 100, 50);
  const Frame boxed = resize(wide, 64, 48, FitMode::Letterbox);
  REQUIRE(boxed.width == 64);
  REQUIRE(boxed.height == 48);
  CHECK(is_black(boxed, 10, 0));
  CHECK(is_black(boxed, 10, 47));
  const std::uint8_t* mid = boxed.row(24) + 3 * 32;
  CHECK(mid[0] == 200);
  CHECK(mid[1] == 100);
  CHECK(mid[2] == 50);
  const Frame cropped = resize(wide, 64, 48, FitMode::Crop);
  CHECK_FALSE(is_black(cropped, 0, 0));
  CHECK_FALSE(is_black(cropped, 63, 47));
  const Frame stretched = resize(wide, 64, 48, FitMode::Stretch);
  CHECK_FALSE(is_black(stretched, 0, 0));
  CHECK(resize(wide, 160, 90, FitMode::Letterbox) == wide);  // same size: untouched
  CHECK_THROWS_AS(resize(Frame{}, 8, 8), std::invalid_argument);
  CHECK_THROWS_AS(resize(wide, 0, 8), std::invalid_argument);
}

TEST_CASE("upscale nearest repeats each pixel exactly", "[media][frame_ops]") {
  const Frame small = dfs_test::noise_frame(5, 3, 9);
  const Frame big = upscale(small, 4, Filter::kNearest);
  REQUIRE(big.width == 20);
  REQUIRE(big.height == 12);
  for (int y = 0; y < 12; ++y)
    for (int x = 0; x < 20; ++x)
      for (int c = 0; c < 3; ++c) CHECK(big.row(y)[3 * x + c] == small.row(y / 4)[3 * (x / 4) + c]);
  const Frame smooth = upscale(small, 3, Filter::kSmooth);
  CHECK(smooth.width == 15);
  CHECK(upscale(small, 1) == small);
  CHECK_THROWS_AS(upscale(small, 0), std::invalid_argument);
}

TEST_CASE("PSNR follows its definition", "[media][frame_ops][metrics]") {
  const Frame a = solid(10, 10, 100, 100, 100);
  Frame b = a;
  CHECK(std::isinf(psnr(a, b)));
  // Every sample off by 5: MSE 25 → 10 log10(255² / 25) = 34.15 dB.
  b = solid(10, 10, 105, 105, 105);
  CHECK(psnr(a, b) == Approx(10 * std::log10(255.0 * 255.0 / 25.0)));
  CHECK_THROWS_AS(psnr(a, solid(9, 10, 0, 0, 0)), std::invalid_argument);
}

TEST_CASE("SSIM is 1 for identical frames and falls with distortion",
          "[media][frame_ops][metrics]") {
  const Frame a = dfs_test::pattern_frame(64, 48, 3);
  CHECK(ssim(a, a) == Approx(1.0));
  Frame light = a, heavy = a;
  std::mt19937 rng(1);
  for (size_t i = 0; i < a.rgb.size(); ++i) {
    const int n = static_cast<int>(rng() % 21) - 10;
    light.rgb[i] = static_cast<std::uint8_t>(std::clamp(a.rgb[i] + n / 4, 0, 255));
    heavy.rgb[i] = static_cast<std::uint8_t>(std::clamp(a.rgb[i] + 4 * n, 0, 255));
  }
  const double s_light = ssim(a, light), s_heavy = ssim(a, heavy);
  CHECK(s_light < 1.0);
  CHECK(s_light > s_heavy);
  CHECK(s_heavy > 0.0);
  // Flat frames have no variance, so SSIM is the luminance term alone (Wang et al. 2004,
  // Eq. 6): (2·μx·μy + C1) / (μx² + μy² + C1), C1 = (0.01·255)², the same in every channel.
  const double c1 = (0.01 * 255) * (0.01 * 255);
  const double expected = (2.0 * 100 * 110 + c1) / (100.0 * 100 + 110.0 * 110 + c1);
  CHECK(ssim(solid(64, 48, 100, 100, 100), solid(64, 48, 110, 110, 110)) == Approx(expected));
  CHECK(ssim(solid(64, 48, 100, 7, 7), solid(64, 48, 110, 7, 7)) == Approx((expected + 2.0) / 3.0));
  CHECK(ssim(solid(64, 48, 7, 7, 100), solid(64, 48, 7, 7, 110)) ==
        Approx((expected + 2.0) / 3.0));  // every channel weighs the same
}

TEST_CASE("colour layouts round-trip through from_pixels / to_pixels", "[media][frame_ops]") {
  const Frame f = dfs_test::noise_frame(7, 5, 4);
  for (PixelLayout layout :
       {PixelLayout::kRgb24, PixelLayout::kBgr24, PixelLayout::kRgba32, PixelLayout::kBgra32}) {
    const int bpp = (layout == PixelLayout::kRgba32 || layout == PixelLayout::kBgra32) ? 4 : 3;
    const int stride = 7 * bpp + 5;  // padded rows, as QImage has
    std::vector<std::uint8_t> buf(static_cast<size_t>(stride) * 5, 0);
    to_pixels(f, buf.data(), stride, layout);
    CHECK(from_pixels(buf.data(), 7, 5, stride, layout) == f);
  }
  std::vector<std::uint8_t> bgr(7 * 5 * 3);
  to_pixels(f, bgr.data(), 21, PixelLayout::kBgr24);
  CHECK(bgr[0] == f.rgb[2]);
  CHECK(bgr[2] == f.rgb[0]);
  const Frame g = to_grayscale(solid(2, 2, 255, 0, 0));
  // BT.601 luma of pure red: 0.299 · 255 = 76.
  CHECK(int(g.rgb[0]) == 76);
  CHECK(g.rgb[0] == g.rgb[1]);
}
