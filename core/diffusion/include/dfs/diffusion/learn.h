// dfs/diffusion/learn.h — "learn this clip": fine-tune a model on one clip's frames, torch-free.
//
// The one learning path the Studio (Model > Learn this clip...) and `dforce learn` share below
// the decoding: the frames are packed into a one-clip dataset (train::append_clip, the last
// `held_out_fraction` held out by time), the starting model is fine-tuned for a wall-clock
// budget by train::run_train_job (periodic checkpoints, a stop flag, --resume), and the EMA
// weights are written as a model file with their provenance. Before and after, the held-out
// denoising loss is measured the same way (train::mean_held_out_loss: same frames, same noise).
//
// Everything here is callable without LibTorch's headers: the project layer and the Studio use
// it. Thread-safety: one learn_frames() per thread; callbacks run on the calling thread.
// Errors throw dfs::diffusion::Error naming the problem.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "dfs/frame.h"

namespace dfs::diffusion {

struct LearnSettings {
  std::string from;                // starting model file (fine-tuning keeps its architecture)
  std::string output;              // model file to write (EMA weights + provenance)
  std::string checkpoint;          // "" = <output without .safetensors>.ckpt.safetensors
  double minutes = 1;              // training budget of this run (wall clock), > 0
  double checkpoint_minutes = 1;   // between checkpoints (one more at the end or on stop)
  bool resume = false;             // continue from `checkpoint` (same frames and start model)
  std::string clip_name = "clip";  // the clip's name in the dataset and the provenance
  std::string clip_source;         // where the frames came from (the clip's file name)
  std::string fit = "letterbox";   // how they were fitted (provenance only)
  std::string command;             // what started it (provenance)
  std::string device = "cpu";      // cpu, cuda or auto
  double held_out_fraction = 0.2;  // the clip's last part: never trained on, measured on
  int sample_frames = 4;           // preview continuation length (0 = none)
  double sample_minutes = 3;       // a preview at the first checkpoint this long after the last
                                   // one (each costs an export and a short rollout), and at the end
  bool measure = true;             // held-out loss before and after
};

struct LearnProgress {
  int64_t step = 0;             // optimisation steps done (resumes included)
  double steps_per_second = 0;  // this run's average
  double loss = 0;              // this step's training loss
  double loss_average = 0;      // recent average
  double elapsed_seconds = 0;   // this run
  double eta_seconds = -1;      // budget left (< 0 unknown)
  bool checkpointed = false;    // a checkpoint was written after this step
};

// A short continuation sampled with the weights of the moment: `frames` follow `context`, the
// last training frames before the held-out part (so they can be compared to the truth).
struct LearnSample {
  int64_t step = 0;
  std::vector<Frame> context;
  std::vector<Frame> frames;
  std::vector<Frame> truth;  // the clip's own frames at those positions (may be fewer)
};

struct LearnCallbacks {
  std::function<void(const std::string& line)> log;
  std::function<void(const LearnProgress&)> on_progress;  // every step
  std::function<void(const LearnSample&)> on_sample;      // every sample_minutes and at the end
  // Set: checkpoint at the next step, write the model (the EMA weights so far), measure, return.
  const std::atomic<bool>* stop = nullptr;
  // Set together with `stop` when nobody waits for the result (the window is closing): the
  // measuring and the final sample are skipped.
  const std::atomic<bool>* abandon = nullptr;
};

struct LearnResult {
  std::string output;      // the model file written
  std::string checkpoint;  // the checkpoint file (kept; the caller may delete it)
  int64_t steps = 0;       // total optimisation steps (resumes included)
  int64_t steps_run = 0;   // this run
  double seconds = 0;      // training time in total
  bool stopped = false;    // by the stop flag
  int train_frames = 0;
  int held_out_frames = 0;
  double loss_before = std::numeric_limits<double>::quiet_NaN();  // held-out, the start model
  double loss_after = std::numeric_limits<double>::quiet_NaN();   // held-out, `output`
};

// Fine-tunes `settings.from` on `frames` (all at the model's frame size: a latent model's
// decoded size). Throws Error when the frames are too few or of the wrong size, the model
// cannot be read, a resume finds no or another run's checkpoint, or a file cannot be written.
LearnResult learn_frames(const std::vector<Frame>& frames, const LearnSettings& settings,
                         const LearnCallbacks& callbacks);

// What a checkpoint of an interrupted run holds (for "resume?" offers). Throws Error.
struct LearnCheckpointInfo {
  int64_t steps = 0;
  double seconds = 0;  // training time so far
};
LearnCheckpointInfo read_learn_checkpoint(const std::string& path);

// The held-out loss learn_frames reports, for any model file on the same frames.
double held_out_loss(const std::string& model_path, const std::vector<Frame>& frames,
                     double held_out_fraction = 0.2, const std::string& device = "cpu");

}  // namespace dfs::diffusion
