// The diffusion-forcing trainer: batches, per-frame levels, weighted loss, AdamW, EMA,
// checkpoints. See trainer.h for the formulas' sources.
//
// Index
//   [SECTION] Settings and recipes
//   [SECTION] Deterministic per-step randomness
//   [SECTION] Trainer state, batches, loss
//   [SECTION] Optimiser step (AdamW + clipping + EMA)
//   [SECTION] Checkpoints and export
//   [SECTION] Training loop
#include "dfs/diffusion/train/trainer.h"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include <chrono>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model_file.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs/diffusion/weights.h"
#include "train_common.h"

namespace dfs::diffusion::train {

// [SECTION] Settings and recipes ---------------------------------------------------------

nlohmann::json TrainSettings::to_json() const {
  nlohmann::json j = {{"batch_size", batch_size},
                      {"clip_frames", clip_frames},
                      {"learning_rate", learning_rate},
                      {"min_learning_rate_fraction", min_learning_rate_fraction},
                      {"warmup_steps", warmup_steps},
                      {"schedule_steps", schedule_steps},
                      {"weight_decay", weight_decay},
                      {"adam_beta1", adam_beta1},
                      {"adam_beta2", adam_beta2},
                      {"adam_eps", adam_eps},
                      {"grad_clip", grad_clip},
                      {"ema_decay", ema_decay},
                      {"min_snr_gamma", min_snr_gamma},
                      {"loss_weight_floor", loss_weight_floor},
                      {"p_shared_level", p_shared_level},
                      {"p_clean_prefix", p_clean_prefix},
                      {"p_flip", p_flip},
                      {"p_crop", p_crop},
                      {"min_crop_scale", min_crop_scale},
                      {"seed", seed}};
  // Written only when set, so checkpoints made before the field existed still resume.
  if (clip_balance != 1.0) j["clip_balance"] = clip_balance;
  return j;
}

TrainSettings TrainSettings::from_json(const nlohmann::json& j) {
  TrainSettings s;
  try {
    s.batch_size = j.value("batch_size", s.batch_size);
    s.clip_frames = j.value("clip_frames", s.clip_frames);
    s.learning_rate = j.value("learning_rate", s.learning_rate);
    s.min_learning_rate_fraction =
        j.value("min_learning_rate_fraction", s.min_learning_rate_fraction);
    s.warmup_steps = j.value("warmup_steps", s.warmup_steps);
    s.schedule_steps = j.value("schedule_steps", s.schedule_steps);
    s.weight_decay = j.value("weight_decay", s.weight_decay);
    s.adam_beta1 = j.value("adam_beta1", s.adam_beta1);
    s.adam_beta2 = j.value("adam_beta2", s.adam_beta2);
    s.adam_eps = j.value("adam_eps", s.adam_eps);
    s.grad_clip = j.value("grad_clip", s.grad_clip);
    s.ema_decay = j.value("ema_decay", s.ema_decay);
    s.min_snr_gamma = j.value("min_snr_gamma", s.min_snr_gamma);
    s.loss_weight_floor = j.value("loss_weight_floor", s.loss_weight_floor);
    s.p_shared_level = j.value("p_shared_level", s.p_shared_level);
    s.p_clean_prefix = j.value("p_clean_prefix", s.p_clean_prefix);
    s.p_flip = j.value("p_flip", s.p_flip);
    s.p_crop = j.value("p_crop", s.p_crop);
    s.min_crop_scale = j.value("min_crop_scale", s.min_crop_scale);
    s.seed = j.value("seed", s.seed);
    s.clip_balance = j.value("clip_balance", s.clip_balance);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("training settings: ") + e.what());
  }
  s.validate();
  return s;
}

void TrainSettings::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw Error("training settings: " + what);
  };
  auto prob = [&](double p, const char* name) {
    require(p >= 0 && p <= 1, std::string(name) + " must be a probability in [0, 1]");
  };
  require(batch_size >= 1 && batch_size <= 4096, "batch_size must be in 1..4096");
  require(clip_frames >= 0 && clip_frames <= 1024,
          "clip_frames must be in 0..1024 (0 = model max_frames)");
  require(learning_rate > 0 && learning_rate < 1, "learning_rate must be in (0, 1)");
  require(min_learning_rate_fraction >= 0 && min_learning_rate_fraction <= 1,
          "min_learning_rate_fraction must be in [0, 1]");
  require(warmup_steps >= 0, "warmup_steps must be >= 0");
  require(schedule_steps >= 1, "schedule_steps must be >= 1");
  require(weight_decay >= 0 && weight_decay < 1, "weight_decay must be in [0, 1)");
  require(adam_beta1 >= 0 && adam_beta1 < 1 && adam_beta2 >= 0 && adam_beta2 < 1,
          "Adam betas must be in [0, 1)");
  require(adam_eps > 0, "adam_eps must be > 0");
  require(ema_decay >= 0 && ema_decay < 1, "ema_decay must be in [0, 1)");
  require(min_snr_gamma > 0, "min_snr_gamma must be > 0");
  require(loss_weight_floor >= 0 && loss_weight_floor <= 1, "loss_weight_floor must be in [0, 1]");
  prob(p_shared_level, "p_shared_level");
  prob(p_clean_prefix, "p_clean_prefix");
  prob(p_flip, "p_flip");
  prob(p_crop, "p_crop");
  require(min_crop_scale > 0.3 && min_crop_scale <= 1, "min_crop_scale must be in (0.3, 1]");
  require(clip_balance >= 0 && clip_balance <= 1, "clip_balance must be in [0, 1]");
}

TrainRecipe train_recipe(const std::string& name) {
  TrainRecipe r;
  if (name == "demo") {
    r.model = ModelConfig::preset("demo");
    r.model.overlap = true;  // see demo-cpu
    r.train.batch_size = 8;
    r.train.learning_rate = 1e-3;
    r.train.warmup_steps = 100;
  } else if (name == "demo-gpu") {
    r.model = ModelConfig::preset("demo");
    r.model.overlap = true;  // see demo-cpu
    r.train.batch_size = 64;
    r.train.learning_rate = 2e-3;
    r.train.warmup_steps = 200;
  } else if (name == "demo-cpu") {
    // The engine's demo architecture made ~3x cheaper per clip for a shared 2-core CPU:
    // width 64 instead of 96 and MLP ratio 2 instead of 4 (same resolution, patch, depth
    // and 16-frame window). Smaller batches give more updates per minute, which matters more
    // than gradient noise this early in training.
    r.model = ModelConfig::preset("demo");
    r.model.dim = 64;
    r.model.mlp_ratio = 2;
    // x0 objective: measured on the tiny model, after a few hundred steps an x0-model's
    // estimates improve monotonically as the level drops, whereas a v-model's mid-level
    // estimates are still worse than its level-1 estimate, so its DDIM trajectories end in
    // noise. With minutes of CPU, blurry-but-right beats sharp-but-noisy (models/README.md).
    r.model.objective = Objective::X0;
    // Overlapping 16x16 patches at stride 8 in the stem and the head: with disjoint 8x8
    // patches each output patch is an independent linear image of its token, and long
    // rollouts (generated frames fed back as context) grew visible blocks within 50-100 frames.
    r.model.overlap = true;
    r.train.batch_size = 4;
    r.train.learning_rate = 8e-4;
    r.train.warmup_steps = 100;
  } else if (name == "latent-cpu" || name == "latent-gpu") {
    // The shipped latent model (ModelConfig::preset("latent")) on ae-demo latents. Latents are
    // precomputed, so crops are off (a crop would need re-encoding); flips use the flipped
    // frames' latents. The x0 objective, not the preset's EDM: measured on these latents after
    // 1,200 steps (models/README.md), EDM's samples kept visible grain (at low noise it must
    // predict the noise itself, which a briefly trained network cannot) and scored 0.3-2.7 dB
    // lower; x0's are clean, if softer. `--model objective=edm` trains the EDM variant.
    r.model = ModelConfig::preset("latent");
    if (name == "latent-cpu") r.model.objective = Objective::X0;
    r.train.batch_size = name == "latent-cpu" ? 4 : 64;
    r.train.learning_rate = name == "latent-cpu" ? 8e-4 : 2e-3;
    r.train.warmup_steps = 200;
    r.train.p_crop = 0;
  } else if (name == "latent-tiny") {
    r.model = ModelConfig::preset("latent-tiny");
    r.train.batch_size = 8;
    r.train.learning_rate = 2e-3;
    r.train.warmup_steps = 20;
    r.train.p_crop = 0;
  } else if (name == "tiny") {
    r.model = ModelConfig::preset("tiny");
    r.model.objective = Objective::X0;  // see demo-cpu
    r.train.batch_size = 8;
    r.train.learning_rate = 2e-3;
    r.train.warmup_steps = 20;
    r.train.p_crop = 0;  // tiny synthetic frames: cropping only blurs the shapes
  } else {
    throw Error("unknown training recipe '" + name +
                "' (known: latent-cpu, latent-gpu, latent-tiny, demo, demo-cpu, demo-gpu, tiny)");
  }
  r.model.name = name;
  return r;
}

// [SECTION] Deterministic per-step randomness --------------------------------------------

namespace {

using detail::kStreamData;
using detail::kStreamNoise;
using detail::splitmix64;
using detail::step_seed;
constexpr int64_t kMeasureStep = -1;  // step index of the throwaway batch of measure_step_seconds

// bf16 autocast for the forward pass on CUDA. The API changed in LibTorch 2.4.
class CudaAutocast {
 public:
  explicit CudaAutocast(bool on) : on_(on) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
#else
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
#endif
  }
  ~CudaAutocast() {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, false);
#else
    at::autocast::set_enabled(false);
#endif
    at::autocast::clear_cache();
  }
  CudaAutocast(const CudaAutocast&) = delete;
  CudaAutocast& operator=(const CudaAutocast&) = delete;

 private:
  bool on_;
};

struct Batch {
  torch::Tensor x0;             // [B, T, 3, H, W] in [-1, 1]
  torch::Tensor levels;         // [B, T] in [0, 1]
  torch::Tensor noise;          // [B, T, 3, H, W]
  torch::Tensor mask;           // [B, T] 1 = frame counts in the loss
  std::vector<size_t> clip_of;  // dataset clip of each batch item
};

}  // namespace

// [SECTION] Trainer state, batches, loss -------------------------------------------------

struct Trainer::State {
  ModelConfig config;
  TrainSettings settings;
  const VideoDataset* dataset = nullptr;
  std::string fingerprint;
  torch::Device device{torch::kCPU};
  NoiseSchedule schedule;
  Denoiser model{nullptr};
  Denoiser ema{nullptr};
  AdamWState opt;  // parameters (fixed order), EMA copies, AdamW moments
  int64_t step = 0;
  double seconds = 0;
  int frames = 0;                    // T, frames per training clip
  bool latent = false;               // the model runs on dataset->latents
  Autoencoder autoencoder{nullptr};  // latent models: written with the exported model
  // Valid window starts: clip c contributes starts [0, starts[c]).
  std::vector<int64_t> starts;
  int64_t total_starts = 0;
  std::vector<double> clip_cdf;  // clip_balance != 1: cumulative clip probabilities
  std::shared_ptr<Distributed> dist;  // data-parallel: this rank's share of each batch

  Batch make_batch(int64_t step_index) const;
  torch::Tensor loss_weights(const torch::Tensor& levels) const;
  torch::Tensor predict(Denoiser& net, const torch::Tensor& x_n, const torch::Tensor& levels) const;
};

Batch Trainer::State::make_batch(int64_t step_index) const {
  const auto& s = settings;
  const int B = s.batch_size, T = frames, H = config.height, W = config.width;
  std::mt19937_64 rng(step_seed(s.seed, step_index, kStreamData));
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  auto gen = at::detail::createCPUGenerator(step_seed(s.seed, step_index, kStreamNoise));

  std::vector<torch::Tensor> clips;
  std::vector<size_t> clip_of;
  clips.reserve(static_cast<size_t>(B));
  for (int b = 0; b < B; ++b) {
    size_t c = 0;
    int64_t r = 0;
    if (clip_cdf.empty()) {  // every window equally likely
      r = static_cast<int64_t>(rng() % static_cast<uint64_t>(total_starts));
      while (r >= starts[c]) r -= starts[c++];
    } else {  // a clip by its balanced weight, then a window inside it
      const double u = u01(rng);
      while (c + 1 < clip_cdf.size() && u >= clip_cdf[c]) ++c;
      r = static_cast<int64_t>(rng() % static_cast<uint64_t>(starts[c]));
    }
    clip_of.push_back(c);
    const auto& clip = dataset->clips[c];
    if (latent) {
      // Latent models: the clip's precomputed latents (flipped: the flipped frames' latents).
      const bool flip = u01(rng) < s.p_flip;
      clips.push_back(
          (flip ? dataset->latents_flipped : dataset->latents).narrow(0, clip.first + r, T));
      continue;
    }
    auto x = frames_to_float(*dataset, clip.first + r, T);  // [T, 3, H, W]
    if (u01(rng) < s.p_flip) x = x.flip({3});
    if (u01(rng) < s.p_crop) {
      // Crop a region of the same aspect ratio and scale it back up: a mild zoom.
      const double scale = s.min_crop_scale + (1 - s.min_crop_scale) * u01(rng);
      const int64_t ch = std::max<int64_t>(2, std::llround(scale * H));
      const int64_t cw = std::max<int64_t>(2, std::llround(scale * W));
      const int64_t y0 = static_cast<int64_t>(rng() % static_cast<uint64_t>(H - ch + 1));
      const int64_t x0 = static_cast<int64_t>(rng() % static_cast<uint64_t>(W - cw + 1));
      x = torch::nn::functional::interpolate(x.narrow(2, y0, ch).narrow(3, x0, cw),
                                             torch::nn::functional::InterpolateFuncOptions()
                                                 .size(std::vector<int64_t>{H, W})
                                                 .mode(torch::kBilinear)
                                                 .align_corners(false));
    }
    clips.push_back(x);
  }
  Batch batch;
  batch.x0 = torch::stack(clips);
  batch.clip_of = std::move(clip_of);
  // Diffusion forcing: an independent uniform timestep k in 1..K for every frame.
  auto k = torch::randint(1, kTrainTimesteps + 1, {B, T}, gen, torch::kInt64);
  auto mask = torch::ones({B, T});
  for (int b = 0; b < B; ++b) {
    if (u01(rng) < s.p_shared_level) k[b].fill_(k[b][0].item<int64_t>());  // full-sequence case
    if (T > 1 && u01(rng) < s.p_clean_prefix) {                            // conditioning case
      const int64_t j = 1 + static_cast<int64_t>(rng() % static_cast<uint64_t>(T - 1));
      k[b].narrow(0, 0, j).fill_(0);
      mask[b].narrow(0, 0, j).fill_(0);
    }
  }
  batch.levels = k.to(torch::kFloat32) / static_cast<float>(kTrainTimesteps);
  batch.mask = mask;
  batch.noise = torch::randn({B, T, config.channels, H, W}, gen);
  return batch;
}

torch::Tensor Trainer::State::loss_weights(const torch::Tensor& levels) const {
  // min-SNR-gamma, Hang et al. 2023 Eq. 7-9 (written for the objective's own loss).
  const auto snr = schedule.snr(levels);
  const double g = settings.min_snr_gamma;
  const auto clipped = torch::clamp_max(snr, g);
  torch::Tensor w;
  switch (config.objective) {
    case Objective::V:
      w = clipped / (snr + 1);
      break;
    case Objective::Eps:
      w = clipped / snr;
      break;
    case Objective::X0:
      w = clipped / g;
      break;  // normalised so the maximum weight is 1
    case Objective::Edm:
      // EDM's loss weight lambda = 1 / c_out^2 (Karras et al. 2022, Sec. 5) makes the loss on F
      // unit-weight at every level: the top levels keep their weight (no min-SNR here).
      return torch::ones_like(levels);
  }
  w = torch::nan_to_num(w, 0.0, 0.0, 0.0);
  if (settings.loss_weight_floor > 0) w = torch::clamp_min(w, settings.loss_weight_floor);
  return w;
}

torch::Tensor Trainer::State::predict(Denoiser& net, const torch::Tensor& x_n,
                                      const torch::Tensor& levels) const {
  CudaAutocast autocast(device.is_cuda());
  return net->forward(x_n, levels).to(torch::kFloat32);
}

Trainer::Trainer(const ModelConfig& model, const TrainSettings& settings,
                 const VideoDataset& dataset, const std::string& device)
    : state_(std::make_unique<State>()) {
  auto& st = *state_;
  settings.validate();
  st.config = model;
  st.settings = settings;
  st.dataset = &dataset;
  st.device = parse_device(device);
  st.schedule = NoiseSchedule(model.noise_schedule, model.sigma_data);
  st.frames = settings.clip_frames > 0 ? settings.clip_frames : model.max_frames;
  if (st.frames > model.max_frames)
    throw Error("training clips of " + std::to_string(st.frames) +
                " frames exceed the model's max_frames (" + std::to_string(model.max_frames) + ")");
  if (!dataset.frames.defined() || dataset.clips.empty()) throw Error("the dataset is empty");
  st.latent = dataset.latents.defined();
  if (st.latent) {
    const auto& z = dataset.latents;
    if (z.dim() != 4 || z.size(0) != dataset.frame_count() || z.size(1) != model.channels ||
        z.size(2) != model.height || z.size(3) != model.width)
      throw Error("the dataset's latents do not fit the model '" + model.name + "' (" +
                  std::to_string(model.channels) + " channels at " + std::to_string(model.width) +
                  "x" + std::to_string(model.height) + ")");
    if (!dataset.latents_flipped.defined() || dataset.latents_flipped.sizes() != z.sizes())
      throw Error("the dataset's flipped latents are missing");
  } else if (model.channels != 3) {
    throw Error("the model '" + model.name +
                "' runs on latents: encode the dataset with its "
                "autoencoder first (dforce train --autoencoder FILE)");
  } else if (dataset.width() != model.width || dataset.height() != model.height)
    throw Error("the dataset is " + std::to_string(dataset.width()) + "x" +
                std::to_string(dataset.height()) + " but the model '" + model.name + "' takes " +
                std::to_string(model.width) + "x" + std::to_string(model.height) +
                " (pack the data with --size " + std::to_string(model.width) + "x" +
                std::to_string(model.height) + ")");
  for (const auto& c : dataset.clips) {
    st.starts.push_back(std::max<int64_t>(0, c.train_length - st.frames + 1));
    st.total_starts += st.starts.back();
  }
  if (st.total_starts == 0)
    throw Error("no clip has " + std::to_string(st.frames) +
                " training frames; the training clips are too short");
  if (settings.clip_balance != 1.0) {
    std::vector<double> weight;
    double total = 0;
    for (int64_t n : st.starts) {
      weight.push_back(n > 0 ? std::pow(static_cast<double>(n), settings.clip_balance) : 0.0);
      total += weight.back();
    }
    double running = 0;
    size_t last = 0;  // the last clip with a window
    for (size_t c = 0; c < weight.size(); ++c) {
      running += weight[c] / total;
      st.clip_cdf.push_back(running);
      if (weight[c] > 0) last = c;
    }
    // Rounding must never let u fall past the last clip that has windows (a clip without
    // windows has zero width in the CDF and is never picked).
    for (size_t c = last; c < st.clip_cdf.size(); ++c) st.clip_cdf[c] = 2.0;
  }
  st.fingerprint = dataset.fingerprint();

  // Same seed => same initial weights (reset_parameters draws from its own generator).
  st.model = Denoiser(model);
  st.model->reset_parameters(splitmix64(settings.seed));
  st.ema = Denoiser(model);
  st.model->to(st.device);
  st.ema->to(st.device);
  st.model->train();
  st.ema->eval();
  torch::NoGradGuard no_grad;
  const auto ema_named = st.ema->named_parameters();
  for (const auto& p : st.model->named_parameters())
    st.opt.add(p.key(), p.value(), ema_named[p.key()]);
  const auto ema_buffers = st.ema->named_buffers();
  for (const auto& b : st.model->named_buffers()) ema_buffers[b.key()].copy_(b.value());
}

Trainer::~Trainer() = default;

void Trainer::set_distributed(std::shared_ptr<Distributed> dist) {
  auto& st = *state_;
  if (dist && dist->world_size() > 1) {
    if (st.settings.batch_size % dist->world_size() != 0)
      throw Error("the batch of " + std::to_string(st.settings.batch_size) +
                  " clips does not divide among " + std::to_string(dist->world_size()) +
                  " processes: give --batch a multiple of the world size");
    dist->check_same("model configs", st.config.to_json());
    dist->check_same("training settings", st.settings.to_json());
    dist->check_same("datasets", {{"fingerprint", st.fingerprint}, {"frames", st.frames}});
    dist->check_same("steps", {{"step", st.step}});
    std::vector<torch::Tensor> state;
    for (auto* group : {&st.opt.params, &st.opt.ema, &st.opt.m, &st.opt.v})
      for (const auto& t : *group) state.push_back(t.detach());
    for (const auto& b : st.model->buffers()) state.push_back(b);
    for (const auto& b : st.ema->buffers()) state.push_back(b);
    dist->broadcast(state);
  }
  st.dist = dist && dist->world_size() > 1 ? std::move(dist) : nullptr;
}

const std::shared_ptr<Distributed>& Trainer::distributed() const {
  return state_->dist;
}

std::vector<size_t> Trainer::batch_clips(int64_t step) const {
  return state_->make_batch(step).clip_of;
}

int64_t Trainer::step_count() const {
  return state_->step;
}
const ModelConfig& Trainer::model_config() const {
  return state_->config;
}
const TrainSettings& Trainer::settings() const {
  return state_->settings;
}
std::string Trainer::device() const {
  return state_->device.str();
}
int Trainer::clip_frames() const {
  return state_->frames;
}
double Trainer::seconds() const {
  return state_->seconds;
}
void Trainer::add_seconds(double s) {
  state_->seconds += s;
}

int64_t Trainer::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : state_->opt.params) n += p.numel();
  return n;
}

// [SECTION] Optimiser step (AdamW + clipping + EMA) --------------------------------------

OptimizerSettings optimizer_settings(const TrainSettings& s) {
  OptimizerSettings o;
  o.learning_rate = s.learning_rate;
  o.min_learning_rate_fraction = s.min_learning_rate_fraction;
  o.warmup_steps = s.warmup_steps;
  o.schedule_steps = s.schedule_steps;
  o.weight_decay = s.weight_decay;
  o.beta1 = s.adam_beta1;
  o.beta2 = s.adam_beta2;
  o.eps = s.adam_eps;
  o.grad_clip = s.grad_clip;
  o.ema_decay = s.ema_decay;
  return o;
}

TrainStepStats Trainer::step() {
  auto& st = *state_;
  const auto& s = st.settings;
  Batch batch = st.make_batch(st.step);
  // The loss is a sum over the WHOLE batch's counted frames; a rank trains on its share.
  const auto counted = batch.mask.sum().clamp_min(1);
  if (st.dist) {
    const int64_t share = s.batch_size / st.dist->world_size();
    const int64_t first = share * st.dist->rank();
    batch.x0 = batch.x0.narrow(0, first, share);
    batch.levels = batch.levels.narrow(0, first, share);
    batch.noise = batch.noise.narrow(0, first, share);
    batch.mask = batch.mask.narrow(0, first, share);
  }
  const auto x0 = batch.x0.to(st.device);
  const auto levels = batch.levels.to(st.device);
  const auto noise = batch.noise.to(st.device);
  const auto mask = batch.mask.to(st.device);

  for (auto& p : st.opt.params) p.mutable_grad() = torch::Tensor();
  const auto x_n = st.schedule.add_noise(x0, noise, levels);
  const auto prediction = st.predict(st.model, x_n, levels);
  const auto target = st.schedule.target(st.config.objective, x0, noise, levels);
  const auto per_frame = (prediction - target).pow(2).mean({2, 3, 4});  // [B, T]
  const auto loss = (per_frame * st.loss_weights(levels) * mask).sum() / counted.to(st.device);
  loss.backward();

  TrainStepStats stats;
  stats.loss = loss.item<double>();
  if (st.dist) {
    // Summed over ranks, the shares' gradients are the one-process batch's gradients.
    st.dist->allreduce_gradients(st.opt.params);
    stats.loss = st.dist->sum(stats.loss);
  }
  if (!std::isfinite(stats.loss))
    throw Error(
        "training diverged at step " + std::to_string(st.step) +
        " (loss is not finite); lower the learning rate or resume from the last checkpoint");
  const auto opt = optimizer_settings(s);
  const double lr = learning_rate_at(opt, st.step);
  stats.learning_rate = lr;
  stats.grad_norm = adamw_update(st.opt, opt, st.step, lr);
  ++st.step;
  stats.step = st.step;
  return stats;
}

double Trainer::measure_step_seconds(int repeats) {
  auto& st = *state_;
  double best = 1e30;
  for (int r = 0; r < std::max(1, repeats); ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    Batch batch = st.make_batch(kMeasureStep);
    const auto x0 = batch.x0.to(st.device);
    const auto levels = batch.levels.to(st.device);
    const auto noise = batch.noise.to(st.device);
    const auto x_n = st.schedule.add_noise(x0, noise, levels);
    const auto prediction = st.predict(st.model, x_n, levels);
    const auto target = st.schedule.target(st.config.objective, x0, noise, levels);
    (prediction - target).pow(2).mean().backward();
    for (auto& p : st.opt.params) p.mutable_grad() = torch::Tensor();
    if (st.device.is_cuda()) torch::cuda::synchronize();
    best = std::min(best,
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  return best;
}

torch::Tensor Trainer::frame_losses(const torch::Tensor& x0, const torch::Tensor& levels,
                                    const torch::Tensor& noise, bool use_ema) {
  auto& st = *state_;
  torch::NoGradGuard no_grad;
  auto& net = use_ema ? st.ema : st.model;
  const bool was_training = net->is_training();
  net->eval();
  const auto x = x0.to(st.device), l = levels.to(st.device), n = noise.to(st.device);
  const auto x_n = st.schedule.add_noise(x, n, l);
  const auto prediction = st.predict(net, x_n, l);
  const auto target = st.schedule.target(st.config.objective, x, n, l);
  if (was_training) net->train();
  return (prediction - target).pow(2).mean({2, 3, 4}).cpu();
}

// [SECTION] Checkpoints and export -------------------------------------------------------

CheckpointInfo read_checkpoint_info(const std::string& path) {
  TensorFile file;
  try {
    file = load_safetensors(path);
  } catch (const Error& e) {
    throw Error(std::string("cannot read checkpoint: ") + e.what());
  }
  auto meta = [&](const char* key) -> const std::string& {
    auto it = file.metadata.find(key);
    if (it == file.metadata.end())
      throw Error("checkpoint '" + path + "' has no '" + key +
                  "' metadata — is it a training checkpoint?");
    return it->second;
  };
  if (meta("format") != kCheckpointFormat)
    throw Error("'" + path + "' is not a training checkpoint (format '" + meta("format") + "')");
  CheckpointInfo info;
  try {
    info.model = ModelConfig::from_json(nlohmann::json::parse(meta("model_config")));
    info.train = TrainSettings::from_json(nlohmann::json::parse(meta("train_settings")));
    info.step = std::stoll(meta("step"));
    info.seconds = std::stod(meta("seconds"));
    info.dataset_fingerprint = meta("dataset");
    info.extra = nlohmann::json::parse(meta("extra"));
  } catch (const nlohmann::json::exception& e) {
    throw Error("checkpoint '" + path + "': bad metadata: " + e.what());
  } catch (const std::logic_error& e) {  // stoll / stod
    throw Error("checkpoint '" + path + "': bad step or time in the metadata");
  }
  if (info.step < 0) throw Error("checkpoint '" + path + "': negative step");
  return info;
}

void Trainer::save_checkpoint(const std::string& path, const nlohmann::json& extra) const {
  const auto& st = *state_;
  TensorFile file;
  detail::add_optimizer_tensors(st.opt, file.tensors);
  for (const auto& b : st.model->named_buffers())
    file.tensors["buffer." + b.key()] = b.value().cpu().contiguous();
  file.metadata["format"] = kCheckpointFormat;
  file.metadata["model_config"] = st.config.to_json().dump();
  file.metadata["train_settings"] = st.settings.to_json().dump();
  file.metadata["step"] = std::to_string(st.step);
  file.metadata["seconds"] = std::to_string(st.seconds);
  file.metadata["dataset"] = st.fingerprint;
  file.metadata["extra"] = extra.is_null() ? "{}" : extra.dump();
  save_safetensors(path, file);
}

void Trainer::load_checkpoint(const std::string& path) {
  auto& st = *state_;
  const auto info = read_checkpoint_info(path);
  std::string diff = detail::json_diff(st.config.to_json(), info.model.to_json(), "model.");
  const auto diff_train = detail::json_diff(st.settings.to_json(), info.train.to_json(), "train.");
  if (!diff_train.empty()) diff += (diff.empty() ? "" : "; ") + diff_train;
  if (!diff.empty())
    throw Error(
        "refusing to resume from '" + path + "': its configuration differs (" + diff +
        "). Resume with the same --config and options, or start a new run without --resume.");
  if (info.dataset_fingerprint != st.fingerprint)
    throw Error("refusing to resume from '" + path + "': it was trained on different data (" +
                info.dataset_fingerprint + ", this dataset is " + st.fingerprint + ")");
  const TensorFile file = load_safetensors(path);
  detail::load_optimizer_tensors(st.opt, file.tensors, path);
  torch::NoGradGuard no_grad;
  auto fetch = [&](const std::string& name, const torch::Tensor& like) {
    return detail::checkpoint_tensor(file.tensors, name, like, path);
  };
  const auto ema_buffers = st.ema->named_buffers();
  for (const auto& b : st.model->named_buffers()) {
    b.value().copy_(fetch("buffer." + b.key(), b.value()));
    ema_buffers[b.key()].copy_(b.value());
  }
  st.step = info.step;
  st.seconds = info.seconds;
}

void Trainer::load_weights(const std::string& model_path) {
  auto& st = *state_;
  auto loaded = load_denoiser(model_path);
  if (loaded.config.to_json() != st.config.to_json()) {
    // Fine-tuning may rename the model; everything else must match.
    auto a = loaded.config.to_json(), b = st.config.to_json();
    a.erase("name");
    b.erase("name");
    if (a != b)
      throw Error("cannot start from '" + model_path + "': its architecture differs (" +
                  detail::json_diff(b, a, "model.") + ")");
  }
  torch::NoGradGuard no_grad;
  const auto src = loaded.net->named_parameters();
  for (size_t i = 0; i < st.opt.params.size(); ++i) {
    st.opt.params[i].copy_(src[st.opt.names[i]]);
    st.opt.ema[i].copy_(src[st.opt.names[i]]);
  }
}

void Trainer::export_model(const std::string& path, const nlohmann::json& provenance) const {
  const auto& st = *state_;
  Denoiser ema = st.ema;  // a holder copy: save_model takes a non-const module
  if (st.latent && !st.autoencoder)
    throw Error("a latent model needs its autoencoder to be written (set_autoencoder)");
  Autoencoder ae = st.autoencoder;
  save_model(path, ema, st.config, provenance, st.latent ? &ae : nullptr);
}

void Trainer::set_autoencoder(Autoencoder ae) {
  state_->autoencoder = std::move(ae);
}

// [SECTION] Training loop ----------------------------------------------------------------

TrainLoopResult run_training(Trainer& trainer, const TrainLoopOptions& options) {
  return detail::run_loop(trainer, options, trainer.settings().batch_size);
}

}  // namespace dfs::diffusion::train
