// The latent autoencoder: config, network, preview fit, file I/O (see autoencoder.h).
#include "dfs/diffusion/autoencoder.h"

#include <torch/torch.h>

#include <cmath>
#include <set>
#include <sstream>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/weights.h"

namespace dfs::diffusion {

namespace {

constexpr double kLatentBound = 3.0;  // encoder output = bound * tanh(z / bound)
constexpr int kPreviewBlock = kLatentFactor * kLatentFactor * 3;  // 192 values per latent pixel

std::vector<int> int_list(const nlohmann::json& j, const char* key, const std::vector<int>& def,
                          int lo, int hi) {
  const auto it = j.find(key);
  if (it == j.end()) return def;
  if (!it->is_array() || it->size() != 3)
    throw Error(std::string("autoencoder config '") + key + "' must be a list of 3 numbers");
  std::vector<int> out;
  for (const auto& v : *it) {
    if (!v.is_number_integer() || v.get<int64_t>() < lo || v.get<int64_t>() > hi)
      throw Error(std::string("autoencoder config '") + key +
                  "' entries must be whole numbers in [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
    out.push_back(v.get<int>());
  }
  return out;
}

std::vector<double> double_list(const nlohmann::json& j, const char* key, size_t n) {
  const auto it = j.find(key);
  if (it == j.end()) return {};
  if (!it->is_array() || it->size() != n)
    throw Error(std::string("autoencoder config '") + key + "' must list one number per channel");
  std::vector<double> out;
  for (const auto& v : *it) {
    if (!v.is_number() || !std::isfinite(v.get<double>()))
      throw Error(std::string("autoencoder config '") + key + "' must hold finite numbers");
    out.push_back(v.get<double>());
  }
  return out;
}

torch::nn::Conv2d conv3(int in, int out, int stride = 1) {
  return torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).stride(stride).padding(1));
}

}  // namespace

nlohmann::json AutoencoderConfig::to_json() const {
  nlohmann::json j = {{"architecture", "dfs-conv-ae-1"},    {"factor", kLatentFactor},
                      {"latent_channels", latent_channels}, {"encoder_widths", encoder_widths},
                      {"encoder_blocks", encoder_blocks},   {"decoder_widths", decoder_widths},
                      {"decoder_blocks", decoder_blocks},   {"latent_clamp", latent_clamp}};
  if (normalised()) {
    j["latent_mean"] = latent_mean;
    j["latent_std"] = latent_std;
  }
  return j;
}

AutoencoderConfig AutoencoderConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("autoencoder config must be a JSON object");
  if (const auto it = j.find("architecture"); it != j.end() && *it != "dfs-conv-ae-1")
    throw Error("autoencoder architecture " + it->dump() +
                " is not supported by this version (expected dfs-conv-ae-1)");
  if (const auto it = j.find("factor"); it != j.end() && *it != kLatentFactor)
    throw Error("autoencoder factor " + it->dump() + " is not supported (expected 8)");
  AutoencoderConfig c;
  const auto ch = j.find("latent_channels");
  if (ch == j.end() || !ch->is_number_integer() || ch->get<int64_t>() < 1 ||
      ch->get<int64_t>() > 64)
    throw Error("autoencoder config 'latent_channels' must be a whole number in [1, 64]");
  c.latent_channels = ch->get<int>();
  c.encoder_widths = int_list(j, "encoder_widths", c.encoder_widths, 1, 1024);
  c.encoder_blocks = int_list(j, "encoder_blocks", c.encoder_blocks, 0, 16);
  c.decoder_widths = int_list(j, "decoder_widths", c.decoder_widths, 1, 1024);
  c.decoder_blocks = int_list(j, "decoder_blocks", c.decoder_blocks, 0, 16);
  const auto n = static_cast<size_t>(c.latent_channels);
  c.latent_mean = double_list(j, "latent_mean", n);
  c.latent_std = double_list(j, "latent_std", n);
  if (c.latent_mean.empty() != c.latent_std.empty())
    throw Error("autoencoder config needs both latent_mean and latent_std, or neither");
  for (double s : c.latent_std)
    if (!(s > 0)) throw Error("autoencoder config 'latent_std' entries must be > 0");
  if (const auto it = j.find("latent_clamp"); it != j.end()) {
    if (!it->is_number() || !(it->get<double>() > 0 && it->get<double>() <= 100))
      throw Error("autoencoder config 'latent_clamp' must be in (0, 100]");
    c.latent_clamp = it->get<double>();
  }
  return c;
}

AutoencoderConfig autoencoder_preset(const std::string& name) {
  AutoencoderConfig c;
  if (name == "ae-demo") return c;  // the defaults: chosen by measurement, models/README.md
  if (name == "ae-tiny") {
    c.latent_channels = 8;
    c.encoder_widths = {16, 24, 32};
    c.encoder_blocks = {0, 1, 1};
    c.decoder_widths = {32, 24, 16};
    c.decoder_blocks = {1, 1, 0};
    return c;
  }
  throw Error("unknown autoencoder preset '" + name + "' (known: ae-demo, ae-tiny)");
}

ResidualBlockImpl::ResidualBlockImpl(int channels)
    : a(register_module("a", conv3(channels, channels))),
      b(register_module("b", conv3(channels, channels))) {}

torch::Tensor ResidualBlockImpl::forward(const torch::Tensor& x) {
  return x + b(torch::silu(a(torch::silu(x))));
}

AutoencoderImpl::AutoencoderImpl(const AutoencoderConfig& config) : config_(config) {
  const auto& ew = config.encoder_widths;
  const auto& dw = config.decoder_widths;
  torch::nn::Sequential enc;
  int in = 3;
  for (int s = 0; s < 3; ++s) {
    if (s > 0) enc->push_back(torch::nn::SiLU());
    enc->push_back(conv3(in, ew[s], 2));
    for (int k = 0; k < config.encoder_blocks[s]; ++k) enc->push_back(ResidualBlock(ew[s]));
    in = ew[s];
  }
  enc->push_back(torch::nn::SiLU());
  enc->push_back(conv3(in, config.latent_channels));
  encoder = register_module("encoder", enc);

  torch::nn::Sequential dec;
  dec->push_back(conv3(config.latent_channels, dw[0]));
  for (int s = 0; s < 3; ++s) {
    if (s > 0) {
      dec->push_back(torch::nn::Upsample(torch::nn::UpsampleOptions()
                                             .scale_factor(std::vector<double>{2, 2})
                                             .mode(torch::kNearest)));
      dec->push_back(conv3(dw[s - 1], dw[s]));
    }
    for (int k = 0; k < config.decoder_blocks[s]; ++k) dec->push_back(ResidualBlock(dw[s]));
  }
  dec->push_back(torch::nn::SiLU());
  dec->push_back(conv3(dw[2], 3 * 4));  // sub-pixel head: the last x2
  dec->push_back(torch::nn::PixelShuffle(2));
  decoder = register_module("decoder", dec);
  preview_map =
      register_module("preview", torch::nn::Linear(config.latent_channels, kPreviewBlock));
  set_statistics(config.latent_mean, config.latent_std, config.latent_clamp);
  reset_parameters(0);
}

void AutoencoderImpl::set_statistics(const std::vector<double>& mean,
                                     const std::vector<double>& std, double clamp) {
  config_.latent_mean = mean;
  config_.latent_std = std;
  config_.latent_clamp = clamp;
  if (mean.empty()) {
    mean_ = std_ = torch::Tensor();
    return;
  }
  mean_ = torch::tensor(mean, torch::kFloat64).to(torch::kFloat32).view({1, -1, 1, 1});
  std_ = torch::tensor(std, torch::kFloat64).to(torch::kFloat32).view({1, -1, 1, 1});
}

void AutoencoderImpl::reset_parameters(uint64_t seed) {
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& item : named_parameters()) {
    auto& p = item.value();
    if (item.key().rfind("preview.", 0) == 0 || p.dim() < 2) {
      p.zero_();
      continue;
    }
    // Kaiming/He uniform for SiLU-ish nets (He et al. 2015, Eq. 10), fan-in mode.
    const double fan_in = static_cast<double>(p.numel() / p.size(0));
    const double bound = std::sqrt(6.0 / fan_in) * 0.5;
    p.copy_(torch::rand(p.sizes(), gen, torch::kFloat32).mul(2 * bound).sub(bound));
  }
  // Residual branches start near identity: their second conv small.
  for (auto& item : named_parameters())
    if (item.key().size() > 9 && item.key().compare(item.key().size() - 9, 9, ".b.weight") == 0)
      item.value().mul_(0.1);
}

torch::Tensor AutoencoderImpl::normalise(const torch::Tensor& raw) const {
  if (!mean_.defined()) return raw;
  return (raw - mean_.to(raw.device(), raw.scalar_type())) /
         std_.to(raw.device(), raw.scalar_type());
}

torch::Tensor AutoencoderImpl::denormalise(const torch::Tensor& z) const {
  if (!mean_.defined()) return z;
  return z * std_.to(z.device(), z.scalar_type()) + mean_.to(z.device(), z.scalar_type());
}

torch::Tensor AutoencoderImpl::encode_raw(const torch::Tensor& rgb) {
  if (rgb.dim() != 4 || rgb.size(1) != 3 || rgb.size(2) % kLatentFactor != 0 ||
      rgb.size(3) % kLatentFactor != 0) {
    std::ostringstream msg;
    msg << "the autoencoder takes RGB [N, 3, H, W] with H and W multiples of 8, got "
        << rgb.sizes();
    throw Error(msg.str());
  }
  return kLatentBound * torch::tanh(encoder->forward(rgb) / kLatentBound);
}

torch::Tensor AutoencoderImpl::decode_raw(const torch::Tensor& latents) {
  if (latents.dim() != 4 || latents.size(1) != config_.latent_channels)
    throw Error("the autoencoder decodes latents [N, " + std::to_string(config_.latent_channels) +
                ", h, w]");
  return decoder->forward(latents);
}

torch::Tensor AutoencoderImpl::encode(const torch::Tensor& rgb) {
  return normalise(encode_raw(rgb));
}

torch::Tensor AutoencoderImpl::decode(const torch::Tensor& latents) {
  return decode_raw(denormalise(latents));
}

torch::Tensor AutoencoderImpl::preview(const torch::Tensor& latents) {
  if (latents.dim() != 4 || latents.size(1) != config_.latent_channels)
    throw Error("the preview map takes latents [N, " + std::to_string(config_.latent_channels) +
                ", h, w]");
  const auto blocks = preview_map->forward(latents.permute({0, 2, 3, 1}));  // [N, h, w, 192]
  return torch::pixel_shuffle(blocks.permute({0, 3, 1, 2}), kLatentFactor);
}

int64_t AutoencoderImpl::parameter_count() const {
  int64_t n = 0;
  for (const auto& p : parameters()) n += p.numel();
  return n;
}

int64_t AutoencoderImpl::encoder_parameter_count() const {
  int64_t n = 0;
  for (const auto& p : encoder->parameters()) n += p.numel();
  return n;
}

int64_t AutoencoderImpl::decoder_parameter_count() const {
  int64_t n = 0;
  for (const auto& p : decoder->parameters()) n += p.numel();
  return n;
}

torch::Tensor transfer_detail(const torch::Tensor& decoded, const torch::Tensor& ref_decoded,
                              const torch::Tensor& ref_pixels, double tolerance) {
  const bool single = decoded.dim() == 3;
  const auto x = single ? decoded.unsqueeze(0) : decoded;
  const auto r = ref_decoded.dim() == 3 ? ref_decoded.unsqueeze(0) : ref_decoded;
  const auto p = ref_pixels.dim() == 3 ? ref_pixels.unsqueeze(0) : ref_pixels;
  const auto d = torch::avg_pool2d((x - r).abs().mean(1, /*keepdim=*/true), 9, 1, 4,
                                   /*ceil_mode=*/false, /*count_include_pad=*/false);
  const auto m = torch::exp(-(d / tolerance).square());
  const auto out = (x + m * (p - r)).clamp(-1, 1);
  return single ? out[0] : out;
}

double fit_preview(Autoencoder& ae, const torch::Tensor& frames) {
  torch::NoGradGuard no_grad;
  const int64_t c = ae->config().latent_channels;
  std::vector<torch::Tensor> zs, ys;
  for (int64_t i = 0; i < frames.size(0); i += 16) {
    const auto x = frames.narrow(0, i, std::min<int64_t>(16, frames.size(0) - i));
    const auto z = ae->encode(x);
    const auto y = ae->decode(z).clamp(-1, 1);
    zs.push_back(z.permute({0, 2, 3, 1}).reshape({-1, c}));
    // Each latent pixel's 8x8 RGB block, in pixel-shuffle order (channel-major, then rows).
    ys.push_back(torch::pixel_unshuffle(y, kLatentFactor)
                     .permute({0, 2, 3, 1})
                     .reshape({-1, kPreviewBlock}));
  }
  const auto z = torch::cat(zs).to(torch::kFloat64);
  const auto y = torch::cat(ys).to(torch::kFloat64);
  // Ridge regression with a bias column: W = (Z'Z + l I)^-1 Z'Y (normal equations).
  const auto za = torch::cat({z, torch::ones({z.size(0), 1}, z.options())}, 1);
  const auto gram = za.t().matmul(za) + 1e-3 * torch::eye(c + 1, z.options());
  const auto w = torch::linalg_solve(gram, za.t().matmul(y));  // [C + 1, 192]
  ae->preview_map->weight.copy_(w.narrow(0, 0, c).t().to(torch::kFloat32));
  ae->preview_map->bias.copy_(w[c].to(torch::kFloat32));
  const double mse = (za.matmul(w) - y).pow(2).mean().item<double>();
  return 10.0 * std::log10(4.0 / std::max(mse, 1e-12));  // peak-to-peak 2 in [-1, 1]
}

void add_autoencoder_to_file(Autoencoder& ae, std::map<std::string, torch::Tensor>& tensors,
                             std::map<std::string, std::string>& metadata) {
  metadata["autoencoder"] = ae->config().to_json().dump();
  for (const auto& item : ae->named_parameters())
    tensors[kAutoencoderPrefix + item.key()] =
        item.value().detach().to(torch::kCPU, torch::kFloat32).contiguous();
}

void save_autoencoder(const std::string& path, Autoencoder& ae, const nlohmann::json& provenance) {
  TensorFile file;
  file.metadata["format"] = kAutoencoderFormat;
  file.metadata["provenance"] = provenance.is_null() ? "{}" : provenance.dump();
  add_autoencoder_to_file(ae, file.tensors, file.metadata);
  save_safetensors(path, file);
}

bool has_autoencoder(const std::map<std::string, std::string>& metadata) {
  return metadata.count("autoencoder") > 0;
}

Autoencoder load_autoencoder_from(const std::map<std::string, std::string>& metadata,
                                  const std::map<std::string, torch::Tensor>& tensors,
                                  const std::string& path) {
  const auto it = metadata.find("autoencoder");
  if (it == metadata.end()) throw Error(path + ": holds no autoencoder");
  const auto j = nlohmann::json::parse(it->second, nullptr, false);
  if (j.is_discarded()) throw Error(path + ": the autoencoder config is not valid JSON");
  AutoencoderConfig config;
  try {
    config = AutoencoderConfig::from_json(j);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  // Refuse configs far larger than the file's tensors before allocating them.
  int64_t in_file = 0;
  for (const auto& [name, t] : tensors)
    if (name.rfind(kAutoencoderPrefix, 0) == 0) in_file += t.numel();
  int64_t needed = 0;
  {
    const auto& ew = config.encoder_widths;
    const auto& dw = config.decoder_widths;
    int in = 3;
    for (int s = 0; s < 3; ++s) {
      needed += 9LL * in * ew[s] + 18LL * ew[s] * ew[s] * config.encoder_blocks[s];
      in = ew[s];
    }
    needed += 9LL * in * config.latent_channels + 9LL * config.latent_channels * dw[0];
    for (int s = 0; s < 3; ++s)
      needed +=
          (s > 0 ? 9LL * dw[s - 1] * dw[s] : 0) + 18LL * dw[s] * dw[s] * config.decoder_blocks[s];
  }
  if (needed > 2 * in_file + (1 << 20))
    throw Error(path + ": its autoencoder config needs ~" + std::to_string(needed) +
                " parameters but the file holds only " + std::to_string(in_file) + " values");
  Autoencoder ae(config);
  torch::NoGradGuard no_grad;
  std::vector<std::string> missing, misshaped;
  std::set<std::string> expected;
  for (auto& item : ae->named_parameters()) {
    const std::string name = kAutoencoderPrefix + item.key();
    expected.insert(name);
    const auto t = tensors.find(name);
    if (t == tensors.end()) {
      missing.push_back(name);
    } else if (t->second.sizes() != item.value().sizes() || !t->second.is_floating_point()) {
      misshaped.push_back(name);
    } else {
      item.value().copy_(t->second.to(torch::kFloat32));
    }
  }
  std::vector<std::string> unexpected;
  for (const auto& [name, t] : tensors)
    if (name.rfind(kAutoencoderPrefix, 0) == 0 && !expected.count(name)) unexpected.push_back(name);
  auto list = [](const std::vector<std::string>& v) {
    std::string s;
    for (size_t i = 0; i < v.size() && i < 6; ++i) s += (i ? ", " : "") + v[i];
    if (v.size() > 6) s += " and " + std::to_string(v.size() - 6) + " more";
    return s;
  };
  std::string problems;
  if (!missing.empty()) problems += "missing tensors: " + list(missing) + ". ";
  if (!misshaped.empty()) problems += "mis-shaped tensors: " + list(misshaped) + ". ";
  if (!unexpected.empty()) problems += "unexpected tensors: " + list(unexpected) + ". ";
  if (!problems.empty())
    throw Error(path + ": the autoencoder does not match its config: " + problems);
  for (const auto& p : ae->parameters())
    if (!torch::isfinite(p).all().item<bool>())
      throw Error(path + ": the autoencoder weights contain NaN or infinity");
  ae->eval();
  return ae;
}

Autoencoder load_autoencoder(const std::string& path) {
  const TensorFile file = load_safetensors(path);
  return load_autoencoder_from(file.metadata, file.tensors, path);
}

}  // namespace dfs::diffusion
