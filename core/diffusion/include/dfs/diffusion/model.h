// dfs/diffusion/model.h — the denoiser network and its configuration (torch).
//
// Input x [B, T, C, H, W] (noised per frame; pixels in [-1, 1], or a latent model's normalised
// latents, where width/height/channels are the latent grid's) and levels [B, T] (each frame's own
// noise level in [0, 1]); output the prediction for the config's objective, same shape as x.
// Registered module names equal the checkpoint keys in the .safetensors file.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

#include "dfs/diffusion/noise.h"

namespace dfs::diffusion {

struct ModelConfig {
  std::string name = "demo";
  int width = 64;  // model resolution (pixels); multiples of `patch`
  int height = 48;
  int channels = 3;
  int max_frames = 16;  // the longest window the model takes
  int patch = 4;        // stem downsampling factor
  int dim = 96;         // transformer width
  int depth = 4;        // space-time blocks
  int heads = 4;
  int mlp_ratio = 4;     // MLP hidden width = mlp_ratio * dim
  bool overlap = false;  // overlapping patches: stem and head kernels 2*patch wide
                         // (stride patch), so neighbouring patches blend at borders
  bool causal = false;   // temporal attention causal (KV cache) or bidirectional
  Objective objective = Objective::V;
  NoiseScheduleKind noise_schedule = NoiseScheduleKind::Cosine;
  double sigma_data = 1.0;  // Edm only: the data's standard deviation (1 for normalised
                            // latents, ~0.5 for pixels in [-1, 1])

  static ModelConfig preset(const std::string& name);  // "demo", "tiny", "*-causal"; throws Error
  nlohmann::json to_json() const;
  static ModelConfig from_json(const nlohmann::json& j);  // validates ranges; throws Error
};

// The network. Implementation detail of the engine; the trainer uses it directly.
class DenoiserImpl;  // torch::nn::Module, defined in denoiser.h (save_model/load_denoiser there
                     // too)
class Denoiser;      // TORCH_MODULE holder

}  // namespace dfs::diffusion
