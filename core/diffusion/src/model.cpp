// The denoiser network, its configuration presets, model files and the Model handle.
//
// [SECTION] ModelConfig      presets, JSON, validation
// [SECTION] Network          attention, space-time block, denoiser
// [SECTION] Model files      save_model / load_denoiser
// [SECTION] Model handle     Model::load / Model::random / ModelDenoiser
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <ctime>
#include <limits>
#include <set>
#include <sstream>
#include <string>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model.h"
#include "dfs/diffusion/weights.h"

namespace dfs::diffusion {

// [SECTION] ModelConfig ------------------------------------------------------------------

ModelConfig ModelConfig::preset(const std::string& name) {
  ModelConfig c;
  if (name == "demo") {
    // The shipped model's size, chosen with `dforce bench` on a 2-core CPU: 8x8 patches give
    // 8x6 = 48 tokens per frame; 4x4 patches (192 tokens) cost ~3x more per forward (spatial
    // attention grows with tokens^2) and missed the 24 frames/s target by far.
    c.name = "demo";
    c.width = 64;
    c.height = 48;
    c.max_frames = 16;
    c.patch = 8;
    c.dim = 96;
    c.depth = 4;
    c.heads = 4;
    return c;
  }
  if (name == "demo-causal") {
    c = preset("demo");
    c.name = "demo-causal";
    c.causal = true;
    return c;
  }
  if (name == "latent" || name == "latent-causal") {
    // The latent transformer (DESIGN.md "Latent space"): 256x192 frames -> 32x24x8 latents of
    // the ae-demo autoencoder. 4x4 latent patches give 8x6 = 48 tokens per frame, each holding
    // 4*4*8 = 128 values in a 128-wide token: no squeeze (the 64x48 pixel model put 192 values
    // into 64). Chosen with `dforce bench` on the 2-core CPU: 2x2 patches (192 tokens of 64)
    // ran 12.7 frames/s against 50 for 48 tokens of 128, the same FLOPs but small GEMMs and a
    // 192x192 spatial attention; MLP ratio 2 keeps the whole pipeline, decoder included, above
    // 24 frames/s. Overlapping 8x8 kernels at stride 4 blend neighbouring tokens (no seams at
    // 32-pixel borders). EDM preconditioning with sigma_data = 1 (normalised latents) passes
    // a clean input through at low noise.
    c.name = name;
    c.width = 32;
    c.height = 24;
    c.channels = 8;
    c.max_frames = 16;
    c.patch = 4;
    c.dim = 128;
    c.depth = 4;
    c.heads = 4;
    c.mlp_ratio = 2;
    c.overlap = true;
    c.objective = Objective::Edm;
    c.sigma_data = 1.0;
    c.causal = name == "latent-causal";
    return c;
  }
  if (name == "latent-tiny") {
    // For fast tests: 64x48 frames -> 8x6x8 latents of ae-tiny, 2x2 patches (12 tokens of 32).
    c = preset("latent");
    c.name = name;
    c.width = 8;
    c.height = 6;
    c.patch = 2;
    c.dim = 32;
    c.depth = 2;
    c.heads = 2;
    c.causal = false;
    return c;
  }
  if (name == "tiny") {
    // For fast tests: a few thousand parameters, 32x24, 8 frames.
    c.name = "tiny";
    c.width = 32;
    c.height = 24;
    c.max_frames = 8;
    c.patch = 4;
    c.dim = 32;
    c.depth = 2;
    c.heads = 2;
    c.mlp_ratio = 2;
    return c;
  }
  if (name == "tiny-causal") {
    c = preset("tiny");
    c.name = "tiny-causal";
    c.causal = true;
    return c;
  }
  throw Error("unknown model preset '" + name +
              "' (expected demo, demo-causal, latent, latent-causal, tiny or tiny-causal)");
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json j = {{"name", name},
                      {"architecture", "dfs-spacetime-dit-1"},
                      {"width", width},
                      {"height", height},
                      {"channels", channels},
                      {"max_frames", max_frames},
                      {"patch", patch},
                      {"dim", dim},
                      {"depth", depth},
                      {"heads", heads},
                      {"mlp_ratio", mlp_ratio},
                      {"causal", causal},
                      {"objective", dfs::diffusion::to_string(objective)},
                      {"noise_schedule", dfs::diffusion::to_string(noise_schedule)}};
  // Written only when set, so files made before the field existed keep their exact config.
  if (overlap) j["overlap"] = true;
  if (objective == Objective::Edm) j["sigma_data"] = sigma_data;
  return j;
}

namespace {

int int_field(const nlohmann::json& j, const char* key, int fallback, int lo, int hi,
              bool required) {
  const auto it = j.find(key);
  if (it == j.end()) {
    if (required) throw Error(std::string("model config has no '") + key + "'");
    return fallback;
  }
  if (!it->is_number_integer())
    throw Error(std::string("model config '") + key + "' must be a whole number");
  const auto v = it->get<int64_t>();
  if (v < lo || v > hi)
    throw Error(std::string("model config '") + key + "' = " + std::to_string(v) + " is outside [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(v);
}

}  // namespace

ModelConfig ModelConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("model config must be a JSON object");
  ModelConfig c;
  if (const auto it = j.find("name"); it != j.end()) {
    if (!it->is_string()) throw Error("model config 'name' must be a string");
    c.name = it->get<std::string>();
  }
  if (const auto it = j.find("architecture"); it != j.end() && *it != "dfs-spacetime-dit-1")
    throw Error("model architecture " + it->dump() +
                " is not supported by this version (expected dfs-spacetime-dit-1)");
  c.width = int_field(j, "width", c.width, 1, 4096, true);
  c.height = int_field(j, "height", c.height, 1, 4096, true);
  c.channels = int_field(j, "channels", c.channels, 1, 64, false);
  c.max_frames = int_field(j, "max_frames", c.max_frames, 1, 1024, true);
  c.patch = int_field(j, "patch", c.patch, 1, 32, true);
  c.dim = int_field(j, "dim", c.dim, 4, 4096, true);
  c.depth = int_field(j, "depth", c.depth, 1, 128, true);
  c.heads = int_field(j, "heads", c.heads, 1, 64, true);
  c.mlp_ratio = int_field(j, "mlp_ratio", c.mlp_ratio, 1, 16, false);
  if (const auto it = j.find("causal"); it != j.end()) {
    if (!it->is_boolean()) throw Error("model config 'causal' must be true or false");
    c.causal = it->get<bool>();
  }
  if (const auto it = j.find("overlap"); it != j.end()) {
    if (!it->is_boolean()) throw Error("model config 'overlap' must be true or false");
    c.overlap = it->get<bool>();
  }
  if (const auto it = j.find("objective"); it != j.end()) {
    if (!it->is_string()) throw Error("model config 'objective' must be a string");
    c.objective = objective_from_string(it->get<std::string>());
  }
  if (const auto it = j.find("noise_schedule"); it != j.end()) {
    if (!it->is_string()) throw Error("model config 'noise_schedule' must be a string");
    c.noise_schedule = noise_schedule_from_string(it->get<std::string>());
  }
  if (const auto it = j.find("sigma_data"); it != j.end()) {
    if (!it->is_number() || !(it->get<double>() > 0 && it->get<double>() <= 100))
      throw Error("model config 'sigma_data' must be a number in (0, 100]");
    c.sigma_data = it->get<double>();
  }
  if (c.overlap && c.patch % 2 != 0)
    throw Error("overlapping patches need an even patch size, got " + std::to_string(c.patch));
  if (c.width % c.patch != 0 || c.height % c.patch != 0)
    throw Error("model resolution " + std::to_string(c.width) + "x" + std::to_string(c.height) +
                " is not a multiple of the patch size " + std::to_string(c.patch));
  if (c.dim % c.heads != 0 || (c.dim / c.heads) % 2 != 0)
    throw Error("model dim " + std::to_string(c.dim) + " must split into " +
                std::to_string(c.heads) + " heads of an even size (rotary positions rotate pairs)");
  return c;
}

// [SECTION] Network ----------------------------------------------------------------------

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
  return run(x, levels, positions, nullptr, false);
}

torch::Tensor DenoiserImpl::forward_cached(const torch::Tensor& x, const torch::Tensor& levels,
                                           const torch::Tensor& positions, KVCache& cache,
                                           bool append) {
  if (!config_.causal)
    throw Error(
        "a KV cache needs a causal model: with bidirectional attention the history depends on new "
        "frames");
  return run(x, levels, positions, &cache, append);
}

torch::Tensor DenoiserImpl::run(const torch::Tensor& x_in, const torch::Tensor& levels_in,
                                const torch::Tensor& positions_in, KVCache* cache, bool append) {
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
  auto h = stem(x.reshape({b * t, c.channels, c.height, c.width}));  // [BT, d, gh, gw]
  h = (h.flatten(2).transpose(1, 2) + spatial_pos).reshape({b, t, tokens, c.dim});

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
    h = block->forward(h, cond, rope_cos, rope_sin, mask, past_k, past_v,
                       cache != nullptr ? &new_keys[i] : nullptr,
                       cache != nullptr ? &new_values[i] : nullptr);
  }
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
  const auto fm = final_modulation(cond).unsqueeze(2).chunk(2, -1);
  h = modulate(h, fm[0], fm[1]);  // [B, T, L, d]
  if (c.overlap) {
    // Each token paints a 2p x 2p tile; neighbouring tiles overlap by half and add up.
    h = head_overlap(h.reshape({b * t, gh, gw, c.dim}).permute({0, 3, 1, 2}));  // [BT, C, H, W]
  } else {
    h = head(h);  // [B, T, L, C p p]
    h = h.reshape({b * t, gh, gw, c.channels * p * p}).permute({0, 3, 1, 2});
    h = torch::pixel_shuffle(h, p);  // [BT, C, H, W]
  }
  auto out = h.reshape({b, t, c.channels, c.height, c.width}).to(torch::kFloat32);
  clock.lap(&ForwardProfile::head);
  return out;
}

void DenoiserImpl::set_profile(ForwardProfile* profile) {
  profile_ = profile;
  for (size_t i = 0; i < blocks->size(); ++i)
    blocks[i]->as<SpaceTimeBlockImpl>()->profile = profile;
}

// [SECTION] Model files ------------------------------------------------------------------

int64_t expected_parameter_count(const ModelConfig& c) {
  const int64_t d = c.dim, r = c.mlp_ratio,
                out = static_cast<int64_t>(c.channels) * c.patch * c.patch;
  const int64_t tokens = static_cast<int64_t>(c.width / c.patch) * (c.height / c.patch);
  const int64_t attention = (d * 3 * d + 3 * d) + (d * d + d);
  const int64_t block = 2 * attention + (d * r * d + r * d) + (r * d * d + d) + (d * 9 * d + 9 * d);
  return (kLevelFrequencies * d + d) + (d * d + d) + (out * d + d) + tokens * d + c.depth * block +
         (d * 2 * d + 2 * d) + (d * out + out);
}

void save_model(const std::string& path, Denoiser& net, const ModelConfig& config,
                const nlohmann::json& provenance, Autoencoder* autoencoder) {
  TensorFile file;
  if (autoencoder != nullptr) add_autoencoder_to_file(*autoencoder, file.tensors, file.metadata);
  file.metadata["format"] = "dfs-model-1";
  file.metadata["config"] = config.to_json().dump();
  file.metadata["provenance"] = provenance.is_null() ? "{}" : provenance.dump();
  for (const auto& item : net->named_parameters())
    file.tensors[item.key()] = item.value().detach().to(torch::kCPU, torch::kFloat32);
  for (const auto& item : net->named_buffers())
    file.tensors[item.key()] = item.value().detach().to(torch::kCPU);
  save_safetensors(path, file);
}

namespace {

std::string shape_text(torch::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

std::string join_limited(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 8; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 8) out += " and " + std::to_string(names.size() - 8) + " more";
  return out;
}

}  // namespace

LoadedDenoiser load_denoiser(const std::string& path) {
  TensorFile file = load_safetensors(path);
  const auto config_it = file.metadata.find("config");
  if (config_it == file.metadata.end())
    throw Error(path +
                ": not a Diffusion Forcing Studio model (no 'config' in the safetensors metadata)");
  const auto config_json = nlohmann::json::parse(config_it->second, nullptr, false);
  if (config_json.is_discarded())
    throw Error(path + ": the model config in the metadata is not valid JSON");
  LoadedDenoiser loaded;
  try {
    loaded.config = ModelConfig::from_json(config_json);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  if (const auto it = file.metadata.find("provenance"); it != file.metadata.end()) {
    loaded.provenance = nlohmann::json::parse(it->second, nullptr, false);
    if (loaded.provenance.is_discarded())
      loaded.provenance = nlohmann::json{{"unparsed", it->second}};
  }
  // Never build a network much larger than the file could fill: a hostile config (dim 4096,
  // depth 128) must not allocate gigabytes before the tensor check rejects it. Near misses
  // go on to the per-tensor check below, which names the offending tensors.
  int64_t values_in_file = 0;
  for (const auto& [name, tensor] : file.tensors) values_in_file += tensor.numel();
  const int64_t needed = expected_parameter_count(loaded.config);
  if (needed > 2 * values_in_file + (1 << 20))
    throw Error(path + ": its config '" + loaded.config.name + "' needs " + std::to_string(needed) +
                " parameters but the file holds only " + std::to_string(values_in_file) +
                " values");
  loaded.net = Denoiser(loaded.config);

  std::vector<std::string> missing, misshaped, unexpected;
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  auto params = loaded.net->named_parameters();
  for (auto& item : params) {
    expected.insert(item.key());
    const auto it = file.tensors.find(item.key());
    if (it == file.tensors.end()) {
      missing.push_back(item.key());
    } else if (it->second.sizes() != item.value().sizes()) {
      misshaped.push_back(item.key() + " (file " + shape_text(it->second.sizes()) +
                          ", config needs " + shape_text(item.value().sizes()) + ")");
    } else if (!it->second.is_floating_point()) {
      misshaped.push_back(item.key() + " (not a floating-point tensor)");
    } else {
      item.value().copy_(it->second.to(torch::kFloat32));
    }
  }
  const bool latent = has_autoencoder(file.metadata);
  for (const auto& [name, tensor] : file.tensors)
    if (!expected.count(name) && !(latent && name.rfind(kAutoencoderPrefix, 0) == 0))
      unexpected.push_back(name);
  std::string problems;
  if (!missing.empty()) problems += "missing tensors: " + join_limited(missing) + ". ";
  if (!misshaped.empty()) problems += "mis-shaped tensors: " + join_limited(misshaped) + ". ";
  if (!unexpected.empty()) problems += "unexpected tensors: " + join_limited(unexpected) + ". ";
  if (!problems.empty())
    throw Error(path + " does not match its config '" + loaded.config.name + "': " + problems);
  for (const auto& p : loaded.net->parameters())
    if (!torch::isfinite(p).all().item<bool>())
      throw Error(path + ": the weights contain NaN or infinity");
  if (latent) {
    loaded.ae = load_autoencoder_from(file.metadata, file.tensors, path);
    if (loaded.ae->config().latent_channels != loaded.config.channels)
      throw Error(path + ": the transformer takes " + std::to_string(loaded.config.channels) +
                  " channels but the autoencoder makes " +
                  std::to_string(loaded.ae->config().latent_channels));
    if (!loaded.ae->config().normalised())
      throw Error(path + ": the autoencoder has no latent statistics (it was never finished)");
  }
  return loaded;
}

// [SECTION] Model handle -----------------------------------------------------------------

torch::Device parse_device(const std::string& device) {
  if (device == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0)
                                       : torch::Device(torch::kCPU);
  if (device == "cpu") return torch::kCPU;
  if (device.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error(
          "device '" + device +
          "' requested but CUDA is not available (this LibTorch build or machine has no GPU)");
    int index = 0;
    if (device.size() > 4) {
      if (device[4] != ':')
        throw Error("device must be auto, cpu, cuda or cuda:N, got '" + device + "'");
      try {
        index = std::stoi(device.substr(5));
      } catch (const std::exception&) {
        throw Error("device must be auto, cpu, cuda or cuda:N, got '" + device + "'");
      }
      if (index < 0 || index >= static_cast<int>(torch::cuda::device_count()))
        throw Error("CUDA device " + std::to_string(index) + " does not exist");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw Error("device must be auto, cpu, cuda or cuda:N, got '" + device + "'");
}

namespace {

Model make_model(Denoiser net, const ModelConfig& config, const nlohmann::json& provenance,
                 const std::string& device, Autoencoder ae = nullptr) {
  auto impl = std::make_shared<Model::Impl>();
  impl->config = config;
  impl->device = parse_device(device);
  // bf16 on CUDA (Ampere and newer run it at full speed); float32 on the CPU.
  impl->dtype = impl->device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  net->to(impl->device, impl->dtype);
  net->eval();
  impl->net = net;
  impl->schedule = NoiseSchedule(config.noise_schedule, config.sigma_data);
  ModelInfo& info = impl->info;
  info.name = config.name;
  info.width = config.width;
  info.height = config.height;
  info.channels = config.channels;
  if (ae) {
    ae->to(impl->device);  // float32 everywhere: decoding quality is worth more than speed
    ae->eval();
    impl->ae = ae;
    impl->x0_clamp = ae->config().latent_clamp;
    info.width = config.width * kLatentFactor;
    info.height = config.height * kLatentFactor;
    info.channels = 3;
    info.latent_channels = config.channels;
    info.latent_width = config.width;
    info.latent_height = config.height;
  }
  info.max_frames = config.max_frames;
  info.causal = config.causal;
  info.objective = to_string(config.objective);
  info.noise_schedule = to_string(config.noise_schedule);
  info.parameter_count = net->parameter_count();
  info.device = impl->device.str();
  info.config_json = config.to_json().dump();
  info.provenance_json = provenance.is_object() ? provenance.dump() : "{}";
  return Model(impl);
}

}  // namespace

Model::Model(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

const ModelInfo& Model::info() const {
  return impl_->info;
}

Model Model::load(const std::string& path, const std::string& device) {
  auto loaded = load_denoiser(path);
  Model model = make_model(loaded.net, loaded.config, loaded.provenance, device, loaded.ae);
  return model;
}

Model Model::random(const std::string& preset, uint64_t seed, const std::string& device) {
  const ModelConfig config = ModelConfig::preset(preset);
  Denoiser net(config);
  net->reset_parameters(seed);
  Autoencoder ae{nullptr};
  if (preset.rfind("latent", 0) == 0) {
    // An untrained autoencoder too, with identity latent statistics: for speed measurements.
    ae = Autoencoder(autoencoder_preset(preset == "latent-tiny" ? "ae-tiny" : "ae-demo"));
    ae->reset_parameters(seed);
    ae->set_statistics(std::vector<double>(8, 0.0), std::vector<double>(8, 1.0), 6.0);
  }
  return make_model(
      net, config,
      nlohmann::json{{"source", "random initialisation"}, {"preset", preset}, {"seed", seed}},
      device, ae);
}

ModelDenoiser::ModelDenoiser(Model::Impl& model, bool kv_cache)
    : model_(model), kv_cache_(kv_cache && model.config.causal) {}

DenoiseFn ModelDenoiser::fn() {
  return [this](const DenoiseCall& c) { return call(c); };
}

void ModelDenoiser::reset() {
  cache_.clear();
  cached_prefix_ = -1;
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
  if (!kv_cache_ || prefix <= 0 || prefix >= used) {
    head = net->forward(x, levels, positions.slice(0, 0, used));
  } else {
    if (cached_prefix_ != prefix || cached_batch_ != c.x.size(0)) {
      // First call of this window: compute the known history once (its prediction is unused).
      cache_.clear();
      net->forward_cached(x.slice(1, 0, prefix), levels.slice(1, 0, prefix),
                          positions.slice(0, 0, prefix), cache_, /*append=*/true);
      cached_prefix_ = prefix;
      cached_batch_ = c.x.size(0);
    }
    head = net->forward_cached(x.slice(1, prefix), levels.slice(1, prefix),
                               positions.slice(0, prefix, used), cache_, /*append=*/false);
    first = prefix;
  }
  if (first == 0 && used == frames) return head.to(torch::kCPU);
  // Predictions nobody uses (cached history, skipped future) are zeros: the shape stays.
  auto out = torch::zeros(c.x.sizes(), torch::kFloat32);
  out.slice(1, first, used).copy_(head.to(torch::kCPU));
  return out;
}

}  // namespace dfs::diffusion
