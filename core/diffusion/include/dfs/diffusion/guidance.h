// dfs/diffusion/guidance.h — history guidance as a denoiser wrapper (torch).
//
// History guidance (DFoT, Song et al. 2025, "History-Guided Video Diffusion", Sec. 4.2)
// combines estimates made with different views of the history frames:
//   h    the history at its stabilisation level (what the call already holds),
//   h_f  the history re-noised to level f (fractional mode),
//   ∅    the history fully masked (level 1).
// vanilla(w):       D(h) -> D(∅) + w (D(h) - D(∅))
// fractional(w, f): D(h) -> D(h) + (w - 1) (D(h_f) - D(∅))
// The paper writes these on eps (scores); at a fixed x_n and level, x0 is affine in eps, so the
// same weights (they sum to 1) give the same combination of x0 estimates. The 2–3 variants go
// to the wrapped denoiser as one batched call.
#pragma once

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/denoise.h"
#include "dfs/diffusion/noise.h"

namespace dfs::diffusion {

// The number of history variants one guided call batches: 1 (none, or w = 1), 2 (vanilla),
// 3 (fractional).
int guidance_variants(const GuidanceSettings& guidance);

// Wraps `denoise` with history guidance. Calls without history frames (call.history.known
// undefined or all false), and settings with mode None or w = 1, pass straight through.
// The wrapped call's batch must be 1.
DenoiseFn history_guidance(DenoiseFn denoise, NoiseSchedule schedule, GuidanceSettings guidance);

}  // namespace dfs::diffusion
