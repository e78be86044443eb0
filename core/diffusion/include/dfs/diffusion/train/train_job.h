// dfs/diffusion/train/train_job.h — one training run from a recipe, as `dforce train` and
// `dforce learn` run it (torch).
//
// Resolves the recipe and its overrides, the starting weights (--from) and a latent model's
// autoencoder (encoding the dataset once into a cache beside the output), builds or resumes
// the Trainer from its checkpoint, runs the loop (data-parallel when given a process group),
// and exports the EMA model with its provenance. The CLI only parses options, joins the
// process group and prints: messages come back through TrainJobCallbacks::log.
// Thread-safety: one job per thread; callbacks run on the calling thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dfs/diffusion/train/dataset.h"
#include "dfs/diffusion/train/distributed.h"
#include "dfs/diffusion/train/trainer.h"

namespace dfs::diffusion::train {

// What to train: the options of `dforce train` / `dforce learn`.
struct TrainJob {
  std::string data_path;
  std::string recipe = "demo";
  std::string output;
  std::string checkpoint;   // empty = default next to the output
  std::string from;         // initial weights (fine-tuning)
  std::string autoencoder;  // latent recipes: the autoencoder file (`dforce ae train`)
  std::string device = "auto";
  double minutes = 0;
  int64_t steps = 0;
  int64_t schedule_steps = 0;  // cosine horizon; 0 = --steps (or the checkpoint's on resume)
  double checkpoint_minutes = 5;
  bool resume = false;
  // Overrides of the recipe (< 0 / 0 = keep).
  int batch = 0;
  double lr = 0;
  int64_t seed = -1;
  int clip_frames = 0;
  int warmup = -1;
  std::vector<std::string> model_overrides;  // key=value on the model config JSON
  std::vector<std::string> train_overrides;  // key=value on the training settings JSON
  std::string command;                       // for the provenance
  // Data-parallel runs (under a launcher: torchrun's variables).
  std::string dist_backend = "auto";
  double dist_timeout = 300;
};

// What a finished (or stopped) job did.
struct JobOutcome {
  TrainLoopResult loop;
  int64_t steps = 0;
  int64_t parameters = 0;
  double seconds_total = 0;
  std::string checkpoint;
};

struct TrainJobCallbacks {
  std::function<void(const std::string& line)> log;         // one finished line, no newline
  std::function<void(const TrainProgress& p)> on_progress;  // every step (see TrainLoopOptions)
  const std::atomic<bool>* stop = nullptr;  // set: checkpoint at the next step and return
  // After each periodic checkpoint (not the last one), with the trainer in the state just
  // written: e.g. to export the EMA weights and sample a preview. Runs on the training thread
  // and its time counts against the budget, so keep it short.
  std::function<void(Trainer& trainer)> on_checkpoint;
};

// Runs the job on `data` (pixels; a latent recipe encodes them with the autoencoder first).
// With `dist`, rank 0 alone writes the latent cache, checkpoints and the model. Throws Error
// naming the option at fault (no --minutes/--steps, a latent recipe without an autoencoder, a
// checkpoint of another recipe, ...).
JobOutcome run_train_job(const TrainJob& job, const VideoDataset& data,
                         std::shared_ptr<Distributed> dist, const TrainJobCallbacks& callbacks);

// Applies "key=value" pairs to a JSON object (value parsed as JSON, else taken as a string).
// Unknown keys are refused, naming the known ones, so a typo does not pass silently.
nlohmann::json apply_overrides(nlohmann::json j, const std::vector<std::string>& pairs,
                               const char* what);

// The checkpoint file of a run that writes `output`: "<output without
// .safetensors>.ckpt.safetensors".
std::string default_checkpoint_path(const std::string& output);

}  // namespace dfs::diffusion::train
