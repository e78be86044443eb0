// The denoiser network: attention, space-time blocks and the denoiser (denoiser.h).
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <string>
#include <utility>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/denoiser.h"
#include "fast_cpu.h"

namespace dfs::diffusion {

namespace {

constexpr int kLevelFrequencies = 64;  // sinusoidal features of the level embedding
constexpr double kLayerNormEps = 1e-6;

// Transformer sinusoidal features (Vaswani et al. 2017, Sec. 3.5) of the level scaled to
// training timesteps, as in DDPM's timestep embedding: [..] -> [.., kLevelFrequencies].
torch::Tensor level_features(const torch::Tensor& levels) {
  const int half = kLevelFrequencies / 2;
  const auto freqs = torch::exp(
      -std::log(10000.0) *
      torch::arange(half, torch::TensorOptions().dtype(torch::kFloat32).device(levels.device())) /
      half);
  const auto args = (levels.to(torch::kFloat32) * kTrainTimesteps).unsqueeze(-1) * freqs;
  return torch::cat({torch::cos(args), torch::sin(args)}, -1);
}

// Rotary tables (Su et al. 2021, Eq. 34, "rotate half" layout): positions [S] -> cos, sin [S,
// head_dim].
std::pair<torch::Tensor, torch::Tensor> rotary_tables(const torch::Tensor& positions, int head_dim,
                                                      torch::ScalarType dtype) {
  const int half = head_dim / 2;
  const auto inv_freq =
      torch::pow(10000.0, -torch::arange(half, positions.options().dtype(torch::kFloat32)) / half);
  const auto angles = positions.to(torch::kFloat32).unsqueeze(-1) * inv_freq;  // [S, half]
  const auto full = torch::cat({angles, angles}, -1);
  return {full.cos().to(dtype), full.sin().to(dtype)};
}

torch::Tensor rotate_half(const torch::Tensor& x) {
  const auto halves = x.chunk(2, -1);
  return torch::cat({-halves[1], halves[0]}, -1);
}

torch::Tensor layer_norm(const torch::Tensor& x) {
  return torch::layer_norm(x, {x.size(-1)}, {}, {}, kLayerNormEps);
}

// adaLN: norm(x) * (1 + scale) + shift, DiT Sec. 3.2.
torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& shift,
                       const torch::Tensor& scale) {
  return torch::addcmul(shift, layer_norm(x), 1 + scale);
}

// Adds the process CPU time since the previous lap to one ForwardProfile field (no-op without
// a profile). CPU time, not wall time: on a shared machine it still says where work goes.
class StageClock {
 public:
  explicit StageClock(ForwardProfile* profile) : profile_(profile) { restart(); }
  void restart() {
    if (profile_ != nullptr) last_ = now();
  }
  void lap(double ForwardProfile::*field) {
    if (profile_ == nullptr) return;
    const double t = now();
    profile_->*field += t - last_;
    last_ = t;
  }

 private:
  static double now() {
    timespec ts{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  }
  ForwardProfile* profile_;
  double last_ = 0;
};

}  // namespace

AttentionImpl::AttentionImpl(int dim, int heads)
    : qkv(register_module("qkv", torch::nn::Linear(dim, 3 * dim))),
      proj(register_module("proj", torch::nn::Linear(dim, dim))),
      heads_(heads) {}

torch::Tensor AttentionImpl::forward(const torch::Tensor& x, const torch::Tensor& rope_cos,
                                     const torch::Tensor& rope_sin, const torch::Tensor& mask,
                                     const torch::Tensor& past_k, const torch::Tensor& past_v,
                                     torch::Tensor* new_k, torch::Tensor* new_v) {
  const int64_t n = x.size(0), s = x.size(1), dim = x.size(2);
  const int64_t head_dim = dim / heads_;
  const auto parts =
      qkv(x).view({n, s, 3, heads_, head_dim}).permute({2, 0, 3, 1, 4});  // [3, N, h, S, hd]
  auto q = parts[0];
  auto k = parts[1];
  auto v = parts[2];
  if (rope_cos.defined()) {
    q = q * rope_cos + rotate_half(q) * rope_sin;
    k = k * rope_cos + rotate_half(k) * rope_sin;
  }
  if (new_k != nullptr) *new_k = k;
  if (new_v != nullptr) *new_v = v;
  if (past_k.defined()) {
    k = torch::cat({past_k, k}, 2);
    v = torch::cat({past_v, v}, 2);
  }
  torch::Tensor out;
#if TORCH_VERSION_MAJOR >= 2
  // Fused kernel where available (LibTorch 2.x); same maths as the explicit path below.
  out = at::scaled_dot_product_attention(
      q, k, v,
      mask.defined() ? c10::optional<torch::Tensor>(mask.to(q.scalar_type())) : c10::nullopt);
#else
  // Plain matmul/softmax/matmul. Measured: a broadcast multiply-sum for the short temporal
  // sequences was slower than batched GEMM once OpenBLAS runs single-threaded (runtime.cpp).
  auto scores =
      torch::matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(static_cast<double>(head_dim)));
  if (mask.defined()) scores = scores + mask.to(scores.scalar_type());
  out = torch::matmul(torch::softmax(scores, -1), v);
#endif
  return proj(out.transpose(1, 2).reshape({n, s, dim}));
}

SpaceTimeBlockImpl::SpaceTimeBlockImpl(int dim, int heads, int mlp_ratio)
    : spatial(register_module("spatial", Attention(dim, heads))),
      temporal(register_module("temporal", Attention(dim, heads))),
      fc1(register_module("fc1", torch::nn::Linear(dim, mlp_ratio * dim))),
      fc2(register_module("fc2", torch::nn::Linear(mlp_ratio * dim, dim))),
      modulation(register_module("modulation", torch::nn::Linear(dim, 9 * dim))) {}

torch::Tensor SpaceTimeBlockImpl::forward(const torch::Tensor& h_in, const torch::Tensor& cond,
                                          const torch::Tensor& rope_cos,
                                          const torch::Tensor& rope_sin, const torch::Tensor& mask,
                                          const torch::Tensor& past_k, const torch::Tensor& past_v,
                                          torch::Tensor* new_k, torch::Tensor* new_v) {
  const int64_t b = h_in.size(0), t = h_in.size(1), l = h_in.size(2), d = h_in.size(3);
  StageClock clock(profile);
  const auto m = modulation(cond).unsqueeze(2).chunk(9, -1);  // each [B, T, 1, d]
  clock.lap(&ForwardProfile::modulation);
  auto h = h_in;

  // Spatial attention: tokens of one frame attend to each other.
  auto y = modulate(h, m[0], m[1]).reshape({b * t, l, d});
  y = spatial->forward(y, {}, {}, {}, {}, {}).view({b, t, l, d});
  h = torch::addcmul(h, m[2], y);
  clock.lap(&ForwardProfile::spatial);

  // Temporal attention: each position attends across frames.
  y = modulate(h, m[3], m[4]).permute({0, 2, 1, 3}).reshape({b * l, t, d});
  y = temporal->forward(y, rope_cos, rope_sin, mask, past_k, past_v, new_k, new_v);
  y = y.view({b, l, t, d}).permute({0, 2, 1, 3});
  h = torch::addcmul(h, m[5], y);
  clock.lap(&ForwardProfile::temporal);

  y = fc2(torch::gelu(fc1(modulate(h, m[6], m[7]))));
  h = torch::addcmul(h, m[8], y);
  clock.lap(&ForwardProfile::mlp);
  return h;
}

// The same block on the fast CPU kernels (fast_cpu.h): linears split across threads, attention
// reading q/k/v in place from the qkv projection and writing in token order, so neither
// attention permutes a copy. With a KV cache the temporal attention also reads the cached
// keys and values, and hands this call's back in the reference's cache layout.
torch::Tensor SpaceTimeBlockImpl::forward_fast(const torch::Tensor& h, const torch::Tensor& cond,
                                               const torch::Tensor& rope_cos,
                                               const torch::Tensor& rope_sin,
                                               const torch::Tensor& mask,
                                               const torch::Tensor& past_k,
                                               const torch::Tensor& past_v, torch::Tensor* new_k,
                                               torch::Tensor* new_v, const torch::Tensor& kept) {
  const auto mod = fast_modulation(cond);
  torch::Tensor qkv;
  auto h_spatial = fast_per_frame(h, mod, rope_cos, rope_sin, qkv);
  return fast_across_frames(std::move(h_spatial), qkv, mod, mask, past_k, past_v, new_k, new_v,
                            kept);
}

torch::Tensor SpaceTimeBlockImpl::fast_modulation(const torch::Tensor& cond) {
  StageClock clock(profile);
  // [B, T, 9d]: shift/scale/gate x 3
  auto mod = fast::linear(cond, modulation->weight, modulation->bias);
  clock.lap(&ForwardProfile::modulation);
  return mod;
}

torch::Tensor SpaceTimeBlockImpl::fast_per_frame(const torch::Tensor& h_in,
                                                 const torch::Tensor& mod,
                                                 const torch::Tensor& rope_cos,
                                                 const torch::Tensor& rope_sin,
                                                 torch::Tensor& qkv_out) {
  const int64_t b = h_in.size(0), t = h_in.size(1), l = h_in.size(2), d = h_in.size(3);
  const int64_t heads = spatial->heads();
  StageClock clock(profile);
  auto h = h_in.contiguous().clone();  // updated in place by the gated residuals

  // Spatial attention: the tokens of frame (b, t) are one sequence.
  auto qkv = fast::linear(fast::modulate(h, mod, 0, 1, kLayerNormEps), spatial->qkv->weight,
                          spatial->qkv->bias);
  auto y = fast::attention(qkv.view({-1, 3 * d}), fast::spatial_layout(b * t, l), heads, {});
  fast::linear_gated_residual(y, spatial->proj->weight, spatial->proj->bias, h, mod, 2);
  clock.lap(&ForwardProfile::spatial);

  // The temporal attention's q/k/v, q and k rotated by each frame's time position.
  qkv_out = fast::linear(fast::modulate(h, mod, 3, 4, kLayerNormEps), temporal->qkv->weight,
                         temporal->qkv->bias);
  if (rope_cos.defined()) fast::rope_inplace(qkv_out, rope_cos, rope_sin, heads);
  clock.lap(&ForwardProfile::temporal);
  return h;
}

torch::Tensor SpaceTimeBlockImpl::fast_across_frames(
    torch::Tensor h, const torch::Tensor& qkv, const torch::Tensor& mod, const torch::Tensor& mask,
    const torch::Tensor& past_k, const torch::Tensor& past_v, torch::Tensor* new_k,
    torch::Tensor* new_v, const torch::Tensor& kept) {
  const int64_t b = h.size(0), t = h.size(1), l = h.size(2), d = h.size(3);
  const int64_t heads = spatial->heads();
  StageClock clock(profile);
  // Temporal attention: position (b, l) across the T frames, read with a stride of L tokens;
  // with a KV cache also across the cached frames before them.
  if (new_k != nullptr || new_v != nullptr) {
    // This call's rotated keys and values for the cache, in the reference's layout
    // [B * L, heads, T, hd] (a cache filled by either path serves both).
    const auto parts = qkv.view({b, t, l, 3, heads, d / heads});
    const auto cache_layout = [&](int64_t part) {
      return parts.select(3, part).permute({0, 2, 3, 1, 4}).reshape({b * l, heads, t, d / heads});
    };
    if (new_k != nullptr) *new_k = cache_layout(1);
    if (new_v != nullptr) *new_v = cache_layout(2);
  }
  auto y = fast::attention(qkv.view({-1, 3 * d}), fast::temporal_layout(b, t, l), heads, mask,
                           past_k, past_v);
  auto mod_out = mod;
  if (kept.defined()) {
    // The last block, and only the `kept` frames' outputs are used: the others skip the
    // temporal projection and the MLP (their keys and values above were still needed).
    y = y.view({b, t, l, d}).index_select(1, kept);
    h = h.index_select(1, kept);
    mod_out = mod.index_select(1, kept);
  }
  fast::linear_gated_residual(y, temporal->proj->weight, temporal->proj->bias, h, mod_out, 5);
  clock.lap(&ForwardProfile::temporal);

  y = fast::linear(fast::modulate(h, mod_out, 6, 7, kLayerNormEps), fc1->weight, fc1->bias,
                   fast::Epilogue::Gelu);
  fast::linear_gated_residual(y, fc2->weight, fc2->bias, h, mod_out, 8);
  clock.lap(&ForwardProfile::mlp);
  return h;
}

DenoiserImpl::DenoiserImpl(const ModelConfig& config) : config_(config) {
  const int d = config.dim;
  const int64_t tokens =
      static_cast<int64_t>(config.width / config.patch) * (config.height / config.patch);
  level_in = register_module("level_in", torch::nn::Linear(kLevelFrequencies, d));
  level_out = register_module("level_out", torch::nn::Linear(d, d));
  const int p = config.patch;
  // Overlapping patches: a 2p-wide kernel at stride p, padded by p/2, keeps the p-fold grid.
  const int kernel = config.overlap ? 2 * p : p;
  const int pad = config.overlap ? p / 2 : 0;
  stem = register_module(
      "stem", torch::nn::Conv2d(
                  torch::nn::Conv2dOptions(config.channels, d, kernel).stride(p).padding(pad)));
  spatial_pos = register_parameter("spatial_pos", torch::zeros({1, tokens, d}));
  blocks = register_module("blocks", torch::nn::ModuleList());
  for (int i = 0; i < config.depth; ++i)
    blocks->push_back(SpaceTimeBlock(d, config.heads, config.mlp_ratio));
  final_modulation = register_module("final_modulation", torch::nn::Linear(d, 2 * d));
  if (config.overlap)
    head_overlap = register_module(
        "head",
        torch::nn::ConvTranspose2d(
            torch::nn::ConvTranspose2dOptions(d, config.channels, kernel).stride(p).padding(pad)));
  else
    head = register_module("head",
                           torch::nn::Linear(d, config.channels * config.patch * config.patch));
  reset_parameters(0);
}

void DenoiserImpl::reset_parameters(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& item : named_parameters()) {
    const std::string& name = item.key();
    auto& p = item.value();
    torch::Tensor value;
    const auto cpu = torch::TensorOptions().dtype(torch::kFloat32);
    if (name == "spatial_pos" || name.find("modulation.weight") != std::string::npos) {
      value = torch::randn(p.sizes(), gen, cpu) * 0.02;
    } else if (p.dim() >= 2) {
      // Xavier/Glorot uniform (Glorot & Bengio 2010, Eq. 16), as DiT initialises its linears.
      const int64_t receptive = p.numel() / (p.size(0) * p.size(1));
      const double fan_in = static_cast<double>(p.size(1) * receptive);
      const double fan_out = static_cast<double>(p.size(0) * receptive);
      const double bound = std::sqrt(6.0 / (fan_in + fan_out));
      value = (torch::rand(p.sizes(), gen, cpu) * 2 - 1) * bound;
    } else {
      value = torch::zeros(p.sizes(), cpu);
    }
    p.copy_(value);
  }
}

int64_t DenoiserImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

torch::Tensor DenoiserImpl::forward(const torch::Tensor& x, const torch::Tensor& levels,
                                    const torch::Tensor& positions) {
  return run(x, levels, positions, nullptr, false, false);
}

bool DenoiserImpl::fast_path_available() const {
  return fast::available() && stem->weight.device().is_cpu() &&
         stem->weight.scalar_type() == torch::kFloat32 && !is_training();
}

torch::Tensor DenoiserImpl::forward_fast(const torch::Tensor& x, const torch::Tensor& levels,
                                         const torch::Tensor& positions,
                                         const std::vector<int64_t>& outputs, FrameCache* frames) {
  return run(x, levels, positions, nullptr, false, fast_path_available(), outputs, frames);
}

torch::Tensor DenoiserImpl::forward_cached(const torch::Tensor& x, const torch::Tensor& levels,
                                           const torch::Tensor& positions, KVCache& cache,
                                           bool append, bool fast,
                                           const std::vector<int64_t>& outputs,
                                           FrameCache* frames) {
  if (!config_.causal)
    throw Error(
        "a KV cache needs a causal model: with bidirectional attention the history depends on new "
        "frames");
  return run(x, levels, positions, &cache, append, fast && fast_path_available(), outputs, frames);
}

torch::Tensor DenoiserImpl::run(const torch::Tensor& x_in, const torch::Tensor& levels_in,
                                const torch::Tensor& positions_in, KVCache* cache, bool append,
                                bool fast, const std::vector<int64_t>& outputs,
                                FrameCache* frame_cache) {
  const auto& c = config_;
  if (x_in.dim() != 5 || x_in.size(2) != c.channels || x_in.size(3) != c.height ||
      x_in.size(4) != c.width) {
    std::ostringstream msg;
    msg << "denoiser input must be [B, T, " << c.channels << ", " << c.height << ", " << c.width
        << "], got " << x_in.sizes();
    throw Error(msg.str());
  }
  const int64_t b = x_in.size(0), t = x_in.size(1);
  if (levels_in.dim() != 2 || levels_in.size(0) != b || levels_in.size(1) != t)
    throw Error("denoiser levels must be [B, T] matching the frames");
  const auto dtype = stem->weight.scalar_type();
  const auto device = stem->weight.device();
  const auto levels = levels_in.to(device, torch::kFloat32);
  auto x = x_in.to(device, dtype);
  // EDM preconditioning: the network sees c_in x~ (noise.h, Objective::Edm).
  if (c.objective == Objective::Edm)
    x = x * NoiseSchedule(c.noise_schedule, c.sigma_data).edm_input_scale(levels, x).to(dtype);
  const int64_t past = cache != nullptr ? cache->frames() : 0;
  torch::Tensor positions =
      positions_in.defined()
          ? positions_in.to(device, torch::kFloat32)
          : torch::arange(past, past + t,
                          torch::TensorOptions().dtype(torch::kFloat32).device(device));
  if (positions.dim() != 1 || positions.size(0) != t) throw Error("denoiser positions must be [T]");
  if (cache != nullptr && past > 0 && cache->keys.size() != blocks->size())
    throw Error("KV cache does not belong to this model");

  StageClock clock(profile_);
  // Level embedding per frame -> the conditioning every block modulates with.
  auto emb = level_out(torch::silu(level_in(level_features(levels).to(dtype))));  // [B, T, d]
  const auto cond = torch::silu(emb);

  const int p = c.patch;
  const int64_t gh = c.height / p, gw = c.width / p, tokens = gh * gw;
  const auto frames_in = x.reshape({b * t, c.channels, c.height, c.width});
  torch::Tensor h;  // [B, T, L, d] entering the blocks (or, from the cache, leaving the first's
                    // per-frame part)
  const bool first_cached = fast && frame_cache != nullptr && !blocks->is_empty();
  if (!first_cached) h = embed(frames_in, fast).reshape({b, t, tokens, c.dim});

  // Temporal positions: rotary tables for this call's frames; the cache's keys were rotated
  // by their own positions when they were computed.
  const auto [rope_cos, rope_sin] = rotary_tables(positions, c.dim / c.heads, dtype);
  torch::Tensor mask;
  if (c.causal) {
    const auto key_positions =
        past > 0 ? torch::cat({cache->positions.to(device), positions}) : positions;
    // -inf where a key lies after the query: frame t sees frames <= t only.
    mask = torch::zeros({t, past + t}, torch::TensorOptions().dtype(torch::kFloat32).device(device))
               .masked_fill(key_positions.unsqueeze(0) > positions.unsqueeze(1),
                            -std::numeric_limits<float>::infinity());
  }

  // The last block's projection and MLP and the output layers work per frame: on the fast path
  // only the frames whose prediction is used go through them (a pyramid row moves about a
  // third of its frames; history frames never need one), and the rest are zeros.
  torch::Tensor kept;
  for (size_t i = 0; i < outputs.size(); ++i)
    if (outputs[i] < 0 || outputs[i] >= t || (i > 0 && outputs[i] <= outputs[i - 1]))
      throw Error("denoiser outputs must be increasing frame indices below " + std::to_string(t));
  if (fast && !outputs.empty() && static_cast<int64_t>(outputs.size()) < t)
    kept = torch::tensor(outputs, torch::kLong).to(device);

  clock.lap(&ForwardProfile::embed_stem);
  std::vector<torch::Tensor> new_keys(blocks->size()), new_values(blocks->size());
  for (size_t i = 0; i < blocks->size(); ++i) {
    const auto& block = blocks[i]->as<SpaceTimeBlockImpl>();
    torch::Tensor past_k, past_v;
    if (past > 0) {
      past_k = cache->keys[i];
      past_v = cache->values[i];
      if (past_k.size(0) != b * tokens) throw Error("KV cache batch does not match this call");
    }
    const auto kept_here = i + 1 == blocks->size() ? kept : torch::Tensor();
    if (i == 0 && first_cached) {
      const auto mod = block->fast_modulation(cond);
      torch::Tensor qkv;
      h = first_per_frame(frames_in, levels, positions, rope_cos, rope_sin, mod, outputs,
                          *frame_cache, qkv);
      h = block->fast_across_frames(h, qkv, mod, mask, past_k, past_v,
                                    cache != nullptr ? &new_keys[i] : nullptr,
                                    cache != nullptr ? &new_values[i] : nullptr, kept_here);
    } else if (fast) {
      h = block->forward_fast(h, cond, rope_cos, rope_sin, mask, past_k, past_v,
                              cache != nullptr ? &new_keys[i] : nullptr,
                              cache != nullptr ? &new_values[i] : nullptr, kept_here);
    } else
      h = block->forward(h, cond, rope_cos, rope_sin, mask, past_k, past_v,
                         cache != nullptr ? &new_keys[i] : nullptr,
                         cache != nullptr ? &new_values[i] : nullptr);
  }
  if (kept.defined() && blocks->size() == 0) h = h.index_select(1, kept);
  if (cache != nullptr && append) {
    if (past == 0) {
      cache->keys = new_keys;
      cache->values = new_values;
      cache->positions = positions;
    } else {
      for (size_t i = 0; i < blocks->size(); ++i) {
        cache->keys[i] = torch::cat({cache->keys[i], new_keys[i]}, 2);
        cache->values[i] = torch::cat({cache->values[i], new_values[i]}, 2);
      }
      cache->positions = torch::cat({cache->positions, positions});
    }
  }

  clock.restart();  // the blocks timed themselves
  const int64_t t_out = kept.defined() ? kept.size(0) : t;
  if (fast) {
    const auto cond_out = kept.defined() ? cond.index_select(1, kept) : cond;
    h = fast::modulate(h, fast::linear(cond_out, final_modulation->weight, final_modulation->bias),
                       0, 1, kLayerNormEps);
  } else {
    const auto fm = final_modulation(cond).unsqueeze(2).chunk(2, -1);
    h = modulate(h, fm[0], fm[1]);  // [B, T, L, d]
  }
  if (c.overlap && fast) {
    h = fast::conv_transpose_head(h.reshape({b * t_out, gh, gw, c.dim}), head_overlap->weight,
                                  head_overlap->bias, p, p / 2, c.height, c.width);
  } else if (c.overlap) {
    // Each token paints a 2p x 2p tile; neighbouring tiles overlap by half and add up.
    h = head_overlap(h.reshape({b * t, gh, gw, c.dim}).permute({0, 3, 1, 2}));  // [BT, C, H, W]
  } else {
    h = fast ? fast::linear(h, head->weight, head->bias) : head(h);  // [B, T, L, C p p]
    h = h.reshape({b * t_out, gh, gw, c.channels * p * p}).permute({0, 3, 1, 2});
    h = torch::pixel_shuffle(h, p);  // [BT, C, H, W]
  }
  auto out = h.reshape({b, t_out, c.channels, c.height, c.width}).to(torch::kFloat32);
  if (kept.defined())
    out = torch::zeros({b, t, c.channels, c.height, c.width}, out.options())
              .index_copy_(1, kept, out);
  clock.lap(&ForwardProfile::head);
  return out;
}

torch::Tensor DenoiserImpl::embed(const torch::Tensor& frames, bool fast) {
  // Fast: channels-last, where oneDNN's strided 8x8 convolution ran twice as fast; its output
  // is then already token-major.
  auto h = stem(fast ? frames.contiguous(torch::MemoryFormat::ChannelsLast) : frames);
  return h.flatten(2).transpose(1, 2) + spatial_pos;  // [N, L, d]
}

void DenoiserImpl::set_profile(ForwardProfile* profile) {
  profile_ = profile;
  for (size_t i = 0; i < blocks->size(); ++i)
    blocks[i]->as<SpaceTimeBlockImpl>()->profile = profile;
}

int64_t expected_parameter_count(const ModelConfig& c) {
  const int64_t d = c.dim, r = c.mlp_ratio,
                out = static_cast<int64_t>(c.channels) * c.patch * c.patch;
  const int64_t tokens = static_cast<int64_t>(c.width / c.patch) * (c.height / c.patch);
  const int64_t attention = (d * 3 * d + 3 * d) + (d * d + d);
  const int64_t block = 2 * attention + (d * r * d + r * d) + (r * d * d + d) + (d * 9 * d + 9 * d);
  return (kLevelFrequencies * d + d) + (d * d + d) + (out * d + d) + tokens * d + c.depth * block +
         (d * 2 * d + 2 * d) + (d * out + out);
}

double forward_flops(const ModelConfig& c, int64_t batch, int64_t frames) {
  const double d = c.dim, r = c.mlp_ratio, bt = static_cast<double>(batch * frames);
  const double l = static_cast<double>(c.width / c.patch) * (c.height / c.patch);
  const double tokens = bt * l;
  const double kernel = c.overlap ? 2.0 * c.patch : c.patch;
  const double patch_in = c.channels * kernel * kernel;  // stem inputs per token
  const double patch_out = c.overlap ? patch_in : c.channels * c.patch * c.patch;
  const double linears = 2 * (d * 3 * d + d * d) + 2 * r * d * d;  // per token and block
  const double attention =
      2 * (2 * l * d) + 2 * (2 * static_cast<double>(frames) * d);  // per token and block
  const double modulation = bt * d * 9 * d * 2;                     // per block
  return c.depth * (tokens * (2 * linears + attention) + modulation) +
         2 * tokens * d * (patch_in + patch_out);
}

}  // namespace dfs::diffusion
