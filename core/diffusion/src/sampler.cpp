// The diffusion-forcing window sampler and history guidance (see sampler.h).
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/sampler.h"
#include "dfs/limits.h"
#include "load_adaptive.h"

namespace dfs::diffusion {

void validate_sampler_settings(const SamplerSettings& s) {
  // Bounds from the one table in dfs/limits.h (shared with project, CLI and Studio).
  auto check = [](const limits::Range& r, double v, const char* name) {
    if (auto why = limits::problem(r, v, name); !why.empty()) throw Error(why);
  };
  check(limits::kEta, s.eta, "eta (0 = DDIM, 1 = DDPM)");
  check(limits::kStabilization, s.stabilization_user, "the stabilisation level of pinned frames");
  check(limits::kStabilization, s.stabilization_generated,
        "the stabilisation level of generated frames");
  const auto& g = s.guidance;
  if (g.mode != GuidanceMode::None) {
    check(limits::kGuidanceScale, g.scale, "history guidance scale");
    if (g.mode == GuidanceMode::Fractional)
      check(limits::kGuidanceFraction, g.fractional_level, "fractional history guidance level");
  }
}

namespace {

torch::Tensor per_frame(const std::vector<double>& values) {
  return torch::tensor(values, torch::kFloat64).to(torch::kFloat32);
}

}  // namespace

WindowResult sample_window(const DenoiseFn& denoise, const NoiseSchedule& schedule,
                           Objective objective, const WindowInput& input,
                           const SamplerSettings& settings, at::Generator& generator,
                           const WindowCallbacks& callbacks) {
  validate_sampler_settings(settings);
  const SchedulingMatrix& matrix = input.matrix;
  const int frames = static_cast<int>(input.roles.size());
  if (frames == 0) throw Error("a window needs at least one frame");
  if (!input.content.defined() || input.content.dim() != 4 || input.content.size(0) != frames)
    throw Error("window content must be [T, C, H, W] with one frame per role");
  if (matrix.frames != frames || matrix.rows < 1 || matrix.steps < 1 ||
      matrix.cells.size() != static_cast<size_t>(matrix.rows) * frames)
    throw Error("the scheduling matrix does not match the window (" +
                std::to_string(matrix.frames) + " frames vs " + std::to_string(frames) + ")");
  const double steps = matrix.steps;

  std::vector<bool> known(frames);
  int known_prefix = 0;
  bool any_known = false;
  for (int t = 0; t < frames; ++t) {
    known[t] = input.roles[t] != FrameRole::Generate;
    any_known = any_known || known[t];
    if (known[t] && known_prefix == t) ++known_prefix;
    for (int m = 0; m < matrix.rows; ++m)
      if (known[t] && matrix.at(m, t) != 0)
        throw Error("known frame " + std::to_string(t) + " has a non-zero schedule column");
  }
  const auto content = input.content.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto positions = input.positions.defined() ? input.positions.to(torch::kFloat32)
                                                   : torch::arange(frames, torch::kFloat32);

  // One noise draw per window: the initial noise of generated frames and the fixed
  // stabilisation noise of known frames (fixed, so a causal model may cache them).
  const auto noise = torch::randn(content.sizes(), generator, torch::kFloat32);

  std::vector<double> stabilization(frames, settings.stabilization_generated);
  for (int t = 0; t < frames; ++t)
    if (input.roles[t] == FrameRole::KnownUser) stabilization[t] = settings.stabilization_user;
  const auto stab_levels = per_frame(stabilization);

  // Generated frames start at their row-0 level: pure noise, or content re-noised (SDEdit).
  std::vector<double> start(frames, 0.0);
  for (int t = 0; t < frames; ++t) start[t] = known[t] ? 0.0 : matrix.at(0, t) / steps;
  auto x =
      schedule.add_noise(content.unsqueeze(0), noise.unsqueeze(0), per_frame(start).unsqueeze(0))
          .squeeze(0);
  for (int t = 0; t < frames; ++t)
    if (known[t]) x[t].copy_(content[t]);

  std::vector<bool> final(frames);
  for (int t = 0; t < frames; ++t) final[t] = known[t] || matrix.at(0, t) == 0;

  // History variants of one guided step (DFoT, Song et al. 2025, Sec. 4.2): h = history at
  // its stabilisation level, h_f = history re-noised to level f, empty = history at level 1.
  const auto& g = settings.guidance;
  const bool guided = any_known && g.mode != GuidanceMode::None && g.scale != 1.0;
  std::vector<torch::Tensor> history_levels{stab_levels};
  if (guided && g.mode == GuidanceMode::Fractional)
    history_levels.push_back(torch::full({frames}, g.fractional_level));
  if (guided) history_levels.push_back(torch::ones({frames}));
  std::vector<torch::Tensor> history_inputs;
  for (const auto& levels : history_levels)
    history_inputs.push_back(
        schedule.add_noise(content.unsqueeze(0), noise.unsqueeze(0), levels.unsqueeze(0))
            .squeeze(0));
  const int batch = static_cast<int>(history_levels.size());

  const auto known_mask =
      torch::tensor(std::vector<int>(known.begin(), known.end()), torch::kInt32).to(torch::kBool);
  const auto known_mask_x = known_mask.view({frames, 1, 1, 1});

  WindowResult result;
  for (int m = 0; m + 1 < matrix.rows; ++m) {
    if (callbacks.cancel != nullptr && callbacks.cancel->load()) {
      result.cancelled = true;
      break;
    }
    std::vector<double> from(frames), to(frames), fed(frames);
    std::vector<bool> finished_fed(frames);
    for (int t = 0; t < frames; ++t) {
      from[t] = matrix.at(m, t) / steps;
      to[t] = matrix.at(m + 1, t) / steps;
      // Generated frames already final in this window are fed like earlier generated ones.
      finished_fed[t] = !known[t] && final[t];
      fed[t] = known[t]          ? stabilization[t]
               : finished_fed[t] ? settings.stabilization_generated
                                 : from[t];
    }
    const auto fed_levels = per_frame(fed);
    auto x_fed = x.clone();
    bool any_finished = false;
    for (int t = 0; t < frames; ++t) any_finished = any_finished || finished_fed[t];
    if (any_finished) {
      const auto renoised =
          schedule.add_noise(x.unsqueeze(0), noise.unsqueeze(0), fed_levels.unsqueeze(0))
              .squeeze(0);
      for (int t = 0; t < frames; ++t)
        if (finished_fed[t]) x_fed[t].copy_(renoised[t]);
    }

    detail::adapt_threads_to_load();  // a busy neighbour: fewer threads (load_adaptive.h)
    std::vector<torch::Tensor> xs, levels;
    for (int b = 0; b < batch; ++b) {
      xs.push_back(torch::where(known_mask_x, history_inputs[b], x_fed));
      levels.push_back(torch::where(known_mask, history_levels[b].to(torch::kFloat32), fed_levels));
    }
    // Only the frames that move in this row need a prediction (and previews show the rest
    // as they were): a causal model can stop after the last of them.
    int needed = 0;
    for (int t = 0; t < frames; ++t)
      if (!known[t] && !final[t] && to[t] < from[t]) needed = t + 1;
    DenoiseCall call{torch::stack(xs), torch::stack(levels), positions, known_prefix, needed};
    auto prediction = denoise(call).to(torch::kCPU, torch::kFloat32);
    ++result.forwards;
    if (prediction.sizes() != call.x.sizes())
      throw Error("the denoiser returned a prediction of the wrong shape");
    // A diverged or damaged model must not paint garbage into frames: stop here, with every
    // frame finished so far already handed out.
    if (!torch::isfinite(prediction).all().item<bool>())
      throw Error("the model produced invalid values (NaN or infinity) at step " +
                  std::to_string(m + 1) + " of " + std::to_string(matrix.rows - 1));

    // Guidance combines predictions with weights summing to 1; x0 and eps are affine in the
    // prediction at a fixed x_n, so combining here equals combining eps or x0.
    torch::Tensor combined = prediction[0];
    if (guided && g.mode == GuidanceMode::Vanilla) {
      combined = prediction[1] +
                 g.scale * (prediction[0] - prediction[1]);  // eps(empty) + w (eps(h) - eps(empty))
    } else if (guided && g.mode == GuidanceMode::Fractional) {
      combined = prediction[0] +
                 (g.scale - 1.0) *
                     (prediction[1] - prediction[2]);  // eps(h) + (w-1)(eps(h_f) - eps(empty))
    }
    auto x0 =
        schedule
            .to_x0(objective, combined.unsqueeze(0), x_fed.unsqueeze(0), fed_levels.unsqueeze(0))
            .squeeze(0)
            .clamp(-input.x0_clamp, input.x0_clamp);

    // DDIM, Song et al. 2021 Eq. 12, per frame from level `from` to `to`:
    //   x_to = sqrt(abar_to) x0 + sqrt(1 - abar_to - sigma^2) eps + sigma z,
    //   sigma = eta sqrt((1 - abar_to) / (1 - abar_from)) sqrt(1 - abar_from / abar_to).
    // eps is recomputed from the clipped x0 (as diffusers' DDIMScheduler does when clipping).
    std::vector<double> c_x(frames, 1.0), c_x0(frames, 0.0), c_z(frames, 0.0);
    bool any_noise = false;
    std::vector<int> newly_final;
    for (int t = 0; t < frames; ++t) {
      if (known[t] || final[t] || !(to[t] < from[t])) continue;
      const double a_from = schedule.alpha_bar(from[t]);
      const double a_to = schedule.alpha_bar(to[t]);
      const double sigma = settings.eta * std::sqrt((1.0 - a_to) / (1.0 - a_from)) *
                           std::sqrt(std::max(0.0, 1.0 - a_from / a_to));
      const double c_eps = std::sqrt(std::max(0.0, 1.0 - a_to - sigma * sigma));
      // eps = (x - sqrt(a_from) x0) / sqrt(1 - a_from)  =>  x_to = c_x x + c_x0 x0 + sigma z
      c_x[t] = c_eps / std::sqrt(1.0 - a_from);
      c_x0[t] = std::sqrt(a_to) - c_x[t] * std::sqrt(a_from);
      c_z[t] = sigma;
      any_noise = any_noise || sigma > 0.0;
      if (to[t] == 0.0) newly_final.push_back(t);
    }
    const auto shape = std::vector<int64_t>{frames, 1, 1, 1};
    auto x_next = per_frame(c_x).view(shape) * x + per_frame(c_x0).view(shape) * x0;
    if (any_noise)
      x_next =
          x_next + per_frame(c_z).view(shape) * torch::randn(x.sizes(), generator, torch::kFloat32);
    for (int t : newly_final) x_next[t].copy_(x0[t]);  // exactly x0 at level 0
    x = torch::where(known_mask_x, x, x_next);

    for (int t : newly_final) {
      final[t] = true;
      if (callbacks.on_final) callbacks.on_final(t, x[t]);
    }
    if (callbacks.on_step) {
      std::vector<int> keep;
      for (int t = 0; t < frames; ++t) keep.push_back(final[t] ? 1 : 0);
      const auto keep_mask =
          torch::tensor(keep, torch::kInt32).to(torch::kBool).view({frames, 1, 1, 1});
      callbacks.on_step(m + 1, matrix.rows - 1, torch::where(keep_mask, x, x0));
    }
  }
  result.frames = x;
  result.final = final;
  return result;
}

}  // namespace dfs::diffusion
