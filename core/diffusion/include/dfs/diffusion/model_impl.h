// dfs/diffusion/model_impl.h — what the engine holds behind a Model handle (torch;
// engine-internal).
//
// Only code that links the engine's torch interface (the engine itself, the trainer, the
// core CLI commands and tests) can include this: the project layer and the Studio see Model
// through api.h alone, and the layering check in CTest keeps torch out of them.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/autoencoder.h"
#include "dfs/diffusion/denoise.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model.h"
#include "dfs/diffusion/noise.h"

namespace dfs::diffusion {

namespace fast {
class FastDecoder;  // src/fast_decoder.h
}

// What the engine holds behind a dfs::diffusion::Model handle.
struct Model::Impl {
  ModelConfig config;
  Denoiser net{nullptr};
  Autoencoder ae{nullptr};  // latent models only: frames <-> latents (float32, on `device`)
  // The decoder on oneDNN's Winograd kernels (CPU latent models; null where unavailable or
  // DFS_FAST_DECODER=off). Built at load from ae's weights.
  std::shared_ptr<fast::FastDecoder> fast_decoder;
  NoiseSchedule schedule;
  torch::Device device{torch::kCPU};
  torch::ScalarType dtype = torch::kFloat32;  // weights' dtype on the device (bf16 on CUDA)
  double x0_clamp = 1.0;  // the sampler clamps x0 estimates to [-x0_clamp, x0_clamp]
  ModelInfo info;
};

// The engine-internal state of a model handle (never null for a loaded or random model).
inline Model::Impl& model_impl(const Model& model) {
  return *model.impl_;
}

// A latent model's decoder as the rollout runs it, one frame: normalised latents [1, C, h, w]
// -> RGB [8h, 8w, 3] in [-1, 1] before clamping. exact: LibTorch in its default layout (the
// exact mode's bytes); else, on the CPU, oneDNN's Winograd plan where there is one
// (fast_decoder), or LibTorch channels-last.
// With `shuffle`, the result may stop before the decoder's last pixel shuffle, by *shuffle
// (see FastDecoder::decode_unshuffled; 1: shuffled already): fast::finish_shuffled_frame reads it.
torch::Tensor decode_frame(Model::Impl& model, const torch::Tensor& latent, bool exact,
                           int64_t* shuffle = nullptr);
// Which kernels decode_frame runs, in words.
std::string decoder_kernels(const Model::Impl& model, bool exact);

// Parses "auto" (CUDA if available), "cpu", "cuda", "cuda:N". Throws Error.
torch::Device parse_device(const std::string& device);

// The sampler's view of a model: runs the network under InferenceMode on its device and
// returns x0 estimates (the objective applied, denoise.h). With
// kv_cache and a causal model, the leading known frames of a window (identical across the
// window's steps) are computed once and cached; call reset() between windows.
class GraphedForward;  // src/cuda_graphs.h

class ModelDenoiser {
 public:
  // exact: the reference forward (DenoiserImpl::forward); else forward_fast where it applies.
  // DFS_CUDA_GRAPHS=1 on a CUDA model: uncached forwards replay a captured CUDA graph.
  ModelDenoiser(Model::Impl& model, bool kv_cache, bool exact = true);
  ~ModelDenoiser();
  DenoiseFn fn();  // x0 estimates; valid while this object lives
  void reset();    // forget the cached history (new window)
  int forwards() const { return forwards_; }

 private:
  torch::Tensor call(const DenoiseCall& call);
  Model::Impl& model_;
  bool kv_cache_;
  bool exact_;
  std::unique_ptr<GraphedForward> graphs_;  // null unless CUDA graphs are on
  KVCache cache_;
  std::unique_ptr<FrameCache> frames_;  // fast kernels: the first block's per-frame work
  int cached_prefix_ = -1;              // the window's known prefix the cache was started with
  int cached_frames_ = 0;  // frames in the cache: the known prefix, then (fast kernels)
                           // finished frames
  int64_t cached_batch_ = -1;
  int forwards_ = 0;
};

}  // namespace dfs::diffusion
