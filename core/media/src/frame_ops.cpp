// frame_ops.cpp — resize / fit, upscale, PSNR, SSIM and colour conversion with OpenCV.
#include "dfs/media/frame_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>
#include <stdexcept>
#include <string>

namespace dfs::media {

namespace {

// Views a Frame's pixels as a cv::Mat without copying (const_cast: OpenCV has no const Mat).
cv::Mat view(const Frame& f) {
  return cv::Mat(f.height, f.width, CV_8UC3, const_cast<std::uint8_t*>(f.rgb.data()),
                 static_cast<size_t>(f.stride()));
}
cv::Mat view(Frame& f) {
  return cv::Mat(f.height, f.width, CV_8UC3, f.rgb.data(), static_cast<size_t>(f.stride()));
}

void require(const Frame& f, const char* what) {
  if (f.empty() || f.rgb.size() < f.byte_size())
    throw std::invalid_argument(std::string(what) + ": empty or inconsistent frame");
}

}  // namespace

FitMode parse_fit_mode(const char* text) {
  const std::string t = text ? text : "";
  if (const auto mode = enum_from_name(kFitModeNames, t)) return *mode;
  throw std::invalid_argument("unknown fit mode '" + t + "' (" + enum_choices(kFitModeNames) + ")");
}

FitGeometry fit_geometry(int src_w, int src_h, double src_aspect, int dst_w, int dst_h,
                         FitMode fit) {
  if (src_w <= 0 || src_h <= 0 || dst_w <= 0 || dst_h <= 0)
    throw std::invalid_argument("fit_geometry: sizes must be positive");
  FitGeometry g{dst_w, dst_h, 0, 0};
  if (fit == FitMode::Stretch) return g;
  const double aspect = src_aspect > 0 ? src_aspect : static_cast<double>(src_w) / src_h;
  const double box = static_cast<double>(dst_w) / dst_h;
  const bool wider = aspect > box;
  // Letterbox: the longer relative side touches the box. Crop: the shorter one does.
  if ((fit == FitMode::Letterbox) == wider) {
    g.scaled_width = dst_w;
    g.scaled_height = std::max(1, static_cast<int>(std::lround(dst_w / aspect)));
  } else {
    g.scaled_height = dst_h;
    g.scaled_width = std::max(1, static_cast<int>(std::lround(dst_h * aspect)));
  }
  g.offset_x = (dst_w - g.scaled_width) / 2;
  g.offset_y = (dst_h - g.scaled_height) / 2;
  return g;
}

Frame resize(const Frame& src, int width, int height, FitMode fit, Filter filter,
             double src_aspect) {
  require(src, "resize");
  if (width <= 0 || height <= 0) throw std::invalid_argument("resize: size must be positive");
  const FitGeometry g = fit_geometry(src.width, src.height, src_aspect, width, height, fit);
  const bool shrinking = g.scaled_width * g.scaled_height < src.width * src.height;
  const int interp = filter == Filter::kNearest ? cv::INTER_NEAREST
                     : shrinking                ? cv::INTER_AREA
                                                : cv::INTER_CUBIC;
  if (g.scaled_width == src.width && g.scaled_height == src.height && g.offset_x == 0 &&
      g.offset_y == 0) {
    return src;
  }
  Frame out(width, height);
  cv::Mat dst = view(out);
  cv::Mat scaled;
  cv::resize(view(src), scaled, cv::Size(g.scaled_width, g.scaled_height), 0, 0, interp);
  // Intersection of the scaled picture (placed at offset) with the output box.
  const int x0 = std::max(0, g.offset_x), y0 = std::max(0, g.offset_y);
  const int x1 = std::min(width, g.offset_x + g.scaled_width);
  const int y1 = std::min(height, g.offset_y + g.scaled_height);
  scaled(cv::Rect(x0 - g.offset_x, y0 - g.offset_y, x1 - x0, y1 - y0))
      .copyTo(dst(cv::Rect(x0, y0, x1 - x0, y1 - y0)));
  return out;
}

Frame upscale(const Frame& src, int factor, Filter filter) {
  require(src, "upscale");
  if (factor < 1 || factor > 64) throw std::invalid_argument("upscale: factor must be 1..64");
  if (factor == 1) return src;
  Frame out(src.width * factor, src.height * factor);
  cv::Mat dst = view(out);
  cv::resize(view(src), dst, dst.size(), 0, 0,
             filter == Filter::kNearest ? cv::INTER_NEAREST : cv::INTER_CUBIC);
  return out;
}

double psnr(const Frame& a, const Frame& b) {
  require(a, "psnr");
  require(b, "psnr");
  if (a.width != b.width || a.height != b.height)
    throw std::invalid_argument("psnr: frames differ in size");
  double sse = 0;
  const size_t n = a.byte_size();
  for (size_t i = 0; i < n; ++i) {
    const double d = static_cast<double>(a.rgb[i]) - b.rgb[i];
    sse += d * d;
  }
  if (sse == 0) return std::numeric_limits<double>::infinity();
  const double mse = sse / static_cast<double>(n);
  return 10.0 * std::log10(255.0 * 255.0 / mse);
}

double ssim(const Frame& a, const Frame& b) {
  require(a, "ssim");
  require(b, "ssim");
  if (a.width != b.width || a.height != b.height)
    throw std::invalid_argument("ssim: frames differ in size");
  // Wang et al. 2004, Eq. 13, with local statistics from an 11x11 Gaussian (sigma 1.5),
  // C1 = (K1 L)^2, C2 = (K2 L)^2, K1 = 0.01, K2 = 0.03, L = 255.
  constexpr double kC1 = (0.01 * 255) * (0.01 * 255);
  constexpr double kC2 = (0.03 * 255) * (0.03 * 255);
  const cv::Size window(11, 11);
  constexpr double kSigma = 1.5;
  cv::Mat x, y;
  view(a).convertTo(x, CV_64FC3);
  view(b).convertTo(y, CV_64FC3);
  cv::Mat mu_x, mu_y, xx, yy, xy;
  cv::GaussianBlur(x, mu_x, window, kSigma);
  cv::GaussianBlur(y, mu_y, window, kSigma);
  cv::GaussianBlur(x.mul(x), xx, window, kSigma);
  cv::GaussianBlur(y.mul(y), yy, window, kSigma);
  cv::GaussianBlur(x.mul(y), xy, window, kSigma);
  const cv::Mat mu_xx = mu_x.mul(mu_x), mu_yy = mu_y.mul(mu_y), mu_xy = mu_x.mul(mu_y);
  const cv::Mat var_x = xx - mu_xx, var_y = yy - mu_yy, cov = xy - mu_xy;
  // Scalar::all: a bare double added to a 3-channel Mat would reach the first channel only.
  const cv::Scalar c1 = cv::Scalar::all(kC1), c2 = cv::Scalar::all(kC2);
  cv::Mat t1, t2, t3, t4;
  cv::add(2 * mu_xy, c1, t1);
  cv::add(2 * cov, c2, t2);
  cv::add(mu_xx + mu_yy, c1, t3);
  cv::add(var_x + var_y, c2, t4);
  const cv::Mat num = t1.mul(t2);
  const cv::Mat den = t3.mul(t4);
  cv::Mat map;
  cv::divide(num, den, map);
  const cv::Scalar m = cv::mean(map);
  return (m[0] + m[1] + m[2]) / 3.0;
}

Frame from_pixels(const std::uint8_t* data, int width, int height, int stride, PixelLayout layout) {
  if (!data || width <= 0 || height <= 0) throw std::invalid_argument("from_pixels: empty input");
  Frame out(width, height);
  cv::Mat dst = view(out);
  switch (layout) {
    case PixelLayout::kRgb24:
      cv::Mat(height, width, CV_8UC3, const_cast<std::uint8_t*>(data), stride).copyTo(dst);
      break;
    case PixelLayout::kBgr24:
      cv::cvtColor(cv::Mat(height, width, CV_8UC3, const_cast<std::uint8_t*>(data), stride), dst,
                   cv::COLOR_BGR2RGB);
      break;
    case PixelLayout::kRgba32:
      cv::cvtColor(cv::Mat(height, width, CV_8UC4, const_cast<std::uint8_t*>(data), stride), dst,
                   cv::COLOR_RGBA2RGB);
      break;
    case PixelLayout::kBgra32:
      cv::cvtColor(cv::Mat(height, width, CV_8UC4, const_cast<std::uint8_t*>(data), stride), dst,
                   cv::COLOR_BGRA2RGB);
      break;
    case PixelLayout::kGray8:
      cv::cvtColor(cv::Mat(height, width, CV_8UC1, const_cast<std::uint8_t*>(data), stride), dst,
                   cv::COLOR_GRAY2RGB);
      break;
  }
  return out;
}

void to_pixels(const Frame& frame, std::uint8_t* out, int stride, PixelLayout layout) {
  require(frame, "to_pixels");
  if (!out) throw std::invalid_argument("to_pixels: null output");
  const cv::Mat src = view(frame);
  const int w = frame.width, h = frame.height;
  switch (layout) {
    case PixelLayout::kRgb24: {
      cv::Mat dst(h, w, CV_8UC3, out, stride);
      src.copyTo(dst);
      break;
    }
    case PixelLayout::kBgr24: {
      cv::Mat dst(h, w, CV_8UC3, out, stride);
      cv::cvtColor(src, dst, cv::COLOR_RGB2BGR);
      break;
    }
    case PixelLayout::kRgba32: {
      cv::Mat dst(h, w, CV_8UC4, out, stride);
      cv::cvtColor(src, dst, cv::COLOR_RGB2RGBA);
      break;
    }
    case PixelLayout::kBgra32: {
      cv::Mat dst(h, w, CV_8UC4, out, stride);
      cv::cvtColor(src, dst, cv::COLOR_RGB2BGRA);
      break;
    }
    case PixelLayout::kGray8: {
      cv::Mat dst(h, w, CV_8UC1, out, stride);
      cv::cvtColor(src, dst, cv::COLOR_RGB2GRAY);
      break;
    }
  }
}

Frame to_grayscale(const Frame& frame) {
  require(frame, "to_grayscale");
  cv::Mat gray;
  cv::cvtColor(view(frame), gray, cv::COLOR_RGB2GRAY);
  Frame out(frame.width, frame.height);
  cv::Mat dst = view(out);
  cv::cvtColor(gray, dst, cv::COLOR_GRAY2RGB);
  return out;
}

}  // namespace dfs::media
