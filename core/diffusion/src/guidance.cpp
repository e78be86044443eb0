// History guidance as a denoiser wrapper (see guidance.h).
#include "dfs/diffusion/guidance.h"

#include <torch/torch.h>

#include <utility>
#include <vector>

namespace dfs::diffusion {

int guidance_variants(const GuidanceSettings& g) {
  if (g.mode == GuidanceMode::None || g.scale == 1.0) return 1;
  return g.mode == GuidanceMode::Fractional ? 3 : 2;
}

DenoiseFn history_guidance(DenoiseFn denoise, NoiseSchedule schedule, GuidanceSettings g) {
  if (guidance_variants(g) == 1) return denoise;
  return [denoise = std::move(denoise), schedule, g](const DenoiseCall& call) -> torch::Tensor {
    const auto& history = call.history;
    if (!history.known.defined() || !history.known.any().item<bool>()) return denoise(call);
    if (call.x.size(0) != 1) throw Error("history guidance takes one call at a time");
    const int64_t frames = call.x.size(1);
    // Variant levels of the history frames: h_f (fractional only), then ∅ = level 1.
    std::vector<torch::Tensor> history_levels;
    if (g.mode == GuidanceMode::Fractional)
      history_levels.push_back(torch::full({frames}, g.fractional_level));
    history_levels.push_back(torch::ones({frames}));

    const auto known = history.known.to(torch::kBool);
    const auto known_x = known.view({frames, 1, 1, 1});
    std::vector<torch::Tensor> xs{call.x[0]}, levels{call.levels[0]};
    for (const auto& l : history_levels) {
      const auto renoised =
          schedule.add_noise(history.clean.unsqueeze(0), history.noise.unsqueeze(0), l.unsqueeze(0))
              .squeeze(0);
      xs.push_back(torch::where(known_x, renoised, call.x[0]));
      levels.push_back(torch::where(known, l.to(torch::kFloat32), call.levels[0]));
    }
    DenoiseCall batched = call;
    batched.x = torch::stack(xs);
    batched.levels = torch::stack(levels);
    const auto d = denoise(batched);
    if (d.dim() != 5 || d.size(0) != batched.x.size(0))
      throw Error("the denoiser returned an estimate of the wrong shape");
    torch::Tensor combined;
    if (g.mode == GuidanceMode::Vanilla)
      combined = d[1] + g.scale * (d[0] - d[1]);  // D(∅) + w (D(h) - D(∅))
    else
      combined = d[0] + (g.scale - 1.0) * (d[1] - d[2]);  // D(h) + (w - 1)(D(h_f) - D(∅))
    return combined.unsqueeze(0);
  };
}

}  // namespace dfs::diffusion
