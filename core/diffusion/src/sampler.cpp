// The diffusion-forcing window sampler (see sampler.h).
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/guidance.h"
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
  if (s.solver == Solver::DpmPP2M && s.eta != 0.0)
    throw Error("the DPM-Solver++(2M) solver is deterministic: eta must be 0 (got " +
                std::to_string(s.eta) + "); use the ddim solver for DDPM-like sampling");
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

torch::Tensor frame_mask(const std::vector<bool>& flags) {
  return torch::tensor(std::vector<int>(flags.begin(), flags.end()), torch::kInt32)
      .to(torch::kBool);
}

// One row's update of every frame in one pass (it was ten tensor operations, each a pass over
// the window). The same float operations in the same order as the tensor expression
//   x0 = clamp(x0, -limit, limit)   (after checking it is finite)
//   x_next = c_x x + c_x0 x0 [+ sigma z] [+ c_previous x0_previous]
//   x_next[newly final] = x0;  x_next[known] = x
// with float32 coefficients, so the same bytes (this file is built without floating-point
// contraction, CMakeLists.txt). The optional terms apply to every frame when present, as the
// broadcast expression did (a zero coefficient still adds a signed zero).
struct RowUpdate {
  int frames;
  const std::vector<bool>& known;
  const std::vector<DdimStep>& update;
  const std::vector<double>& c_previous;
  const std::vector<int>& newly_final;
  double limit;

  // (x_next, clamped x0); x_next undefined when x0 holds a NaN or an infinity.
  std::pair<torch::Tensor, torch::Tensor> apply(const torch::Tensor& x_in,
                                                const torch::Tensor& x0_in,
                                                const torch::Tensor& z_in,
                                                const torch::Tensor& previous_in) const {
    const auto x = x_in.contiguous();
    const auto x0 = x0_in.contiguous();
    const auto z = z_in.defined() ? z_in.contiguous() : z_in;
    const auto previous = previous_in.defined() ? previous_in.contiguous() : previous_in;
    auto next = torch::empty_like(x);
    auto clamped = torch::empty_like(x0);
    const int64_t per = x.numel() / frames;
    const float hi = static_cast<float>(limit), lo = static_cast<float>(-limit);
    const float* xp = x.data_ptr<float>();
    const float* ep = x0.data_ptr<float>();
    const float* zp = z.defined() ? z.data_ptr<float>() : nullptr;
    const float* pp = previous.defined() ? previous.data_ptr<float>() : nullptr;
    float* np = next.data_ptr<float>();
    float* cp = clamped.data_ptr<float>();
    bool finite = true;
    for (int64_t i = 0; i < x0.numel(); ++i) {
      const float v = ep[i];
      finite = finite && std::isfinite(v);
      cp[i] = v < lo ? lo : (v > hi ? hi : v);
    }
    if (!finite) return {};
    std::vector<bool> to_x0(frames, false);
    for (int t : newly_final) to_x0[t] = true;
    for (int t = 0; t < frames; ++t) {
      const int64_t o = t * per;
      if (known[t] || to_x0[t]) {  // x as it was, or exactly x0 at level 0
        std::memcpy(np + o, (known[t] ? xp : cp) + o, per * sizeof(float));
        continue;
      }
      const float c_x = static_cast<float>(update[t].c_x);
      const float c_x0 = static_cast<float>(update[t].c_x0);
      const float c_z = static_cast<float>(update[t].sigma);
      const float c_p = static_cast<float>(c_previous[t]);
      for (int64_t i = o; i < o + per; ++i) np[i] = c_x * xp[i] + c_x0 * cp[i];
      if (zp != nullptr)
        for (int64_t i = o; i < o + per; ++i) np[i] = np[i] + c_z * zp[i];
      if (pp != nullptr)
        for (int64_t i = o; i < o + per; ++i) np[i] = np[i] + c_p * pp[i];
    }
    return {next, clamped};
  }
};

void check_window(const WindowInput& input) {
  const SchedulingMatrix& matrix = input.matrix;
  const int frames = static_cast<int>(input.roles.size());
  if (frames == 0) throw Error("a window needs at least one frame");
  if (!input.content.defined() || input.content.dim() != 4 || input.content.size(0) != frames)
    throw Error("window content must be [T, C, H, W] with one frame per role");
  if (matrix.frames != frames || matrix.rows < 1 || matrix.steps < 1 ||
      matrix.cells.size() != static_cast<size_t>(matrix.rows) * frames)
    throw Error("the scheduling matrix does not match the window (" +
                std::to_string(matrix.frames) + " frames vs " + std::to_string(frames) + ")");
  for (int t = 0; t < frames; ++t)
    for (int m = 0; m < matrix.rows; ++m)
      if (input.roles[t] != FrameRole::Generate && matrix.at(m, t) != 0)
        throw Error("known frame " + std::to_string(t) + " has a non-zero schedule column");
}

}  // namespace

DdimStep ddim_step(const NoiseSchedule& schedule, double from, double to, double eta) {
  DdimStep step;
  if (!(to < from)) return step;
  // DDIM, Song et al. 2021 Eq. 12, from level `from` to `to`:
  //   x_to = sqrt(abar_to) x0 + sqrt(1 - abar_to - sigma^2) eps + sigma z,
  //   sigma = eta sqrt((1 - abar_to) / (1 - abar_from)) sqrt(1 - abar_from / abar_to),
  // with eps = (x - sqrt(abar_from) x0) / sqrt(1 - abar_from).
  const double a_from = schedule.alpha_bar(from);
  const double a_to = schedule.alpha_bar(to);
  step.sigma = eta * std::sqrt((1.0 - a_to) / (1.0 - a_from)) *
               std::sqrt(std::max(0.0, 1.0 - a_from / a_to));
  const double c_eps = std::sqrt(std::max(0.0, 1.0 - a_to - step.sigma * step.sigma));
  step.c_x = c_eps / std::sqrt(1.0 - a_from);
  step.c_x0 = std::sqrt(a_to) - step.c_x * std::sqrt(a_from);
  return step;
}

double half_log_snr(const NoiseSchedule& schedule, double level) {
  const double abar = schedule.alpha_bar(level);
  return 0.5 * std::log(abar / (1.0 - abar));
}

std::pair<double, double> dpmpp_2m_weights(double h, double h_last) {
  // k-diffusion's sample_dpmpp_2m: r = h_last / h, D = (1 + 1/(2r)) x0 - 1/(2r) x0_prev.
  if (!(h > 0.0) || !(h_last > 0.0) || !std::isfinite(h) || !std::isfinite(h_last))
    return {1.0, 0.0};
  const double r = h_last / h;
  return {1.0 + 0.5 / r, -0.5 / r};
}

std::vector<double> fed_levels(const SchedulingMatrix& matrix, int row,
                               const std::vector<FrameRole>& roles, const std::vector<bool>& final,
                               const SamplerSettings& settings) {
  std::vector<double> fed(roles.size());
  for (size_t t = 0; t < roles.size(); ++t) {
    switch (roles[t]) {
      case FrameRole::KnownUser:
        fed[t] = settings.stabilization_user;
        break;
      case FrameRole::KnownGenerated:
        fed[t] = settings.stabilization_generated;
        break;
      case FrameRole::Generate:
        fed[t] = final[t] ? settings.stabilization_generated
                          : matrix.at(row, static_cast<int>(t)) / static_cast<double>(matrix.steps);
        break;
    }
  }
  return fed;
}

WindowResult sample_window(const DenoiseFn& denoise, const NoiseSchedule& schedule,
                           const WindowInput& input, const SamplerSettings& settings,
                           at::Generator& generator, const WindowCallbacks& callbacks) {
  validate_sampler_settings(settings);
  check_window(input);
  const SchedulingMatrix& matrix = input.matrix;
  const int frames = static_cast<int>(input.roles.size());
  const double steps = matrix.steps;
  const DenoiseFn model = history_guidance(denoise, schedule, settings.guidance);

  std::vector<bool> known(frames);
  int known_prefix = 0;
  for (int t = 0; t < frames; ++t) {
    known[t] = input.roles[t] != FrameRole::Generate;
    if (known[t] && known_prefix == t) ++known_prefix;
  }
  const auto content = input.content.to(torch::kCPU, torch::kFloat32).contiguous();
  const auto positions = input.positions.defined() ? input.positions.to(torch::kFloat32)
                                                   : torch::arange(frames, torch::kFloat32);
  const auto known_mask = frame_mask(known);
  const auto known_mask_x = known_mask.view({frames, 1, 1, 1});

  // One noise draw per window: the initial noise of generated frames and the fixed
  // stabilisation noise of known frames (fixed, so a causal model may cache them).
  const auto noise = torch::randn(content.sizes(), generator, torch::kFloat32);

  // Generated frames start at their row-0 level: pure noise, or content re-noised (SDEdit).
  std::vector<bool> final(frames);
  std::vector<double> start(frames, 0.0);
  for (int t = 0; t < frames; ++t) {
    final[t] = known[t] || matrix.at(0, t) == 0;
    start[t] = known[t] ? 0.0 : matrix.at(0, t) / steps;
  }
  auto x =
      schedule.add_noise(content.unsqueeze(0), noise.unsqueeze(0), per_frame(start).unsqueeze(0))
          .squeeze(0);
  for (int t = 0; t < frames; ++t)
    if (known[t]) x[t].copy_(content[t]);

  // Known frames are fed at their stabilisation level, with the window's fixed noise.
  const auto history_fed =
      schedule
          .add_noise(content.unsqueeze(0), noise.unsqueeze(0),
                     per_frame(fed_levels(matrix, 0, input.roles, final, settings)).unsqueeze(0))
          .squeeze(0);
  const WindowHistory history{known_mask, content, noise};

  // DPM-Solver++(2M): each frame's previous x0 estimate and the log-SNR step that followed it.
  const bool multistep = settings.solver == Solver::DpmPP2M;
  torch::Tensor previous_x0;
  std::vector<double> last_h(frames, 0.0);

  WindowResult result;
  for (int m = 0; m + 1 < matrix.rows; ++m) {
    if (callbacks.cancel != nullptr && callbacks.cancel->load()) {
      result.cancelled = true;
      break;
    }
    const auto fed_levels_m = per_frame(fed_levels(matrix, m, input.roles, final, settings));
    // Known frames are fed at their stabilisation level (history_fed). Generated frames already
    // final in this window are fed like earlier generated ones: re-noised to their
    // stabilisation level (only the span holding them is re-noised).
    auto x_fed = torch::where(known_mask_x, history_fed, x);
    int first_finished = frames, last_finished = -1;
    for (int t = 0; t < frames; ++t)
      if (!known[t] && final[t]) {
        first_finished = std::min(first_finished, t);
        last_finished = t;
      }
    if (last_finished >= 0) {
      const int64_t span = last_finished - first_finished + 1;
      const auto renoised =
          schedule
              .add_noise(x.narrow(0, first_finished, span).unsqueeze(0),
                         noise.narrow(0, first_finished, span).unsqueeze(0),
                         fed_levels_m.narrow(0, first_finished, span).unsqueeze(0))
              .squeeze(0);
      for (int t = first_finished; t <= last_finished; ++t)
        if (!known[t] && final[t]) x_fed[t].copy_(renoised[t - first_finished]);
    }

    // Only the frames that move in this row need an estimate (and previews show the rest as
    // they were): a causal model can stop after the last of them.
    std::vector<DdimStep> update(frames);
    std::vector<double> c_previous(frames, 0.0);  // DPM-Solver++(2M): weight of the last x0
    std::vector<double> step_h(frames, 0.0);
    std::vector<int> newly_final;
    int needed = 0;
    std::vector<bool> moves(frames, false);
    bool any_noise = false, any_previous = false;
    for (int t = 0; t < frames; ++t) {
      const double from = matrix.at(m, t) / steps, to = matrix.at(m + 1, t) / steps;
      if (known[t] || final[t] || !(to < from)) continue;
      needed = t + 1;
      moves[t] = true;
      update[t] = ddim_step(schedule, from, to, settings.eta);
      any_noise = any_noise || update[t].sigma > 0.0;
      if (to == 0.0) {
        newly_final.push_back(t);
      } else if (multistep) {
        // The first-order step is DDIM (x_to = c_x x + c_x0 x0); the second order replaces x0
        // by its extrapolation from this frame's previous estimate.
        step_h[t] = half_log_snr(schedule, to) - half_log_snr(schedule, from);
        const auto [w_now, w_previous] = dpmpp_2m_weights(step_h[t], last_h[t]);
        c_previous[t] = update[t].c_x0 * w_previous;
        update[t].c_x0 *= w_now;
        any_previous = any_previous || c_previous[t] != 0.0;
      }
    }

    // Known frames, then finished ones: fed the same (fixed noise, fixed level) from now on.
    int stable_prefix = 0;
    while (stable_prefix < frames && (known[stable_prefix] || final[stable_prefix]))
      ++stable_prefix;

    detail::adapt_threads_to_load();  // a busy neighbour: fewer threads (load_adaptive.h)
    DenoiseCall call{x_fed.unsqueeze(0),
                     fed_levels_m.unsqueeze(0),
                     positions,
                     known_prefix,
                     stable_prefix,
                     needed,
                     history,
                     input.all_estimates ? std::vector<bool>() : moves};
    auto x0 = model(call);
    ++result.forwards;
    if (x0.sizes() != call.x.sizes())
      throw Error("the denoiser returned an estimate of the wrong shape");
    // A diverged or damaged model must not paint garbage into frames: stop here, with every
    // frame finished so far already handed out.
    x0 = x0.to(torch::kCPU, torch::kFloat32).squeeze(0);
    const auto z =
        any_noise ? torch::randn(x.sizes(), generator, torch::kFloat32) : torch::Tensor();
    RowUpdate row{frames, known, update, c_previous, newly_final, input.x0_clamp};
    auto [x_next, x0_clamped] = row.apply(x, x0, z, any_previous ? previous_x0 : torch::Tensor());
    if (!x_next.defined())
      throw Error("the model produced invalid values (NaN or infinity) at step " +
                  std::to_string(m + 1) + " of " + std::to_string(matrix.rows - 1));
    x0 = x0_clamped;
    if (multistep) {
      if (!previous_x0.defined()) previous_x0 = x0.clone();
      for (int t = 0; t < frames; ++t)
        if (step_h[t] > 0.0) {
          previous_x0[t].copy_(x0[t]);
          last_h[t] = step_h[t];
        }
    }
    x = x_next;

    for (int t : newly_final) {
      final[t] = true;
      if (callbacks.on_final) callbacks.on_final(t, x[t]);
    }
    if (callbacks.on_step)
      callbacks.on_step(m + 1, matrix.rows - 1,
                        torch::where(frame_mask(final).view({frames, 1, 1, 1}), x, x0));
  }
  result.frames = x;
  result.final = final;
  return result;
}

}  // namespace dfs::diffusion
