// Scoring the autoencoder's reconstructions of held-out frames (see ae_trainer.h).
#include "dfs/diffusion/train/ae_trainer.h"

#include <algorithm>
#include <cstdio>
#include <sstream>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/train/eval.h"

namespace dfs::diffusion::train {

torch::Tensor area_downsample(const torch::Tensor& x, int width, int height) {
  namespace F = torch::nn::functional;
  return F::interpolate(
      x, F::InterpolateFuncOptions().size(std::vector<int64_t>{height, width}).mode(torch::kArea));
}

namespace {

torch::Tensor bicubic(const torch::Tensor& x, int width, int height) {
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{height, width})
                               .mode(torch::kBicubic)
                               .align_corners(false));
}

// float [N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3]
torch::Tensor to_u8(const torch::Tensor& x) {
  return float_to_uint8(x.clamp(-1, 1));
}

}  // namespace

std::vector<ReconstructionScores> evaluate_autoencoder(Autoencoder& ae, const VideoDataset& data,
                                                       int max_frames,
                                                       const std::vector<std::string>& names) {
  if (data.width() % kLatentFactor != 0 || data.height() % kLatentFactor != 0)
    throw Error("autoencoder evaluation needs frames whose sides are multiples of 8");
  torch::NoGradGuard no_grad;
  ae->eval();
  std::vector<ReconstructionScores> out;
  for (const auto& clip : data.clips) {
    if (!names.empty() && std::find(names.begin(), names.end(), clip.name) == names.end()) continue;
    ReconstructionScores r;
    r.clip = clip.name;
    r.unseen = clip.train_length == 0;
    const int64_t first = clip.held_out_first(), count = clip.held_out_length();
    if (count < 1) continue;
    const int64_t n = std::min<int64_t>(max_frames, count);
    std::vector<int64_t> pick;
    for (int64_t i = 0; i < n; ++i) pick.push_back(first + i * count / n);
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    double sharp_rec = 0, sharp_true = 0;
    for (int64_t f : pick) {
      const auto truth_u8 = data.frames[f];
      const auto x = uint8_to_float(truth_u8.unsqueeze(0));
      const auto z = ae->encode(x);
      const auto y = ae->decode(z);
      const auto p = ae->preview(z);
      const auto y_u8 = to_u8(y)[0], p_u8 = to_u8(p)[0];
      const auto b_u8 = to_u8(bicubic(area_downsample(x, 64, 48), data.width(), data.height()))[0];
      s[0] += psnr_u8(y_u8, truth_u8);
      s[1] += ssim_u8(y_u8, truth_u8);
      s[2] += psnr_u8(to_u8(area_downsample(y.clamp(-1, 1), 64, 48))[0],
                      to_u8(area_downsample(x, 64, 48))[0]);
      s[3] += psnr_u8(b_u8, truth_u8);
      s[4] += ssim_u8(b_u8, truth_u8);
      s[5] += psnr_u8(p_u8, truth_u8);
      s[6] += psnr_u8(p_u8, y_u8);
      const auto st = frame_statistics(torch::stack({y_u8, truth_u8}));
      sharp_rec += st[0][2].item<double>();
      sharp_true += st[1][2].item<double>();
    }
    const double k = static_cast<double>(pick.size());
    r.frames = static_cast<int>(pick.size());
    r.psnr = s[0] / k, r.ssim = s[1] / k, r.psnr_64x48 = s[2] / k;
    r.psnr_bicubic = s[3] / k, r.ssim_bicubic = s[4] / k;
    r.psnr_preview = s[5] / k, r.psnr_preview_vs_decoder = s[6] / k;
    r.sharpness_ratio = sharp_true > 0 ? sharp_rec / sharp_true : 0;
    out.push_back(r);
  }
  return out;
}

nlohmann::json to_json(const std::vector<ReconstructionScores>& scores) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : scores)
    a.push_back({{"clip", r.clip},
                 {"frames", r.frames},
                 {"unseen", r.unseen},
                 {"psnr", r.psnr},
                 {"ssim", r.ssim},
                 {"psnr_64x48", r.psnr_64x48},
                 {"psnr_bicubic_from_64x48", r.psnr_bicubic},
                 {"ssim_bicubic_from_64x48", r.ssim_bicubic},
                 {"psnr_preview", r.psnr_preview},
                 {"psnr_preview_vs_decoder", r.psnr_preview_vs_decoder},
                 {"sharpness_ratio", r.sharpness_ratio}});
  return a;
}

std::string to_text(const std::vector<ReconstructionScores>& scores) {
  std::ostringstream o;
  o << "clip              frames  PSNR   SSIM  | at 64x48 | bicubic from 64x48 | preview (vs "
       "decoder) | sharpness\n";
  for (const auto& r : scores) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "%-16s %5d %s %5.2f  %.3f | %6.2f   | %5.2f  %.3f       | %5.2f (%5.2f)    | "
                  "%3.0f %%\n",
                  r.clip.c_str(), r.frames, r.unseen ? "U" : " ", r.psnr, r.ssim, r.psnr_64x48,
                  r.psnr_bicubic, r.ssim_bicubic, r.psnr_preview, r.psnr_preview_vs_decoder,
                  100 * r.sharpness_ratio);
    o << line;
  }
  o << "(U = a whole clip no training step saw; PSNR in dB, peak 255; sharpness = mean "
       "|Laplacian| of the reconstruction / of the true frames)\n";
  return o.str();
}

}  // namespace dfs::diffusion::train
