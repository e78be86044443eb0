// The Model handle: loading a model file or a random model onto a device (api.h, model_impl.h).
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/model_file.h"
#include "dfs/diffusion/model_impl.h"
#include "fast_decoder.h"

namespace dfs::diffusion {

torch::Device parse_device(const std::string& device) {
  if (device == "auto")
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0)
                                       : torch::Device(torch::kCPU);
  if (device == "cpu") return torch::kCPU;
  if (device.rfind("cuda", 0) == 0) {
    if (!torch::cuda::is_available())
      throw Error(
          "device '" + device +
          "' requested but CUDA is not available (this LibTorch build or machine has no GPU)");
    int index = 0;
    if (device.size() > 4) {
      if (device[4] != ':')
        throw Error("device must be auto, cpu, cuda or cuda:N, got '" + device + "'");
      try {
        index = std::stoi(device.substr(5));
      } catch (const std::exception&) {
        throw Error("device must be auto, cpu, cuda or cuda:N, got '" + device + "'");
      }
      if (index < 0 || index >= static_cast<int>(torch::cuda::device_count()))
        throw Error("CUDA device " + std::to_string(index) + " does not exist");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw Error("device must be auto, cpu, cuda or cuda:N, got '" + device + "'");
}

namespace {

Model make_model(Denoiser net, const ModelConfig& config, const nlohmann::json& provenance,
                 const std::string& device, Autoencoder ae = nullptr) {
  auto impl = std::make_shared<Model::Impl>();
  impl->config = config;
  impl->device = parse_device(device);
  // bf16 on CUDA (Ampere and newer run it at full speed); float32 on the CPU. DFS_PRECISION
  // (auto, fp32, bf16) overrides, e.g. fp32 on a GPU to compare.
  impl->dtype = impl->device.is_cuda() ? torch::kBFloat16 : torch::kFloat32;
  if (const char* precision = std::getenv("DFS_PRECISION"); precision != nullptr) {
    const std::string p = precision;
    if (p == "fp32")
      impl->dtype = torch::kFloat32;
    else if (p == "bf16" && impl->device.is_cuda())
      impl->dtype = torch::kBFloat16;
    else if (p == "bf16")
      // LibTorch 1.13's CPU transposed convolution (the overlapping-patch head) fails in bf16,
      // and the CPU kernels here are float32 ones: bf16 is a GPU precision.
      throw Error("DFS_PRECISION=bf16 needs a CUDA device; the CPU runs fp32");
    else if (p != "auto" && !p.empty())
      throw Error("DFS_PRECISION must be auto, fp32 or bf16, got '" + p + "'");
  }
  net->to(impl->device, impl->dtype);
  net->eval();
  impl->net = net;
  impl->schedule = NoiseSchedule(config.noise_schedule, config.sigma_data);
  ModelInfo& info = impl->info;
  info.name = config.name;
  info.width = config.width;
  info.height = config.height;
  info.channels = config.channels;
  if (ae) {
    ae->to(impl->device);  // float32 everywhere: decoding quality is worth more than speed
    ae->eval();
    impl->ae = ae;
    const char* fast_decoder = std::getenv("DFS_FAST_DECODER");
    if (impl->device.is_cpu() && !(fast_decoder && std::string(fast_decoder) == "off"))
      impl->fast_decoder = fast::FastDecoder::create(*ae, config.height, config.width);
    impl->x0_clamp = ae->config().latent_clamp;
    info.width = config.width * kLatentFactor;
    info.height = config.height * kLatentFactor;
    info.channels = 3;
    info.latent_channels = config.channels;
    info.latent_width = config.width;
    info.latent_height = config.height;
  }
  info.max_frames = config.max_frames;
  info.causal = config.causal;
  info.objective = to_string(config.objective);
  info.noise_schedule = to_string(config.noise_schedule);
  info.parameter_count = net->parameter_count();
  info.device = impl->device.str();
  info.config_json = config.to_json().dump();
  info.provenance_json = provenance.is_object() ? provenance.dump() : "{}";
  return Model(impl);
}

}  // namespace

torch::Tensor decode_frame(Model::Impl& model, const torch::Tensor& latent, bool exact,
                           int64_t* shuffle) {
  if (shuffle != nullptr) *shuffle = 1;
  if (!exact && model.fast_decoder && latent.device().is_cpu()) {
    const auto raw = model.ae->denormalise(latent);
    if (auto decoded = shuffle != nullptr ? model.fast_decoder->decode_unshuffled(raw, *shuffle)
                                          : model.fast_decoder->decode_hwc(raw);
        decoded.defined())
      return decoded;
    if (shuffle != nullptr) *shuffle = 1;
  }
  const bool channels_last = !exact && model.device.is_cpu();
  const auto x = latent.to(model.device);
  return model.ae->decode(channels_last ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x)[0]
      .permute({1, 2, 0});
}

std::string decoder_kernels(const Model::Impl& model, bool exact) {
  if (!exact && model.fast_decoder) return model.fast_decoder->describe();
  return exact || !model.device.is_cpu() ? "LibTorch" : "LibTorch, channels-last";
}

Model::Model(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

const ModelInfo& Model::info() const {
  return impl_->info;
}

Model Model::load(const std::string& path, const std::string& device) {
  auto loaded = load_denoiser(path);
  Model model = make_model(loaded.net, loaded.config, loaded.provenance, device, loaded.ae);
  return model;
}

Model Model::random(const std::string& preset, uint64_t seed, const std::string& device) {
  const ModelConfig config = ModelConfig::preset(preset);
  Denoiser net(config);
  net->reset_parameters(seed);
  Autoencoder ae{nullptr};
  if (preset.rfind("latent", 0) == 0) {
    // An untrained autoencoder too, with identity latent statistics: for speed measurements.
    ae = Autoencoder(autoencoder_preset(preset == "latent-tiny" ? "ae-tiny" : "ae-demo"));
    ae->reset_parameters(seed);
    ae->set_statistics(std::vector<double>(8, 0.0), std::vector<double>(8, 1.0), 6.0);
  }
  return make_model(
      net, config,
      nlohmann::json{{"source", "random initialisation"}, {"preset", preset}, {"seed", seed}},
      device, ae);
}

}  // namespace dfs::diffusion
