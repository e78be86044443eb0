// What the diffusion trainer and the autoencoder trainer share, internal to src/train:
// per-step seeds, the frame of their settings' from_json and validate, checkpoints (metadata,
// optimiser tensors, saving, the resume check), the state both keep and the end of their step,
// and the training loop. Definitions: train_common.cpp, except the templates here.
//
// Index
//   [SECTION] Deterministic per-step randomness
//   [SECTION] Settings
//   [SECTION] Checkpoints
//   [SECTION] Trainer state, the optimiser step, saving and resuming
//   [SECTION] Training loop
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>

#include "../load_adaptive.h"
#include "dfs/diffusion/api.h"
#include "dfs/diffusion/train/dataset.h"
#include "dfs/diffusion/train/distributed.h"
#include "dfs/diffusion/train/optimizer.h"
#include "dfs/diffusion/train/trainer.h"
#include "dfs/diffusion/weights.h"
#include "file_metadata.h"

namespace dfs::diffusion::train::detail {

// [SECTION] Deterministic per-step randomness --------------------------------------------

// SplitMix64 (Steele et al. 2014): a good 64-bit mixer to derive independent seeds.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The seed of random stream `stream` at step `step`.
inline uint64_t step_seed(uint64_t seed, int64_t step, uint64_t stream) {
  return splitmix64(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(step))) + stream);
}

inline constexpr uint64_t kStreamData = 1;   // clip choice, augmentation, level pattern
inline constexpr uint64_t kStreamNoise = 2;  // levels and Gaussian noise (torch generator)

// [SECTION] Settings ---------------------------------------------------------------------

// The frame of a settings struct's from_json: read(s) fills default settings from JSON; a JSON
// type error becomes Error("<what>: <why>"); then the settings are validated.
template <class Settings, class Read>
Settings settings_from_json(const std::string& what, Read&& read) {
  Settings s;
  try {
    read(s);
  } catch (const nlohmann::json::exception& e) {
    throw Error(what + ": " + e.what());
  }
  s.validate();
  return s;
}

// A settings struct's validate() check: require(ok, message) throws Error("<what>: <message>")
// when !ok.
class SettingsRequirement {
 public:
  explicit SettingsRequirement(std::string what) : what_(std::move(what)) {}
  void operator()(bool ok, const std::string& message) const;

 private:
  std::string what_;
};

// "prefix.key: checkpoint X, requested Y; ..." for every key whose value differs.
std::string json_diff(const nlohmann::json& expected, const nlohmann::json& found,
                      const std::string& prefix);

// [SECTION] Checkpoints ------------------------------------------------------------------

// How one trainer's checkpoints are told apart, and the words of its errors (each trainer keeps
// the wording its errors always had).
struct CheckpointKind {
  const char* format;         // metadata "format"
  const char* config_name;    // "model": the architecture is metadata "model_config", and a
                              // resume refusal names its keys "model.<key>"
  const char* missing_key;    // error for an absent metadata key: printf pattern of path, key
  const char* wrong_format;   // error for another format: printf pattern of path, format
  const char* resume_advice;  // ends the refusal to resume with other settings
  bool has_extra;             // reads the free-form "extra" metadata back
};

// What must match for a checkpoint to continue a run.
struct RunRecord {
  nlohmann::json config;    // the architecture
  nlohmann::json settings;  // the training settings
  std::string dataset;      // the training data's fingerprint
};

// What read_checkpoint_header reads from a checkpoint's metadata.
template <class Config, class Settings>
struct CheckpointHeader {
  Config config;
  Settings settings;
  int64_t step = 0;
  double seconds = 0;    // training wall time so far
  std::string dataset;   // the training data's fingerprint
  nlohmann::json extra;  // CheckpointKind::has_extra only
};

// Loads checkpoint `path` ("cannot read checkpoint: ...") and checks its format.
TensorFile open_checkpoint(const std::string& path, const CheckpointKind& kind);
// The checkpoint's metadata by key; a missing key is an Error worded by `kind`.
MetadataReader checkpoint_metadata(const TensorFile& file, const std::string& path,
                                   const CheckpointKind& kind);
// Runs read(), turning a JSON error into Error("checkpoint '<path>': bad metadata: ...") and a
// number that does not parse into "... bad step or time in the metadata".
void read_checkpoint_fields(const std::string& path, const std::function<void()>& read);

// A checkpoint's metadata without its weights; throws Error.
template <class Config, class Settings>
CheckpointHeader<Config, Settings> read_checkpoint_header(const std::string& path,
                                                          const CheckpointKind& kind) {
  const TensorFile file = open_checkpoint(path, kind);
  const MetadataReader meta = checkpoint_metadata(file, path, kind);
  CheckpointHeader<Config, Settings> h;
  read_checkpoint_fields(path, [&] {
    h.config =
        Config::from_json(nlohmann::json::parse(meta(kind.config_name + std::string("_config"))));
    h.settings = Settings::from_json(nlohmann::json::parse(meta("train_settings")));
    h.step = std::stoll(meta("step"));
    h.seconds = std::stod(meta("seconds"));
    h.dataset = meta("dataset");
    if (kind.has_extra) h.extra = nlohmann::json::parse(meta("extra"));
  });
  return h;
}

// Checkpoint tensors "model.<name>", "ema.<name>", "adam_m.<name>", "adam_v.<name>".
void add_optimizer_tensors(const AdamWState& st, std::map<std::string, torch::Tensor>& tensors);
// Tensor `name` of a checkpoint, which must have like's shape and type; throws Error.
torch::Tensor checkpoint_tensor(const std::map<std::string, torch::Tensor>& tensors,
                                const std::string& name, const torch::Tensor& like,
                                const std::string& path);
// Copies the tensors add_optimizer_tensors wrote into `st`; throws Error.
void load_optimizer_tensors(AdamWState& st, const std::map<std::string, torch::Tensor>& tensors,
                            const std::string& path);

// [SECTION] Trainer state, the optimiser step, saving and resuming -----------------------

// What both trainers' states hold, and their checkpoints; Trainer::State and
// AutoencoderTrainer::State extend it.
struct TrainerCore {
  const VideoDataset* dataset = nullptr;  // outlives the trainer
  std::string fingerprint;                // the dataset's, recorded in checkpoints
  torch::Device device{torch::kCPU};
  AdamWState opt;      // trained parameters (fixed order), EMA copies, AdamW moments
  int64_t step = 0;    // steps done
  double seconds = 0;  // training wall time, resumes included

  int64_t parameter_count() const;  // elements of the trained parameters
  // A step's end, once the gradients are in opt.params: refuses a non-finite `loss` ("<what>
  // diverged at step ..."), makes one AdamW update at the scheduled learning rate and advances
  // `step`.
  TrainStepStats finish_step(double loss, const OptimizerSettings& o, const std::string& what);

  // Checkpoints: the optimiser's tensors, the trainer's own (the hooks below) and the metadata
  // read_checkpoint_header reads (record(), step, seconds, `extra`). Atomic.
  void save_checkpoint(const std::string& path, const CheckpointKind& kind,
                       const nlohmann::json& extra) const;
  // Refuses checkpoint `path`, whose metadata says `recorded`, unless it continues this run: the
  // same config and settings (the message names every difference) and the same data. Then
  // restores the optimiser's tensors, the trainer's own, `step` and `seconds`.
  void load_checkpoint(const std::string& path, const CheckpointKind& kind,
                       const RunRecord& recorded, int64_t checkpoint_step,
                       double checkpoint_seconds);

  virtual ~TrainerCore() = default;
  // This run as its checkpoints record it.
  virtual RunRecord record() const = 0;
  // The trainer's checkpoint tensors beyond the optimiser's; load_own_tensors throws Error when
  // one is missing or misshapen.
  virtual void add_own_tensors(std::map<std::string, torch::Tensor>& tensors) const = 0;
  virtual void load_own_tensors(const std::map<std::string, torch::Tensor>& tensors,
                                const std::string& path) = 0;
};

// Makes `model` and its EMA twin `ema` from `config` on `device`, the model's initial weights
// drawn from `seed` (same seed => same weights): the model in training mode, the EMA in eval.
template <class Net, class Config>
void make_model_and_ema(Net& model, Net& ema, const Config& config, uint64_t seed,
                        const torch::Device& device) {
  model = Net(config);
  model->reset_parameters(splitmix64(seed));
  ema = Net(config);
  model->to(device);
  ema->to(device);
  model->train();
  ema->eval();
}

// [SECTION] Training loop ----------------------------------------------------------------

// Runs steps until a limit or the stop flag; checkpoints every checkpoint_every_seconds and
// once at the end (when a path is given). T: step(), step_count(), add_seconds(double),
// save_checkpoint(path, extra).
template <class T>
TrainLoopResult run_loop(T& trainer, const TrainLoopOptions& options, int batch_size) {
  using clock = std::chrono::steady_clock;
  TrainLoopResult result;
  const auto start = clock::now();
  auto last_checkpoint = start;
  auto last_step_end = start;
  double loss_avg = 0, rate_avg = 0;
  const double batch = batch_size;
  auto checkpoint = [&] {
    const auto now = clock::now();
    trainer.add_seconds(std::chrono::duration<double>(now - last_checkpoint).count());
    if (!options.distributed || options.distributed->is_writer()) {
      try {
        trainer.save_checkpoint(options.checkpoint_path, options.checkpoint_extra);
      } catch (const std::exception& e) {
        // The write is atomic (dfs/partial_files.h): the previous checkpoint is still whole.
        throw Error(std::string(e.what()) + "\ntraining stopped at step " +
                    std::to_string(trainer.step_count()) +
                    " because its checkpoint could not be written; the previous checkpoint "
                    "is intact and --resume continues from it");
      }
    }
    last_checkpoint = now;
  };
  // Data-parallel runs decide together (rank clocks and signals differ): one MAX all-reduce
  // of a code per step. 0 = go on, 1 = checkpoint due, 2 = time is up, 3 = stop requested.
  bool checkpoint_due = false;
  while (true) {
    if (options.max_steps > 0 && trainer.step_count() >= options.max_steps) break;
    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    int code = 0;
    if (options.stop && options.stop->load())
      code = 3;
    else if (options.max_seconds > 0 && elapsed >= options.max_seconds)
      code = 2;
    else if (!options.checkpoint_path.empty() &&
             std::chrono::duration<double>(clock::now() - last_checkpoint).count() >=
                 options.checkpoint_every_seconds)
      code = 1;
    if (options.distributed) code = static_cast<int>(std::lround(options.distributed->max(code)));
    if (code == 2) break;
    if (code == 3) {
      result.stopped = true;
      break;
    }
    checkpoint_due = code == 1;
    dfs::diffusion::detail::adapt_threads_to_load();
    const auto stats = trainer.step();
    ++result.steps_run;
    const auto now = clock::now();
    const double dt = std::chrono::duration<double>(now - last_step_end).count();
    last_step_end = now;
    // Exponential averages; the first steps seed them directly.
    const double a =
        result.steps_run <= 1
            ? 1.0
            : (result.steps_run < 20 ? 1.0 / static_cast<double>(result.steps_run) : 0.05);
    loss_avg = (1 - a) * loss_avg + a * stats.loss;
    rate_avg = (1 - a) * rate_avg + a * (batch / std::max(dt, 1e-9));

    TrainProgress p;
    p.step = stats.step;
    p.target_steps = options.max_steps;
    p.loss = stats.loss;
    p.loss_average = loss_avg;
    p.learning_rate = stats.learning_rate;
    p.samples_per_second = rate_avg;
    p.elapsed_seconds = std::chrono::duration<double>(now - start).count();
    double eta = -1;
    if (options.max_steps > 0 && rate_avg > 0)
      eta = static_cast<double>(options.max_steps - stats.step) * batch / rate_avg;
    if (options.max_seconds > 0) {
      const double left = std::max(0.0, options.max_seconds - p.elapsed_seconds);
      eta = eta < 0 ? left : std::min(eta, left);
    }
    p.eta_seconds = eta;
    if (checkpoint_due) {
      checkpoint();
      p.checkpointed = true;
    }
    if (options.on_progress) options.on_progress(p);
  }
  if (!options.checkpoint_path.empty() && result.steps_run > 0) {
    checkpoint();
  } else {
    trainer.add_seconds(std::chrono::duration<double>(clock::now() - last_checkpoint).count());
  }
  result.seconds = std::chrono::duration<double>(clock::now() - start).count();
  result.final_loss_average = loss_avg;
  result.samples_per_second =
      result.seconds > 0 ? static_cast<double>(result.steps_run) * batch / result.seconds : 0;
  return result;
}

}  // namespace dfs::diffusion::train::detail
