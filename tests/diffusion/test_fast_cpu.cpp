// The fast CPU forward (src/fast_cpu.h) against the reference forward, and the exact mode of a
// rollout against the fast mode.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/denoise.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs_skip.h"

using namespace dfs::diffusion;

namespace {

Denoiser fast_test_net(ModelConfig config, uint64_t seed) {
  Denoiser net(config);
  net->reset_parameters(seed);
  net->eval();
  return net;
}

// Largest |a - b| relative to the largest |b|.
double relative_gap(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-12, b.abs().max().item<double>());
}

}  // namespace

TEST_CASE("fast CPU forward equals the reference forward up to float rounding", "[model][fast]") {
  torch::InferenceMode guard;
  struct Variant {
    std::string preset;
    bool causal;
    int64_t batch;
  };
  // latent: overlapping patches (GEMM + col2im head); tiny: linear + pixel-shuffle head.
  for (const auto& v : std::vector<Variant>{{"latent", false, 1},
                                            {"latent", false, 2},
                                            {"latent", true, 1},
                                            {"tiny", false, 3},
                                            {"tiny", true, 2}}) {
    auto config = ModelConfig::preset(v.preset);
    config.causal = v.causal;
    auto net = fast_test_net(config, 7);
    if (!net->fast_path_available()) DFS_SKIP("no BLAS sgemm_ found: the fast path cannot run");
    auto g = at::detail::createCPUGenerator(3);
    const int64_t frames = std::min<int64_t>(config.max_frames, 10);
    const auto x = torch::randn({v.batch, frames, config.channels, config.height, config.width}, g,
                                torch::kFloat32);
    const auto levels = torch::rand({v.batch, frames}, g, torch::kFloat32);
    const auto positions = torch::arange(frames, torch::kFloat32) + 5;
    const auto reference = net->forward(x, levels, positions);
    const auto fast = net->forward_fast(x, levels, positions);
    INFO(v.preset << (v.causal ? " causal" : "") << " batch " << v.batch);
    REQUIRE(fast.sizes() == reference.sizes());
    // Different summation order only: a relative gap of float32 rounding size.
    CHECK(relative_gap(fast, reference) < 1e-5);
  }
}

TEST_CASE("fast forward: a causal model's outputs for frames <= t ignore later frames",
          "[model][fast]") {
  torch::InferenceMode guard;
  auto config = ModelConfig::preset("tiny");
  config.causal = true;
  auto net = fast_test_net(config, 2);
  if (!net->fast_path_available()) DFS_SKIP("no BLAS sgemm_ found: the fast path cannot run");
  auto g = at::detail::createCPUGenerator(5);
  const int64_t frames = 6;
  auto x = torch::randn({1, frames, config.channels, config.height, config.width}, g);
  const auto levels = torch::full({1, frames}, 0.5);
  const auto before = net->forward_fast(x, levels);
  x.select(1, 4).add_(1.0);
  const auto after = net->forward_fast(x, levels);
  CHECK(torch::equal(before.slice(1, 0, 4), after.slice(1, 0, 4)));
  CHECK_FALSE(torch::equal(before.slice(1, 4), after.slice(1, 4)));
}

TEST_CASE("a rollout's exact and fast modes agree and pinned frames stay bit-identical",
          "[rollout][fast]") {
  auto model = Model::random("tiny", 4, "cpu");
  const auto& info = model.info();
  std::vector<TimelineFrame> timeline(10);
  for (int i = 0; i < 3; ++i) {
    dfs::Frame f(info.width, info.height);
    for (int y = 0; y < info.height; ++y)
      for (int x = 0; x < 3 * info.width; ++x) f.row(y)[x] = static_cast<uint8_t>(x * 7 + y + i);
    timeline[i].content = f;
    timeline[i].pinned = true;
  }
  const auto run = [&](bool exact) {
    RolloutSettings s;
    s.context = 3;
    s.horizon = 4;
    s.seed = 9;
    s.exact = exact;
    s.sampler.schedule.steps = 6;
    std::vector<dfs::Frame> out(timeline.size());
    RolloutCallbacks cb;
    cb.on_frame = [&](int i, const dfs::Frame& f) { out[static_cast<size_t>(i)] = f; };
    run_rollout(model, timeline, s, cb);
    return out;
  };
  const auto exact = run(true);
  const auto again = run(true);
  const auto fast = run(false);
  int worst = 0;
  for (size_t i = 0; i < timeline.size(); ++i) {
    REQUIRE(exact[i].rgb.size() == fast[i].rgb.size());
    REQUIRE(exact[i].rgb == again[i].rgb);  // the exact mode is deterministic
    for (size_t k = 0; k < exact[i].rgb.size(); ++k)
      worst = std::max(worst, std::abs(int(exact[i].rgb[k]) - int(fast[i].rgb[k])));
    if (i < 3) CHECK(fast[i].rgb == timeline[i].content.rgb);
  }
  // Rounding-size differences through 6 sampling steps: at most a couple of 8-bit levels.
  CHECK(worst <= 2);
}

TEST_CASE(
    "on CUDA a window's forward replayed as a CUDA graph equals the plain forward, in bf16 "
    "and fp32",
    "[gpu]") {
  if (!torch::cuda::is_available()) DFS_SKIP("no CUDA device");
  torch::InferenceMode guard;
  for (const char* precision : {"bf16", "fp32"}) {
    INFO(precision);
    setenv("DFS_PRECISION", precision, 1);
    auto model = Model::random("latent", 3, "cuda");
    unsetenv("DFS_PRECISION");
    auto& impl = model_impl(model);
    CHECK(impl.dtype == (std::string(precision) == "bf16" ? torch::kBFloat16 : torch::kFloat32));
    auto g = at::detail::createCPUGenerator(4);
    const auto& c = impl.config;
    DenoiseCall call;
    call.x = torch::randn({2, 8, c.channels, c.height, c.width}, g, torch::kFloat32);
    call.levels = torch::rand({2, 8}, g, torch::kFloat32);
    call.positions = torch::arange(8, torch::kFloat32);
    ModelDenoiser plain(impl, false, false);
    const auto expected = plain.fn()(call);
    setenv("DFS_CUDA_GRAPHS", "1", 1);
    ModelDenoiser graphed(impl, false, false);
    unsetenv("DFS_CUDA_GRAPHS");
    const auto fn = graphed.fn();
    for (int replay = 0; replay < 3; ++replay) {  // capture, then replays with new inputs
      call.x = call.x * 0.9;
      const auto want = plain.fn()(call);
      const auto got = fn(call);
      CHECK(torch::allclose(got, want, 1e-3, 1e-3));
    }
    CHECK(expected.sizes() == call.x.sizes());
  }
}

TEST_CASE("DFS_PRECISION: fp32 and auto on the CPU, bf16 only on CUDA, unknown values refused",
          "[model]") {
  setenv("DFS_PRECISION", "fp16", 1);
  CHECK_THROWS_AS(Model::random("tiny", 1, "cpu"), Error);
  setenv("DFS_PRECISION", "bf16", 1);
  CHECK_THROWS_AS(Model::random("tiny", 1, "cpu"), Error);
  setenv("DFS_PRECISION", "fp32", 1);
  const auto fp32 = Model::random("tiny", 1, "cpu");
  unsetenv("DFS_PRECISION");
  CHECK(model_impl(fp32).dtype == torch::kFloat32);
  CHECK(model_impl(Model::random("tiny", 1, "cpu")).dtype == torch::kFloat32);
}

TEST_CASE("fast KV-cached calls equal the reference uncached forward up to rounding",
          "[model][fast]") {
  torch::InferenceMode guard;
  auto model = Model::random("latent-causal", 6, "cpu");
  auto& impl = model_impl(model);
  if (!impl.net->fast_path_available()) DFS_SKIP("no GEMM found: the fast path cannot run");
  const auto& c = impl.config;
  auto g = at::detail::createCPUGenerator(8);
  DenoiseCall call;
  call.x = torch::randn({1, 10, c.channels, c.height, c.width}, g, torch::kFloat32);
  call.levels = torch::rand({1, 10}, g, torch::kFloat32);
  call.positions = torch::arange(10, torch::kFloat32);
  call.known_prefix = 4;
  ModelDenoiser cached(impl, /*kv_cache=*/true, /*exact=*/false);
  ModelDenoiser reference(impl, /*kv_cache=*/false, /*exact=*/true);
  const auto want = reference.fn()(call).slice(1, 4);
  for (int step = 0; step < 2; ++step) {  // prefill, then a step over the cached history
    const auto got = cached.fn()(call).slice(1, 4);
    CHECK(relative_gap(got, want) < 1e-4);
  }
}
