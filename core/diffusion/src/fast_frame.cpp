// The fused frame finish of the fast CPU kernels (see fast_cpu.h, finish_frame).
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

void finish_frame(const torch::Tensor& decoded_in, const torch::Tensor& ref_decoded_in,
                  const torch::Tensor& ref_pixels_in, double tolerance, std::uint8_t* rgb) {
  const auto decoded = decoded_in.to(torch::kFloat32).contiguous();
  if (decoded.dim() != 3 || decoded.size(2) != 3)
    throw Error("finish_frame: decoded must be [H, W, 3]");
  const int64_t height = decoded.size(0), width = decoded.size(1), plane = height * width;
  const float* xp = decoded.data_ptr<float>();
  const auto to_byte = [](float v) {
    v = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
    // round-half-even like torch::round, then [0, 255] (v in [-1, 1] keeps it there).
    return static_cast<std::uint8_t>(std::nearbyint((v + 1.0f) * 127.5f));
  };
  if (!ref_decoded_in.defined()) {
    at::parallel_for(0, height, chunk_for(height, 8), [&](int64_t y0, int64_t y1) {
      for (int64_t i = y0 * width * 3; i < y1 * width * 3; ++i) rgb[i] = to_byte(xp[i]);
    });
    return;
  }
  const auto r = ref_decoded_in.to(torch::kFloat32).contiguous();
  const auto p = ref_pixels_in.to(torch::kFloat32).contiguous();
  if (r.sizes() != torch::IntArrayRef{3, height, width} || p.sizes() != r.sizes())
    throw Error("finish_frame: the reference does not match the frame");
  const float* rp = r.data_ptr<float>();
  const float* pp = p.data_ptr<float>();
  constexpr int64_t kRadius = 4;  // the 9x9 window
  // Channel-mean |x - r| per pixel, then its 1x9 row means (valid pixels counted).
  std::vector<float> diff(plane), rows(plane);
  at::parallel_for(0, height, chunk_for(height, 8), [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      for (int64_t x = 0; x < width; ++x) {
        const int64_t i = y * width + x;
        float sum = 0.0f;
        for (int64_t c = 0; c < 3; ++c) {
          float v = xp[i * 3 + c];
          v = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
          sum += std::fabs(v - rp[c * plane + i]);
        }
        diff[i] = sum / 3.0f;
      }
      for (int64_t x = 0; x < width; ++x) {
        const int64_t lo = std::max<int64_t>(0, x - kRadius), hi = std::min(width - 1, x + kRadius);
        float sum = 0.0f;
        for (int64_t k = lo; k <= hi; ++k) sum += diff[y * width + k];
        rows[y * width + x] = sum / static_cast<float>(hi - lo + 1);
      }
    }
  });
  // 9x1 column means of the row means = the 9x9 mean; the weight; the transfer; the bytes.
  const float inv_tolerance = static_cast<float>(1.0 / tolerance);
  at::parallel_for(0, height, chunk_for(height, 8), [&](int64_t y0, int64_t y1) {
    std::vector<float> weight(width);
    for (int64_t y = y0; y < y1; ++y) {
      const int64_t lo = std::max<int64_t>(0, y - kRadius), hi = std::min(height - 1, y + kRadius);
      const float count = static_cast<float>(hi - lo + 1);
      for (int64_t x = 0; x < width; ++x) {
        float sum = 0.0f;
        for (int64_t k = lo; k <= hi; ++k) sum += rows[k * width + x];
        const float d = sum / count * inv_tolerance;
        weight[x] = exp_nonpositive(-d * d);
      }
      for (int64_t x = 0; x < width; ++x) {
        const int64_t i = y * width + x;
        for (int64_t c = 0; c < 3; ++c) {
          float v = xp[i * 3 + c];
          v = v < -1.0f ? -1.0f : (v > 1.0f ? 1.0f : v);
          rgb[i * 3 + c] = to_byte(v + weight[x] * (pp[c * plane + i] - rp[c * plane + i]));
        }
      }
    }
  });
}

}  // namespace dfs::diffusion::fast
