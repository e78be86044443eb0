// dfs/diffusion/denoise.h — what a sampler calls: a denoiser that returns the x0 estimate (torch).
//
// As in k-diffusion (`external.py` wrappers around `sampling.py`), the sampler only ever sees
// denoised estimates: the model wrapper converts the network's prediction for its objective to
// x0 (x0_denoiser below, or ModelDenoiser in the engine), and history guidance wraps one
// DenoiseFn into another (guidance.h). A sampler is then a short loop over levels.
//
// Units: frames are float tensors, [B, T, C, H, W]; levels are fractions in [0, 1] per frame.
// Thread-safety: a DenoiseFn is called from one thread at a time.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "dfs/diffusion/noise.h"

namespace dfs::diffusion {

// The frames of a window that are history (pinned or generated earlier), as the sampler holds
// them. Guidance wrappers re-noise them to other levels with the window's fixed noise.
struct WindowHistory {
  torch::Tensor known;  // [T] bool: the frame is history; undefined = no history
  torch::Tensor clean;  // [T, C, H, W] the known frames' clean content
  torch::Tensor noise;  // [T, C, H, W] the window's one noise draw
};

// One (batched) model call.
struct DenoiseCall {
  torch::Tensor x;           // [B, T, C, H, W] noised frames
  torch::Tensor levels;      // [B, T] each frame's level in [0, 1]
  torch::Tensor positions;   // [T] float time positions within the window
  int known_prefix = 0;      // leading frames whose inputs are identical in every call of this
                             // window (a causal model may cache them)
  int stable_prefix = 0;     // leading frames whose inputs stay the same in this and every
                             // later call of the window: the known prefix, then generated
                             // frames already finished (>= known_prefix)
  int needed_frames = 0;     // estimates are used only for frames < needed_frames (0 = all);
                             // a causal model may skip the frames after them
  WindowHistory history;     // for guidance wrappers; the call's x already holds it at the
                             // history's stabilisation levels
  std::vector<bool> needed;  // per frame: its estimate is used (empty = every frame's); a
                             // model may return zeros for the others
};

// Returns the denoised estimate x0, same shape as call.x.
using DenoiseFn = std::function<torch::Tensor(const DenoiseCall& call)>;

// Returns the network's prediction for its objective (v, eps, x0 or EDM's F), same shape.
using PredictFn = std::function<torch::Tensor(const DenoiseCall& call)>;

// The model wrapper's one formula: x0 from the prediction at (x, level) for `objective`
// (Salimans & Ho 2022, Sec. 4 and App. D; EDM: Karras et al. 2022, Eq. 7), see
// NoiseSchedule::to_x0.
DenoiseFn x0_denoiser(PredictFn predict, NoiseSchedule schedule, Objective objective);

}  // namespace dfs::diffusion
