// dfs/diffusion/model_file.h — reading and writing model files (torch).
//
// One .safetensors file is one model: the network's tensors under their module names, a latent
// model's autoencoder under "ae.", and in __metadata__ the config, provenance and format tag.
// Every header field and tensor is checked, because users open files from anywhere.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>

#include "dfs/diffusion/autoencoder.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model.h"

namespace dfs::diffusion {

// Writes a model file: every parameter as float32 plus __metadata__ {"config": JSON,
// "provenance": JSON, "format": "dfs-model-1"}; a latent model also holds its autoencoder
// (tensors "ae.*", metadata "autoencoder"). Atomic. Throws Error.
void save_model(const std::string& path, Denoiser& net, const ModelConfig& config,
                const nlohmann::json& provenance = nlohmann::json::object(),
                Autoencoder* autoencoder = nullptr);

struct LoadedDenoiser {
  Denoiser net{nullptr};
  ModelConfig config;
  nlohmann::json provenance = nlohmann::json::object();
  Autoencoder ae{nullptr};  // set for latent models
};
// Reads a model file on the CPU in float32, checking every tensor against the config (names
// missing, unexpected and mis-shaped ones). Throws Error.
LoadedDenoiser load_denoiser(const std::string& path);

}  // namespace dfs::diffusion
