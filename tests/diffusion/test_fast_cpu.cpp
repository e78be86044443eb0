// The fast CPU forward (src/fast_cpu.h) against the reference forward, and the exact mode of a
// rollout against the fast mode.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/autoencoder.h"
#include "dfs/diffusion/denoise.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs_skip.h"
#include "diffusion_test_util.h"
#include "fast_cpu.h"

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

TEST_CASE("fast forward: output layers for the used frames only, the others zeros",
          "[model][fast]") {
  torch::InferenceMode guard;
  for (const char* preset : {"latent", "tiny"}) {  // GEMM + col2im head; linear + shuffle head
    INFO(preset);
    auto config = ModelConfig::preset(preset);
    auto net = fast_test_net(config, 5);
    if (!net->fast_path_available()) DFS_SKIP("no BLAS sgemm_ found: the fast path cannot run");
    auto g = at::detail::createCPUGenerator(8);
    const int64_t frames = std::min<int64_t>(config.max_frames, 9);
    const auto x =
        torch::randn({2, frames, config.channels, config.height, config.width}, g, torch::kFloat32);
    const auto levels = torch::rand({2, frames}, g, torch::kFloat32);
    const auto all = net->forward_fast(x, levels);
    const std::vector<int64_t> used{1, 4, frames - 1};
    const auto some = net->forward_fast(x, levels, {}, used);
    REQUIRE(some.sizes() == all.sizes());
    for (int64_t t = 0; t < frames; ++t) {
      INFO("frame " << t);
      if (std::find(used.begin(), used.end(), t) != used.end())
        CHECK(relative_gap(some.select(1, t), all.select(1, t)) < 1e-5);
      else
        CHECK(some.select(1, t).abs().max().item<float>() == 0.0f);
    }
    CHECK_THROWS_AS(net->forward_fast(x, levels, {}, {frames}), Error);  // out of range
    CHECK_THROWS_AS(net->forward_fast(x, levels, {}, {3, 2}), Error);    // not increasing
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

namespace {

// A timeline of `frames` positions whose first three are pinned (a pattern varying with x, y
// and the frame), run through the model in exact mode (twice) and in fast mode. Checks that the
// exact mode is deterministic and that the fast mode keeps the pinned frames bit-identical;
// returns the largest byte difference between the two modes.
int fast_vs_exact_worst(Model& model, int frames, uint64_t seed, bool detail_transfer, int steps) {
  const auto timeline = dfs_test::pinned_pattern_timeline(model.info(), frames, 3, 7, 1, 200, 20);
  const auto run = [&](bool exact) {
    RolloutSettings s;
    s.context = 3;
    s.horizon = 4;
    s.seed = seed;
    s.exact = exact;
    s.detail_transfer = detail_transfer;
    s.sampler.schedule.steps = steps;
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
  return worst;
}

}  // namespace

TEST_CASE("a rollout's exact and fast modes agree and pinned frames stay bit-identical",
          "[rollout][fast]") {
  auto model = Model::random("tiny", 4, "cpu");
  // Rounding-size differences through 6 sampling steps: at most a couple of 8-bit levels.
  CHECK(fast_vs_exact_worst(model, 10, 9, false, 6) <= 2);
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

TEST_CASE("fast KV cache: finished frames join the cache, estimates equal the uncached forward",
          "[model][fast]") {
  torch::InferenceMode guard;
  auto model = Model::random("latent-causal", 7, "cpu");
  auto& impl = model_impl(model);
  if (!impl.net->fast_path_available()) DFS_SKIP("no GEMM found: the fast path cannot run");
  const auto& c = impl.config;
  auto g = at::detail::createCPUGenerator(12);
  const int64_t frames = 10;
  DenoiseCall call;
  call.x = torch::randn({1, frames, c.channels, c.height, c.width}, g, torch::kFloat32) * 2;
  call.levels = torch::rand({1, frames}, g, torch::kFloat32);
  call.positions = torch::arange(frames, torch::kFloat32);
  call.known_prefix = 3;
  ModelDenoiser cached(impl, /*kv_cache=*/true, /*exact=*/false);
  ModelDenoiser reference(impl, /*kv_cache=*/false, /*exact=*/true);
  // Pyramid-like rows: frames finish one by one (stable prefix 3, 4, 5, 6) while the two after
  // them move (new inputs every row); the finished ones keep their bytes.
  for (int row = 0; row < 4; ++row) {
    INFO("row " << row);
    call.stable_prefix = 3 + row;
    const int64_t first = call.stable_prefix;
    call.needed.assign(frames, false);
    call.needed[first] = call.needed[first + 1] = true;
    call.needed_frames = static_cast<int>(first) + 2;
    call.x = call.x.clone();
    call.x.slice(1, first).mul_(0.8).add_(0.1);  // the frames still moving
    const auto want = reference.fn()(call).slice(1, first, first + 2);
    const auto got = cached.fn()(call).slice(1, first, first + 2);
    CHECK(relative_gap(got, want) < 1e-4);
  }
}

// The attention kernel alone against softmax(q k^T / sqrt(hd) + mask) v written out in
// LibTorch, on shapes the shipped models do not have: a head width that is not a multiple of
// the kernel's 16 lanes, sequence lengths off the 4-row blocks, cached rows before the
// sequence, a causal mask (-inf entries), several groups in the temporal layout.
TEST_CASE("fast attention equals softmax attention on odd shapes, with cached keys and a mask",
          "[model][fast]") {
  torch::InferenceMode guard;
  if (!fast::available()) DFS_SKIP("no GEMM found: the fast kernels cannot run");
  auto g = at::detail::createCPUGenerator(5);
  struct Shape {
    int64_t batch, frames, tokens, heads, hd, past;
    bool causal;
  };
  for (const auto& sh : std::vector<Shape>{{1, 7, 3, 2, 20, 0, false},
                                           {2, 5, 4, 3, 8, 0, true},
                                           {1, 6, 2, 2, 36, 5, true},
                                           {2, 1, 3, 1, 16, 9, false}}) {
    const int64_t dim = sh.heads * sh.hd, b = sh.batch, t = sh.frames, l = sh.tokens;
    const auto qkv = torch::randn({b, t, l, 3 * dim}, g, torch::kFloat32);
    const auto layout = fast::temporal_layout(b, t, l);  // position (b, l) across the frames
    torch::Tensor past_k, past_v, mask;
    if (sh.past > 0) {
      past_k = torch::randn({b * l, sh.heads, sh.past, sh.hd}, g, torch::kFloat32);
      past_v = torch::randn({b * l, sh.heads, sh.past, sh.hd}, g, torch::kFloat32);
    }
    if (sh.causal) {
      const auto query = torch::arange(t).unsqueeze(1) + sh.past;
      const auto key = torch::arange(sh.past + t).unsqueeze(0);
      mask = torch::zeros({t, sh.past + t})
                 .masked_fill(key > query, -std::numeric_limits<float>::infinity());
    }
    const auto got =
        fast::attention(qkv.view({-1, 3 * dim}), layout, sh.heads, mask, past_k, past_v);
    // Reference: [b * l, heads, t, hd] sequences.
    const auto parts = qkv.view({b, t, l, 3, sh.heads, sh.hd}).permute({3, 0, 2, 4, 1, 5});
    auto q = parts[0].reshape({b * l, sh.heads, t, sh.hd});
    auto k = parts[1].reshape({b * l, sh.heads, t, sh.hd});
    auto v = parts[2].reshape({b * l, sh.heads, t, sh.hd});
    if (sh.past > 0) {
      k = torch::cat({past_k, k}, 2);
      v = torch::cat({past_v, v}, 2);
    }
    auto scores = torch::matmul(q, k.transpose(-2, -1)) / std::sqrt(double(sh.hd));
    if (mask.defined()) scores = scores + mask;
    const auto want = torch::matmul(torch::softmax(scores, -1), v)  // [b l, h, t, hd]
                          .view({b, l, sh.heads, t, sh.hd})
                          .permute({0, 3, 1, 2, 4})
                          .reshape({b * t * l, dim});
    INFO("hd " << sh.hd << " frames " << t << " past " << sh.past << (sh.causal ? " causal" : ""));
    REQUIRE(got.sizes() == want.sizes());
    CHECK(relative_gap(got, want) < 1e-5);
  }
}

TEST_CASE("the fast kernels' erf matches LibTorch's erf to float rounding", "[model][fast]") {
  // -6 .. 6 in steps of 1/1024, zero and the clamp edges included.
  const auto x = torch::arange(-6 * 1024, 6 * 1024 + 1, torch::kFloat32) / 1024.0;
  auto got = x.clone();
  fast::erf_inplace(got.data_ptr<float>(), got.numel());
  const auto want = torch::erf(x.to(torch::kFloat64));
  const double worst = (got.to(torch::kFloat64) - want).abs().max().item<double>();
  INFO("largest |erf error| " << worst);
  CHECK(worst < 5e-7);  // a few float ulps near |erf| = 1 (one ulp there is 6e-8)
  CHECK(got[6 * 1024].item<float>() == 0.0f);  // erf(0)
}

TEST_CASE("the fused frame finish equals detail transfer then 8-bit conversion",
          "[rollout][fast]") {
  torch::InferenceMode guard;
  auto g = at::detail::createCPUGenerator(12);
  const int64_t h = 37, w = 53;  // odd sizes: the 9x9 window's edges everywhere
  // Decoded values a little beyond [-1, 1] (the finish clamps), a reference close to it in one
  // half (detail moves) and far in the other (it does not).
  const auto decoded = torch::rand({3, h, w}, g, torch::kFloat32) * 2.2 - 1.1;
  auto ref_decoded = (decoded + 0.05 * torch::randn({3, h, w}, g, torch::kFloat32)).clamp(-1, 1);
  ref_decoded.narrow(2, w / 2, w - w / 2).uniform_(-1, 1, g);
  const auto ref_pixels =
      (ref_decoded + 0.2 * torch::randn({3, h, w}, g, torch::kFloat32)).clamp(-1, 1);
  const auto to_bytes = [](const torch::Tensor& v) {
    return v.add(1.0)
        .mul(127.5)
        .round()
        .clamp(0, 255)
        .to(torch::kUInt8)
        .permute({1, 2, 0})
        .contiguous();
  };
  const auto hwc = decoded.permute({1, 2, 0}).contiguous();
  for (const bool with_reference : {false, true}) {
    const auto clamped = decoded.clamp(-1, 1);
    const auto want = to_bytes(
        with_reference ? transfer_detail(clamped, ref_decoded, ref_pixels, kDetailTolerance)
                       : clamped);
    std::vector<std::uint8_t> got(static_cast<size_t>(h * w * 3));
    fast::finish_frame(hwc, with_reference ? ref_decoded : torch::Tensor(),
                       with_reference ? ref_pixels : torch::Tensor(), kDetailTolerance, got.data());
    const auto* wp = want.data_ptr<std::uint8_t>();
    int worst = 0;
    size_t differ = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      worst = std::max(worst, std::abs(int(got[i]) - int(wp[i])));
      differ += got[i] != wp[i];
    }
    INFO((with_reference ? "with" : "without") << " reference: " << differ << " bytes differ");
    if (!with_reference) CHECK(differ == 0);  // clamp and round only: the same bytes
    CHECK(worst <= 1);  // float summation order of the means and exp: a level at most
  }
}

TEST_CASE("a latent model's rollout: exact and fast modes agree, detail transfer included",
          "[rollout][fast]") {
  auto model = Model::random("latent", 5, "cpu");
  CHECK(fast_vs_exact_worst(model, 7, 3, true, 4) <= 2);
}

TEST_CASE("the shipped latent model: exact and fast modes agree, Winograd decoder included",
          "[rollout][fast]") {
  auto model = Model::load(std::string(DFS_SOURCE_DIR) + "/models/demo.safetensors", "cpu");
  INFO(decoder_kernels(model_impl(model), false));
  CHECK(fast_vs_exact_worst(model, 8, 5, true, 4) <= 2);
}
