// The denoiser network, model files, the KV cache and rollouts over a timeline (with the
// "tiny" presets: fast on a CPU).
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <unistd.h>
#include <atomic>
#include <filesystem>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model.h"
#include "dfs/diffusion/model_file.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs/diffusion/sampler.h"
#include "dfs/diffusion/weights.h"
#include "dfs_skip.h"
#include "diffusion/diffusion_test_util.h"

using namespace dfs::diffusion;

namespace {

std::string temp_path(const std::string& name) {
  return dfs_test::pid_temp_path("dfs_model", name);
}

Denoiser make_net(const std::string& preset, uint64_t seed = 1) {
  Denoiser net(ModelConfig::preset(preset));
  net->reset_parameters(seed);
  net->eval();
  return net;
}

torch::Tensor random_frames(const ModelConfig& c, int64_t batch, int64_t frames, uint64_t seed) {
  auto g = at::detail::createCPUGenerator(seed);
  return torch::randn({batch, frames, c.channels, c.height, c.width}, g, torch::kFloat32);
}

torch::Tensor random_levels(int64_t batch, int64_t frames, uint64_t seed) {
  auto g = at::detail::createCPUGenerator(seed);
  return torch::rand({batch, frames}, g, torch::kFloat32);
}

dfs::Frame solid_frame(int w, int h, std::uint8_t value) {
  dfs::Frame f(w, h);
  for (size_t i = 0; i < f.rgb.size(); ++i) f.rgb[i] = static_cast<std::uint8_t>(value + i % 7);
  return f;
}

}  // namespace

TEST_CASE("denoiser output has the input's shape for non-square frames", "[model]") {
  torch::InferenceMode guard;
  auto net = make_net("tiny");
  const auto& c = net->config();
  CHECK(c.width != c.height);
  const auto x = random_frames(c, 2, 5, 1);
  const auto y = net->forward(x, random_levels(2, 5, 2));
  CHECK(y.sizes() == x.sizes());
  CHECK(torch::isfinite(y).all().item<bool>());
  CHECK(y.abs().sum().item<float>() > 0);
  CHECK_THROWS_AS(net->forward(x.slice(3, 0, 20), random_levels(2, 5, 2)), Error);
  CHECK_THROWS_AS(net->forward(x, random_levels(2, 4, 2)), Error);
}

TEST_CASE("each frame is conditioned on its own noise level", "[model]") {
  torch::InferenceMode guard;
  auto net = make_net("tiny-causal");
  const auto x = random_frames(net->config(), 1, 4, 3);
  auto levels = torch::full({1, 4}, 0.5f);
  const auto a = net->forward(x, levels);
  levels[0][2] = 0.9f;
  const auto b = net->forward(x, levels);
  CHECK(torch::allclose(a.slice(1, 0, 2), b.slice(1, 0, 2), 1e-6,
                        1e-6));  // causal: earlier frames unaffected
  CHECK((a.select(1, 2) - b.select(1, 2)).abs().max().item<float>() > 1e-4);
}

TEST_CASE("causal attention: changing frame t+1 leaves outputs for frames <= t unchanged",
          "[model]") {
  torch::InferenceMode guard;
  for (const char* preset : {"tiny-causal", "tiny"}) {
    auto net = make_net(preset);
    const bool causal = net->config().causal;
    const auto x = random_frames(net->config(), 1, 6, 4);
    const auto levels = random_levels(1, 6, 5);
    const auto before = net->forward(x, levels);
    for (int t = 0; t + 1 < 6; ++t) {
      auto changed = x.clone();
      changed.select(1, t + 1).add_(torch::randn_like(changed.select(1, t + 1)));
      const auto after = net->forward(changed, levels);
      const float past_diff =
          (after.slice(1, 0, t + 1) - before.slice(1, 0, t + 1)).abs().max().item<float>();
      const float own_diff =
          (after.select(1, t + 1) - before.select(1, t + 1)).abs().max().item<float>();
      INFO(preset << " t = " << t);
      CHECK(own_diff > 1e-4);
      if (causal)
        CHECK(past_diff < 1e-6);
      else
        CHECK(past_diff > 1e-6);  // bidirectional: the future shapes the past
    }
  }
}

TEST_CASE(
    "rotary time positions: shifting every position leaves the output unchanged (windows slide)",
    "[model]") {
  torch::InferenceMode guard;
  auto net = make_net("tiny");
  const auto x = random_frames(net->config(), 1, 5, 6);
  const auto levels = random_levels(1, 5, 7);
  const auto base = net->forward(x, levels, torch::arange(5, torch::kFloat32));
  const auto shifted = net->forward(x, levels, torch::arange(5, torch::kFloat32) + 37);
  CHECK(torch::allclose(base, shifted, 1e-4, 1e-4));
  const auto gapped = net->forward(x, levels, torch::tensor({0.f, 1.f, 2.f, 3.f, 7.f}));
  CHECK_FALSE(torch::allclose(base, gapped, 1e-4, 1e-4));  // but distances matter
}

TEST_CASE("KV-cached streaming equals the uncached forward to 1e-5", "[model]") {
  torch::InferenceMode guard;
  auto net = make_net("tiny-causal", 9);
  const auto x = random_frames(net->config(), 2, 7, 8);
  const auto levels = random_levels(2, 7, 9);
  const auto full = net->forward(x, levels);

  // Prefill 3 frames, then evaluate the remaining 4 against the cache (a sampling step).
  KVCache cache;
  net->forward_cached(x.slice(1, 0, 3), levels.slice(1, 0, 3), {}, cache, true);
  CHECK(cache.frames() == 3);
  const auto tail = net->forward_cached(x.slice(1, 3), levels.slice(1, 3), {}, cache, false);
  CHECK(cache.frames() == 3);
  CHECK((tail - full.slice(1, 3)).abs().max().item<float>() < 1e-5);

  // Streaming one frame at a time, appending each to the cache.
  KVCache stream;
  for (int t = 0; t < 7; ++t) {
    const auto out =
        net->forward_cached(x.slice(1, t, t + 1), levels.slice(1, t, t + 1), {}, stream, true);
    CHECK((out - full.slice(1, t, t + 1)).abs().max().item<float>() < 1e-5);
  }
  CHECK(stream.frames() == 7);

  auto bidirectional = make_net("tiny");
  KVCache unused;
  CHECK_THROWS_AS(bidirectional->forward_cached(x, levels, {}, unused, true), Error);
}

TEST_CASE("model save -> load gives identical outputs, config and provenance", "[model][weights]") {
  torch::InferenceMode guard;
  auto net = make_net("tiny", 3);
  const auto path = temp_path("roundtrip.safetensors");
  save_model(path, net, net->config(), {{"steps", 123}, {"dataset", "unit test"}});
  auto loaded = load_denoiser(path);
  CHECK(loaded.config.to_json() == net->config().to_json());
  CHECK(loaded.provenance["steps"] == 123);
  loaded.net->eval();
  const auto x = random_frames(net->config(), 1, 3, 1);
  const auto levels = random_levels(1, 3, 2);
  CHECK(torch::equal(net->forward(x, levels), loaded.net->forward(x, levels)));

  auto model = Model::load(path, "cpu");
  const auto& info = model.info();
  CHECK(info.name == "tiny");
  CHECK(info.width == 32);
  CHECK(info.height == 24);
  CHECK(info.max_frames == 8);
  CHECK(info.objective == "v");
  CHECK(info.noise_schedule == "cosine");
  CHECK(info.parameter_count == net->parameter_count());
  CHECK(info.provenance_json.find("unit test") != std::string::npos);
  CHECK(info.config_json.find("\"tiny\"") != std::string::npos);
  std::filesystem::remove(path);
}

TEST_CASE("loading names missing, unexpected and mis-shaped tensors", "[model][weights]") {
  auto net = make_net("tiny");
  const auto path = temp_path("broken.safetensors");
  save_model(path, net, net->config());
  auto file = load_safetensors(path);
  file.tensors.erase("blocks.1.fc2.bias");
  file.tensors["blocks.9.extra"] = torch::zeros({2});
  file.tensors["head.weight"] = torch::zeros({5, 5});
  save_safetensors(path, file);
  const std::string msg =
      dfs_test::refusal_of([&] { Model::load(path, "cpu"); }, "a broken model file loaded");
  CHECK(msg.find("missing tensors: blocks.1.fc2.bias") != std::string::npos);
  CHECK(msg.find("unexpected tensors: blocks.9.extra") != std::string::npos);
  CHECK(msg.find("mis-shaped tensors: head.weight") != std::string::npos);
  // A config far larger than the file's tensors is refused before anything is allocated.
  auto huge = ModelConfig::preset("tiny").to_json();
  huge["dim"] = 4096;
  huge["depth"] = 128;
  file.metadata["config"] = huge.dump();
  save_safetensors(path, file);
  CHECK_THROWS_WITH(Model::load(path, "cpu"), Catch::Contains("holds only"));
  file.metadata.erase("config");
  save_safetensors(path, file);
  CHECK_THROWS_WITH(Model::load(path, "cpu"), Catch::Contains("no 'config'"));
  file.metadata["config"] =
      R"({"width": 30, "height": 24, "max_frames": 8, "patch": 4, "dim": 32, "depth": 2, "heads": 2})";
  save_safetensors(path, file);
  CHECK_THROWS_WITH(Model::load(path, "cpu"), Catch::Contains("multiple of the patch"));
  std::filesystem::remove(path);
  CHECK_THROWS_AS(Model::load(path, "cpu"), Error);
  CHECK_THROWS_AS(Model::random("enormous", 0), Error);
}

TEST_CASE("model config JSON round-trips and rejects out-of-range fields", "[model]") {
  for (const char* preset : {"demo", "demo-causal", "tiny", "tiny-causal"}) {
    const auto c = ModelConfig::preset(preset);
    CHECK(ModelConfig::from_json(c.to_json()).to_json() == c.to_json());
  }
  auto j = ModelConfig::preset("tiny").to_json();
  j["depth"] = 0;
  CHECK_THROWS_AS(ModelConfig::from_json(j), Error);
  j = ModelConfig::preset("tiny").to_json();
  j["heads"] = 3;
  CHECK_THROWS_AS(ModelConfig::from_json(j), Error);
  j = ModelConfig::preset("tiny").to_json();
  j["objective"] = "score";
  CHECK_THROWS_AS(ModelConfig::from_json(j), Error);
  j = ModelConfig::preset("tiny").to_json();
  j["width"] = "wide";
  CHECK_THROWS_AS(ModelConfig::from_json(j), Error);
}

TEST_CASE("overlapping patches: same shapes, saved and loaded, and outputs blend across borders",
          "[model][weights]") {
  torch::InferenceMode guard;
  auto config = ModelConfig::preset("tiny");
  config.overlap = true;
  Denoiser net(config);
  net->reset_parameters(5);
  net->eval();
  CHECK(net->head_overlap);
  CHECK_FALSE(net->head);
  const auto x = random_frames(config, 1, 3, 1);
  const auto levels = random_levels(1, 3, 2);
  const auto y = net->forward(x, levels);
  CHECK(y.sizes() == x.sizes());
  CHECK(torch::isfinite(y).all().item<bool>());

  // The head alone: one token's features paint a 2p x 2p tile centred on its patch, so they
  // reach the neighbouring patches' border pixels but not pixels two patches away.
  const int p = config.patch;
  const int64_t gh = config.height / p, gw = config.width / p;
  auto features = torch::zeros({1, config.dim, gh, gw});
  features[0].select(1, 1).select(1, 1).fill_(1.0);  // token (row 1, col 1)
  const auto tile = net->head_overlap(features) - net->head_overlap(torch::zeros_like(features));
  const auto touched = tile.abs().sum(1)[0] > 0;  // [H, W]
  // Patch (1,1) covers pixels [p, 2p); its tile reaches p/2 into each neighbour.
  CHECK(touched[p + p / 2][p - 1].item<bool>());            // left neighbour's border column
  CHECK(touched[p + p / 2][2 * p].item<bool>());            // right neighbour's border column
  CHECK_FALSE(touched[p + p / 2][p / 2 - 1].item<bool>());  // beyond the overlap
  CHECK_FALSE(touched[p + p / 2][2 * p + p / 2].item<bool>());

  const auto path = temp_path("overlap.safetensors");
  save_model(path, net, config);
  auto loaded = load_denoiser(path);
  CHECK(loaded.config.overlap);
  CHECK(loaded.config.to_json() == config.to_json());
  loaded.net->eval();
  CHECK(torch::equal(y, loaded.net->forward(x, levels)));
  // A file saved without overlapping patches does not load into an overlapping config.
  auto plain = make_net("tiny");
  save_model(path, plain, plain->config());
  auto file = load_safetensors(path);
  auto j = plain->config().to_json();
  CHECK_FALSE(j.contains("overlap"));  // older files keep their exact config
  j["overlap"] = true;
  file.metadata["config"] = j.dump();
  save_safetensors(path, file);
  CHECK_THROWS_WITH(Model::load(path, "cpu"), Catch::Contains("mis-shaped tensors"));
  std::filesystem::remove(path);

  j = ModelConfig::preset("tiny").to_json();
  j["overlap"] = "yes";
  CHECK_THROWS_AS(ModelConfig::from_json(j), Error);
  j["overlap"] = true;
  j["patch"] = 3;
  j["width"] = 33;
  j["height"] = 24;
  CHECK_THROWS_WITH(ModelConfig::from_json(j), Catch::Contains("even patch"));
}

TEST_CASE("Model::random is deterministic in its seed", "[model]") {
  torch::InferenceMode guard;
  auto a = Model::random("tiny", 5);
  auto b = Model::random("tiny", 5);
  auto c = Model::random("tiny", 6);
  const auto pa = model_impl(a).net->parameters();
  const auto pb = model_impl(b).net->parameters();
  const auto pc = model_impl(c).net->parameters();
  bool same = true, differ = false;
  for (size_t i = 0; i < pa.size(); ++i) {
    same = same && torch::equal(pa[i], pb[i]);
    differ = differ || !torch::equal(pa[i], pc[i]);
  }
  CHECK(same);
  CHECK(differ);
  CHECK(a.info().parameter_count > 10000);
  for (const char* preset : {"demo", "tiny", "tiny-causal"})
    CHECK(expected_parameter_count(ModelConfig::preset(preset)) ==
          Denoiser(ModelConfig::preset(preset))->parameter_count());
}

TEST_CASE("plan_rollout: windows cover every unpinned frame once and respect the model's reach",
          "[rollout]") {
  auto model = Model::random("tiny", 1);
  const auto& info = model.info();
  std::vector<TimelineFrame> timeline(20);
  const dfs::Frame pin = solid_frame(info.width, info.height, 10);
  for (int i : {0, 9, 19}) {
    timeline[i].content = pin;
    timeline[i].pinned = true;
  }
  RolloutSettings settings;
  settings.context = 2;
  settings.horizon = 4;
  const auto plans = plan_rollout(info, timeline, settings);
  std::vector<int> generated_count(20, 0);
  bool end_pin_seen_early = false;
  for (const auto& plan : plans) {
    REQUIRE(plan.frames.size() == plan.known.size());
    CHECK(static_cast<int>(plan.frames.size()) <= info.max_frames);
    CHECK(plan.frames.back() - plan.first < info.max_frames);
    CHECK(plan.matrix.frames == static_cast<int>(plan.frames.size()));
    for (size_t k = 0; k < plan.frames.size(); ++k) {
      const int index = plan.frames[k];
      if (!plan.known[k]) ++generated_count[index];
      if (timeline[index].pinned) CHECK(plan.known[k]);
      if (plan.known[k])
        for (int r = 0; r < plan.matrix.rows; ++r)
          CHECK(plan.matrix.at(r, static_cast<int>(k)) == 0);
      if (index == 19 && plan.first < 14) end_pin_seen_early = true;
    }
  }
  for (int i = 0; i < 20; ++i) CHECK(generated_count[i] == (timeline[i].pinned ? 0 : 1));
  CHECK(end_pin_seen_early);  // bidirectional: the end pin shapes the frames leading to it

  settings.context = 5;
  settings.horizon = 4;  // 9 > 8 frames
  CHECK_THROWS_WITH(plan_rollout(info, timeline, settings), Catch::Contains("exceeds"));
  settings.context = 2;
  timeline[3].content = solid_frame(16, 16, 0);
  timeline[3].pinned = true;
  CHECK_THROWS_WITH(plan_rollout(info, timeline, settings), Catch::Contains("timeline frame 3"));
}

TEST_CASE("rollout streams every frame in order, pinned ones bit-identical, and is reproducible",
          "[rollout]") {
  auto model = Model::random("tiny", 2);
  const auto& info = model.info();
  std::vector<TimelineFrame> timeline(14);
  const std::vector<int> pinned = {0, 1, 7, 13};
  for (int i : pinned) {
    timeline[i].content = solid_frame(info.width, info.height, static_cast<std::uint8_t>(20 * i));
    timeline[i].pinned = true;
  }
  RolloutSettings settings;
  settings.context = 2;
  settings.horizon = 3;
  settings.sampler.schedule.steps = 3;
  settings.sampler.eta = 0.3;
  settings.seed = 77;
  const auto run = [&](uint64_t seed) {
    settings.seed = seed;
    std::vector<dfs::Frame> out;
    RolloutCallbacks callbacks;
    callbacks.on_frame = [&](int index, const dfs::Frame& frame) {
      CHECK(index == static_cast<int>(out.size()));
      CHECK(frame.width == info.width);
      out.push_back(frame);
    };
    int last_step = 0;
    callbacks.on_progress = [&](const RolloutProgress& p) {
      CHECK(p.step == last_step + 1);
      last_step = p.step;
      CHECK(p.total_steps >= p.step);
      for (const auto& [index, frame] : p.preview) CHECK_FALSE(timeline[index].pinned);
    };
    const auto result = run_rollout(model, timeline, settings, callbacks);
    CHECK_FALSE(result.cancelled);
    CHECK(result.frames_final == 14);
    CHECK(result.model_forwards > 0);
    return out;
  };
  const auto a = run(77);
  REQUIRE(a.size() == 14);
  for (int i : pinned) CHECK(a[i] == timeline[i].content);
  const auto b = run(77);
  const bool same_seed_same_frames = a == b;
  CHECK(same_seed_same_frames);
  const auto c = run(78);
  const bool other_seed_same_frames = a == c;
  CHECK_FALSE(other_seed_same_frames);
}

TEST_CASE("a cancelled rollout returns the frames it finished, in order", "[rollout]") {
  auto model = Model::random("tiny", 3);
  std::vector<TimelineFrame> timeline(12);
  RolloutSettings settings;
  settings.context = 2;
  settings.horizon = 2;
  settings.sampler.schedule.steps = 2;
  std::atomic<bool> cancel{false};
  int emitted = 0;
  RolloutCallbacks callbacks;
  callbacks.cancel = &cancel;
  callbacks.want_preview = false;
  callbacks.on_frame = [&](int index, const dfs::Frame&) { CHECK(index == emitted++); };
  callbacks.on_progress = [&](const RolloutProgress& p) {
    CHECK(p.preview.empty());
    if (p.frames_final >= 5) cancel = true;
  };
  const auto result = run_rollout(model, timeline, settings, callbacks);
  CHECK(result.cancelled);
  CHECK(result.frames_final == emitted);
  CHECK(result.frames_final >= 5);
  CHECK(result.frames_final < 12);
}

TEST_CASE("causal rollout with the KV cache matches the uncached rollout", "[rollout]") {
  auto model = Model::random("tiny-causal", 4);
  std::vector<TimelineFrame> timeline(10);
  timeline[0].content = solid_frame(32, 24, 50);
  timeline[0].pinned = true;
  RolloutSettings settings;
  settings.context = 3;
  settings.horizon = 3;
  settings.sampler.schedule.steps = 4;
  const auto run = [&](bool kv_cache, int* forwards) {
    settings.kv_cache = kv_cache;
    std::vector<dfs::Frame> out;
    RolloutCallbacks callbacks;
    callbacks.on_frame = [&](int, const dfs::Frame& f) { out.push_back(f); };
    *forwards = run_rollout(model, timeline, settings, callbacks).model_forwards;
    return out;
  };
  int cached_forwards = 0, plain_forwards = 0;
  const auto cached = run(true, &cached_forwards);
  const auto plain = run(false, &plain_forwards);
  REQUIRE(cached.size() == plain.size());
  CHECK(cached_forwards == plain_forwards);
  int max_diff = 0;
  for (size_t i = 0; i < cached.size(); ++i)
    for (size_t k = 0; k < cached[i].rgb.size(); ++k)
      max_diff = std::max(max_diff, std::abs(int(cached[i].rgb[k]) - int(plain[i].rgb[k])));
  CHECK(max_diff <= 1);  // 1e-5 in float can flip one rounding of the uint8 output
}

TEST_CASE("on CUDA the model runs in bf16 and agrees with the CPU float32 model", "[gpu]") {
  if (!torch::cuda::is_available()) DFS_SKIP("no CUDA device");
  torch::InferenceMode guard;
  auto cpu = Model::random("tiny", 8, "cpu");
  auto gpu = Model::random("tiny", 8, "cuda");
  CHECK(gpu.info().device.rfind("cuda", 0) == 0);
  const auto x = random_frames(model_impl(cpu).config, 1, 4, 1);
  const auto levels = random_levels(1, 4, 2);
  const auto a = model_impl(cpu).net->forward(x, levels);
  const auto b = model_impl(gpu).net->forward(x, levels).to(torch::kCPU);
  CHECK(b.scalar_type() == torch::kFloat32);
  CHECK((a - b).abs().max().item<float>() < 0.1f * std::max(1.0f, a.abs().max().item<float>()));
  std::vector<TimelineFrame> timeline(6);
  RolloutSettings settings;
  settings.context = 2;
  settings.horizon = 4;
  settings.sampler.schedule.steps = 3;
  int frames = 0;
  RolloutCallbacks callbacks;
  callbacks.on_frame = [&](int, const dfs::Frame&) { ++frames; };
  CHECK(run_rollout(gpu, timeline, settings, callbacks).frames_final == 6);
  CHECK(frames == 6);
}

TEST_CASE("plan_rollout: a causal model gets no look-ahead pins, windows stay contiguous",
          "[rollout]") {
  auto model = Model::random("tiny-causal", 1);
  const auto& info = model.info();
  std::vector<TimelineFrame> timeline(12);
  timeline[11].content = solid_frame(info.width, info.height, 3);
  timeline[11].pinned = true;
  RolloutSettings settings;
  settings.context = 2;
  settings.horizon = 3;
  for (const auto& plan : plan_rollout(info, timeline, settings)) {
    for (size_t k = 1; k < plan.frames.size(); ++k) CHECK(plan.frames[k] == plan.frames[k - 1] + 1);
    if (plan.frames.back() != 11) {
      for (int index : plan.frames) CHECK(index != 11);
    }
  }
}

TEST_CASE(
    "causal ModelDenoiser (KV cache + skipped future frames) equals full forwards in a pyramid "
    "window",
    "[rollout]") {
  auto model = Model::random("tiny-causal", 6);
  auto& impl = model_impl(model);
  const auto& c = impl.config;
  WindowInput input;
  input.content = torch::rand({7, 3, c.height, c.width}) * 2 - 1;
  input.roles = {FrameRole::KnownUser, FrameRole::KnownGenerated, FrameRole::Generate,
                 FrameRole::Generate,  FrameRole::Generate,       FrameRole::Generate,
                 FrameRole::Generate};
  ScheduleSettings schedule;
  schedule.shape = ScheduleShape::Pyramid;
  schedule.steps = 4;
  schedule.uncertainty = 2;
  input.matrix = build_schedule(schedule, {0, 0, 1, 1, 1, 1, 1});
  const DenoiseFn full = x0_denoiser(
      [&](const DenoiseCall& call) {
        torch::InferenceMode guard;
        return impl.net->forward(call.x, call.levels, call.positions);
      },
      impl.schedule, c.objective);
  for (auto guidance : {GuidanceMode::None, GuidanceMode::Vanilla}) {
    SamplerSettings settings;
    settings.eta = 0.5;
    settings.guidance.mode = guidance;
    settings.guidance.scale = 1.5;
    auto g1 = at::detail::createCPUGenerator(3);
    auto g2 = at::detail::createCPUGenerator(3);
    ModelDenoiser fast(impl, /*kv_cache=*/true);
    const auto a = sample_window(fast.fn(), impl.schedule, input, settings, g1);
    const auto b = sample_window(full, impl.schedule, input, settings, g2);
    CHECK(a.forwards == b.forwards);
    CHECK((a.frames - b.frames).abs().max().item<float>() < 1e-4);
  }
}
