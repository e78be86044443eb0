// ModelDenoiser: the sampler's view of a model, with its KV cache (model_impl.h).
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "cuda_graphs.h"
#include "dfs/diffusion/denoise.h"
#include "dfs/diffusion/model_impl.h"
#include "frame_cache.h"

namespace dfs::diffusion {

ModelDenoiser::ModelDenoiser(Model::Impl& model, bool kv_cache, bool exact)
    : model_(model), kv_cache_(kv_cache && model.config.causal), exact_(exact) {
  if (cuda_graphs_requested() && model.device.is_cuda()) {
    if (!GraphedForward::supported())
      throw Error("DFS_CUDA_GRAPHS is set but this build cannot capture CUDA graphs");
    graphs_ = std::make_unique<GraphedForward>();
  }
  // DFS_FRAME_CACHE=off: every forward recomputes every frame (for A/B timing).
  const char* frame_cache = std::getenv("DFS_FRAME_CACHE");
  if (!exact_ && !graphs_ && !(frame_cache && std::string(frame_cache) == "off"))
    frames_ = std::make_unique<FrameCache>();
}

ModelDenoiser::~ModelDenoiser() = default;

DenoiseFn ModelDenoiser::fn() {
  // The model wrapper applies the objective: the sampler sees x0 estimates only.
  return x0_denoiser([this](const DenoiseCall& c) { return call(c); }, model_.schedule,
                     model_.config.objective);
}

void ModelDenoiser::reset() {
  cache_.clear();
  if (frames_) frames_->clear();  // a new window's frames carry its own noise
  cached_prefix_ = -1;
  cached_frames_ = 0;
  cached_batch_ = -1;
}

torch::Tensor ModelDenoiser::call(const DenoiseCall& c) {
  torch::InferenceMode inference;
  auto& net = model_.net;
  const int64_t frames = c.x.size(1);
  ++forwards_;
  // A causal model's outputs for frames < n do not depend on frames >= n: skip the frames
  // after the last one whose prediction is used (pyramid rows leave many waiting at noise).
  int64_t used = frames;
  if (model_.config.causal && c.needed_frames > 0 && c.needed_frames < frames)
    used = c.needed_frames;
  const auto positions =
      c.positions.defined() ? c.positions : torch::arange(frames, torch::kFloat32);
  const auto x = c.x.slice(1, 0, used);
  const auto levels = c.levels.slice(1, 0, used);
  const int prefix = c.known_prefix;
  torch::Tensor head;  // predictions for frames [first, used)
  int64_t first = 0;
  // Frames in [from, used) whose prediction is used, relative to `from` (empty = all).
  const auto outputs = [&](int64_t from) {
    std::vector<int64_t> out;
    if (c.needed.size() != static_cast<size_t>(frames)) return out;
    for (int64_t k = from; k < used; ++k)
      if (c.needed[static_cast<size_t>(k)]) out.push_back(k - from);
    if (out.empty()) out.push_back(0);  // nothing moves: still one frame through the head
    return out;
  };
  if (!kv_cache_ || prefix <= 0 || prefix >= used) {
    if (graphs_)
      head = graphs_->run(net, x, levels, positions.slice(0, 0, used));
    else
      head = exact_ ? net->forward(x, levels, positions.slice(0, 0, used))
                    : net->forward_fast(x, levels, positions.slice(0, 0, used), outputs(0),
                                        frames_.get());
  } else {
    if (cached_prefix_ != prefix || cached_batch_ != c.x.size(0)) {
      // First call of this window: compute the known history once (its prediction is unused).
      cache_.clear();
      net->forward_cached(x.slice(1, 0, prefix), levels.slice(1, 0, prefix),
                          positions.slice(0, 0, prefix), cache_, /*append=*/true, !exact_);
      cached_prefix_ = prefix;
      cached_frames_ = prefix;
      cached_batch_ = c.x.size(0);
    }
    // Fast kernels: finished frames join the cache too. Their inputs no longer change and a
    // causal model's keys and values for them depend only on them and the frames before, so
    // a pyramid row computes its moving frames only. (The exact mode keeps the reference's
    // calls: the known prefix alone.)
    const int stable = std::min<int>(c.stable_prefix, static_cast<int>(used) - 1);
    if (!exact_ && stable > cached_frames_) {
      net->forward_cached(x.slice(1, cached_frames_, stable),
                          levels.slice(1, cached_frames_, stable),
                          positions.slice(0, cached_frames_, stable), cache_, /*append=*/true,
                          /*fast=*/true, /*outputs=*/{0}, frames_.get());  // keys, values
      cached_frames_ = stable;
    }
    head = net->forward_cached(x.slice(1, cached_frames_), levels.slice(1, cached_frames_),
                               positions.slice(0, cached_frames_, used), cache_, /*append=*/false,
                               !exact_, outputs(cached_frames_), frames_.get());
    first = cached_frames_;
  }
  if (first == 0 && used == frames) return head.to(torch::kCPU);
  // Predictions nobody uses (cached history, skipped future) are zeros: the shape stays.
  auto out = torch::zeros(c.x.sizes(), torch::kFloat32);
  out.slice(1, first, used).copy_(head.to(torch::kCPU));
  return out;
}

}  // namespace dfs::diffusion
