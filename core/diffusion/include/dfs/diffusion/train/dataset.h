// dfs/diffusion/train/dataset.h — the packed video dataset the trainer reads (torch).
//
// One .safetensors file holds a whole training set, so that training needs no video decoder
// (the core-only build on a GPU machine reads it directly):
//   tensors
//     "frames"        uint8 [N, H, W, 3]  every frame of every clip, clips back to back, RGB
//     "clip_offsets"  int64 [C + 1]       clip c is frames[clip_offsets[c] .. clip_offsets[c+1])
//     "clip_train"    int64 [C]           the first clip_train[c] frames of clip c are for
//                                         training; the rest of the clip is held out (split by
//                                         time, so held-out frames are never seen in training)
//   __metadata__
//     "format"     "dfs-dataset"          "version"    "1"
//     "clips"      JSON array of {"name", "source"} (one per clip, same order)
//     "provenance" JSON object: how the file was made (command, sources, size, fit, date)
// Loading validates all of the above and throws Error naming the problem.
//
// Ownership: a VideoDataset owns its tensors (CPU). Not thread-safe for mutation; concurrent
// reads are fine.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "dfs/frame.h"

namespace dfs::diffusion::train {

inline constexpr const char* kDatasetFormat = "dfs-dataset";
inline constexpr double kDefaultHeldOutFraction = 0.2;  // last 20 % of each clip

struct ClipInfo {
  std::string name;          // short name, e.g. "vtest"
  std::string source;        // where it came from (file name, "synthetic:seed=3", ...)
  int64_t first = 0;         // index of the clip's first frame in `frames`
  int64_t length = 0;        // frames in the clip
  int64_t train_length = 0;  // frames [first, first + train_length) are for training

  int64_t held_out_first() const { return first + train_length; }
  int64_t held_out_length() const { return length - train_length; }
};

struct VideoDataset {
  torch::Tensor frames;         // uint8 [N, H, W, 3], CPU, contiguous
  std::vector<ClipInfo> clips;  // in file order, covering `frames` back to back
  nlohmann::json provenance = nlohmann::json::object();
  // For latent models: every frame encoded by the model's autoencoder (normalised latents,
  // float [N, C, H/8, W/8]) and the same of the horizontally flipped frames (augmentation).
  // Not stored in the dataset file (encode_dataset in ae_trainer.h makes and caches them).
  torch::Tensor latents;
  torch::Tensor latents_flipped;

  int width() const { return frames.defined() ? static_cast<int>(frames.size(2)) : 0; }
  int height() const { return frames.defined() ? static_cast<int>(frames.size(1)) : 0; }
  int64_t frame_count() const { return frames.defined() ? frames.size(0) : 0; }
  int64_t train_frame_count() const;
  int64_t held_out_frame_count() const;
  // Index of the clip (in `clips`) with this name; throws Error if absent.
  size_t clip_index(const std::string& name) const;
  // A stable fingerprint of the content (sizes, clip layout, a hash of the frames); checkpoints
  // record it so that --resume on different data refuses.
  std::string fingerprint() const;
};

// Appends one clip. `frames` is uint8 [T, H, W, 3] at the dataset's size (the first clip
// fixes the size). The held-out part is the last round(held_out_fraction * T) frames, at
// least 1 when T >= 2; held_out_fraction = 1 holds out the whole clip (no training step sees
// any of it: "unseen footage"). Throws Error on a size mismatch or an empty clip.
void append_clip(VideoDataset& dataset, const std::string& name, const std::string& source,
                 const torch::Tensor& frames, double held_out_fraction = kDefaultHeldOutFraction);
// The same from decoded frames (all of one size, RGB): the one packing path that `dforce
// learn` / `dataset pack` and the Studio's "Learn this clip" share. Throws Error on an empty
// clip or frames of different sizes.
void append_clip(VideoDataset& dataset, const std::string& name, const std::string& source,
                 const std::vector<Frame>& frames,
                 double held_out_fraction = kDefaultHeldOutFraction);

// Writes atomically (temp file + rename). Throws Error on failure.
void save_dataset(const std::string& path, const VideoDataset& dataset);
// Reads and validates a dataset file. Throws Error naming the problem.
VideoDataset load_dataset(const std::string& path);

// Frames [first, first + count) as float [count, 3, H, W] in [-1, 1].
torch::Tensor frames_to_float(const VideoDataset& dataset, int64_t first, int64_t count);
// uint8 [.., H, W, 3] -> float [.., 3, H, W] in [-1, 1] and back (rounded, clamped).
torch::Tensor uint8_to_float(const torch::Tensor& frames_hwc);
torch::Tensor float_to_uint8(const torch::Tensor& frames_chw);

// [SECTION] Synthetic moving objects -------------------------------------------------------

struct SyntheticSettings {
  int clips = 8;    // number of clips
  int frames = 48;  // frames per clip
  int width = 32;   // pixels
  int height = 24;
  int min_objects = 1;  // objects per clip
  int max_objects = 3;
  double min_speed = 0.5;  // pixels per frame
  double max_speed = 2.0;
  uint64_t seed = 0;
  double held_out_fraction = kDefaultHeldOutFraction;
};

// Coloured shapes (discs, squares, rings, diamonds) moving at constant velocity over a
// smooth per-clip background and bouncing off the borders. Deterministic in `seed`. Cheap
// (no files), so tests and the CPU smoke runs use it.
VideoDataset make_synthetic_dataset(const SyntheticSettings& settings);

// [SECTION] Synthetic camera motion over still photographs ------------------------------------

// Clips rendered from still photographs so that a model sees many scenes move in the ways
// real footage moves (docs/DESIGN.md "Broad training data"). Each clip picks a background still and:
//   * a camera: still (p_static), or a pan up to max_pan pixels/frame, a zoom up to max_zoom
//     per frame and a roll up to max_rotation radians/frame, linear or eased in and out; the
//     view always stays inside the photograph;
//   * with p_layers, 1-3 soft-edged cut-outs of other stills (ellipses and rounded boxes)
//     moving across the frame, with parallax against the camera when it moves;
//   * with p_lighting, a brightness and colour drift over the clip.
// Bilinear sampling (the still first area-reduced so no view samples it more coarsely than
// 1.25 source pixels per output pixel). Deterministic: same stills + settings => same bytes.
struct MotionSettings {
  int clips = 400;
  int frames = 24;  // per clip
  int width = 256;  // output pixels
  int height = 192;
  double max_pan = 3.0;          // output pixels per frame
  double max_zoom = 0.01;        // relative scale change per frame
  double max_rotation = 0.004;   // radians per frame
  double p_static = 0.25;        // probability of a still camera
  double p_layers = 0.6;         // probability of moving cut-outs
  double max_layer_speed = 4.0;  // output pixels per frame
  double p_lighting = 0.3;       // probability of a lighting drift
  uint64_t seed = 0;
};

// Appends `settings.clips` clips named "motion_0000", ... (training only, nothing held out) to
// `dataset`. `stills` are uint8 [H, W, 3] photographs of any size (at least 64 pixels a side).
// Throws Error when there are no usable stills or the size does not match the dataset.
void append_motion_clips(VideoDataset& dataset, const std::vector<torch::Tensor>& stills,
                         const MotionSettings& settings);

}  // namespace dfs::diffusion::train
