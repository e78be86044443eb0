// dfs/diffusion/denoiser.h — the denoiser network and its KV cache (torch).
//
// Architecture (docs/DESIGN.md "The model"): a patchify conv stem (x `patch` downsampling) plus a
// learned spatial position embedding; `depth` factorised space-time blocks, each
//   spatial attention within a frame -> temporal attention across frames at each position
//   (rotary time positions, Su et al. 2021 "RoFormer", so windows slide; causal optional)
//   -> MLP,
// every sub-layer modulated per frame by its own noise level (adaLN, Peebles & Xie 2023
// "DiT", Sec. 3.2: shift/scale/gate from the level embedding); a linear + pixel-shuffle head.
// With config.overlap the stem reads 2p x 2p patches at stride p and the head is a transposed
// conv painting 2p x 2p tiles at stride p, so outputs blend across patch borders.
//
// Tensor names: registered module names equal the checkpoint keys, e.g.
// "blocks.0.temporal.qkv.weight". Thread-safety: a module is used by one thread at a time.
#pragma once

#include <torch/torch.h>

#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/model.h"

namespace dfs::diffusion {

// Temporal keys/values of frames the model has already seen (causal models only): the
// history of a streaming rollout is computed once, not at every sampling step.
struct KVCache {
  std::vector<torch::Tensor> keys;    // per block: [B * L, heads, frames, head_dim], rotary applied
  std::vector<torch::Tensor> values;  // per block: same shape
  torch::Tensor positions;            // [frames] float: the cached frames' time positions

  int64_t frames() const { return positions.defined() ? positions.size(0) : 0; }
  void clear() {
    keys.clear();
    values.clear();
    positions = torch::Tensor();
  }
};

class FrameCache;  // src/frame_cache.h

// Process CPU time spent in each stage of the forward pass, summed over calls (seconds; CPU
// ops run synchronously). For `dforce bench`; costs two clock reads per stage when enabled.
struct ForwardProfile {
  double embed_stem = 0;  // level embedding, conv stem, position embedding
  double modulation = 0;  // adaLN shift/scale/gate linears
  double spatial = 0;     // spatial attention (incl. its norm/modulate)
  double temporal = 0;    // temporal attention (incl. permutes)
  double mlp = 0;
  double head = 0;  // final norm, linear, pixel shuffle
};

// Multi-head self-attention over the middle axis of [N, S, dim]. With rotary tables it rotates
// queries and keys by their positions; with a cache it attends to past keys/values too.
class AttentionImpl : public torch::nn::Module {
 public:
  AttentionImpl(int dim, int heads);
  // x [N, S, dim]; rope_cos/sin [S, head_dim] or undefined; mask [S, past + S] additive or
  // undefined; past_k/v [N, heads, past, head_dim] or undefined. new_k/new_v (if non-null)
  // receive this call's keys/values.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& rope_cos,
                        const torch::Tensor& rope_sin, const torch::Tensor& mask,
                        const torch::Tensor& past_k, const torch::Tensor& past_v,
                        torch::Tensor* new_k = nullptr, torch::Tensor* new_v = nullptr);

  int heads() const { return heads_; }

  torch::nn::Linear qkv{nullptr};
  torch::nn::Linear proj{nullptr};

 private:
  int heads_;
};
TORCH_MODULE(Attention);

class SpaceTimeBlockImpl : public torch::nn::Module {
 public:
  SpaceTimeBlockImpl(int dim, int heads, int mlp_ratio);
  // h [B, T, L, dim]; cond [B, T, dim] (SiLU of the level embedding).
  torch::Tensor forward(const torch::Tensor& h, const torch::Tensor& cond,
                        const torch::Tensor& rope_cos, const torch::Tensor& rope_sin,
                        const torch::Tensor& mask, const torch::Tensor& past_k,
                        const torch::Tensor& past_v, torch::Tensor* new_k, torch::Tensor* new_v);
  // The same maths on the fast CPU kernels (src/fast_cpu.h), KV cache included (past_k/v are
  // read, new_k/v written in the reference's layout, so a cache serves both paths).
  torch::Tensor forward_fast(const torch::Tensor& h, const torch::Tensor& cond,
                             const torch::Tensor& rope_cos, const torch::Tensor& rope_sin,
                             const torch::Tensor& mask, const torch::Tensor& past_k = {},
                             const torch::Tensor& past_v = {}, torch::Tensor* new_k = nullptr,
                             torch::Tensor* new_v = nullptr, const torch::Tensor& kept = {});
  // forward_fast in its parts. fast_modulation: cond -> mod [B, T, 9 dim]. fast_per_frame: the
  // work that sees one frame at a time (the spatial attention; the temporal attention's q/k/v
  // into qkv [B, T, L, 3 dim], rotated), returning h after the spatial attention.
  // fast_across_frames: the temporal attention and the MLP from there.
  torch::Tensor fast_modulation(const torch::Tensor& cond);
  torch::Tensor fast_per_frame(const torch::Tensor& h, const torch::Tensor& mod,
                               const torch::Tensor& rope_cos, const torch::Tensor& rope_sin,
                               torch::Tensor& qkv);
  torch::Tensor fast_across_frames(torch::Tensor h, const torch::Tensor& qkv,
                                   const torch::Tensor& mod, const torch::Tensor& mask,
                                   const torch::Tensor& past_k, const torch::Tensor& past_v,
                                   torch::Tensor* new_k, torch::Tensor* new_v,
                                   const torch::Tensor& kept);

  Attention spatial{nullptr};
  Attention temporal{nullptr};
  torch::nn::Linear fc1{nullptr};
  torch::nn::Linear fc2{nullptr};
  torch::nn::Linear modulation{nullptr};  // cond -> 9 x dim: shift/scale/gate per sub-layer
  ForwardProfile* profile = nullptr;      // not owned; null = no timing
};
TORCH_MODULE(SpaceTimeBlock);

class DenoiserImpl : public torch::nn::Module {
 public:
  explicit DenoiserImpl(const ModelConfig& config);

  // x [B, T, C, H, W], levels [B, T] in [0, 1], positions [T] float time positions (undefined:
  // 0..T-1) -> prediction for config().objective, [B, T, C, H, W] float32.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& levels,
                        const torch::Tensor& positions = torch::Tensor());

  // forward() on the engine's fast CPU kernels where they apply (fast_path_available(): CPU,
  // float32 weights, a BLAS found, eval mode), else forward() itself. Equal to forward() up to
  // float summation order; forward() is the exact reference (a plain LibTorch eager port of
  // it gives the same bytes). outputs: the frames whose prediction is used (empty = all); on
  // the fast kernels the output layers (final adaLN and head, per frame) run for these only
  // and the other frames' predictions are zeros. frames (optional, fast kernels only): the
  // first block's per-frame work of frames seen before is taken from there (frame_cache.h).
  torch::Tensor forward_fast(const torch::Tensor& x, const torch::Tensor& levels,
                             const torch::Tensor& positions = torch::Tensor(),
                             const std::vector<int64_t>& outputs = {},
                             FrameCache* frames = nullptr);
  bool fast_path_available() const;

  // Causal models only. Runs x (frames after those in `cache`) attending to the cached frames
  // too, and returns their prediction. append = true adds these frames' keys/values to the
  // cache (prefill); false leaves it unchanged (a sampling step over the same history).
  // positions undefined: continue after the cache. Equals forward() on the concatenation.
  // fast: the fast CPU kernels where they apply (as forward_fast).
  torch::Tensor forward_cached(const torch::Tensor& x, const torch::Tensor& levels,
                               const torch::Tensor& positions, KVCache& cache, bool append,
                               bool fast = false, const std::vector<int64_t>& outputs = {},
                               FrameCache* frames = nullptr);

  // Deterministic re-initialisation from `seed` (no global RNG): xavier-uniform weights,
  // zero biases, N(0, 0.02) position embedding and modulation weights. The modulation is not
  // zero-initialised (unlike DiT's adaLN-Zero) so that a random model already mixes frames.
  void reset_parameters(uint64_t seed);

  const ModelConfig& config() const { return config_; }
  int64_t parameter_count() const;
  void set_profile(ForwardProfile* profile);  // not owned; null turns timing off

  torch::nn::Linear level_in{nullptr};
  torch::nn::Linear level_out{nullptr};
  torch::nn::Conv2d stem{nullptr};
  torch::Tensor spatial_pos;  // [1, L, dim]
  torch::nn::ModuleList blocks{nullptr};
  torch::nn::Linear final_modulation{nullptr};       // cond -> shift, scale of the output norm
  torch::nn::Linear head{nullptr};                   // dim -> C * patch * patch (pixel shuffle)
  torch::nn::ConvTranspose2d head_overlap{nullptr};  // config.overlap: dim -> C, 2p tiles

 private:
  torch::Tensor run(const torch::Tensor& x, const torch::Tensor& levels,
                    const torch::Tensor& positions, KVCache* cache, bool append, bool fast,
                    const std::vector<int64_t>& outputs = {}, FrameCache* frames = nullptr);
  // The tokens entering the first block, [N, L, dim], of frames [N, C, H, W] (stem and position
  // embedding).
  torch::Tensor embed(const torch::Tensor& frames, bool fast);
  // The first block's per-frame part (SpaceTimeBlockImpl::fast_per_frame, after embed) of
  // frames [B * T, C, H, W] at levels [B, T] and positions [T]: from `cache` for frames seen before
  // with the same level and position, computed for the others; those whose prediction is not used
  // (outputs: as forward_fast's) are kept. Returns h [B, T, L, dim]; qkv [B, T, L, 3 dim]. In
  // frame_cache.cpp.
  torch::Tensor first_per_frame(const torch::Tensor& frames, const torch::Tensor& levels,
                                const torch::Tensor& positions, const torch::Tensor& rope_cos,
                                const torch::Tensor& rope_sin, const torch::Tensor& mod,
                                const std::vector<int64_t>& outputs, FrameCache& cache,
                                torch::Tensor& qkv);
  ModelConfig config_;
  ForwardProfile* profile_ = nullptr;
};
TORCH_MODULE(Denoiser);

// The parameter count a config implies (equals Denoiser(config)->parameter_count()), computed
// without allocating anything.
int64_t expected_parameter_count(const ModelConfig& config);

// Floating-point operations (a multiply-add counts 2) of one forward over `batch` x `frames`
// frames: the linear layers, both attentions' two products, the stem and the head; the
// elementwise work (norms, softmax, activations) is not counted. For `dforce bench --reference`.
double forward_flops(const ModelConfig& config, int64_t batch, int64_t frames);

}  // namespace dfs::diffusion
