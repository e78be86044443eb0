// dfs/media/frame_ops.h — pixel work on dfs::Frame (OpenCV inside, not in this header).
//
// All functions are pure (inputs untouched, a new Frame returned) and thread-safe.
// Throws std::invalid_argument for empty frames / non-positive sizes / mismatched sizes.
#pragma once

#include <cstdint>

#include "dfs/fit_and_format.h"
#include "dfs/frame.h"

namespace dfs::media {

// How a frame of one aspect ratio goes into a box of another (dfs/fit_and_format.h).
using FitMode = dfs::FitMode;

// Parses "letterbox" | "crop" | "stretch" (also "pad", "fill"); throws std::invalid_argument.
FitMode parse_fit_mode(const char* text);
using dfs::to_string;

enum class Filter {
  kNearest,  // blocky: exact pixels, for inspecting a model's low-resolution output
  kSmooth,   // area when shrinking, bicubic when enlarging
};

// Resizes `src` to exactly width x height with `fit`. `src_aspect` is the aspect ratio the
// source is *displayed* at (0: width/height of src, i.e. square pixels).
Frame resize(const Frame& src, int width, int height, FitMode fit = FitMode::Letterbox,
             Filter filter = Filter::kSmooth, double src_aspect = 0);

// Enlarges by an integer factor (>= 1) for display/export of model-resolution frames.
Frame upscale(const Frame& src, int factor, Filter filter = Filter::kNearest);

// Where a src_w x src_h picture (display aspect src_aspect, 0 = square pixels) lands inside a
// dst_w x dst_h box: the scaled size (may exceed the box for kCrop) and its offset (negative
// for kCrop). Used by resize() and by the decoder's direct-to-model-size path.
struct FitGeometry {
  int scaled_width = 0;
  int scaled_height = 0;
  int offset_x = 0;
  int offset_y = 0;
};
FitGeometry fit_geometry(int src_w, int src_h, double src_aspect, int dst_w, int dst_h,
                         FitMode fit);

// Peak signal-to-noise ratio in dB over all RGB samples (peak 255): 10·log10(255² / MSE).
// Identical frames return +infinity.
double psnr(const Frame& a, const Frame& b);

// Structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004, Eq. 13) with the paper's
// constants: 11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255; computed per
// RGB channel and averaged. 1 for identical frames.
double ssim(const Frame& a, const Frame& b);

// Colour conversion between dfs::Frame (RGB24) and other packed layouts (QImage, OpenCV).
enum class PixelLayout {
  kRgb24,   // R,G,B
  kBgr24,   // B,G,R (OpenCV's default)
  kRgba32,  // R,G,B,A bytes (QImage::Format_RGBA8888)
  kBgra32,  // B,G,R,A bytes (QImage::Format_ARGB32 on little-endian)
  kGray8,   // one luma byte
};
// Builds an RGB Frame from a packed buffer (stride in bytes; alpha is dropped).
Frame from_pixels(const std::uint8_t* data, int width, int height, int stride, PixelLayout layout);
// Writes `frame` into a packed buffer of `layout` (stride in bytes; alpha set to 255;
// gray is BT.601 luma). `out` must hold height * stride bytes.
void to_pixels(const Frame& frame, std::uint8_t* out, int stride, PixelLayout layout);
// BT.601 luma (as OpenCV's COLOR_RGB2GRAY) replicated into R, G and B.
Frame to_grayscale(const Frame& frame);

}  // namespace dfs::media
