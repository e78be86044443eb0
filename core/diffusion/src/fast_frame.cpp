// The fused frame finish of the fast CPU kernels (see fast_cpu.h, finish_frame).
//
// Every loop here runs along one image row over contiguous floats, so the compiler vectorises
// it (AVX-512 and AVX2 clones, fast_cpu_util.h). This file is compiled without floating-point
// contraction (CMakeLists.txt): a fused multiply-add in the byte conversion would round once
// where torch::round's path rounds twice, and could move a value across a half-level.
#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <vector>

#include "dfs/diffusion/api.h"
#include "fast_cpu.h"
#include "fast_cpu_util.h"

namespace dfs::diffusion::fast {

using detail::chunk_for;
using detail::exp_nonpositive;

namespace {

constexpr int64_t kRadius = 4;  // the 9x9 window of transfer_detail

inline float clamp1(float v) {
  return v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
}

// round((clamp(v) + 1) * 127.5), rounding half to even as torch::round: adding 1.5 * 2^23
// rounds a float in [0, 2^22) to an integer in the default rounding mode (nearbyint without a
// library call, which the compiler cannot vectorise).
inline std::uint8_t to_byte(float v) {
  constexpr float kRound = 12582912.0f;
  const float y = (clamp1(v) + 1.0f) * 127.5f;
  return static_cast<std::uint8_t>(static_cast<std::int32_t>((y + kRound) - kRound));
}

DFS_VECTOR_CLONES void bytes_of(const float* x, int64_t n, std::uint8_t* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = to_byte(x[i]);
}

// One row of the frame, clamped, into three planes. The source is [H, W, 3], or with
// `shuffle` r > 1 the decoder's last activation before its pixel shuffle, [H / r, W / r, 3 r r]
// (channel c r r + i r + j of pixel (y, x) is output pixel (y r + i, x r + j), channel c).
struct Source {
  const float* data;
  int64_t width;  // output pixels per row
  int64_t shuffle;
};

DFS_VECTOR_CLONES void load_row_hwc(const float* row, int64_t width, float* c0, float* c1,
                                    float* c2) {
  for (int64_t x = 0; x < width; ++x) {
    c0[x] = clamp1(row[3 * x]);
    c1[x] = clamp1(row[3 * x + 1]);
    c2[x] = clamp1(row[3 * x + 2]);
  }
}

void load_row(const Source& s, int64_t y, float* c0, float* c1, float* c2) {
  if (s.shuffle == 1) return load_row_hwc(s.data + y * s.width * 3, s.width, c0, c1, c2);
  const int64_t r = s.shuffle, rr = r * r, in_w = s.width / r, i = y % r;
  const float* row = s.data + (y / r) * in_w * 3 * rr + i * r;
  float* planes[3] = {c0, c1, c2};
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t x = 0; x < in_w; ++x)
      for (int64_t j = 0; j < r; ++j) planes[c][x * r + j] = clamp1(row[x * 3 * rr + c * rr + j]);
}

// Channel-mean |x - ref| of one row, then its 1x9 means (valid pixels counted), as
// transfer_detail sums them (left to right).
DFS_VECTOR_CLONES void diff_row(const float* x0, const float* x1, const float* x2, const float* r0,
                                const float* r1, const float* r2, int64_t width, float* diff) {
  for (int64_t x = 0; x < width; ++x) {
    float sum = std::fabs(x0[x] - r0[x]);
    sum += std::fabs(x1[x] - r1[x]);
    sum += std::fabs(x2[x] - r2[x]);
    diff[x] = sum / 3.0f;
  }
}

DFS_VECTOR_CLONES void row_means(const float* d, int64_t width, float* out) {
  const auto edge = [&](int64_t x) {
    const int64_t lo = std::max<int64_t>(0, x - kRadius), hi = std::min(width - 1, x + kRadius);
    float sum = 0.0f;
    for (int64_t k = lo; k <= hi; ++k) sum += d[k];
    out[x] = sum / static_cast<float>(hi - lo + 1);
  };
  const int64_t inner_end = width - kRadius;
  for (int64_t x = 0; x < std::min(kRadius, width); ++x) edge(x);
  for (int64_t x = kRadius; x < inner_end; ++x) {
    float sum = d[x - 4];
    sum += d[x - 3];
    sum += d[x - 2];
    sum += d[x - 1];
    sum += d[x];
    sum += d[x + 1];
    sum += d[x + 2];
    sum += d[x + 3];
    sum += d[x + 4];
    out[x] = sum / 9.0f;
  }
  for (int64_t x = std::max(kRadius, inner_end); x < width; ++x) edge(x);
}

// Rows lo..hi of the row means summed per column (top to bottom), then the weight
// exp(-(mean / tolerance)^2).
DFS_VECTOR_CLONES void column_weights(const float* rows, int64_t width, int64_t lo, int64_t hi,
                                      float inv_tolerance, float* weight) {
  const float count = static_cast<float>(hi - lo + 1);
  for (int64_t x = 0; x < width; ++x) weight[x] = rows[lo * width + x];
  for (int64_t k = lo + 1; k <= hi; ++k)
    for (int64_t x = 0; x < width; ++x) weight[x] += rows[k * width + x];
  for (int64_t x = 0; x < width; ++x) {
    const float d = weight[x] / count * inv_tolerance;
    weight[x] = exp_nonpositive(-d * d);
  }
}

// x + weight (pixels - ref), to bytes, interleaved.
DFS_VECTOR_CLONES void transfer_row(const float* x0, const float* x1, const float* x2,
                                    const float* r0, const float* r1, const float* r2,
                                    const float* p0, const float* p1, const float* p2,
                                    const float* weight, int64_t width, std::uint8_t* rgb) {
  for (int64_t x = 0; x < width; ++x) {
    rgb[3 * x] = to_byte(x0[x] + weight[x] * (p0[x] - r0[x]));
    rgb[3 * x + 1] = to_byte(x1[x] + weight[x] * (p1[x] - r1[x]));
    rgb[3 * x + 2] = to_byte(x2[x] + weight[x] * (p2[x] - r2[x]));
  }
}

DFS_VECTOR_CLONES void interleave_bytes(const float* x0, const float* x1, const float* x2,
                                        int64_t width, std::uint8_t* rgb) {
  for (int64_t x = 0; x < width; ++x) {
    rgb[3 * x] = to_byte(x0[x]);
    rgb[3 * x + 1] = to_byte(x1[x]);
    rgb[3 * x + 2] = to_byte(x2[x]);
  }
}

void finish(const Source& src, int64_t height, const torch::Tensor& ref_decoded_in,
            const torch::Tensor& ref_pixels_in, double tolerance, std::uint8_t* rgb) {
  const int64_t width = src.width, plane = height * width;
  if (!ref_decoded_in.defined()) {
    if (src.shuffle == 1) {
      at::parallel_for(0, height, chunk_for(height, 8), [&](int64_t y0, int64_t y1) {
        bytes_of(src.data + y0 * width * 3, (y1 - y0) * width * 3, rgb + y0 * width * 3);
      });
      return;
    }
    at::parallel_for(0, height, chunk_for(height, 8), [&](int64_t y0, int64_t y1) {
      std::vector<float> x(3 * width);
      for (int64_t y = y0; y < y1; ++y) {
        load_row(src, y, x.data(), x.data() + width, x.data() + 2 * width);
        interleave_bytes(x.data(), x.data() + width, x.data() + 2 * width, width,
                         rgb + y * width * 3);
      }
    });
    return;
  }
  const auto r = ref_decoded_in.to(torch::kFloat32).contiguous();
  const auto p = ref_pixels_in.to(torch::kFloat32).contiguous();
  if (r.sizes() != torch::IntArrayRef{3, height, width} || p.sizes() != r.sizes())
    throw Error("finish_frame: the reference does not match the frame");
  const float* rp = r.data_ptr<float>();
  const float* pp = p.data_ptr<float>();
  // Pass 1: each row's 1x9 means of the channel-mean difference.
  std::vector<float> rows(plane);
  at::parallel_for(0, height, chunk_for(height, 8), [&](int64_t y0, int64_t y1) {
    std::vector<float> x(3 * width), diff(width);
    for (int64_t y = y0; y < y1; ++y) {
      load_row(src, y, x.data(), x.data() + width, x.data() + 2 * width);
      const float* ry = rp + y * width;
      diff_row(x.data(), x.data() + width, x.data() + 2 * width, ry, ry + plane, ry + 2 * plane,
               width, diff.data());
      row_means(diff.data(), width, rows.data() + y * width);
    }
  });
  // Pass 2: their 9x1 column means (= the 9x9 mean), the weight, the transfer, the bytes.
  const float inv_tolerance = static_cast<float>(1.0 / tolerance);
  at::parallel_for(0, height, chunk_for(height, 8), [&](int64_t y0, int64_t y1) {
    std::vector<float> x(3 * width), weight(width);
    for (int64_t y = y0; y < y1; ++y) {
      const int64_t lo = std::max<int64_t>(0, y - kRadius), hi = std::min(height - 1, y + kRadius);
      column_weights(rows.data(), width, lo, hi, inv_tolerance, weight.data());
      load_row(src, y, x.data(), x.data() + width, x.data() + 2 * width);
      const float* ry = rp + y * width;
      const float* py = pp + y * width;
      transfer_row(x.data(), x.data() + width, x.data() + 2 * width, ry, ry + plane, ry + 2 * plane,
                   py, py + plane, py + 2 * plane, weight.data(), width, rgb + y * width * 3);
    }
  });
}

}  // namespace

void finish_frame(const torch::Tensor& decoded_in, const torch::Tensor& ref_decoded_in,
                  const torch::Tensor& ref_pixels_in, double tolerance, std::uint8_t* rgb) {
  const auto decoded = decoded_in.to(torch::kFloat32).contiguous();
  if (decoded.dim() != 3 || decoded.size(2) != 3)
    throw Error("finish_frame: decoded must be [H, W, 3]");
  finish({decoded.data_ptr<float>(), decoded.size(1), 1}, decoded.size(0), ref_decoded_in,
         ref_pixels_in, tolerance, rgb);
}

void finish_shuffled_frame(const torch::Tensor& unshuffled_in, int64_t shuffle,
                           const torch::Tensor& ref_decoded, const torch::Tensor& ref_pixels,
                           double tolerance, std::uint8_t* rgb) {
  const auto unshuffled = unshuffled_in.to(torch::kFloat32).contiguous();
  if (shuffle < 1 || unshuffled.dim() != 3 || unshuffled.size(2) != 3 * shuffle * shuffle)
    throw Error("finish_shuffled_frame: expected [h, w, 3 r r] before a pixel shuffle by r");
  finish({unshuffled.data_ptr<float>(), unshuffled.size(1) * shuffle, shuffle},
         unshuffled.size(0) * shuffle, ref_decoded, ref_pixels, tolerance, rgb);
}

}  // namespace dfs::diffusion::fast
