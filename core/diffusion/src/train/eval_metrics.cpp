// The evaluation's image metrics: PSNR, SSIM and per-frame statistics (see eval.h).
#include "dfs/diffusion/train/eval.h"

#include <cmath>
#include <limits>

namespace dfs::diffusion::train {

double psnr_u8(const torch::Tensor& a, const torch::Tensor& b) {
  const double mse = (a.to(torch::kFloat64) - b.to(torch::kFloat64)).pow(2).mean().item<double>();
  if (mse <= 0) return std::numeric_limits<double>::infinity();
  return 10.0 * std::log10(255.0 * 255.0 / mse);  // 10 log10(peak^2 / MSE)
}

double ssim_u8(const torch::Tensor& a, const torch::Tensor& b) {
  // Wang, Bovik, Sheikh & Simoncelli 2004, Eq. 13 with C1 = (K1 L)^2, C2 = (K2 L)^2,
  // K1 = 0.01, K2 = 0.03, L = 255, local statistics under an 11x11 Gaussian (sigma 1.5),
  // the mean SSIM map over the valid region, per channel, averaged over R, G, B. The Gaussian
  // is separable: two 11-tap passes instead of one 121-tap one (float32: same value to ~1e-6,
  // and fast enough for 256x192 frames).
  constexpr double kC1 = (0.01 * 255) * (0.01 * 255);
  constexpr double kC2 = (0.03 * 255) * (0.03 * 255);
  const int win = std::min<int>(11, static_cast<int>(std::min(a.size(0), a.size(1))));
  auto g = torch::arange(win, torch::kFloat64) - (win - 1) / 2.0;
  g = torch::exp(-g.pow(2) / (2 * 1.5 * 1.5));
  g = (g / g.sum()).to(torch::kFloat32);
  const auto gx = g.view({1, 1, 1, win}).repeat({3, 1, 1, 1});
  const auto gy = g.view({1, 1, win, 1}).repeat({3, 1, 1, 1});
  auto x = a.to(torch::kFloat32).permute({2, 0, 1}).unsqueeze(0);  // [1, 3, H, W]
  auto y = b.to(torch::kFloat32).permute({2, 0, 1}).unsqueeze(0);
  namespace F = torch::nn::functional;
  auto blur = [&](const torch::Tensor& t) {
    return F::conv2d(F::conv2d(t, gx, F::Conv2dFuncOptions().groups(3)), gy,
                     F::Conv2dFuncOptions().groups(3));
  };
  // Centre the values first: the local variances are differences of large squares.
  const auto mean = (x.mean() + y.mean()) / 2;
  x = x - mean;
  y = y - mean;
  const auto mx = blur(x), my = blur(y);
  const auto sxx = blur(x * x) - mx * mx;
  const auto syy = blur(y * y) - my * my;
  const auto sxy = blur(x * y) - mx * my;
  const auto mxs = mx + mean, mys = my + mean;  // the true local means
  const auto map = ((2 * mxs * mys + kC1) * (2 * sxy + kC2)) /
                   ((mxs * mxs + mys * mys + kC1) * (sxx + syy + kC2));
  return map.to(torch::kFloat64).mean().item<double>();
}

namespace {
torch::Tensor frame_statistics_chunk(const torch::Tensor& frames_u8);
}  // namespace

torch::Tensor frame_statistics(const torch::Tensor& frames_u8) {
  // In chunks: a float copy of ten thousand 256x192 frames would need gigabytes.
  constexpr int64_t kChunk = 128;
  if (frames_u8.size(0) <= kChunk) return frame_statistics_chunk(frames_u8);
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < frames_u8.size(0); i += kChunk)
    parts.push_back(
        frame_statistics_chunk(frames_u8.narrow(0, i, std::min(kChunk, frames_u8.size(0) - i))));
  return torch::cat(parts);
}

namespace {

torch::Tensor frame_statistics_chunk(const torch::Tensor& frames_u8) {
  const auto f = frames_u8.to(torch::kFloat32);  // [N, H, W, 3]
  const auto n = f.size(0);
  const auto mean = f.reshape({n, -1}).mean(1);
  // BT.601 luma, as dfs_media's grayscale.
  const auto luma =
      f.select(3, 0) * 0.299 + f.select(3, 1) * 0.587 + f.select(3, 2) * 0.114;  // [N, H, W]
  const auto contrast = luma.reshape({n, -1}).std(1, /*unbiased=*/false);
  // Sharpness: mean absolute 4-neighbour Laplacian over the interior.
  const auto c = luma.narrow(1, 1, luma.size(1) - 2).narrow(2, 1, luma.size(2) - 2);
  const auto up = luma.narrow(1, 0, luma.size(1) - 2).narrow(2, 1, luma.size(2) - 2);
  const auto down = luma.narrow(1, 2, luma.size(1) - 2).narrow(2, 1, luma.size(2) - 2);
  const auto left = luma.narrow(1, 1, luma.size(1) - 2).narrow(2, 0, luma.size(2) - 2);
  const auto right = luma.narrow(1, 1, luma.size(1) - 2).narrow(2, 2, luma.size(2) - 2);
  const auto sharp = (up + down + left + right - 4 * c).abs().reshape({n, -1}).mean(1);
  return torch::stack({mean, contrast, sharp}, 1);
}

}  // namespace

}  // namespace dfs::diffusion::train
