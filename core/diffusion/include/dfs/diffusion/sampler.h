// dfs/diffusion/sampler.h — the model-agnostic diffusion-forcing sampler for one window (torch).
//
// Like k-diffusion's samplers, this knows nothing about any network: it loops over the rows of
// a scheduling matrix and calls a DenoiseFn, which returns x0 estimates (denoise.h). Tests pass
// an analytic denoiser; the engine passes a ModelDenoiser (denoiser.h). History guidance wraps
// the denoiser (guidance.h). Randomness comes from the caller's generator only.
//
// Units: frames are float tensors in [-1, 1], [T, C, H, W] for one window; a matrix entry e
// maps to level e / S. Thread-safety: none needed, everything is passed in.
#pragma once

#include <torch/torch.h>

#include <atomic>
#include <functional>
#include <utility>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/denoise.h"
#include "dfs/diffusion/noise.h"

namespace dfs::diffusion {

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
  bool all_estimates = false;    // on_step's estimates are looked at (live previews): every
                                 // frame needs one, not only the frames that move this row
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
// (eta > 0) updates, each frame from its level at row m to its level at row m + 1. `denoise`
// returns x0 estimates; settings.guidance wraps it with history_guidance() (guidance.h), so
// a guided step is still one batched call. Throws Error on inconsistent input.
WindowResult sample_window(const DenoiseFn& denoise, const NoiseSchedule& schedule,
                           const WindowInput& input, const SamplerSettings& settings,
                           at::Generator& generator, const WindowCallbacks& callbacks = {});

// One frame's DDIM update from level `from` to level `to` (Song et al. 2021, Eq. 12), written
// on (x, x0): x_to = c_x x + c_x0 x0 + sigma z, with eps recomputed from the (clipped) x0 as
// diffusers' DDIMScheduler does. A frame that does not move (to >= from) keeps x.
struct DdimStep {
  double c_x = 1.0;
  double c_x0 = 0.0;
  double sigma = 0.0;  // standard deviation of the fresh noise z (0 for DDIM)
};
DdimStep ddim_step(const NoiseSchedule& schedule, double from, double to, double eta);

// Half the log signal-to-noise ratio at `level`, lambda = log(alpha / sigma) (DPM-Solver's time
// variable).
double half_log_snr(const NoiseSchedule& schedule, double level);

// DPM-Solver++(2M)'s weights (on this x0, on the previous x0) for a step of log-SNR length h
// after one of length h_last; (1, 0), the first-order step, when either is not a finite
// positive number (the first step of a frame, a start from pure noise).
std::pair<double, double> dpmpp_2m_weights(double h, double h_last);

// The level each frame is fed to the model at in row m: known frames at their stabilisation
// level, generated frames already final at settings.stabilization_generated (like frames
// generated in earlier windows), the rest at their matrix level M[m, t] / S.
std::vector<double> fed_levels(const SchedulingMatrix& matrix, int row,
                               const std::vector<FrameRole>& roles, const std::vector<bool>& final,
                               const SamplerSettings& settings);

// Validates sampler settings (eta, stabilisation levels, guidance) with messages; throws Error.
void validate_sampler_settings(const SamplerSettings& settings);

}  // namespace dfs::diffusion
