// Encoding a dataset's frames as a latent model's latents, cached (see ae_trainer.h).
#include "dfs/diffusion/train/ae_trainer.h"

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/weights.h"

namespace dfs::diffusion::train {

std::string autoencoder_fingerprint(Autoencoder& ae) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a 64
  auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  };
  const auto config = ae->config().to_json().dump();
  mix(config.data(), config.size());
  for (const auto& p : ae->named_parameters()) {
    const auto t = p.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
    mix(p.key().data(), p.key().size());
    mix(t.data_ptr<float>(), static_cast<size_t>(t.numel()) * sizeof(float));
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

void encode_dataset(VideoDataset& data, Autoencoder& ae, const std::string& cache,
                    const std::function<void(const std::string&)>& log) {
  if (data.width() % kLatentFactor != 0 || data.height() % kLatentFactor != 0)
    throw Error("latent models need frames whose sides are multiples of 8; the dataset is " +
                std::to_string(data.width()) + "x" + std::to_string(data.height()));
  const std::string key = data.fingerprint() + "/" + autoencoder_fingerprint(ae);
  if (!cache.empty() && std::filesystem::exists(cache)) {
    try {
      const auto file = load_safetensors(cache);
      const auto it = file.metadata.find("key");
      if (it != file.metadata.end() && it->second == key && file.tensors.count("latents") &&
          file.tensors.count("latents_flipped")) {
        data.latents = file.tensors.at("latents").to(torch::kFloat32);
        data.latents_flipped = file.tensors.at("latents_flipped").to(torch::kFloat32);
        if (data.latents.size(0) == data.frame_count()) {
          if (log) log("latents from " + cache);
          return;
        }
      }
    } catch (const Error&) {
      // An unreadable cache is rebuilt below.
    }
  }
  torch::NoGradGuard no_grad;
  ae->eval();
  const auto device = ae->parameters().front().device();
  const int64_t n = data.frame_count();
  const int64_t c = ae->config().latent_channels;
  data.latents = torch::empty({n, c, data.height() / kLatentFactor, data.width() / kLatentFactor});
  data.latents_flipped = torch::empty_like(data.latents);
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n; i += 32) {
    const int64_t k = std::min<int64_t>(32, n - i);
    const auto x = frames_to_float(data, i, k).to(device);
    data.latents.narrow(0, i, k).copy_(ae->encode(x).cpu());
    data.latents_flipped.narrow(0, i, k).copy_(ae->encode(x.flip({3})).cpu());
    if (log && (i / 32) % 64 == 63)
      log("encoded " + std::to_string(i + k) + " / " + std::to_string(n) + " frames");
  }
  if (log) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    char line[128];
    std::snprintf(line, sizeof line, "encoded %lld frames (and their mirror images) in %.0f s",
                  static_cast<long long>(n), s);
    log(line);
  }
  if (!cache.empty()) {
    TensorFile file;
    file.metadata["format"] = "dfs-latent-cache";
    file.metadata["key"] = key;
    file.tensors["latents"] = data.latents.to(torch::kFloat16);
    file.tensors["latents_flipped"] = data.latents_flipped.to(torch::kFloat16);
    save_safetensors(cache, file);
    // Use exactly what the cache holds, so a later run from the cache trains identically.
    data.latents = file.tensors["latents"].to(torch::kFloat32);
    data.latents_flipped = file.tensors["latents_flipped"].to(torch::kFloat32);
  }
}

}  // namespace dfs::diffusion::train
