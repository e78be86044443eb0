// The diffusion-forcing trainer: batches, per-frame levels, weighted loss, AdamW, EMA,
// checkpoints. See trainer.h for the formulas' sources; the settings and recipes are in
// train_settings.cpp, what the autoencoder trainer shares in train_common.cpp.
//
// Index
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

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model_file.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs/diffusion/weights.h"
#include "train_common.h"

namespace dfs::diffusion::train {

// [SECTION] Deterministic per-step randomness --------------------------------------------

namespace {

using detail::kStreamData;
using detail::kStreamNoise;
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

struct Trainer::State : detail::TrainerCore {
  ModelConfig config;
  TrainSettings settings;
  NoiseSchedule schedule;
  Denoiser model{nullptr};
  Denoiser ema{nullptr};
  int frames = 0;                    // T, frames per training clip
  bool latent = false;               // the model runs on dataset->latents
  Autoencoder autoencoder{nullptr};  // latent models: written with the exported model
  // Valid window starts: clip c contributes starts [0, starts[c]).
  std::vector<int64_t> starts;
  int64_t total_starts = 0;
  std::vector<double> clip_cdf;       // clip_balance != 1: cumulative clip probabilities
  std::shared_ptr<Distributed> dist;  // data-parallel: this rank's share of each batch

  Batch make_batch(int64_t step_index) const;
  torch::Tensor loss_weights(const torch::Tensor& levels) const;
  torch::Tensor predict(Denoiser& net, const torch::Tensor& x_n, const torch::Tensor& levels) const;
  detail::RunRecord record() const override;
  void add_own_tensors(std::map<std::string, torch::Tensor>& tensors) const override;
  void load_own_tensors(const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& path) override;
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
  detail::make_model_and_ema(st.model, st.ema, model, settings.seed, st.device);
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
  return state_->parameter_count();
}

// [SECTION] Optimiser step (AdamW + clipping + EMA) --------------------------------------

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

  double loss_value = loss.item<double>();
  if (st.dist) {
    // Summed over ranks, the shares' gradients are the one-process batch's gradients.
    st.dist->allreduce_gradients(st.opt.params);
    loss_value = st.dist->sum(loss_value);
  }
  return st.finish_step(loss_value, optimizer_settings(s), "training");
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

const detail::CheckpointKind kTrainingCheckpoint(
    kCheckpointFormat, "model",
    "checkpoint '%s' has no '%s' metadata — is it a training checkpoint?",
    "'%s' is not a training checkpoint (format '%s')",
    "Resume with the same --config and options, or start a new run without --resume.",
    /*has_extra=*/true);

CheckpointInfo read_checkpoint_info(const std::string& path) {
  const auto h =
      detail::read_checkpoint_header<ModelConfig, TrainSettings>(path, kTrainingCheckpoint);
  if (h.step < 0) throw Error("checkpoint '" + path + "': negative step");
  return {h.config, h.settings, h.step, h.dataset, h.seconds, h.extra};
}

detail::RunRecord Trainer::State::record() const {
  return {config.to_json(), settings.to_json(), fingerprint};
}

void Trainer::State::add_own_tensors(std::map<std::string, torch::Tensor>& tensors) const {
  for (const auto& b : model->named_buffers())
    tensors["buffer." + b.key()] = b.value().cpu().contiguous();
}

void Trainer::State::load_own_tensors(const std::map<std::string, torch::Tensor>& tensors,
                                      const std::string& path) {
  torch::NoGradGuard no_grad;
  const auto ema_buffers = ema->named_buffers();
  for (const auto& b : model->named_buffers()) {
    b.value().copy_(detail::checkpoint_tensor(tensors, "buffer." + b.key(), b.value(), path));
    ema_buffers[b.key()].copy_(b.value());
  }
}

void Trainer::save_checkpoint(const std::string& path, const nlohmann::json& extra) const {
  state_->save_checkpoint(path, kTrainingCheckpoint, extra);
}

void Trainer::load_checkpoint(const std::string& path) {
  const auto info = read_checkpoint_info(path);
  state_->load_checkpoint(path, kTrainingCheckpoint,
                          {info.model.to_json(), info.train.to_json(), info.dataset_fingerprint},
                          info.step, info.seconds);
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
