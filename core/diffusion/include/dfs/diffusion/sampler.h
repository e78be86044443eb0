// dfs/diffusion/sampler.h — the model-agnostic diffusion-forcing sampler for one window (torch).
//
// Like k-diffusion's samplers, this knows nothing about any network: it loops over the rows of
// a scheduling matrix and calls a DenoiseFn. Tests pass an analytic denoiser; the engine passes
// a ModelDenoiser (denoiser.h). Randomness comes from the caller's generator only.
//
// Units: frames are float tensors in [-1, 1], [T, C, H, W] for one window; a matrix entry e
// maps to level e / S. Thread-safety: none needed, everything is passed in.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/noise.h"

namespace dfs::diffusion {

// One (batched) model call.
struct DenoiseCall {
  torch::Tensor x;          // [B, T, C, H, W] noised frames
  torch::Tensor levels;     // [B, T] each frame's level in [0, 1]
  torch::Tensor positions;  // [T] float time positions within the window
  int known_prefix = 0;     // leading frames whose inputs are identical in every call of this
                            // window (a causal model may cache them)
  int needed_frames = 0;    // predictions are used only for frames < needed_frames (0 = all);
                            // a causal model may skip the frames after them
};
// Returns the prediction for the model's objective, same shape as call.x.
using DenoiseFn = std::function<torch::Tensor(const DenoiseCall& call)>;

enum class FrameRole {
  Generate,        // denoised along its matrix column
  KnownUser,       // pinned by the user: fed at stabilization_user, returned unchanged
  KnownGenerated,  // generated earlier: fed at stabilization_generated, returned unchanged
};

struct WindowInput {
  torch::Tensor content;         // [T, C, H, W]: known frames' clean content; partial frames'
                                 // content to re-noise; ignored for frames starting at S
  std::vector<FrameRole> roles;  // per frame
  torch::Tensor positions;       // [T] float time positions; undefined = 0..T-1
  SchedulingMatrix matrix;       // [rows, T]; known frames' columns must be all 0
  double x0_clamp = 1.0;         // x0 estimates are clamped to [-x0_clamp, x0_clamp] (pixels:
                                 // 1; a latent model: its autoencoder's latent bound)
};

struct WindowCallbacks {
  // After each row transition: row done (1..rows-1), rows - 1, current x0 estimate [T, C, H, W]
  // (known frames show their content).
  std::function<void(int row, int rows, const torch::Tensor& x0)> on_step;
  // A generated frame reached level 0: it never changes again. value [C, H, W].
  std::function<void(int frame, const torch::Tensor& value)> on_final;
  const std::atomic<bool>* cancel = nullptr;  // checked before every step
};

struct WindowResult {
  torch::Tensor frames;     // [T, C, H, W]; known frames are the input content, untouched
  std::vector<bool> final;  // per frame: final (known frames always)
  bool cancelled = false;
  int forwards = 0;  // batched model calls made
};

// Runs one window: per-frame DDIM (eta = 0, Song et al. 2021 "DDIM", Eq. 12) or DDPM-like
// (eta > 0) updates, each frame from its level at row m to its level at row m + 1, with
// history guidance (DFoT, Song et al. 2025, Sec. 4) batched into one call per step.
// Throws Error on inconsistent input.
WindowResult sample_window(const DenoiseFn& denoise, const NoiseSchedule& schedule,
                           Objective objective, const WindowInput& input,
                           const SamplerSettings& settings, at::Generator& generator,
                           const WindowCallbacks& callbacks = {});

// Validates sampler settings (eta, stabilisation levels, guidance) with messages; throws Error.
void validate_sampler_settings(const SamplerSettings& settings);

}  // namespace dfs::diffusion
