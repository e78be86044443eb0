// Training the latent autoencoder (see ae_trainer.h). Encoding a dataset with it is in
// latent_encoding.cpp, scoring its reconstructions in ae_eval.cpp, what it shares with the
// diffusion trainer in train_common.cpp.
//
// Index
//   [SECTION] Settings and presets
//   [SECTION] Losses
//   [SECTION] Trainer
//   [SECTION] Checkpoints and the finished autoencoder
#include "dfs/diffusion/train/ae_trainer.h"

#include <cmath>
#include <random>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs/diffusion/weights.h"
#include "train_common.h"

namespace dfs::diffusion::train {

// [SECTION] Settings and presets ---------------------------------------------------------

namespace {

// The optimiser's settings under the keys TrainSettings gives them ("adam_beta1" for beta1,
// "adam_eps" for eps, the field's name otherwise), in the order they are read.
template <class Optimizer, class F>
void for_each_optimizer_field(Optimizer& o, F&& f) {
  f("learning_rate", o.learning_rate);
  f("min_learning_rate_fraction", o.min_learning_rate_fraction);
  f("warmup_steps", o.warmup_steps);
  f("schedule_steps", o.schedule_steps);
  f("weight_decay", o.weight_decay);
  f("adam_beta1", o.beta1);
  f("adam_beta2", o.beta2);
  f("adam_eps", o.eps);
  f("grad_clip", o.grad_clip);
  f("ema_decay", o.ema_decay);
}

}  // namespace

// AutoencoderTrainSettings in JSON: the optimiser's settings (for_each_optimizer_field), then
// every other field under its own name, read in this order; an absent key keeps the default.
// (nlohmann's macro defines to_json / from_json for the listed fields, found by ADL.)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(AutoencoderTrainSettings, batch_size, crop,
                                                l1_weight, gradient_weight, ssim_weight,
                                                latent_noise, p_flip, seed, decoder_only,
                                                adversarial_weight)

nlohmann::json AutoencoderTrainSettings::to_json() const {
  nlohmann::json j = *this;
  for_each_optimizer_field(optimizer, [&](const char* key, const auto& value) { j[key] = value; });
  return j;
}

AutoencoderTrainSettings AutoencoderTrainSettings::from_json(const nlohmann::json& j) {
  return detail::settings_from_json<AutoencoderTrainSettings>(
      "autoencoder training settings", [&](AutoencoderTrainSettings& s) {
        for_each_optimizer_field(
            s.optimizer, [&](const char* key, auto& value) { value = j.value(key, value); });
        j.get_to(s);
      });
}

void AutoencoderTrainSettings::validate() const {
  const detail::SettingsRequirement require("autoencoder training settings");
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

struct AutoencoderTrainer::State : detail::TrainerCore {
  AutoencoderConfig config;
  AutoencoderTrainSettings settings;
  Autoencoder model{nullptr};
  Autoencoder ema{nullptr};
  PatchDiscriminator disc{nullptr};  // adversarial_weight > 0 only
  AutoencoderConfig frozen;          // decoder_only: the starting autoencoder's statistics
  AdamWState disc_opt;
  std::vector<int64_t> train_frames;  // dataset frame indices the trainer may draw

  torch::Tensor make_batch(int64_t step_index, at::Generator& gen) const;
  detail::RunRecord record() const override;
  void add_own_tensors(std::map<std::string, torch::Tensor>& tensors) const override;
  void load_own_tensors(const std::map<std::string, torch::Tensor>& tensors,
                        const std::string& path) override;
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
  detail::make_model_and_ema(st.model, st.ema, st.config, settings.seed, st.device);
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
  return state_->parameter_count();
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
  return st.finish_step(loss.item<double>(), s.optimizer, "autoencoder training");
}

// [SECTION] Checkpoints and the finished autoencoder -------------------------------------

const detail::CheckpointKind kAutoencoderCheckpoint(
    kAutoencoderCheckpointFormat, "autoencoder",
    "'%s' has no '%s' metadata — is it an autoencoder checkpoint?",
    "'%s' is not an autoencoder training checkpoint (format '%s')",
    "Resume with the same options, or start a new run without --resume.", /*has_extra=*/false);

AutoencoderCheckpointInfo read_autoencoder_checkpoint_info(const std::string& path) {
  const auto h = detail::read_checkpoint_header<AutoencoderConfig, AutoencoderTrainSettings>(
      path, kAutoencoderCheckpoint);
  return {h.config, h.settings, h.step, h.seconds, h.dataset};
}

detail::RunRecord AutoencoderTrainer::State::record() const {
  return {config.to_json(), settings.to_json(), fingerprint};
}

// The discriminator's optimiser state, and with decoder_only the frozen encoder (not in the
// optimiser).
void AutoencoderTrainer::State::add_own_tensors(
    std::map<std::string, torch::Tensor>& tensors) const {
  if (disc) detail::add_optimizer_tensors(disc_opt, tensors);
  if (settings.decoder_only)
    for (const auto& p : model->encoder->named_parameters())
      tensors["frozen.encoder." + p.key()] = p.value().detach().cpu().contiguous();
}

void AutoencoderTrainer::State::load_own_tensors(
    const std::map<std::string, torch::Tensor>& tensors, const std::string& path) {
  if (disc) detail::load_optimizer_tensors(disc_opt, tensors, path);
  if (settings.decoder_only) {
    torch::NoGradGuard no_grad;
    for (auto& p : model->encoder->named_parameters()) {
      p.value().copy_(
          detail::checkpoint_tensor(tensors, "frozen.encoder." + p.key(), p.value(), path));
      ema->encoder->named_parameters()[p.key()].copy_(p.value());
    }
  }
}

void AutoencoderTrainer::save_checkpoint(const std::string& path,
                                         const nlohmann::json& extra) const {
  state_->save_checkpoint(path, kAutoencoderCheckpoint, extra);
}

void AutoencoderTrainer::load_checkpoint(const std::string& path) {
  const auto info = read_autoencoder_checkpoint_info(path);
  state_->load_checkpoint(
      path, kAutoencoderCheckpoint,
      {info.config.to_json(), info.settings.to_json(), info.dataset_fingerprint}, info.step,
      info.seconds);
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

}  // namespace dfs::diffusion::train
