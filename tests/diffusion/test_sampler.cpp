// The window sampler with analytic denoisers: the data is either one known clip (the exact
// x0 is that clip) or independent Gaussian pixels (the exact x0 is the posterior mean), so
// every property can be checked against a known answer without a trained network.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <limits>
#include <utility>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/guidance.h"
#include "dfs/diffusion/noise.h"
#include "dfs/diffusion/sampler.h"

using namespace dfs::diffusion;

namespace {

constexpr int kFrames = 6;
const std::vector<int64_t> kFrameShape = {3, 8, 10};

torch::Tensor known_clip(int frames = kFrames) {
  auto g = at::detail::createCPUGenerator(7);
  std::vector<int64_t> shape = {frames};
  shape.insert(shape.end(), kFrameShape.begin(), kFrameShape.end());
  return torch::rand(shape, g, torch::kFloat32) * 1.6 - 0.8;
}

// The exact network when the data is the single clip `clip`: x0 = clip, expressed in the
// requested parameterisation (wrap it with x0_denoiser, as the engine wraps a model).
PredictFn clip_predictor(const torch::Tensor& clip, const NoiseSchedule& schedule,
                         Objective objective) {
  return [clip, schedule, objective](const DenoiseCall& call) {
    const auto x0 = clip.unsqueeze(0).expand_as(call.x);
    const auto abar =
        schedule.alpha_bar(call.levels).view({call.x.size(0), call.x.size(1), 1, 1, 1});
    const auto eps = (call.x - abar.sqrt() * x0) / (1 - abar).clamp_min(1e-12).sqrt();
    return schedule.target(objective, x0, eps, call.levels);
  };
}

// Exact posterior mean for pixels x0 ~ N(mu, s^2): E[x0 | x] = mu + a s^2 / (a^2 s^2 + 1 - a^2) (x
// - a mu).
DenoiseFn gaussian_denoiser(double mu, double s, const NoiseSchedule& schedule) {
  return [mu, s, schedule](const DenoiseCall& call) {
    const auto abar =
        schedule.alpha_bar(call.levels).view({call.x.size(0), call.x.size(1), 1, 1, 1});
    const auto a = abar.sqrt();
    return mu + a * (s * s) / (abar * (s * s) + 1 - abar) * (call.x - a * mu);
  };
}

WindowInput generate_all(const torch::Tensor& clip, ScheduleShape shape, int steps,
                         double u = 1.0) {
  WindowInput input;
  input.content = torch::zeros_like(clip);
  input.roles.assign(static_cast<size_t>(clip.size(0)), FrameRole::Generate);
  ScheduleSettings s;
  s.shape = shape;
  s.steps = steps;
  s.uncertainty = u;
  s.block = 2;
  s.ar_step = 2;
  input.matrix = build_schedule(s, std::vector<double>(static_cast<size_t>(clip.size(0)), 1.0));
  return input;
}

}  // namespace

TEST_CASE("DDIM with the exact denoiser recovers the known clip from pure noise for every shape",
          "[sampler]") {
  const auto clip = known_clip();
  const NoiseSchedule schedule;
  for (auto shape :
       {ScheduleShape::FullSequence, ScheduleShape::Autoregressive, ScheduleShape::Pyramid,
        ScheduleShape::Trapezoid, ScheduleShape::AsyncBlocks}) {
    for (auto objective : {Objective::V, Objective::X0, Objective::Eps}) {
      INFO(to_string(shape) << " / " << to_string(objective));
      auto gen = at::detail::createCPUGenerator(3);
      SamplerSettings settings;
      const auto input = generate_all(clip, shape, 8, 2.0);
      std::vector<int> finished;
      WindowCallbacks callbacks;
      callbacks.on_final = [&](int t, const torch::Tensor& value) {
        finished.push_back(t);
        CHECK(torch::allclose(value, clip[t], 1e-4, 1e-4));
      };
      const auto denoise =
          x0_denoiser(clip_predictor(clip, schedule, objective), schedule, objective);
      const auto result = sample_window(denoise, schedule, input, settings, gen, callbacks);
      CHECK_FALSE(result.cancelled);
      CHECK(result.forwards == input.matrix.rows - 1);
      CHECK(torch::allclose(result.frames, clip, 1e-4, 1e-4));
      CHECK(finished.size() == static_cast<size_t>(kFrames));
      for (bool f : result.final) CHECK(f);
    }
  }
}

TEST_CASE(
    "with the exact denoiser, every DDIM step stays on the deterministic path of the initial noise",
    "[sampler]") {
  // DDIM (eta = 0) with the true x0 keeps the implied eps constant: x_n = a_n clip + s_n eps0.
  const auto clip = known_clip(2);
  const NoiseSchedule schedule;
  auto gen = at::detail::createCPUGenerator(11);
  const auto input = generate_all(clip, ScheduleShape::FullSequence, 5);
  std::vector<torch::Tensor> implied;
  auto inner = x0_denoiser(clip_predictor(clip, schedule, Objective::V), schedule, Objective::V);
  DenoiseFn spy = [&](const DenoiseCall& call) {
    const auto abar = schedule.alpha_bar(call.levels).view({1, call.x.size(1), 1, 1, 1});
    implied.push_back((call.x - abar.sqrt() * clip.unsqueeze(0)) / (1 - abar).sqrt());
    return inner(call);
  };
  sample_window(spy, schedule, input, SamplerSettings{}, gen);
  REQUIRE(implied.size() == 5);
  for (size_t i = 1; i < implied.size(); ++i)
    CHECK(torch::allclose(implied[i], implied[0], 1e-3, 1e-3));
}

TEST_CASE("Gaussian data: DDIM and DDPM samples have the data's mean and spread", "[sampler]") {
  const double mu = 0.3, s = 0.2;
  const NoiseSchedule schedule;
  const auto clip = torch::zeros({8, 3, 16, 16});
  for (double eta : {0.0, 1.0}) {
    INFO("eta " << eta);
    auto gen = at::detail::createCPUGenerator(5);
    SamplerSettings settings;
    settings.eta = eta;
    const auto result =
        sample_window(gaussian_denoiser(mu, s, schedule), schedule,
                      generate_all(clip, ScheduleShape::FullSequence, 50), settings, gen);
    CHECK(result.frames.mean().item<double>() == Approx(mu).margin(0.02));
    CHECK(result.frames.std().item<double>() == Approx(s).margin(0.03));
  }
}

TEST_CASE("pinned frames are returned bit-identical and fed at their stabilisation levels",
          "[sampler]") {
  const auto clip = known_clip();
  const NoiseSchedule schedule;
  WindowInput input = generate_all(clip, ScheduleShape::Pyramid, 6);
  input.content = clip.clone();
  input.roles[0] = FrameRole::KnownUser;
  input.roles[1] = FrameRole::KnownGenerated;
  input.roles[5] = FrameRole::KnownUser;
  input.matrix =
      build_schedule(ScheduleSettings{ScheduleShape::Pyramid, 6, 1.0, 2, 2}, {0, 0, 1, 1, 1, 0});
  SamplerSettings settings;
  settings.stabilization_user = 0.05;
  settings.stabilization_generated = 0.1;
  settings.eta = 0.5;
  auto gen = at::detail::createCPUGenerator(1);
  std::vector<torch::Tensor> seen_levels;
  int prefix = -1;
  PredictFn garbage = [&](const DenoiseCall& call) {
    seen_levels.push_back(call.levels.clone());
    prefix = call.known_prefix;
    return torch::randn(call.x.sizes()) * 3;  // a terrible model must not touch pinned frames
  };
  const auto result =
      sample_window(x0_denoiser(garbage, schedule, Objective::V), schedule, input, settings, gen);
  for (int t : {0, 1, 5}) CHECK(torch::equal(result.frames[t], clip[t]));
  REQUIRE_FALSE(seen_levels.empty());
  for (const auto& levels : seen_levels) {
    CHECK(levels[0][0].item<float>() == Approx(0.05));
    CHECK(levels[0][1].item<float>() == Approx(0.1));
    CHECK(levels[0][5].item<float>() == Approx(0.05));
  }
  CHECK(prefix == 2);
}

TEST_CASE("partial re-noising starts a frame from its content at its own level", "[sampler]") {
  const auto clip = known_clip(2);
  const NoiseSchedule schedule;
  WindowInput input;
  input.content = clip.clone();
  input.roles.assign(2, FrameRole::Generate);
  input.matrix =
      build_schedule(ScheduleSettings{ScheduleShape::FullSequence, 10, 1.0, 2, 2}, {0.3, 1.0});
  REQUIRE(input.matrix.at(0, 0) == 3);
  std::vector<DenoiseCall> calls;
  DenoiseFn zeros = [&](const DenoiseCall& call) {
    calls.push_back(
        {call.x.clone(), call.levels.clone(), call.positions, call.known_prefix, 0, 0, {}, {}});
    return torch::zeros_like(call.x);
  };
  auto gen = at::detail::createCPUGenerator(2);
  sample_window(zeros, schedule, input, SamplerSettings{}, gen);
  REQUIRE(calls.size() == 10);
  // The partial frame waits at level 0.3 (its content mostly kept) until the shared level
  // reaches it, then follows it down.
  CHECK(calls[0].levels[0][0].item<float>() == Approx(0.3));
  CHECK(calls[0].levels[0][1].item<float>() == Approx(1.0));
  CHECK(calls[7].levels[0][0].item<float>() == Approx(0.3));
  CHECK(calls[7].levels[0][1].item<float>() == Approx(0.3));
  const auto first = calls[0].x[0][0];
  const double a = std::sqrt(schedule.alpha_bar(0.3));
  const auto eps = (first - a * clip[0]) / std::sqrt(1 - a * a);
  CHECK(eps.std().item<double>() == Approx(1.0).margin(0.15));  // what is left is unit noise
  CHECK(eps.mean().item<double>() == Approx(0.0).margin(0.15));
}

TEST_CASE("cancel mid-run returns with the frames finished so far", "[sampler]") {
  const auto clip = known_clip();
  const NoiseSchedule schedule;
  const auto input =
      generate_all(clip, ScheduleShape::Autoregressive, 4);  // frame t final after 4(t+1) rows
  std::atomic<bool> cancel{false};
  std::vector<int> finished;
  int steps = 0;
  WindowCallbacks callbacks;
  callbacks.cancel = &cancel;
  callbacks.on_final = [&](int t, const torch::Tensor&) { finished.push_back(t); };
  callbacks.on_step = [&](int row, int rows, const torch::Tensor& x0) {
    ++steps;
    CHECK(rows == input.matrix.rows - 1);
    CHECK(x0.sizes() == clip.sizes());
    if (row == 9) cancel = true;
  };
  auto gen = at::detail::createCPUGenerator(4);
  const auto denoise =
      x0_denoiser(clip_predictor(clip, schedule, Objective::V), schedule, Objective::V);
  const auto result = sample_window(denoise, schedule, input, SamplerSettings{}, gen, callbacks);
  CHECK(result.cancelled);
  CHECK(steps == 9);
  CHECK(result.forwards == 9);
  CHECK(finished == std::vector<int>{0, 1});
  CHECK(result.final[0]);
  CHECK(result.final[1]);
  CHECK_FALSE(result.final[2]);
  CHECK(torch::allclose(result.frames[0], clip[0], 1e-4, 1e-4));
}

TEST_CASE("same seed gives identical frames, a different seed differs when eta > 0", "[sampler]") {
  const NoiseSchedule schedule;
  const auto clip = torch::zeros({4, 3, 8, 8});
  const auto input = generate_all(clip, ScheduleShape::Pyramid, 10);
  const auto run = [&](uint64_t seed, double eta) {
    auto gen = at::detail::createCPUGenerator(seed);
    SamplerSettings settings;
    settings.eta = eta;
    return sample_window(gaussian_denoiser(0.0, 0.5, schedule), schedule, input, settings, gen)
        .frames;
  };
  for (double eta : {0.0, 0.7}) {
    CHECK(torch::equal(run(42, eta), run(42, eta)));
    CHECK_FALSE(torch::allclose(run(42, eta), run(43, eta), 1e-3, 1e-3));
  }
}

TEST_CASE("history guidance batches its 2-3 calls into one forward and combines them per DFoT",
          "[sampler]") {
  const NoiseSchedule schedule;
  const auto clip = torch::zeros({3, 3, 4, 4});
  WindowInput input;
  input.content = clip;
  input.roles = {FrameRole::KnownUser, FrameRole::Generate, FrameRole::Generate};
  input.matrix =
      build_schedule(ScheduleSettings{ScheduleShape::FullSequence, 4, 1.0, 2, 2}, {0, 1, 1});
  // x0 prediction = the level at which the history frame was fed: h -> 0.02, h_f -> f, empty -> 1.
  std::vector<int64_t> batches;
  DenoiseFn history_probe = [&](const DenoiseCall& call) {
    batches.push_back(call.x.size(0));
    return call.levels.select(1, 0).view({-1, 1, 1, 1, 1}).expand_as(call.x).clone();
  };
  const auto run = [&](GuidanceMode mode, double w) {
    batches.clear();
    SamplerSettings settings;
    settings.guidance.mode = mode;
    settings.guidance.scale = w;
    settings.guidance.fractional_level = 0.5;
    auto gen = at::detail::createCPUGenerator(0);
    return sample_window(history_probe, schedule, input, settings, gen)
        .frames[1]
        .mean()
        .item<double>();
  };
  CHECK(run(GuidanceMode::None, 1.0) == Approx(0.02));
  CHECK(batches == std::vector<int64_t>(4, 1));
  CHECK(run(GuidanceMode::Vanilla, 1.5) ==
        Approx(1.0 + 1.5 * (0.02 - 1.0)));  // eps(0) + w (eps(h) - eps(0))
  CHECK(batches == std::vector<int64_t>(4, 2));
  CHECK(run(GuidanceMode::Fractional, 1.5) ==
        Approx(0.02 + 0.5 * (0.5 - 1.0)));  // eps(h) + (w-1)(eps(h_f) - eps(0))
  CHECK(batches == std::vector<int64_t>(4, 3));
  CHECK(run(GuidanceMode::Vanilla, 1.0) == Approx(0.02));  // w = 1 is one plain call
  CHECK(batches == std::vector<int64_t>(4, 1));
}

TEST_CASE("invalid sampler settings and inputs are rejected with a message", "[sampler]") {
  const NoiseSchedule schedule;
  const auto clip = torch::zeros({2, 3, 4, 4});
  const auto input = generate_all(clip, ScheduleShape::FullSequence, 3);
  auto gen = at::detail::createCPUGenerator(0);
  DenoiseFn zeros = [](const DenoiseCall& call) { return torch::zeros_like(call.x); };
  SamplerSettings bad;
  bad.eta = 1.5;
  CHECK_THROWS_AS(sample_window(zeros, schedule, input, bad, gen), Error);
  bad = {};
  bad.stabilization_user = 1.0;
  CHECK_THROWS_AS(sample_window(zeros, schedule, input, bad, gen), Error);
  bad = {};
  bad.guidance.mode = GuidanceMode::Fractional;
  bad.guidance.fractional_level = 0.0;
  CHECK_THROWS_AS(sample_window(zeros, schedule, input, bad, gen), Error);
  WindowInput wrong = input;
  wrong.roles.push_back(FrameRole::Generate);
  CHECK_THROWS_AS(sample_window(zeros, schedule, wrong, SamplerSettings{}, gen), Error);
  DenoiseFn wrong_shape = [](const DenoiseCall&) { return torch::zeros({1}); };
  CHECK_THROWS_AS(sample_window(wrong_shape, schedule, input, SamplerSettings{}, gen), Error);
}

TEST_CASE(
    "a DDIM step that reaches level 0 returns x0 exactly, and a frame that does not move keeps x",
    "[sampler]") {
  const NoiseSchedule schedule;
  for (double eta : {0.0, 0.5, 1.0}) {
    const auto last = ddim_step(schedule, 0.1, 0.0, eta);
    CHECK(last.c_x == 0.0);
    CHECK(last.c_x0 == 1.0);
    CHECK(last.sigma == 0.0);
    for (double level : {0.0, 0.4, 1.0}) {
      const auto still = ddim_step(schedule, level, level, eta);
      CHECK(still.c_x == 1.0);
      CHECK(still.c_x0 == 0.0);
      CHECK(still.sigma == 0.0);
    }
  }
  // Deterministic DDIM keeps the implied eps: c_x sqrt(1 - a_from) = sqrt(1 - a_to).
  const auto mid = ddim_step(schedule, 0.8, 0.5, 0.0);
  CHECK(mid.c_x * std::sqrt(1 - schedule.alpha_bar(0.8)) ==
        Approx(std::sqrt(1 - schedule.alpha_bar(0.5))));
  CHECK(mid.c_x0 + mid.c_x * std::sqrt(schedule.alpha_bar(0.8)) ==
        Approx(std::sqrt(schedule.alpha_bar(0.5))));
}

TEST_CASE("frames are fed at their stabilisation level when known or final, else at their row",
          "[sampler]") {
  const auto matrix =
      build_schedule(ScheduleSettings{ScheduleShape::FullSequence, 4, 1.0, 2, 2}, {0, 0, 1, 1});
  SamplerSettings settings;
  settings.stabilization_user = 0.05;
  settings.stabilization_generated = 0.1;
  const std::vector<FrameRole> roles{FrameRole::KnownUser, FrameRole::KnownGenerated,
                                     FrameRole::Generate, FrameRole::Generate};
  const auto fed = fed_levels(matrix, 1, roles, {true, true, true, false}, settings);
  CHECK(fed == std::vector<double>{0.05, 0.1, 0.1, matrix.at(1, 3) / 4.0});
}

TEST_CASE("history guidance on x0 estimates equals guidance on the network's v predictions",
          "[sampler]") {
  // x0 is affine in v at a fixed x_n and level, and the guidance weights sum to 1, so the
  // wrapper may combine x0 estimates where DFoT combines network outputs.
  const NoiseSchedule schedule;
  const auto clip = known_clip(3);
  auto gen = at::detail::createCPUGenerator(9);
  const auto noise = torch::randn(clip.sizes(), gen);
  const auto known = torch::tensor(std::vector<int>{1, 0, 0}, torch::kInt32).to(torch::kBool);
  // A network whose v prediction depends on every frame, so the history variants differ.
  PredictFn network = [](const DenoiseCall& call) {
    return (call.x.mean(1, true) * 0.7 + call.levels.view({call.x.size(0), -1, 1, 1, 1}))
        .expand_as(call.x)
        .contiguous();
  };
  DenoiseCall call;
  call.levels = torch::tensor(std::vector<float>{0.02f, 0.6f, 0.9f}).unsqueeze(0);
  call.x = schedule.add_noise(clip.unsqueeze(0), noise.unsqueeze(0), call.levels);
  call.positions = torch::arange(3, torch::kFloat32);
  call.history = WindowHistory{known, clip, noise};
  for (auto mode : {GuidanceMode::Vanilla, GuidanceMode::Fractional}) {
    INFO(to_string(mode));
    GuidanceSettings g{mode, 2.0, 0.4};
    int batches = 0;
    PredictFn counted = [&](const DenoiseCall& c) {
      batches = static_cast<int>(c.x.size(0));
      return network(c);
    };
    const auto guided =
        history_guidance(x0_denoiser(counted, schedule, Objective::V), schedule, g)(call);
    CHECK(batches == guidance_variants(g));
    // The same combination on v, then one conversion to x0.
    DenoiseCall batched = call;
    std::vector<torch::Tensor> xs{call.x[0]}, levels{call.levels[0]};
    for (double l : mode == GuidanceMode::Fractional ? std::vector<double>{0.4, 1.0}
                                                     : std::vector<double>{1.0}) {
      const auto lv = torch::full({3}, l);
      xs.push_back(torch::where(
          known.view({3, 1, 1, 1}),
          schedule.add_noise(clip.unsqueeze(0), noise.unsqueeze(0), lv.unsqueeze(0))[0],
          call.x[0]));
      levels.push_back(torch::where(known, lv, call.levels[0]));
    }
    batched.x = torch::stack(xs);
    batched.levels = torch::stack(levels);
    const auto v = network(batched);
    const auto v_guided = mode == GuidanceMode::Vanilla ? v[1] + 2.0 * (v[0] - v[1])
                                                        : v[0] + (2.0 - 1.0) * (v[1] - v[2]);
    const auto expected = schedule.to_x0(Objective::V, v_guided.unsqueeze(0), call.x, call.levels);
    // Generated frames only: x and level are the same in every variant there (the history
    // frames' own estimates differ per variant and the sampler never uses them).
    CHECK(torch::allclose(guided.slice(1, 1), expected.slice(1, 1), 1e-5, 1e-5));
    // ... and guidance did change them.
    const auto plain = x0_denoiser(network, schedule, Objective::V)(call);
    CHECK_FALSE(torch::allclose(guided.slice(1, 1), plain.slice(1, 1), 1e-3, 1e-3));
  }
  // No history, or w = 1: one plain call.
  int calls = 0;
  DenoiseFn plain = [&](const DenoiseCall& c) {
    ++calls;
    return c.x;
  };
  DenoiseCall no_history = call;
  no_history.history = {};
  CHECK(torch::equal(
      history_guidance(plain, schedule, {GuidanceMode::Vanilla, 2.0, 0.5})(no_history), call.x));
  CHECK(torch::equal(history_guidance(plain, schedule, {GuidanceMode::Vanilla, 1.0, 0.5})(call),
                     call.x));
  CHECK(calls == 2);
}

TEST_CASE(
    "DPM-Solver++(2M) follows the probability-flow ODE of Gaussian data more closely than "
    "DDIM at the same few steps",
    "[sampler][solver]") {
  // For x0 ~ N(mu, s^2) per pixel the ODE is solved in closed form: the standardised value
  // z = (x_n - a_n mu) / sqrt(a_n^2 s^2 + 1 - a_n^2) stays constant along the path. Compared
  // where each frame reaches level 1/S, before the last step (which, for both solvers, jumps to
  // the x0 estimate).
  const double mu = 0.3, s = 0.2;
  const int steps = 6;
  const NoiseSchedule schedule;
  const auto clip = torch::zeros({4, 3, 8, 8});
  const auto standardised = [&](const torch::Tensor& x, double level) {
    const double a = std::sqrt(schedule.alpha_bar(level));
    return (x - a * mu) / std::sqrt(a * a * s * s + 1 - a * a);
  };
  for (auto shape : {ScheduleShape::FullSequence, ScheduleShape::Pyramid}) {
    INFO(to_string(shape));
    double error[2] = {0, 0};
    for (const Solver solver : {Solver::Ddim, Solver::DpmPP2M}) {
      auto gen = at::detail::createCPUGenerator(21);
      SamplerSettings settings;
      settings.solver = solver;
      torch::Tensor start_z;
      std::vector<torch::Tensor> last_z(static_cast<size_t>(clip.size(0)));
      const DenoiseFn exact = gaussian_denoiser(mu, s, schedule);
      DenoiseFn spy = [&](const DenoiseCall& call) {
        const auto x = call.x.squeeze(0);
        if (!start_z.defined()) start_z = standardised(x, 1.0);  // row 0: every frame at 1
        for (int64_t t = 0; t < x.size(0); ++t) {
          const double level = call.levels[0][t].item<double>();
          if (std::abs(level - 1.0 / steps) < 1e-6 && !last_z[t].defined())
            last_z[t] = standardised(x[t], level);
        }
        return exact(call);
      };
      sample_window(spy, schedule, generate_all(clip, shape, steps, 1.0), settings, gen);
      for (size_t t = 0; t < last_z.size(); ++t) {
        REQUIRE(last_z[t].defined());
        error[solver == Solver::DpmPP2M] +=
            (last_z[t] - start_z[static_cast<int64_t>(t)]).abs().mean().item<double>();
      }
    }
    INFO("mean drift of the standardised value: ddim " << error[0] << ", dpmpp-2m " << error[1]);
    CHECK(error[1] < 0.6 * error[0]);
  }
}

TEST_CASE(
    "DPM-Solver++(2M): the first step of a frame is DDIM's, the weights extrapolate, "
    "eta must be 0",
    "[sampler][solver]") {
  // First-order fallback: no previous step, or a non-finite one (a start from level 1).
  CHECK(dpmpp_2m_weights(0.5, 0.0) == std::pair<double, double>{1.0, 0.0});
  CHECK(dpmpp_2m_weights(0.5, std::numeric_limits<double>::infinity()) ==
        std::pair<double, double>{1.0, 0.0});
  // Equal steps (r = 1): D = 1.5 x0 - 0.5 x0_prev, k-diffusion's weights.
  const auto [now, previous] = dpmpp_2m_weights(0.3, 0.3);
  CHECK(now == Approx(1.5));
  CHECK(previous == Approx(-0.5));
  const NoiseSchedule schedule;
  CHECK(half_log_snr(schedule, 0.2) > half_log_snr(schedule, 0.6));  // SNR falls with level
  SamplerSettings settings;
  settings.solver = Solver::DpmPP2M;
  settings.eta = 0.5;
  CHECK_THROWS_AS(validate_sampler_settings(settings), Error);
  CHECK(solver_from_string(to_string(Solver::DpmPP2M)) == Solver::DpmPP2M);
  CHECK_THROWS_AS(solver_from_string("euler"), Error);
}

TEST_CASE("a call marks as needed exactly the frames that move in its row, unless all are wanted",
          "[sampler]") {
  const auto clip = known_clip();
  const NoiseSchedule schedule;
  for (const bool all : {false, true}) {
    INFO((all ? "previews: every estimate" : "no previews"));
    auto input = generate_all(clip, ScheduleShape::Pyramid, 4);
    input.roles[0] = FrameRole::KnownUser;  // history: its column is 0, it never moves
    input.content[0].copy_(clip[0]);
    std::vector<double> start(static_cast<size_t>(clip.size(0)), 1.0);
    start[0] = 0.0;
    input.matrix = build_schedule(ScheduleSettings{ScheduleShape::Pyramid, 4, 1.0, 2, 2}, start);
    input.all_estimates = all;
    std::vector<std::vector<bool>> needed;
    DenoiseFn zeros = [&](const DenoiseCall& call) {
      needed.push_back(call.needed);
      return torch::zeros_like(call.x);
    };
    auto gen = at::detail::createCPUGenerator(1);
    sample_window(zeros, schedule, input, SamplerSettings{}, gen);
    REQUIRE(needed.size() == static_cast<size_t>(input.matrix.rows - 1));
    int skipped = 0;
    for (size_t m = 0; m < needed.size(); ++m) {
      if (all) {
        CHECK(needed[m].empty());
        continue;
      }
      REQUIRE(needed[m].size() == static_cast<size_t>(clip.size(0)));
      for (int t = 0; t < clip.size(0); ++t) {
        const int r = static_cast<int>(m);
        const bool moves = t > 0 && input.matrix.at(r + 1, t) < input.matrix.at(r, t);
        CHECK(needed[m][t] == moves);
        skipped += !moves;
      }
    }
    if (!all) CHECK(skipped > clip.size(0));  // a pyramid leaves frames waiting in most rows
  }
}

TEST_CASE("a call's stable prefix: frames fed the same in this and every later call of the window",
          "[sampler]") {
  const auto clip = known_clip();
  const NoiseSchedule schedule;
  for (const auto shape : {ScheduleShape::Pyramid, ScheduleShape::FullSequence}) {
    INFO(to_string(shape));
    auto input = generate_all(clip, shape, 4);
    input.roles[0] = FrameRole::KnownUser;
    input.content[0].copy_(clip[0]);
    std::vector<double> start(static_cast<size_t>(clip.size(0)), 1.0);
    start[0] = 0.0;
    input.matrix = build_schedule(ScheduleSettings{shape, 4, 1.0, 2, 2}, start);
    std::vector<DenoiseCall> calls;
    DenoiseFn garbage = [&](const DenoiseCall& call) {
      calls.push_back(call);
      calls.back().x = call.x.clone();
      calls.back().levels = call.levels.clone();
      return torch::randn(call.x.sizes());
    };
    auto gen = at::detail::createCPUGenerator(3);
    sample_window(garbage, schedule, input, SamplerSettings{}, gen);
    REQUIRE(calls.size() == static_cast<size_t>(input.matrix.rows - 1));
    int grew = 0;
    for (size_t m = 0; m < calls.size(); ++m) {
      const int stable = calls[m].stable_prefix;
      CHECK(stable >= calls[m].known_prefix);
      if (m > 0) CHECK(stable >= calls[m - 1].stable_prefix);
      grew += m > 0 && stable > calls[m - 1].stable_prefix;
      // Every later call feeds those frames the same bytes at the same level.
      for (size_t later = m + 1; later < calls.size(); ++later) {
        CHECK(torch::equal(calls[later].x.slice(1, 0, stable), calls[m].x.slice(1, 0, stable)));
        CHECK(torch::equal(calls[later].levels.slice(1, 0, stable),
                           calls[m].levels.slice(1, 0, stable)));
      }
    }
    // A pyramid finishes its frames one after another; a full sequence all at the end.
    if (shape == ScheduleShape::Pyramid)
      CHECK(grew > 0);
    else
      CHECK(calls.back().stable_prefix == 1);
  }
}
