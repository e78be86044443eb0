// Model files: one .safetensors file holds the network, its config and provenance, and a latent
// model's autoencoder (model_file.h).
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/model_file.h"
#include "dfs/diffusion/weights.h"

namespace dfs::diffusion {

void save_model(const std::string& path, Denoiser& net, const ModelConfig& config,
                const nlohmann::json& provenance, Autoencoder* autoencoder) {
  TensorFile file;
  if (autoencoder != nullptr) add_autoencoder_to_file(*autoencoder, file.tensors, file.metadata);
  file.metadata["format"] = "dfs-model-1";
  file.metadata["config"] = config.to_json().dump();
  file.metadata["provenance"] = provenance.is_null() ? "{}" : provenance.dump();
  for (const auto& item : net->named_parameters())
    file.tensors[item.key()] = item.value().detach().to(torch::kCPU, torch::kFloat32);
  for (const auto& item : net->named_buffers())
    file.tensors[item.key()] = item.value().detach().to(torch::kCPU);
  save_safetensors(path, file);
}

namespace {

std::string shape_text(torch::IntArrayRef sizes) {
  std::ostringstream s;
  s << sizes;
  return s.str();
}

std::string join_limited(const std::vector<std::string>& names) {
  std::string out;
  for (size_t i = 0; i < names.size() && i < 8; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > 8) out += " and " + std::to_string(names.size() - 8) + " more";
  return out;
}

}  // namespace

LoadedDenoiser load_denoiser(const std::string& path) {
  TensorFile file = load_safetensors(path);
  const auto config_it = file.metadata.find("config");
  if (config_it == file.metadata.end())
    throw Error(path +
                ": not a Diffusion Forcing Studio model (no 'config' in the safetensors metadata)");
  const auto config_json = nlohmann::json::parse(config_it->second, nullptr, false);
  if (config_json.is_discarded())
    throw Error(path + ": the model config in the metadata is not valid JSON");
  LoadedDenoiser loaded;
  try {
    loaded.config = ModelConfig::from_json(config_json);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  if (const auto it = file.metadata.find("provenance"); it != file.metadata.end()) {
    loaded.provenance = nlohmann::json::parse(it->second, nullptr, false);
    if (loaded.provenance.is_discarded())
      loaded.provenance = nlohmann::json{{"unparsed", it->second}};
  }
  // Never build a network much larger than the file could fill: a hostile config (dim 4096,
  // depth 128) must not allocate gigabytes before the tensor check rejects it. Near misses
  // go on to the per-tensor check below, which names the offending tensors.
  int64_t values_in_file = 0;
  for (const auto& [name, tensor] : file.tensors) values_in_file += tensor.numel();
  const int64_t needed = expected_parameter_count(loaded.config);
  if (needed > 2 * values_in_file + (1 << 20))
    throw Error(path + ": its config '" + loaded.config.name + "' needs " + std::to_string(needed) +
                " parameters but the file holds only " + std::to_string(values_in_file) +
                " values");
  loaded.net = Denoiser(loaded.config);

  std::vector<std::string> missing, misshaped, unexpected;
  std::set<std::string> expected;
  torch::NoGradGuard no_grad;
  auto params = loaded.net->named_parameters();
  for (auto& item : params) {
    expected.insert(item.key());
    const auto it = file.tensors.find(item.key());
    if (it == file.tensors.end()) {
      missing.push_back(item.key());
    } else if (it->second.sizes() != item.value().sizes()) {
      misshaped.push_back(item.key() + " (file " + shape_text(it->second.sizes()) +
                          ", config needs " + shape_text(item.value().sizes()) + ")");
    } else if (!it->second.is_floating_point()) {
      misshaped.push_back(item.key() + " (not a floating-point tensor)");
    } else {
      item.value().copy_(it->second.to(torch::kFloat32));
    }
  }
  const bool latent = has_autoencoder(file.metadata);
  for (const auto& [name, tensor] : file.tensors)
    if (!expected.count(name) && !(latent && name.rfind(kAutoencoderPrefix, 0) == 0))
      unexpected.push_back(name);
  std::string problems;
  if (!missing.empty()) problems += "missing tensors: " + join_limited(missing) + ". ";
  if (!misshaped.empty()) problems += "mis-shaped tensors: " + join_limited(misshaped) + ". ";
  if (!unexpected.empty()) problems += "unexpected tensors: " + join_limited(unexpected) + ". ";
  if (!problems.empty())
    throw Error(path + " does not match its config '" + loaded.config.name + "': " + problems);
  for (const auto& p : loaded.net->parameters())
    if (!torch::isfinite(p).all().item<bool>())
      throw Error(path + ": the weights contain NaN or infinity");
  if (latent) {
    loaded.ae = load_autoencoder_from(file.metadata, file.tensors, path);
    if (loaded.ae->config().latent_channels != loaded.config.channels)
      throw Error(path + ": the transformer takes " + std::to_string(loaded.config.channels) +
                  " channels but the autoencoder makes " +
                  std::to_string(loaded.ae->config().latent_channels));
    if (!loaded.ae->config().normalised())
      throw Error(path + ": the autoencoder has no latent statistics (it was never finished)");
  }
  return loaded;
}

}  // namespace dfs::diffusion
