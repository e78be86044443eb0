// The sampler's row update (RowUpdate in sampler.cpp: one pass per frame) against the tensor
// expression it replaced, byte for byte. The Python port checks DDIM and DDPM bytes
// (python_eager.equal); it has no DPM-Solver++, so this is the check of that path's bytes.
// The denoiser returns a fixed sequence of estimates (one random tensor per call, beyond the
// clamp, unrelated to its input), so the reference needs only the update rule. What is
// compared is every row's state of the frames still moving: the sampler feeds those to the
// denoiser as they are. (A frame's final value is its last estimate, whatever the path.)
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/noise.h"
#include "dfs/diffusion/sampler.h"

using namespace dfs::diffusion;

namespace {

torch::Tensor per_frame(const std::vector<double>& values) {  // as sampler.cpp builds them
  return torch::tensor(values, torch::kFloat64).to(torch::kFloat32);
}

// Before each row: the window's state and which frames are still moving (not known, not final),
// computed with the tensor operations the sampler ran before its one-pass update: same RNG
// draws, same coefficients, same order of operations.
struct RowState {
  torch::Tensor x;
  std::vector<bool> moving;
};

std::vector<RowState> reference_rows(const WindowInput& input, const SamplerSettings& settings,
                                     const NoiseSchedule& schedule,
                                     const std::vector<torch::Tensor>& estimates, uint64_t seed) {
  auto generator = at::detail::createCPUGenerator(seed);
  const auto& matrix = input.matrix;
  const int frames = static_cast<int>(input.roles.size());
  const double steps = matrix.steps;
  std::vector<bool> known(frames), final(frames);
  std::vector<double> start(frames, 0.0);
  for (int t = 0; t < frames; ++t) {
    known[t] = input.roles[t] != FrameRole::Generate;
    final[t] = known[t] || matrix.at(0, t) == 0;
    start[t] = known[t] ? 0.0 : matrix.at(0, t) / steps;
  }
  const auto noise = torch::randn(input.content.sizes(), generator, torch::kFloat32);
  auto x =
      schedule
          .add_noise(input.content.unsqueeze(0), noise.unsqueeze(0), per_frame(start).unsqueeze(0))
          .squeeze(0);
  for (int t = 0; t < frames; ++t)
    if (known[t]) x[t].copy_(input.content[t]);
  const auto known_mask = torch::tensor(std::vector<int>(known.begin(), known.end()))
                              .to(torch::kBool)
                              .view({frames, 1, 1, 1});
  const bool multistep = settings.solver == Solver::DpmPP2M;
  torch::Tensor previous_x0;
  std::vector<double> last_h(frames, 0.0);
  const std::vector<int64_t> shape{frames, 1, 1, 1};
  std::vector<RowState> rows;
  for (int m = 0; m + 1 < matrix.rows; ++m) {
    RowState row{x.clone(), std::vector<bool>(frames)};
    for (int t = 0; t < frames; ++t) row.moving[t] = !known[t] && !final[t];
    rows.push_back(std::move(row));
    std::vector<double> c_x(frames, 1.0), c_x0(frames, 0.0), c_z(frames, 0.0);
    std::vector<double> c_previous(frames, 0.0), step_h(frames, 0.0);
    std::vector<int> newly_final;
    bool any_noise = false, any_previous = false;
    for (int t = 0; t < frames; ++t) {
      const double from = matrix.at(m, t) / steps, to = matrix.at(m + 1, t) / steps;
      if (known[t] || final[t] || !(to < from)) continue;
      const DdimStep step = ddim_step(schedule, from, to, settings.eta);
      c_x[t] = step.c_x;
      c_x0[t] = step.c_x0;
      c_z[t] = step.sigma;
      any_noise = any_noise || step.sigma > 0.0;
      if (to == 0.0) {
        newly_final.push_back(t);
      } else if (multistep) {
        step_h[t] = half_log_snr(schedule, to) - half_log_snr(schedule, from);
        const auto [w_now, w_previous] = dpmpp_2m_weights(step_h[t], last_h[t]);
        c_previous[t] = c_x0[t] * w_previous;
        c_x0[t] *= w_now;
        any_previous = any_previous || c_previous[t] != 0.0;
      }
    }
    const auto x0 =
        estimates[static_cast<size_t>(m)].squeeze(0).clamp(-input.x0_clamp, input.x0_clamp);
    auto x_next = per_frame(c_x).view(shape) * x + per_frame(c_x0).view(shape) * x0;
    if (any_noise)
      x_next =
          x_next + per_frame(c_z).view(shape) * torch::randn(x.sizes(), generator, torch::kFloat32);
    if (any_previous) x_next = x_next + per_frame(c_previous).view(shape) * previous_x0;
    if (multistep) {
      if (!previous_x0.defined()) previous_x0 = x0.clone();
      for (int t = 0; t < frames; ++t)
        if (step_h[t] > 0.0) {
          previous_x0[t].copy_(x0[t]);
          last_h[t] = step_h[t];
        }
    }
    for (int t : newly_final) x_next[t].copy_(x0[t]);
    x = torch::where(known_mask, x, x_next);
    for (int t : newly_final) final[t] = true;
  }
  rows.push_back({x, std::vector<bool>(frames, false)});  // the window's result
  return rows;
}

}  // namespace

TEST_CASE("the sampler's one-pass row update gives the tensor expression's bytes",
          "[sampler][solver]") {
  torch::InferenceMode guard;
  const NoiseSchedule schedule;
  const int frames = 7;
  auto g = at::detail::createCPUGenerator(31);
  const auto clip = torch::rand({frames, 3, 6, 5}, g, torch::kFloat32) * 1.6 - 0.8;
  struct Rule {
    Solver solver;
    double eta;
  };
  for (const Rule rule : {Rule{Solver::Ddim, 0.0}, Rule{Solver::Ddim, 1.0}, Rule{Solver::Ddim, 0.4},
                          Rule{Solver::DpmPP2M, 0.0}}) {
    for (const ScheduleShape shape :
         {ScheduleShape::Pyramid, ScheduleShape::FullSequence, ScheduleShape::AsyncBlocks}) {
      INFO("solver " << to_string(rule.solver) << ", eta " << rule.eta << ", shape "
                     << static_cast<int>(shape));
      WindowInput input;
      input.content = clip.clone();
      // Two pinned frames, then five to generate.
      input.roles.assign(2, FrameRole::KnownUser);
      input.roles.resize(frames, FrameRole::Generate);
      ScheduleSettings s;
      s.shape = shape;
      s.steps = 5;
      s.block = 2;
      std::vector<double> start(frames, 1.0);
      start[0] = start[1] = 0.0;
      input.matrix = build_schedule(s, start);
      input.x0_clamp = 0.9;  // the estimates go beyond it
      SamplerSettings settings;
      settings.schedule = s;
      settings.solver = rule.solver;
      settings.eta = rule.eta;

      std::vector<torch::Tensor> estimates;
      for (int m = 0; m + 1 < input.matrix.rows; ++m)
        estimates.push_back(torch::randn({1, frames, 3, 6, 5}, g, torch::kFloat32) * 1.5);
      std::vector<torch::Tensor> fed;
      const DenoiseFn denoise = [&](const DenoiseCall& c) {
        fed.push_back(c.x[0].clone());
        return estimates.at(fed.size() - 1).clone();
      };
      auto generator = at::detail::createCPUGenerator(77);
      const auto result = sample_window(denoise, schedule, input, settings, generator, {});
      REQUIRE(fed.size() == estimates.size());
      const auto rows = reference_rows(input, settings, schedule, estimates, 77);
      REQUIRE(rows.size() == fed.size() + 1);
      int compared = 0;
      for (size_t m = 0; m < fed.size(); ++m)
        for (int t = 0; t < frames; ++t)
          if (rows[m].moving[t]) {
            INFO("row " << m << ", frame " << t);
            CHECK(torch::equal(fed[m][t], rows[m].x[t]));
            ++compared;
          }
      CHECK(compared >= 2 * (frames - 2));  // rows after the first were compared
      CHECK(torch::equal(result.frames, rows.back().x));
      // Not trivially equal: the generated frames moved, the pinned ones did not.
      CHECK(torch::equal(result.frames.narrow(0, 0, 2), clip.narrow(0, 0, 2)));
      CHECK_FALSE(
          torch::equal(result.frames.narrow(0, 2, frames - 2), clip.narrow(0, 2, frames - 2)));
    }
  }
}
