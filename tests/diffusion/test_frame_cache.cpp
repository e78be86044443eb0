// The first block's per-frame work kept across forwards (src/frame_cache.h): a frame is reused
// only when its input bytes, level and position are the same, and the forward with the cache
// equals the forward without it up to float rounding.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/denoise.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs_skip.h"
#include "frame_cache.h"

using namespace dfs::diffusion;

namespace {

double relative_gap(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>() / std::max(1e-12, b.abs().max().item<double>());
}

}  // namespace

TEST_CASE("frame cache: unchanged frames are reused, changed ones recomputed, same result",
          "[fast][frame_cache]") {
  torch::InferenceMode guard;
  for (const bool causal : {false, true}) {
    INFO((causal ? "causal" : "bidirectional"));
    auto config = ModelConfig::preset("latent");
    config.causal = causal;
    Denoiser net(config);
    net->reset_parameters(11);
    net->eval();
    if (!net->fast_path_available()) DFS_SKIP("no BLAS sgemm_ found: the fast path cannot run");
    auto g = at::detail::createCPUGenerator(5);
    const int64_t b = 2, t = 9;
    auto x = torch::randn({b, t, config.channels, config.height, config.width}, g);
    auto levels = torch::rand({b, t}, g);
    const auto positions = torch::arange(t, torch::kFloat32) + 3;
    FrameCache cache;

    // First call: nothing seen, every frame computed and (no outputs given) kept.
    auto with = net->forward_fast(x, levels, positions, {}, &cache);
    CHECK(relative_gap(with, net->forward_fast(x, levels, positions)) < 1e-5);
    CHECK(cache.hits() == 0);
    CHECK(cache.misses() == b * t);

    // A pyramid-like row: two frames move (new input, new level), the rest are as before.
    x = x.clone();
    levels = levels.clone();
    x[0][2].add_(0.5);
    x[1][6].mul_(-1.0);
    levels[1][6] = 0.25f;
    with = net->forward_fast(x, levels, positions, {}, &cache);
    CHECK(relative_gap(with, net->forward_fast(x, levels, positions)) < 1e-5);
    CHECK(relative_gap(with, net->forward(x, levels, positions)) < 1e-5);
    CHECK(cache.hits() == b * t - 2);
    CHECK(cache.misses() == b * t + 2);

    // An input changed in place after the call must not be served from the cache: the cache
    // keeps its own copy of each frame's bytes.
    x[0][4].add_(1e-3);
    with = net->forward_fast(x, levels, positions, {}, &cache);
    CHECK(relative_gap(with, net->forward_fast(x, levels, positions)) < 1e-5);
    CHECK(cache.misses() == b * t + 3);

    // The same frames at other time positions: their rotated keys differ, nothing is reused.
    const auto hits_before = cache.hits();
    const auto shifted = positions + 1;
    with = net->forward_fast(x, levels, shifted, {}, &cache);
    CHECK(relative_gap(with, net->forward_fast(x, levels, shifted)) < 1e-5);
    CHECK(cache.hits() == hits_before);

    // A level changed alone (same bytes) is a different input too.
    auto levels2 = levels.clone();
    levels2[0][0] = 0.9f;
    const auto misses_before = cache.misses();
    with = net->forward_fast(x, levels2, positions, {}, &cache);
    CHECK(relative_gap(with, net->forward_fast(x, levels2, positions)) < 1e-5);
    CHECK(cache.misses() == misses_before + 1);
  }
}

TEST_CASE("frame cache: frames whose prediction is used are not kept (they move next)",
          "[fast][frame_cache]") {
  torch::InferenceMode guard;
  auto config = ModelConfig::preset("latent");
  Denoiser net(config);
  net->reset_parameters(3);
  net->eval();
  if (!net->fast_path_available()) DFS_SKIP("no BLAS sgemm_ found: the fast path cannot run");
  auto g = at::detail::createCPUGenerator(9);
  const int64_t t = 8;
  const auto x = torch::randn({1, t, config.channels, config.height, config.width}, g);
  const auto levels = torch::rand({1, t}, g);
  FrameCache cache;
  const std::vector<int64_t> used{2, 3, 5};
  net->forward_fast(x, levels, {}, used, &cache);
  CHECK(cache.size() == static_cast<size_t>(t) - used.size());
  // The same call again: the kept frames are reused, the three used ones computed again.
  const auto again = net->forward_fast(x, levels, {}, used, &cache);
  CHECK(cache.hits() == t - static_cast<int64_t>(used.size()));
  const auto plain = net->forward_fast(x, levels, {}, used);
  CHECK(relative_gap(again, plain) < 1e-5);
}

TEST_CASE("frame cache: bounded, least recently used entries go first", "[frame_cache]") {
  FrameCache cache;
  cache.fit(4);  // two calls of four frames: under the least capacity, 32
  const auto h = torch::zeros({2, 3});
  const auto qkv = torch::zeros({2, 9});
  std::vector<torch::Tensor> frames;
  for (int i = 0; i < 12; ++i) frames.push_back(torch::full({2, 2}, static_cast<float>(i)));
  for (int i = 0; i < 8; ++i) cache.put(frames[i], 0.5f, static_cast<float>(i), h, qkv);
  CHECK(cache.size() == 8);
  FrameCache small;
  for (int i = 0; i < 40; ++i) small.put(frames[i % 12], 0.5f, static_cast<float>(i), h, qkv);
  CHECK(small.size() == 32);
  // The newest entries are there, the oldest evicted.
  CHECK(small.find(frames[39 % 12], 0.5f, 39.0f) >= 0);
  CHECK(small.find(frames[0], 0.5f, 0.0f) < 0);
  // Exact matching: one bit of the level or of the bytes makes a miss.
  CHECK(small.find(frames[39 % 12], 0.5000001f, 39.0f) < 0);
  auto changed = frames[39 % 12].clone();
  changed[1][1] = std::nextafter(changed[1][1].item<float>(), 100.0f);
  CHECK(small.find(changed, 0.5f, 39.0f) < 0);
  small.clear();
  CHECK(small.size() == 0);
}
