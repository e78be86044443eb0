// dfs/diffusion/train/eval.h — how good is a trained model, on held-out data (torch).
//
// Four measurements, all on the held-out (last) part of each clip of a packed dataset:
//   (a) denoising loss by noise level: the objective's MSE when every frame of a held-out
//       window sits at one level (lower is better; the trainer's own loss, unweighted);
//   (b) prediction: `context` known frames -> the next `horizon` frames; PSNR/SSIM of one
//       sampled continuation and of the per-pixel mean of `samples` continuations (the
//       model's estimate of the expected future), beside copy-last-frame and linear
//       extrapolation (x[t] = x[c] + (t - c) (x[c] - x[c-1]), clamped), also at 64x48, and
//       optionally beside a baseline model's output upscaled bicubically;
//   (c) long rollouts (`rollout_frames` after held-out context), with and without history
//       stabilisation: the share of frames whose mean, contrast and sharpness lie inside the
//       1st-99th percentile range of the training frames, and scene consistency — the share
//       of frames whose nearest frame (L2 at 64x48) comes from the clip the context came from,
//       among the training frames of the real clips and every frame of wholly held-out
//       ("unseen") clips, so that a rollout from unseen footage can be told apart from one
//       that turned into a training scene;
//   (d) a contact sheet (see EvalReport::contact_sheet).
// PSNR and SSIM follow dfs_media's definitions (peak 255; SSIM of Wang et al. 2004 with an
// 11x11 Gaussian window, sigma 1.5, per RGB channel, averaged), reimplemented here in torch
// so that evaluation runs in the core-only build.
//
// Thread-safety: evaluate_model() is self-contained; run one at a time per model file.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/train/dataset.h"

namespace dfs::diffusion::train {

struct EvalSettings {
  std::vector<std::string> clips;  // clips to evaluate; empty = all
  // (a)
  std::vector<double> loss_levels = {0.02, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0};
  int loss_windows = 8;  // held-out windows per clip
  int loss_draws = 1;    // noise draws per window and level (more = a steadier mean)
  // (b)
  int context = 8;            // known frames
  int horizon = 8;            // predicted frames
  int samples = 8;            // continuations averaged for the mean prediction
  int segments_per_clip = 3;  // held-out segments per clip (evenly spaced)
  // (c)
  int rollout_frames = 500;  // generated frames per long rollout; 0 = skip (c)
  int rollout_context = 8;   // window of the long rollout
  int rollout_horizon = 8;
  double stabilization = 0.02;  // "with stabilisation" level ("without" uses 0)
  // (b) a baseline model (e.g. the earlier 64x48 demo model): it sees the context downsampled
  // (area) to its resolution and its output is upscaled bicubically to the data's resolution
  // before scoring. Empty = none.
  std::string baseline_model;
  // sampling, for (b) and (c)
  SamplerSettings sampler;  // schedule shape and steps (the product's defaults)
  bool detail_transfer = true;  // latent models: RolloutSettings::detail_transfer
  uint64_t seed = 0;
  std::string device = "cpu";
  std::function<void(const std::string&)> log;  // progress lines; may be empty
};

struct LevelLoss {
  double level = 0;
  double loss = 0;  // mean over held-out windows and clips
};

// Per predicted frame k = 1..horizon (index k - 1), averaged over segments.
struct PredictionScores {
  std::string clip;
  int segments = 0;
  std::vector<double> psnr_sample, ssim_sample;  // one sampled continuation
  std::vector<double> psnr_mean, ssim_mean;      // mean of `samples` continuations
  std::vector<double> psnr_copy, ssim_copy;      // copy-last-frame baseline
  std::vector<double> psnr_linear, ssim_linear;  // linear extrapolation baseline
  // The same PSNRs after downsampling output and truth to 64x48 (area): comparable with 64x48
  // models, and blind to the autoencoder's ceiling.
  std::vector<double> psnr_sample_64, psnr_mean_64, psnr_copy_64, psnr_linear_64;
  // Sharpness (mean |Laplacian| of luma) of one sampled continuation / of the true frames.
  std::vector<double> sharpness_ratio_sample;
  // With EvalSettings::baseline_model: its one sample and its mean, upscaled bicubically.
  std::string baseline;
  std::vector<double> psnr_baseline_sample, ssim_baseline_sample;
  std::vector<double> psnr_baseline_mean, ssim_baseline_mean;
  std::vector<double> psnr_baseline_mean_64;
};

// Statistic ranges of the training frames (1st and 99th percentiles).
struct FrameStatRanges {
  double mean_lo = 0, mean_hi = 0;            // mean pixel value, 0..255
  double contrast_lo = 0, contrast_hi = 0;    // std of luma, 0..255
  double sharpness_lo = 0, sharpness_hi = 0;  // mean |Laplacian of luma|
};

struct RolloutScores {
  std::string clip;
  double stabilization = 0;  // level used for generated and user context
  int frames = 0;            // generated frames
  // Share of frames inside the 1st-99th percentile range of all clips' training frames, by
  // statistic and on all three (the yardstick: no blow-up, no fade to grey, no freeze).
  double in_range_mean = 0;
  double in_range_contrast = 0;
  double in_range_sharpness = 0;
  double in_range_all = 0;
  // The same on all three against the training frames of the context's own clip only.
  FrameStatRanges ranges;  // that clip's training ranges
  double in_range_all_own = 0;
  // Calibration of both yardsticks: share of the clip's held-out *true* frames inside them
  // (what a perfect model would score, short of the rollout's length).
  double truth_in_range_all = 0;
  double truth_in_range_all_own = 0;
  double same_scene = 0;  // share whose nearest training frame is from `clip`
  int first_scene_exit =
      -1;  // first generated frame (1-based) whose nearest clip differs; -1 never
  std::vector<std::pair<std::string, int>> nearest_clip_counts;  // clip -> frames
  double seconds = 0;
};

struct EvalReport {
  std::string model_path;
  std::vector<LevelLoss> loss_by_level;
  std::vector<PredictionScores> prediction;
  std::vector<RolloutScores> rollouts;
  FrameStatRanges training_ranges;  // all clips' training frames pooled
  // Contact sheet, 16 tiles wide, four rows per clip:
  //   1. the 8 context frames, then the 8 ground-truth frames that follow;
  //   2. the mean of the sampled continuations, then one sampled continuation;
  //   3. 16 frames evenly spaced over the long rollout WITH stabilisation;
  //   4. the same WITHOUT stabilisation.
  Frame contact_sheet;
  double seconds = 0;

  nlohmann::json to_json() const;
  std::string to_text() const;  // the table printed by `dforce eval`
};

// Runs (a)-(d) for `model_path` on `data`'s held-out frames. Throws Error when the model and
// the data do not match (resolution) or no clip has enough held-out frames.
EvalReport evaluate_model(const std::string& model_path, const VideoDataset& data,
                          const EvalSettings& settings);

// (a) alone, as one number: the mean over `settings.loss_levels` of the held-out denoising
// loss (the unweighted MSE against the objective's target; for latent models on latents).
// The noise comes from settings.seed alone, so two models scored on the same data with the
// same settings see the same noisy inputs: "Learn this clip" reports this before and after.
// Cheap: one forward pass per level, window and draw (no sampling). Throws Error when the
// model and the data do not match or no clip has held-out frames.
double mean_held_out_loss(const std::string& model_path, const VideoDataset& data,
                          const EvalSettings& settings);
// The settings `dforce learn` and the Studio's "Learn this clip" measure with: the default
// levels, up to 4 windows per clip, 4 noise draws each, seed 0 (defined in learn.cpp).
EvalSettings learn_loss_settings(const std::string& device = "cpu");

// [SECTION] Metrics (exposed for tests) --------------------------------------------------

// PSNR in dB between uint8 images [.., H, W, 3] (peak 255); +inf when identical.
double psnr_u8(const torch::Tensor& a, const torch::Tensor& b);
// SSIM (Wang et al. 2004) between uint8 images [H, W, 3].
double ssim_u8(const torch::Tensor& a, const torch::Tensor& b);
// Per-frame statistics of uint8 frames [N, H, W, 3]: [N, 3] = (mean, contrast, sharpness).
torch::Tensor frame_statistics(const torch::Tensor& frames_u8);

}  // namespace dfs::diffusion::train
