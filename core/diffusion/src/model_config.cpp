// ModelConfig: the presets, JSON round trip and validation of a model's architecture (model.h).
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <string>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/model.h"

namespace dfs::diffusion {

ModelConfig ModelConfig::preset(const std::string& name) {
  ModelConfig c;
  if (name == "demo") {
    // The shipped model's size, chosen with `dforce bench` on a 2-core CPU: 8x8 patches give
    // 8x6 = 48 tokens per frame; 4x4 patches (192 tokens) cost ~3x more per forward (spatial
    // attention grows with tokens^2) and missed the 24 frames/s target by far.
    return {.name = "demo",
            .width = 64,
            .height = 48,
            .max_frames = 16,
            .patch = 8,
            .dim = 96,
            .depth = 4,
            .heads = 4};
  }
  if (name == "demo-causal") {
    c = preset("demo");
    c.name = "demo-causal";
    c.causal = true;
    return c;
  }
  if (name == "latent" || name == "latent-causal") {
    // The latent transformer (docs/DESIGN.md "Latent space"): 256x192 frames -> 32x24x8 latents of
    // the ae-demo autoencoder. 4x4 latent patches give 8x6 = 48 tokens per frame, each holding
    // 4*4*8 = 128 values in a 128-wide token: no squeeze (the 64x48 pixel model put 192 values
    // into 64). Chosen with `dforce bench` on the 2-core CPU: 2x2 patches (192 tokens of 64)
    // ran 12.7 frames/s against 50 for 48 tokens of 128, the same FLOPs but small GEMMs and a
    // 192x192 spatial attention; MLP ratio 2 keeps the whole pipeline, decoder included, above
    // 24 frames/s. Overlapping 8x8 kernels at stride 4 blend neighbouring tokens (no seams at
    // 32-pixel borders). EDM preconditioning with sigma_data = 1 (normalised latents) passes
    // a clean input through at low noise.
    return {.name = name,
            .width = 32,
            .height = 24,
            .channels = 8,
            .max_frames = 16,
            .patch = 4,
            .dim = 128,
            .depth = 4,
            .heads = 4,
            .mlp_ratio = 2,
            .overlap = true,
            .causal = name == "latent-causal",
            .objective = Objective::Edm,
            .sigma_data = 1.0};
  }
  if (name == "latent-tiny") {
    // For fast tests: 64x48 frames -> 8x6x8 latents of ae-tiny, 2x2 patches (12 tokens of 32).
    return {.name = name,
            .width = 8,
            .height = 6,
            .channels = 8,
            .max_frames = 16,
            .patch = 2,
            .dim = 32,
            .depth = 2,
            .heads = 2,
            .mlp_ratio = 2,
            .overlap = true,
            .objective = Objective::Edm,
            .sigma_data = 1.0};
  }
  if (name == "tiny") {
    // For fast tests: a few thousand parameters, 32x24, 8 frames.
    return {.name = "tiny",
            .width = 32,
            .height = 24,
            .max_frames = 8,
            .patch = 4,
            .dim = 32,
            .depth = 2,
            .heads = 2,
            .mlp_ratio = 2};
  }
  if (name == "tiny-causal") {
    c = preset("tiny");
    c.name = "tiny-causal";
    c.causal = true;
    return c;
  }
  throw Error("unknown model preset '" + name +
              "' (expected demo, demo-causal, latent, latent-causal, tiny or tiny-causal)");
}

nlohmann::json ModelConfig::to_json() const {
  nlohmann::json j = {{"name", name},
                      {"architecture", "dfs-spacetime-dit-1"},
                      {"width", width},
                      {"height", height},
                      {"channels", channels},
                      {"max_frames", max_frames},
                      {"patch", patch},
                      {"dim", dim},
                      {"depth", depth},
                      {"heads", heads},
                      {"mlp_ratio", mlp_ratio},
                      {"causal", causal},
                      {"objective", dfs::diffusion::to_string(objective)},
                      {"noise_schedule", dfs::diffusion::to_string(noise_schedule)}};
  // Written only when set, so files made before the field existed keep their exact config.
  if (overlap) j["overlap"] = true;
  if (objective == Objective::Edm) j["sigma_data"] = sigma_data;
  return j;
}

namespace {

int int_field(const nlohmann::json& j, const char* key, int fallback, int lo, int hi,
              bool required) {
  const auto it = j.find(key);
  if (it == j.end()) {
    if (required) throw Error(std::string("model config has no '") + key + "'");
    return fallback;
  }
  if (!it->is_number_integer())
    throw Error(std::string("model config '") + key + "' must be a whole number");
  const auto v = it->get<int64_t>();
  if (v < lo || v > hi)
    throw Error(std::string("model config '") + key + "' = " + std::to_string(v) + " is outside [" +
                std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return static_cast<int>(v);
}

}  // namespace

ModelConfig ModelConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("model config must be a JSON object");
  ModelConfig c;
  if (const auto it = j.find("name"); it != j.end()) {
    if (!it->is_string()) throw Error("model config 'name' must be a string");
    c.name = it->get<std::string>();
  }
  if (const auto it = j.find("architecture"); it != j.end() && *it != "dfs-spacetime-dit-1")
    throw Error("model architecture " + it->dump() +
                " is not supported by this version (expected dfs-spacetime-dit-1)");
  c.width = int_field(j, "width", c.width, 1, 4096, true);
  c.height = int_field(j, "height", c.height, 1, 4096, true);
  c.channels = int_field(j, "channels", c.channels, 1, 64, false);
  c.max_frames = int_field(j, "max_frames", c.max_frames, 1, 1024, true);
  c.patch = int_field(j, "patch", c.patch, 1, 32, true);
  c.dim = int_field(j, "dim", c.dim, 4, 4096, true);
  c.depth = int_field(j, "depth", c.depth, 1, 128, true);
  c.heads = int_field(j, "heads", c.heads, 1, 64, true);
  c.mlp_ratio = int_field(j, "mlp_ratio", c.mlp_ratio, 1, 16, false);
  if (const auto it = j.find("causal"); it != j.end()) {
    if (!it->is_boolean()) throw Error("model config 'causal' must be true or false");
    c.causal = it->get<bool>();
  }
  if (const auto it = j.find("overlap"); it != j.end()) {
    if (!it->is_boolean()) throw Error("model config 'overlap' must be true or false");
    c.overlap = it->get<bool>();
  }
  if (const auto it = j.find("objective"); it != j.end()) {
    if (!it->is_string()) throw Error("model config 'objective' must be a string");
    c.objective = objective_from_string(it->get<std::string>());
  }
  if (const auto it = j.find("noise_schedule"); it != j.end()) {
    if (!it->is_string()) throw Error("model config 'noise_schedule' must be a string");
    c.noise_schedule = noise_schedule_from_string(it->get<std::string>());
  }
  if (const auto it = j.find("sigma_data"); it != j.end()) {
    if (!it->is_number() || !(it->get<double>() > 0 && it->get<double>() <= 100))
      throw Error("model config 'sigma_data' must be a number in (0, 100]");
    c.sigma_data = it->get<double>();
  }
  if (c.overlap && c.patch % 2 != 0)
    throw Error("overlapping patches need an even patch size, got " + std::to_string(c.patch));
  if (c.width % c.patch != 0 || c.height % c.patch != 0)
    throw Error("model resolution " + std::to_string(c.width) + "x" + std::to_string(c.height) +
                " is not a multiple of the patch size " + std::to_string(c.patch));
  if (c.dim % c.heads != 0 || (c.dim / c.heads) % 2 != 0)
    throw Error("model dim " + std::to_string(c.dim) + " must split into " +
                std::to_string(c.heads) + " heads of an even size (rotary positions rotate pairs)");
  return c;
}

}  // namespace dfs::diffusion
