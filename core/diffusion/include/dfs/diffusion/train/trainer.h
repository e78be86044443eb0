// dfs/diffusion/train/trainer.h — the diffusion-forcing trainer (torch).
//
// Training objective (Chen et al. 2024, "Diffusion Forcing", Sec. 3.2 / Alg. 1): every frame
// of a training clip gets its OWN noise level, drawn independently and uniformly over the
// K training timesteps; each frame is noised to its level and the network predicts the
// target (v by default; Salimans & Ho 2022) for every frame at once. Per-frame MSE is weighted
// with min-SNR-gamma (Hang et al. 2023, Eq. 7-9: eps min(snr,g)/snr, x0 min(snr,g),
// v min(snr,g)/(snr+1)); because that weight vanishes at the top levels, where the model
// must predict a frame from its context alone, a floor keeps them trained (see
// `loss_weight_floor`). With small probabilities a clip is trained as full-sequence diffusion
// (one shared level) or with a clean prefix (pure conditioning, excluded from the loss).
//
// Optimisation: AdamW (Loshchilov & Hutter 2019, decoupled weight decay on matrices only),
// linear warm-up then cosine decay (Loshchilov & Hutter 2017), global-norm gradient
// clipping, an exponential moving average of the weights (the exported model uses it).
// Augmentation: random horizontal flip and random crop-and-rescale, the same for all frames
// of a clip.
//
// Determinism: the randomness of step s (clip choice, augmentation, levels, noise) comes from
// generators seeded by (seed, s) alone, and the whole state (weights, EMA, AdamW moments,
// step) is in the checkpoint, so resuming continues bit-for-bit on the same machine with the
// same thread count.
//
// Thread-safety: a Trainer is used by one thread at a time; `request_stop` style flags are
// passed in as atomics.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dfs/diffusion/autoencoder.h"
#include "dfs/diffusion/model.h"
#include "dfs/diffusion/noise.h"
#include "dfs/diffusion/train/dataset.h"
#include "dfs/diffusion/train/optimizer.h"

namespace dfs::diffusion::train {

class Distributed;  // dfs/diffusion/train/distributed.h

inline constexpr const char* kCheckpointFormat = "dfs-train-checkpoint";

struct TrainSettings {
  int batch_size = 8;                        // clips per step
  int clip_frames = 0;                       // frames per training clip; 0 = the model's max_frames
  double learning_rate = 1e-3;               // peak learning rate
  double min_learning_rate_fraction = 0.05;  // cosine decays to this fraction of the peak
  int warmup_steps = 100;                    // linear warm-up from 0
  int64_t schedule_steps = 10000;  // cosine horizon (steps); after it the rate stays at min
  double weight_decay = 0.01;      // AdamW, matrices only
  double adam_beta1 = 0.9;
  double adam_beta2 = 0.99;
  double adam_eps = 1e-8;
  double grad_clip = 1.0;          // global L2 norm; <= 0 disables
  double ema_decay = 0.999;        // with warm-up min(decay, (1+s)/(10+s))
  double min_snr_gamma = 5.0;      // min-SNR-gamma weighting
  double loss_weight_floor = 0.1;  // lower bound on the per-frame weight (0 = pure min-SNR)
  double p_shared_level = 0.1;     // probability: all frames share one level
  double p_clean_prefix = 0.1;     // probability: a clean (level 0) conditioning prefix
  double p_flip = 0.5;             // horizontal flip probability
  double p_crop = 0.25;            // crop-and-rescale probability
  double min_crop_scale = 0.85;    // crop side as a fraction of the frame, in [scale, 1]
  // How often each clip is drawn: in proportion to (its training windows)^clip_balance.
  // 1 = every window equally likely (long clips dominate), 0 = every clip equally likely.
  double clip_balance = 1.0;
  uint64_t seed = 0;

  nlohmann::json to_json() const;
  static TrainSettings from_json(const nlohmann::json& j);  // throws Error on bad values
  void validate() const;                                    // throws Error on bad values
};

// The optimiser part of the settings (AdamW, schedule, clipping, EMA).
OptimizerSettings optimizer_settings(const TrainSettings& settings);

// A named training recipe: the model preset plus matching optimisation settings.
struct TrainRecipe {
  ModelConfig model;
  TrainSettings train;
};
// "demo" (the engine's demo architecture), "demo-cpu" (a cheaper variant for CPU training),
// "demo-gpu" (demo with a larger batch), "tiny" (tests, seconds on a CPU).
// Throws Error for an unknown name.
TrainRecipe train_recipe(const std::string& name);

struct TrainStepStats {
  int64_t step = 0;          // steps done after this one
  double loss = 0;           // weighted loss of this step's batch
  double grad_norm = 0;      // global gradient norm before clipping
  double learning_rate = 0;  // rate used for this step
};

// What a checkpoint file says about itself (without loading the weights).
struct CheckpointInfo {
  ModelConfig model;
  TrainSettings train;
  int64_t step = 0;
  std::string dataset_fingerprint;
  double seconds = 0;    // training wall time so far
  nlohmann::json extra;  // free-form (command line, ...)
};
CheckpointInfo read_checkpoint_info(const std::string& path);  // throws Error

class Trainer {
 public:
  // device: "cpu", "cuda" or "auto". The dataset must outlive the trainer and hold at least
  // one clip whose training part is as long as a training clip.
  Trainer(const ModelConfig& model, const TrainSettings& settings, const VideoDataset& dataset,
          const std::string& device = "cpu");
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // One optimisation step on a batch drawn for the current step number.
  TrainStepStats step();
  // Seconds one step takes, measured on a throwaway batch without changing any state.
  double measure_step_seconds(int repeats = 1);

  // Which dataset clip each item of step `step`'s batch is drawn from (the batch is a pure
  // function of the seed and the step number).
  std::vector<size_t> batch_clips(int64_t step) const;

  int64_t step_count() const;
  int64_t parameter_count() const;
  const ModelConfig& model_config() const;
  const TrainSettings& settings() const;
  std::string device() const;
  int clip_frames() const;
  double seconds() const;  // training wall time accumulated (includes resumes)
  void add_seconds(double s);

  // Initialises the weights (and the EMA) from a model file made by export_model or the
  // engine (fine-tuning). The file's config must equal this trainer's model config.
  void load_weights(const std::string& model_path);

  // Checkpoint: weights, EMA, AdamW moments, step, config, dataset fingerprint. Atomic.
  void save_checkpoint(const std::string& path, const nlohmann::json& extra = {}) const;
  // Restores a checkpoint written by a trainer with the same model config, settings and
  // dataset; refuses with a message naming what differs otherwise.
  void load_checkpoint(const std::string& path);

  // Writes the EMA weights as a model file (loadable with Model::load), with `provenance`
  // (training data, steps, time, metrics) in its metadata. A latent model's file also holds the
  // autoencoder given to set_autoencoder (the one its dataset latents came from).
  void export_model(const std::string& path, const nlohmann::json& provenance) const;
  void set_autoencoder(Autoencoder ae);

  // Trains data-parallel from now on (dfs/diffusion/train/distributed.h): refuses a config,
  // settings, dataset or step that differ from rank 0's, or a batch the world size does not
  // divide, then copies rank 0's whole state (weights, EMA, AdamW moments) to this rank. Each
  // later step() trains on this rank's share of the global batch and sums gradients over
  // ranks. Call after load_checkpoint / load_weights, on every rank.
  void set_distributed(std::shared_ptr<Distributed> dist);
  const std::shared_ptr<Distributed>& distributed() const;

  // Diffusion-forcing loss of the EMA (or raw) model on given clean clips x0 [B, T, C, H, W]
  // at given levels [B, T], per frame [B, T] (unweighted MSE against the objective's
  // target), no gradient. Used by evaluation.
  torch::Tensor frame_losses(const torch::Tensor& x0, const torch::Tensor& levels,
                             const torch::Tensor& noise, bool use_ema = true);

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// [SECTION] The training loop ------------------------------------------------------------

struct TrainProgress {
  int64_t step = 0;
  int64_t target_steps = 0;  // 0 when only time-limited
  double loss = 0;           // this step
  double loss_average = 0;   // exponential average over recent steps
  double learning_rate = 0;
  double samples_per_second = 0;  // clips per second, recent average
  double elapsed_seconds = 0;     // this run
  double eta_seconds = -1;        // < 0 when unknown
  bool checkpointed = false;      // a checkpoint was written after this step
};

struct TrainLoopOptions {
  int64_t max_steps = 0;        // stop when step_count() reaches this (0 = no limit)
  double max_seconds = 0;       // stop after this many seconds of this run (0 = none)
  std::string checkpoint_path;  // empty = never checkpoint
  double checkpoint_every_seconds = 300;
  nlohmann::json checkpoint_extra;          // stored in each checkpoint
  const std::atomic<bool>* stop = nullptr;  // set (e.g. by SIGINT) to stop after this step
  // Data-parallel runs: the ranks agree on stop / time limit / checkpoint before each step,
  // and only rank 0 writes checkpoints. Null = one process.
  std::shared_ptr<Distributed> distributed;
  std::function<void(const TrainProgress&)> on_progress;  // after every step
};

struct TrainLoopResult {
  int64_t steps_run = 0;
  bool stopped = false;  // by the stop flag
  double seconds = 0;
  double final_loss_average = 0;
  double samples_per_second = 0;
};

// Runs steps until a limit or the stop flag; writes a checkpoint every
// `checkpoint_every_seconds` and once more at the end (when a path is given).
TrainLoopResult run_training(Trainer& trainer, const TrainLoopOptions& options);

}  // namespace dfs::diffusion::train
