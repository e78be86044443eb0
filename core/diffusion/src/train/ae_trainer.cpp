// Training and evaluating the latent autoencoder (see ae_trainer.h).
//
// Index
//   [SECTION] Settings and presets
//   [SECTION] Losses
//   [SECTION] Trainer
//   [SECTION] Checkpoints and the finished autoencoder
//   [SECTION] Evaluation
#include "dfs/diffusion/train/ae_trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <random>
#include <set>
#include <sstream>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs/diffusion/train/eval.h"
#include "dfs/diffusion/weights.h"
#include "train_common.h"

namespace dfs::diffusion::train {

// [SECTION] Settings and presets ---------------------------------------------------------

nlohmann::json AutoencoderTrainSettings::to_json() const {
  const auto& o = optimizer;
  return {{"learning_rate", o.learning_rate},
          {"min_learning_rate_fraction", o.min_learning_rate_fraction},
          {"warmup_steps", o.warmup_steps},
          {"schedule_steps", o.schedule_steps},
          {"weight_decay", o.weight_decay},
          {"adam_beta1", o.beta1},
          {"adam_beta2", o.beta2},
          {"adam_eps", o.eps},
          {"grad_clip", o.grad_clip},
          {"ema_decay", o.ema_decay},
          {"batch_size", batch_size},
          {"crop", crop},
          {"l1_weight", l1_weight},
          {"gradient_weight", gradient_weight},
          {"ssim_weight", ssim_weight},
          {"latent_noise", latent_noise},
          {"p_flip", p_flip},
          {"seed", seed},
          {"decoder_only", decoder_only},
          {"adversarial_weight", adversarial_weight}};
}

AutoencoderTrainSettings AutoencoderTrainSettings::from_json(const nlohmann::json& j) {
  AutoencoderTrainSettings s;
  auto& o = s.optimizer;
  try {
    o.learning_rate = j.value("learning_rate", o.learning_rate);
    o.min_learning_rate_fraction =
        j.value("min_learning_rate_fraction", o.min_learning_rate_fraction);
    o.warmup_steps = j.value("warmup_steps", o.warmup_steps);
    o.schedule_steps = j.value("schedule_steps", o.schedule_steps);
    o.weight_decay = j.value("weight_decay", o.weight_decay);
    o.beta1 = j.value("adam_beta1", o.beta1);
    o.beta2 = j.value("adam_beta2", o.beta2);
    o.eps = j.value("adam_eps", o.eps);
    o.grad_clip = j.value("grad_clip", o.grad_clip);
    o.ema_decay = j.value("ema_decay", o.ema_decay);
    s.batch_size = j.value("batch_size", s.batch_size);
    s.crop = j.value("crop", s.crop);
    s.l1_weight = j.value("l1_weight", s.l1_weight);
    s.gradient_weight = j.value("gradient_weight", s.gradient_weight);
    s.ssim_weight = j.value("ssim_weight", s.ssim_weight);
    s.latent_noise = j.value("latent_noise", s.latent_noise);
    s.p_flip = j.value("p_flip", s.p_flip);
    s.seed = j.value("seed", s.seed);
    s.decoder_only = j.value("decoder_only", s.decoder_only);
    s.adversarial_weight = j.value("adversarial_weight", s.adversarial_weight);
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("autoencoder training settings: ") + e.what());
  }
  s.validate();
  return s;
}

void AutoencoderTrainSettings::validate() const {
  auto require = [](bool ok, const std::string& what) {
    if (!ok) throw Error("autoencoder training settings: " + what);
  };
  const auto& o = optimizer;
  require(o.learning_rate > 0 && o.learning_rate < 1, "learning_rate must be in (0, 1)");
  require(o.min_learning_rate_fraction >= 0 && o.min_learning_rate_fraction <= 1,
          "min_learning_rate_fraction must be in [0, 1]");
  require(o.warmup_steps >= 0 && o.schedule_steps >= 1, "warm-up >= 0 and schedule_steps >= 1");
  require(o.weight_decay >= 0 && o.weight_decay < 1, "weight_decay must be in [0, 1)");
  require(o.beta1 >= 0 && o.beta1 < 1 && o.beta2 >= 0 && o.beta2 < 1, "Adam betas in [0, 1)");
  require(o.eps > 0 && o.ema_decay >= 0 && o.ema_decay < 1, "adam_eps > 0, ema_decay in [0, 1)");
  require(batch_size >= 1 && batch_size <= 4096, "batch_size must be in 1..4096");
  require(crop >= 8 && crop <= 4096 && crop % kLatentFactor == 0,
          "crop must be a multiple of 8 in 8..4096");
  require(l1_weight >= 0 && gradient_weight >= 0 && ssim_weight >= 0 &&
              l1_weight + gradient_weight + ssim_weight > 0,
          "loss weights must be >= 0 and not all 0");
  require(latent_noise >= 0 && latent_noise <= 1, "latent_noise must be in [0, 1]");
  require(p_flip >= 0 && p_flip <= 1, "p_flip must be a probability");
  require(adversarial_weight >= 0 && adversarial_weight <= 10,
          "adversarial_weight must be in [0, 10]");
}

// [SECTION] Losses -----------------------------------------------------------------------

namespace {

torch::Tensor gaussian_taps(int size, double sigma) {
  auto x = torch::arange(size, torch::kFloat32) - (size - 1) / 2.0;
  auto g = torch::exp(-x.pow(2) / (2 * sigma * sigma));
  return g / g.sum();
}

// Mean SSIM (Wang et al. 2004, Eq. 13; C1 = 0.01^2, C2 = 0.03^2 for data range 1) of images
// in [0, 1], [N, 3, H, W], with a separable 11-tap Gaussian (sigma 1.5), valid region only.
torch::Tensor ssim_loss_term(const torch::Tensor& a, const torch::Tensor& b) {
  namespace F = torch::nn::functional;
  const int size = static_cast<int>(std::min<int64_t>(11, std::min(a.size(2), a.size(3))));
  const auto g = gaussian_taps(size, 1.5).to(a.device(), a.scalar_type());
  const auto gx = g.view({1, 1, 1, size}).repeat({3, 1, 1, 1});
  const auto gy = g.view({1, 1, size, 1}).repeat({3, 1, 1, 1});
  auto blur = [&](const torch::Tensor& t) {
    return F::conv2d(F::conv2d(t, gx, F::Conv2dFuncOptions().groups(3)), gy,
                     F::Conv2dFuncOptions().groups(3));
  };
  constexpr double c1 = 0.01 * 0.01, c2 = 0.03 * 0.03;
  const auto ma = blur(a), mb = blur(b);
  const auto saa = blur(a * a) - ma * ma;
  const auto sbb = blur(b * b) - mb * mb;
  const auto sab = blur(a * b) - ma * mb;
  const auto map =
      ((2 * ma * mb + c1) * (2 * sab + c2)) / ((ma * ma + mb * mb + c1) * (saa + sbb + c2));
  return map.mean();
}

torch::Tensor gradient_l1(const torch::Tensor& a, const torch::Tensor& b) {
  auto dy = [](const torch::Tensor& t) {
    return t.narrow(2, 1, t.size(2) - 1) - t.narrow(2, 0, t.size(2) - 1);
  };
  auto dx = [](const torch::Tensor& t) {
    return t.narrow(3, 1, t.size(3) - 1) - t.narrow(3, 0, t.size(3) - 1);
  };
  return (dy(a) - dy(b)).abs().mean() + (dx(a) - dx(b)).abs().mean();
}

}  // namespace

// [SECTION] Trainer ----------------------------------------------------------------------

PatchDiscriminatorImpl::PatchDiscriminatorImpl() {
  auto conv = [](int in, int out, int k, int stride) {
    return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).stride(stride).padding(1));
  };
  auto act = [] { return torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)); };
  net = register_module("net",
                        torch::nn::Sequential(conv(3, 32, 4, 2), act(), conv(32, 64, 4, 2), act(),
                                              conv(64, 128, 4, 2), act(), conv(128, 1, 3, 1)));
}

torch::Tensor PatchDiscriminatorImpl::forward(const torch::Tensor& rgb) {
  return net->forward(rgb);
}

struct AutoencoderTrainer::State {
  AutoencoderConfig config;
  AutoencoderTrainSettings settings;
  const VideoDataset* dataset = nullptr;
  std::string fingerprint;
  torch::Device device{torch::kCPU};
  Autoencoder model{nullptr};
  Autoencoder ema{nullptr};
  AdamWState opt;
  PatchDiscriminator disc{nullptr};  // adversarial_weight > 0 only
  AutoencoderConfig frozen;          // decoder_only: the starting autoencoder's statistics
  AdamWState disc_opt;
  std::vector<int64_t> train_frames;  // dataset frame indices the trainer may draw
  int64_t step = 0;
  double seconds = 0;

  torch::Tensor make_batch(int64_t step_index, at::Generator& gen) const;
};

torch::Tensor AutoencoderTrainer::State::make_batch(int64_t step_index, at::Generator& gen) const {
  const auto& s = settings;
  std::mt19937_64 rng(detail::step_seed(s.seed, step_index, detail::kStreamData));
  std::uniform_real_distribution<double> u01(0.0, 1.0);
  (void)gen;
  const int64_t h = dataset->height(), w = dataset->width(), c = s.crop;
  std::vector<torch::Tensor> crops;
  for (int b = 0; b < s.batch_size; ++b) {
    const int64_t f = train_frames[rng() % train_frames.size()];
    const int64_t y0 = static_cast<int64_t>(rng() % static_cast<uint64_t>(h - c + 1));
    const int64_t x0 = static_cast<int64_t>(rng() % static_cast<uint64_t>(w - c + 1));
    auto crop = dataset->frames[f].narrow(0, y0, c).narrow(1, x0, c);  // [c, c, 3] uint8
    if (u01(rng) < s.p_flip) crop = crop.flip({1});
    crops.push_back(crop);
  }
  return uint8_to_float(torch::stack(crops));  // [B, 3, c, c]
}

AutoencoderTrainer::AutoencoderTrainer(const AutoencoderConfig& config,
                                       const AutoencoderTrainSettings& settings,
                                       const VideoDataset& dataset, const std::string& device)
    : state_(std::make_unique<State>()) {
  auto& st = *state_;
  settings.validate();
  st.config = config;
  st.config.latent_mean.clear();  // measured at the end, from these weights
  st.config.latent_std.clear();
  st.settings = settings;
  st.dataset = &dataset;
  st.device = parse_device(device);
  if (!dataset.frames.defined() || dataset.clips.empty()) throw Error("the dataset is empty");
  if (dataset.width() % kLatentFactor != 0 || dataset.height() % kLatentFactor != 0)
    throw Error("the autoencoder needs frames whose sides are multiples of 8; the dataset is " +
                std::to_string(dataset.width()) + "x" + std::to_string(dataset.height()));
  if (settings.crop > std::min(dataset.width(), dataset.height()))
    throw Error("crop " + std::to_string(settings.crop) + " is larger than the dataset's frames (" +
                std::to_string(dataset.width()) + "x" + std::to_string(dataset.height()) + ")");
  for (const auto& c : dataset.clips)
    for (int64_t i = 0; i < c.train_length; ++i) st.train_frames.push_back(c.first + i);
  if (st.train_frames.empty()) throw Error("the dataset has no training frames");
  st.fingerprint = dataset.fingerprint();
  st.model = Autoencoder(st.config);
  st.model->reset_parameters(detail::splitmix64(settings.seed));
  st.ema = Autoencoder(st.config);
  st.model->to(st.device);
  st.ema->to(st.device);
  st.model->train();
  st.ema->eval();
  const auto ema_named = st.ema->named_parameters();
  for (const auto& p : st.model->named_parameters()) {
    const bool preview = p.key().rfind("preview.", 0) == 0;  // fitted, not trained
    const bool frozen = settings.decoder_only && p.key().rfind("encoder.", 0) == 0;
    if (!preview && !frozen) {
      st.opt.add(p.key(), p.value(), ema_named[p.key()]);
    } else {
      p.value().set_requires_grad(false);
    }
  }
  if (settings.adversarial_weight > 0) {
    st.disc = PatchDiscriminator();
    {
      torch::NoGradGuard no_grad;
      auto g = at::detail::createCPUGenerator(detail::splitmix64(settings.seed + 1));
      for (auto& p : st.disc->parameters())
        p.copy_(p.dim() >= 2 ? torch::randn(p.sizes(), g) * 0.02 : torch::zeros(p.sizes()));
    }
    st.disc->to(st.device);
    PatchDiscriminator disc_ema;  // the optimiser keeps an EMA; unused for the discriminator
    disc_ema->to(st.device);
    const auto named = disc_ema->named_parameters();
    for (const auto& p : st.disc->named_parameters())
      st.disc_opt.add("disc." + p.key(), p.value(), named[p.key()]);
  }
}

void AutoencoderTrainer::load_weights(Autoencoder& from) {
  auto& st = *state_;
  auto a = from->config().to_json(), b = st.config.to_json();
  for (auto* j : {&a, &b}) {
    j->erase("latent_mean");
    j->erase("latent_std");
    j->erase("latent_clamp");
  }
  if (a != b) throw Error("cannot start from that autoencoder: its architecture differs");
  torch::NoGradGuard no_grad;
  const auto src = from->named_parameters();
  for (auto& p : st.model->named_parameters()) p.value().copy_(src[p.key()].to(st.device));
  for (size_t i = 0; i < st.opt.params.size(); ++i) st.opt.ema[i].copy_(st.opt.params[i]);
  const auto ema = st.ema->named_parameters();
  for (const auto& p : st.model->named_parameters()) ema[p.key()].copy_(p.value());
  st.frozen = from->config();
}

AutoencoderTrainer::~AutoencoderTrainer() = default;

int64_t AutoencoderTrainer::step_count() const {
  return state_->step;
}
int AutoencoderTrainer::batch_size() const {
  return state_->settings.batch_size;
}
double AutoencoderTrainer::seconds() const {
  return state_->seconds;
}
void AutoencoderTrainer::add_seconds(double s) {
  state_->seconds += s;
}
std::string AutoencoderTrainer::device() const {
  return state_->device.str();
}
const AutoencoderConfig& AutoencoderTrainer::config() const {
  return state_->config;
}
const AutoencoderTrainSettings& AutoencoderTrainer::settings() const {
  return state_->settings;
}
int64_t AutoencoderTrainer::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : state_->opt.params) n += p.numel();
  return n;
}

TrainStepStats AutoencoderTrainer::step() {
  auto& st = *state_;
  const auto& s = st.settings;
  auto gen =
      at::detail::createCPUGenerator(detail::step_seed(s.seed, st.step, detail::kStreamNoise));
  const auto x = st.make_batch(st.step, gen).to(st.device);
  auto z = st.model->encode_raw(x);
  if (s.latent_noise > 0) {
    const auto noise = torch::randn(z.sizes(), gen).to(st.device);
    z = z + s.latent_noise * z.detach().std() * noise;
  }
  const auto y = st.model->decode_raw(z);
  auto loss = s.l1_weight * (y - x).abs().mean();
  if (s.gradient_weight > 0) loss = loss + s.gradient_weight * gradient_l1(y, x);
  if (s.ssim_weight > 0)
    loss = loss + s.ssim_weight * (1 - ssim_loss_term((y.clamp(-1, 1) + 1) / 2, (x + 1) / 2));
  if (st.disc) {
    // Discriminator step (hinge loss, Lim & Ye 2017): real crops up, decoded crops down.
    const auto d_loss = torch::relu(1 - st.disc->forward(x)).mean() +
                        torch::relu(1 + st.disc->forward(y.detach())).mean();
    d_loss.backward();
    OptimizerSettings dopt = s.optimizer;
    dopt.weight_decay = 0;
    dopt.beta1 = 0.5;
    adamw_update(st.disc_opt, dopt, st.step, learning_rate_at(s.optimizer, st.step));
    // Generator term, weighted adaptively (VQGAN Eq. 7): the ratio of the reconstruction's and
    // the adversarial loss's gradient norms at the decoder's last layer.
    const auto g_loss = -st.disc->forward(y).mean();
    const auto decoder_params = st.model->decoder->parameters();
    const auto last = decoder_params[decoder_params.size() - 2];  // the head conv's weight
    const auto grad_rec = torch::autograd::grad({loss}, {last}, {}, /*retain_graph=*/true)[0];
    const auto grad_adv = torch::autograd::grad({g_loss}, {last}, {}, /*retain_graph=*/true)[0];
    const double w =
        std::min(1e4, grad_rec.norm().item<double>() / (grad_adv.norm().item<double>() + 1e-4)) *
        s.adversarial_weight;
    loss = loss + w * g_loss;
    for (auto& p : st.disc->parameters()) p.mutable_grad() = torch::Tensor();
  }
  loss.backward();
  if (st.disc)
    for (auto& p : st.disc->parameters()) p.mutable_grad() = torch::Tensor();
  TrainStepStats stats;
  stats.loss = loss.item<double>();
  if (!std::isfinite(stats.loss))
    throw Error(
        "autoencoder training diverged at step " + std::to_string(st.step) +
        " (loss is not finite); lower the learning rate or resume from the last checkpoint");
  const double lr = learning_rate_at(s.optimizer, st.step);
  stats.learning_rate = lr;
  stats.grad_norm = adamw_update(st.opt, s.optimizer, st.step, lr);
  ++st.step;
  stats.step = st.step;
  return stats;
}

// [SECTION] Checkpoints and the finished autoencoder -------------------------------------

AutoencoderCheckpointInfo read_autoencoder_checkpoint_info(const std::string& path) {
  TensorFile file;
  try {
    file = load_safetensors(path);
  } catch (const Error& e) {
    throw Error(std::string("cannot read checkpoint: ") + e.what());
  }
  auto meta = [&](const char* key) -> const std::string& {
    const auto it = file.metadata.find(key);
    if (it == file.metadata.end())
      throw Error("'" + path + "' has no '" + key +
                  "' metadata — is it an autoencoder checkpoint?");
    return it->second;
  };
  if (meta("format") != kAutoencoderCheckpointFormat)
    throw Error("'" + path + "' is not an autoencoder training checkpoint (format '" +
                meta("format") + "')");
  AutoencoderCheckpointInfo info;
  try {
    info.config = AutoencoderConfig::from_json(nlohmann::json::parse(meta("autoencoder_config")));
    info.settings =
        AutoencoderTrainSettings::from_json(nlohmann::json::parse(meta("train_settings")));
    info.step = std::stoll(meta("step"));
    info.seconds = std::stod(meta("seconds"));
    info.dataset_fingerprint = meta("dataset");
  } catch (const nlohmann::json::exception& e) {
    throw Error("checkpoint '" + path + "': bad metadata: " + e.what());
  } catch (const std::logic_error&) {
    throw Error("checkpoint '" + path + "': bad step or time in the metadata");
  }
  return info;
}

void AutoencoderTrainer::save_checkpoint(const std::string& path,
                                         const nlohmann::json& extra) const {
  const auto& st = *state_;
  TensorFile file;
  detail::add_optimizer_tensors(st.opt, file.tensors);
  if (st.disc) detail::add_optimizer_tensors(st.disc_opt, file.tensors);
  if (st.settings.decoder_only)  // the frozen encoder is not in the optimiser
    for (const auto& p : st.model->encoder->named_parameters())
      file.tensors["frozen.encoder." + p.key()] = p.value().detach().cpu().contiguous();
  file.metadata["format"] = kAutoencoderCheckpointFormat;
  file.metadata["autoencoder_config"] = st.config.to_json().dump();
  file.metadata["train_settings"] = st.settings.to_json().dump();
  file.metadata["step"] = std::to_string(st.step);
  file.metadata["seconds"] = std::to_string(st.seconds);
  file.metadata["dataset"] = st.fingerprint;
  file.metadata["extra"] = extra.is_null() ? "{}" : extra.dump();
  save_safetensors(path, file);
}

void AutoencoderTrainer::load_checkpoint(const std::string& path) {
  auto& st = *state_;
  const auto info = read_autoencoder_checkpoint_info(path);
  std::string diff = detail::json_diff(st.config.to_json(), info.config.to_json(), "autoencoder.");
  const auto diff_train =
      detail::json_diff(st.settings.to_json(), info.settings.to_json(), "train.");
  if (!diff_train.empty()) diff += (diff.empty() ? "" : "; ") + diff_train;
  if (!diff.empty())
    throw Error("refusing to resume from '" + path + "': its configuration differs (" + diff +
                "). Resume with the same options, or start a new run without --resume.");
  if (info.dataset_fingerprint != st.fingerprint)
    throw Error("refusing to resume from '" + path + "': it was trained on different data (" +
                info.dataset_fingerprint + ", this dataset is " + st.fingerprint + ")");
  const TensorFile file = load_safetensors(path);
  detail::load_optimizer_tensors(st.opt, file.tensors, path);
  if (st.disc) detail::load_optimizer_tensors(st.disc_opt, file.tensors, path);
  if (st.settings.decoder_only) {
    torch::NoGradGuard no_grad;
    for (auto& p : st.model->encoder->named_parameters()) {
      p.value().copy_(
          detail::checkpoint_tensor(file.tensors, "frozen.encoder." + p.key(), p.value(), path));
      st.ema->encoder->named_parameters()[p.key()].copy_(p.value());
    }
  }
  st.step = info.step;
  st.seconds = info.seconds;
}

Autoencoder AutoencoderTrainer::finished(int frames, double* preview_psnr) const {
  const auto& st = *state_;
  torch::NoGradGuard no_grad;
  Autoencoder ae(st.config);
  const auto src = st.ema->named_parameters();
  for (auto& p : ae->named_parameters())
    if (p.key().rfind("preview.", 0) != 0) p.value().copy_(src[p.key()].to(torch::kCPU));
  ae->eval();
  // Frames spread evenly over the training frames.
  const int64_t n = std::min<int64_t>(frames, static_cast<int64_t>(st.train_frames.size()));
  std::vector<int64_t> pick;
  for (int64_t i = 0; i < n; ++i)
    pick.push_back(
        st.train_frames[static_cast<size_t>(i * static_cast<int64_t>(st.train_frames.size()) / n)]);
  const auto x = uint8_to_float(st.dataset->frames.index_select(0, torch::tensor(pick)));
  // Per-channel statistics of the bounded latents (over frames and positions).
  std::vector<torch::Tensor> zs;
  for (int64_t i = 0; i < n; i += 16)
    zs.push_back(ae->encode_raw(x.narrow(0, i, std::min<int64_t>(16, n - i))));
  const auto z = torch::cat(zs).to(torch::kFloat64);
  const auto mean = z.mean({0, 2, 3});
  const auto std = z.std({0, 2, 3}, /*unbiased=*/false).clamp_min(1e-4);
  std::vector<double> m(mean.data_ptr<double>(), mean.data_ptr<double>() + mean.numel());
  std::vector<double> sd(std.data_ptr<double>(), std.data_ptr<double>() + std.numel());
  const auto normalised = (z - mean.view({1, -1, 1, 1})) / std.view({1, -1, 1, 1});
  // The sampler clamps x0 estimates to a little beyond the largest normalised latent seen.
  const double clamp = std::max(3.0, 1.25 * normalised.abs().max().item<double>());
  if (st.settings.decoder_only && st.frozen.normalised())
    // The latent space stays exactly the one a transformer was trained on.
    ae->set_statistics(st.frozen.latent_mean, st.frozen.latent_std, st.frozen.latent_clamp);
  else
    ae->set_statistics(m, sd, std::min(clamp, 100.0));
  const double psnr = fit_preview(ae, x);
  if (preview_psnr != nullptr) *preview_psnr = psnr;
  return ae;
}

TrainLoopResult run_training(AutoencoderTrainer& trainer, const TrainLoopOptions& options) {
  return detail::run_loop(trainer, options, trainer.batch_size());
}

// [SECTION] Encoding a dataset for a latent model ----------------------------------------

std::string autoencoder_fingerprint(Autoencoder& ae) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  };
  const auto config = ae->config().to_json().dump();
  mix(config.data(), config.size());
  for (const auto& p : ae->named_parameters()) {
    const auto t = p.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    mix(p.key().data(), p.key().size());
    mix(t.data_ptr<float>(), static_cast<size_t>(t.numel()) * sizeof(float));
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void encode_dataset(VideoDataset& data, Autoencoder& ae, const std::string& cache,
                    const std::function<void(const std::string&)>& log) {
  if (data.width() % kLatentFactor != 0 || data.height() % kLatentFactor != 0)
    throw Error("latent models need frames whose sides are multiples of 8; the dataset is " +
                std::to_string(data.width()) + "x" + std::to_string(data.height()));
  const std::string key = data.fingerprint() + "/" + autoencoder_fingerprint(ae);
  if (!cache.empty() && std::filesystem::exists(cache)) {
    try {
      const auto file = load_safetensors(cache);
      const auto it = file.metadata.find("key");
      if (it != file.metadata.end() && it->second == key && file.tensors.count("latents") &&
          file.tensors.count("latents_flipped")) {
        data.latents = file.tensors.at("latents").to(torch::kFloat32);
        data.latents_flipped = file.tensors.at("latents_flipped").to(torch::kFloat32);
        if (data.latents.size(0) == data.frame_count()) {
          if (log) log("latents from " + cache);
          return;
        }
      }
    } catch (const Error&) {
      // An unreadable cache is rebuilt below.
    }
  }
  torch::NoGradGuard no_grad;
  ae->eval();
  const auto device = ae->parameters().front().device();
  const int64_t n = data.frame_count();
  const int64_t c = ae->config().latent_channels;
  data.latents = torch::empty({n, c, data.height() / kLatentFactor, data.width() / kLatentFactor});
  data.latents_flipped = torch::empty_like(data.latents);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; i += 32) {
    const int64_t k = std::min<int64_t>(32, n - i);
    const auto x = frames_to_float(data, i, k).to(device);
    data.latents.narrow(0, i, k).copy_(ae->encode(x).cpu());
    data.latents_flipped.narrow(0, i, k).copy_(ae->encode(x.flip({3})).cpu());
    if (log && (i / 32) % 64 == 63)
      log("encoded " + std::to_string(i + k) + " / " + std::to_string(n) + " frames");
  }
  if (log) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char line[128];
    std::snprintf(line, sizeof line, "encoded %lld frames (and their mirror images) in %.0f s",
                  static_cast<long long>(n), s);
    log(line);
  }
  if (!cache.empty()) {
    TensorFile file;
    file.metadata["format"] = "dfs-latent-cache";
    file.metadata["key"] = key;
    file.tensors["latents"] = data.latents.to(torch::kFloat16);
    file.tensors["latents_flipped"] = data.latents_flipped.to(torch::kFloat16);
    save_safetensors(cache, file);
    // Use exactly what the cache holds, so a later run from the cache trains identically.
    data.latents = file.tensors["latents"].to(torch::kFloat32);
    data.latents_flipped = file.tensors["latents_flipped"].to(torch::kFloat32);
  }
}

// [SECTION] Evaluation -------------------------------------------------------------------

torch::Tensor area_downsample(const torch::Tensor& x, int width, int height) {
  namespace F = torch::nn::functional;
  return F::interpolate(
      x, F::InterpolateFuncOptions().size(std::vector<int64_t>{height, width}).mode(torch::kArea));
}

namespace {

torch::Tensor bicubic(const torch::Tensor& x, int width, int height) {
  namespace F = torch::nn::functional;
  return F::interpolate(x, F::InterpolateFuncOptions()
                               .size(std::vector<int64_t>{height, width})
                               .mode(torch::kBicubic)
                               .align_corners(false));
}

// float [N, 3, H, W] in [-1, 1] -> uint8 [N, H, W, 3]
torch::Tensor to_u8(const torch::Tensor& x) {
  return float_to_uint8(x.clamp(-1, 1));
}

}  // namespace

std::vector<ReconstructionScores> evaluate_autoencoder(Autoencoder& ae, const VideoDataset& data,
                                                       int max_frames,
                                                       const std::vector<std::string>& names) {
  if (data.width() % kLatentFactor != 0 || data.height() % kLatentFactor != 0)
    throw Error("autoencoder evaluation needs frames whose sides are multiples of 8");
  torch::NoGradGuard no_grad;
  ae->eval();
  std::vector<ReconstructionScores> out;
  for (const auto& clip : data.clips) {
    if (!names.empty() && std::find(names.begin(), names.end(), clip.name) == names.end()) continue;
    ReconstructionScores r;
    r.clip = clip.name;
    r.unseen = clip.train_length == 0;
    const int64_t first = clip.held_out_first(), count = clip.held_out_length();
    if (count < 1) continue;
    const int64_t n = std::min<int64_t>(max_frames, count);
    std::vector<int64_t> pick;
    for (int64_t i = 0; i < n; ++i) pick.push_back(first + i * count / n);
    double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    double sharp_rec = 0, sharp_true = 0;
    for (int64_t f : pick) {
      const auto truth_u8 = data.frames[f];
      const auto x = uint8_to_float(truth_u8.unsqueeze(0));
      const auto z = ae->encode(x);
      const auto y = ae->decode(z);
      const auto p = ae->preview(z);
      const auto y_u8 = to_u8(y)[0], p_u8 = to_u8(p)[0];
      const auto b_u8 = to_u8(bicubic(area_downsample(x, 64, 48), data.width(), data.height()))[0];
      s[0] += psnr_u8(y_u8, truth_u8);
      s[1] += ssim_u8(y_u8, truth_u8);
      s[2] += psnr_u8(to_u8(area_downsample(y.clamp(-1, 1), 64, 48))[0],
                      to_u8(area_downsample(x, 64, 48))[0]);
      s[3] += psnr_u8(b_u8, truth_u8);
      s[4] += ssim_u8(b_u8, truth_u8);
      s[5] += psnr_u8(p_u8, truth_u8);
      s[6] += psnr_u8(p_u8, y_u8);
      const auto st = frame_statistics(torch::stack({y_u8, truth_u8}));
      sharp_rec += st[0][2].item<double>();
      sharp_true += st[1][2].item<double>();
    }
    const double k = static_cast<double>(pick.size());
    r.frames = static_cast<int>(pick.size());
    r.psnr = s[0] / k, r.ssim = s[1] / k, r.psnr_64x48 = s[2] / k;
    r.psnr_bicubic = s[3] / k, r.ssim_bicubic = s[4] / k;
    r.psnr_preview = s[5] / k, r.psnr_preview_vs_decoder = s[6] / k;
    r.sharpness_ratio = sharp_true > 0 ? sharp_rec / sharp_true : 0;
    out.push_back(r);
  }
  return out;
}

nlohmann::json to_json(const std::vector<ReconstructionScores>& scores) {
  nlohmann::json a = nlohmann::json::array();
  for (const auto& r : scores)
    a.push_back({{"clip", r.clip},
                 {"frames", r.frames},
                 {"unseen", r.unseen},
                 {"psnr", r.psnr},
                 {"ssim", r.ssim},
                 {"psnr_64x48", r.psnr_64x48},
                 {"psnr_bicubic_from_64x48", r.psnr_bicubic},
                 {"ssim_bicubic_from_64x48", r.ssim_bicubic},
                 {"psnr_preview", r.psnr_preview},
                 {"psnr_preview_vs_decoder", r.psnr_preview_vs_decoder},
                 {"sharpness_ratio", r.sharpness_ratio}});
  return a;
}

std::string to_text(const std::vector<ReconstructionScores>& scores) {
  std::ostringstream o;
  o << "clip              frames  PSNR   SSIM  | at 64x48 | bicubic from 64x48 | preview (vs "
       "decoder) | sharpness\n";
  for (const auto& r : scores) {
    char line[256];
    std::snprintf(line, sizeof line,
                  "%-16s %5d %s %5.2f  %.3f | %6.2f   | %5.2f  %.3f       | %5.2f (%5.2f)    | "
                  "%3.0f %%\n",
                  r.clip.c_str(), r.frames, r.unseen ? "U" : " ", r.psnr, r.ssim, r.psnr_64x48,
                  r.psnr_bicubic, r.ssim_bicubic, r.psnr_preview, r.psnr_preview_vs_decoder,
                  100 * r.sharpness_ratio);
    o << line;
  }
  o << "(U = a whole clip no training step saw; PSNR in dB, peak 255; sharpness = mean "
       "|Laplacian| of the reconstruction / of the true frames)\n";
  return o.str();
}

}  // namespace dfs::diffusion::train
