// TrainSettings (JSON, validation, the optimiser part) and the named training recipes.
#include <string>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/train/trainer.h"
#include "train_common.h"

namespace dfs::diffusion::train {

// TrainSettings in JSON: every field under its own name, read in this order; an absent key keeps
// the default. (nlohmann's macro defines to_json / from_json for the type, found by ADL.)
NLOHMANN_DEFINE_TYPE_NON_INTRUSIVE_WITH_DEFAULT(TrainSettings, batch_size, clip_frames,
                                                learning_rate, min_learning_rate_fraction,
                                                warmup_steps, schedule_steps, weight_decay,
                                                adam_beta1, adam_beta2, adam_eps, grad_clip,
                                                ema_decay, min_snr_gamma, loss_weight_floor,
                                                p_shared_level, p_clean_prefix, p_flip, p_crop,
                                                min_crop_scale, seed, clip_balance)

nlohmann::json TrainSettings::to_json() const {
  nlohmann::json j = *this;
  // clip_balance is written only when set, so checkpoints made before it existed still resume.
  if (clip_balance == 1.0) j.erase("clip_balance");
  return j;
}

TrainSettings TrainSettings::from_json(const nlohmann::json& j) {
  return detail::settings_from_json<TrainSettings>("training settings",
                                                   [&](TrainSettings& s) { j.get_to(s); });
}

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

void TrainSettings::validate() const {
  const detail::SettingsRequirement require("training settings");
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
  if (name == "demo" || name == "demo-gpu") {
    r.model = ModelConfig::preset("demo");
    r.model.overlap = true;  // see demo-cpu
    r.train.batch_size = name == "demo" ? 8 : 64;
    r.train.learning_rate = name == "demo" ? 1e-3 : 2e-3;
    r.train.warmup_steps = name == "demo" ? 100 : 200;
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
  } else if (name == "latent-tiny" || name == "tiny") {  // tests: seconds on a CPU
    r.model = ModelConfig::preset(name);
    if (name == "tiny") r.model.objective = Objective::X0;  // see demo-cpu
    r.train.batch_size = 8;
    r.train.learning_rate = 2e-3;
    r.train.warmup_steps = 20;
    // No crops: latents are precomputed (see latent-cpu), and on tiny synthetic frames
    // cropping only blurs the shapes.
    r.train.p_crop = 0;
  } else {
    throw Error("unknown training recipe '" + name +
                "' (known: latent-cpu, latent-gpu, latent-tiny, demo, demo-cpu, demo-gpu, tiny)");
  }
  r.model.name = name;
  return r;
}

}  // namespace dfs::diffusion::train
