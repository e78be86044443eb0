// dfs/project/learn.h — "Learn this clip": decode the project's clip at its model's size and
// fine-tune the model on it (dfs/diffusion/learn.h), with the files a learning run leaves
// beside the project and how an interrupted run is found again.
//
// Files, for an owner (the project file, or the clip of an untitled project) "dir/take.dfsproj":
//   dir/take.learned.safetensors            the learned model (EMA weights + provenance)
//   dir/take.learned.ckpt.safetensors       the checkpoint (every checkpoint_minutes)
//   dir/take.learned.learning.json          "a run is under way": clip, start model, budget
//   dir/take.learned.latents.safetensors    the clip's latents (latent models), a cache
// The state file exists from the start of a run until it ends (done, cancelled or failed
// without a checkpoint): one left behind with its checkpoint is a run a crash or kill
// interrupted, which find_pending_learning reports and resume continues.
//
// No torch, no Qt. Thread-safety: learn_clip runs on the calling thread (the Studio's learning
// thread); the other functions are free of shared state.
#pragma once

#include <optional>
#include <string>

#include "dfs/diffusion/learn.h"
#include "dfs/project/document.h"

namespace dfs::project {

struct LearnRequest {
  std::string owner;            // project file, or the clip when the project is untitled
  std::string clip_path;        // the clip (resolved: absolute or relative to the cwd)
  std::string model_path;       // starting model; "" = the shipped demo model
  std::string executable_path;  // where to look for the demo model (find_demo_model)
  FitMode fit = FitMode::Letterbox;
  double minutes = 1;             // training budget, > 0
  double checkpoint_minutes = 1;  // between checkpoints
  bool resume = false;            // continue the run find_pending_learning found
  std::string device = "cpu";
  int sample_frames = 4;  // preview continuation length
  int max_frames = 1500;  // decode at most this many frames of the clip
};

// <owner's folder>/<owner's stem>.learned.safetensors
std::string learned_model_path(const std::string& owner);
// <learned model without .safetensors>.learning.json
std::string learning_state_path(const std::string& learned_model);

// A run that did not finish (crash, kill, window closed while learning).
struct PendingLearning {
  std::string state_file, output, checkpoint, clip_path, model_path, started;
  FitMode fit = FitMode::Letterbox;
  double minutes = 0;       // the budget it was started with
  double seconds_done = 0;  // trained when the checkpoint was written
  long long steps_done = 0;
  // The budget left (at least 0.25 min): what resuming trains for.
  double minutes_left() const;
};
// The interrupted run of `owner`, if its state file and checkpoint are both there and readable.
std::optional<PendingLearning> find_pending_learning(const std::string& owner);
// Forgets it: removes the state file, the checkpoint and the latent cache (not the model).
void discard_pending_learning(const PendingLearning& pending);

// Runs one learning session (see the file comment). On a normal end or a stop the state file,
// checkpoint and cache are removed and the model stays; when callbacks.abandon is set they are
// kept, so the next start offers to resume. Throws Error (a missing clip or model, a clip of
// fewer than 3 frames, ...); the project document is not touched.
diffusion::LearnResult learn_clip(const LearnRequest& request,
                                  const diffusion::LearnCallbacks& callbacks);

// The clip decoded as learn_clip decodes it, at width x height. Throws Error.
std::vector<Frame> decode_clip_frames(const std::string& clip_path, int width, int height,
                                      FitMode fit, int max_frames = 1500);

// One line on what a model was trained on, from its provenance JSON (ModelInfo::provenance_json):
// "Learned from vtest_clip.mp4 (60 frames; 15 held out) for 0:58, 52 steps, starting from
// demo.safetensors" or, for other trained models, their data and steps. "" when it says nothing.
std::string describe_training(const std::string& provenance_json);

}  // namespace dfs::project
