// dfs/diffusion/autoencoder.h — the latent space: a small convolutional autoencoder (torch).
//
// A latent model runs its diffusion transformer on the latents of this autoencoder instead of
// on pixels (docs/DESIGN.md "Latent space"; in the spirit of TAESD, Bohan 2023, and of latent
// diffusion, Rombach et al. 2022, Sec. 3):
//   encoder  RGB [N, 3, H, W] in [-1, 1] -> latents [N, C, H/8, W/8]
//            three stride-2 conv stages (widths encoder_widths), residual blocks, a 3x3 out
//            conv, then a soft bound 3 tanh(z / 3) (TAESD bounds its latents the same way),
//            then per-channel normalisation (latent_mean / latent_std, measured on the
//            training frames after training) so diffusion sees unit-variance latents;
//   decoder  normalised latents -> RGB: a 3x3 in conv, residual blocks, two nearest x2
//            upsamplings each followed by a conv, and a sub-pixel head (conv to 12 channels +
//            pixel shuffle x2, Shi et al. 2016 "ESPCN") for the last doubling, which costs a
//            quarter of a full-resolution conv;
//   preview  a linear map from one latent pixel to its 8x8 RGB block (C -> 192, then pixel
//            shuffle x8), fitted by least squares to the decoder's output after training:
//            live previews cost ~1 % of a decode.
//
// Tensor names: every module is registered under its checkpoint key; in a model file they carry
// the prefix "ae." ("ae.encoder.0.weight"), and the config is the "autoencoder" entry of
// __metadata__. Thread-safety: one thread at a time per module.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dfs::diffusion {

inline constexpr int kLatentFactor = 8;                   // pixels per latent pixel, per side
inline constexpr const char* kAutoencoderPrefix = "ae.";  // tensor-name prefix in model files
inline constexpr const char* kAutoencoderFormat = "dfs-autoencoder-1";

struct AutoencoderConfig {
  int latent_channels = 8;                      // C
  std::vector<int> encoder_widths{32, 48, 64};  // channels after each stride-2 stage
  std::vector<int> encoder_blocks{0, 1, 1};     // residual blocks after each stage
  std::vector<int> decoder_widths{64, 48, 32};  // channels at H/8, H/4, H/2
  std::vector<int> decoder_blocks{2, 1, 0};     // residual blocks at each of those
  // Per-channel statistics of the bounded latents over the training frames; empty until
  // measured (then encode/decode are identity-normalised).
  std::vector<double> latent_mean;
  std::vector<double> latent_std;
  double latent_clamp = 6.0;  // |normalised latent| bound the sampler clamps x0 estimates to

  nlohmann::json to_json() const;
  static AutoencoderConfig from_json(const nlohmann::json& j);  // validates; throws Error
  bool normalised() const { return !latent_mean.empty(); }
};

// Named sizes: "ae-demo" (the shipped latent model's), "ae-tiny" (tests). Throws Error.
AutoencoderConfig autoencoder_preset(const std::string& name);

// conv -> SiLU -> conv, added to the input (He et al. 2016, pre-activation form).
class ResidualBlockImpl : public torch::nn::Module {
 public:
  explicit ResidualBlockImpl(int channels);
  torch::Tensor forward(const torch::Tensor& x);
  torch::nn::Conv2d a{nullptr};
  torch::nn::Conv2d b{nullptr};
};
TORCH_MODULE(ResidualBlock);

class AutoencoderImpl : public torch::nn::Module {
 public:
  explicit AutoencoderImpl(const AutoencoderConfig& config);

  // RGB [N, 3, H, W] in [-1, 1] (H, W multiples of 8) -> bounded, un-normalised latents.
  torch::Tensor encode_raw(const torch::Tensor& rgb);
  // Un-normalised latents -> RGB [N, 3, 8h, 8w] (not clamped).
  torch::Tensor decode_raw(const torch::Tensor& latents);
  // The same with the per-channel normalisation applied (what diffusion sees).
  torch::Tensor encode(const torch::Tensor& rgb);
  torch::Tensor decode(const torch::Tensor& latents);
  // Cheap latent -> RGB map for live previews: normalised latents -> [N, 3, 8h, 8w].
  torch::Tensor preview(const torch::Tensor& latents);

  torch::Tensor normalise(const torch::Tensor& raw) const;
  torch::Tensor denormalise(const torch::Tensor& latents) const;

  // Deterministic initialisation from `seed` (Kaiming-uniform convs, zero biases, zero preview).
  void reset_parameters(uint64_t seed);
  const AutoencoderConfig& config() const { return config_; }
  void set_statistics(const std::vector<double>& mean, const std::vector<double>& std,
                      double clamp);
  int64_t parameter_count() const;
  int64_t encoder_parameter_count() const;
  int64_t decoder_parameter_count() const;

  torch::nn::Sequential encoder{nullptr};
  torch::nn::Sequential decoder{nullptr};
  torch::nn::Linear preview_map{nullptr};  // "preview": C -> 3 * 8 * 8

 private:
  AutoencoderConfig config_;
  torch::Tensor mean_, std_;  // [1, C, 1, 1] or undefined
};
TORCH_MODULE(Autoencoder);

// Least-squares fit of the preview map to the decoder's output on `frames` (uint8-range RGB
// in [-1, 1], [N, 3, H, W]); returns the preview's PSNR (dB) against the decoder on them.
double fit_preview(Autoencoder& ae, const torch::Tensor& frames);

// Context detail transfer: an 8x-down autoencoder loses fine texture, so a decoded frame is
// blurrier than the pinned frame it continues. Where a generated frame's decoding matches the
// reference's decoding (static parts of the scene), the reference's lost detail
// (ref_pixels - ref_decoded) is added back:
//   out = decoded + m * (ref_pixels - ref_decoded),  m = exp(-(d / tolerance)^2),
// d = the channel-mean |decoded - ref_decoded| averaged over a 9x9 neighbourhood (one latent
// pixel and its border). Moving parts (d >> tolerance) keep the plain decoding. All [3, H, W]
// or [N, 3, H, W] in [-1, 1]; the result is clamped to [-1, 1]. Where decoded == ref_decoded
// the result is ref_pixels to float rounding (the same 8-bit frame).
// (The fast mode's fused version is fast::finish_frame, core/diffusion/src/fast_cpu.h.)
torch::Tensor transfer_detail(const torch::Tensor& decoded, const torch::Tensor& ref_decoded,
                              const torch::Tensor& ref_pixels, double tolerance);
// In [-1, 1] units (0.2 = 25 levels of 255). Chosen on the held-out parts of the moving-camera
// clips (visp_mire2, visp_cube, Megamind) and vtest: PSNR rose on all of them from 0.025 to
// 0.2; 0.4 was mixed (models/README.md).
constexpr double kDetailTolerance = 0.2;

// Writes the autoencoder's tensors (prefix "ae.") and its config ("autoencoder" metadata)
// into `tensors` / `metadata` (the caller adds the rest of the file).
void add_autoencoder_to_file(Autoencoder& ae, std::map<std::string, torch::Tensor>& tensors,
                             std::map<std::string, std::string>& metadata);
// Writes an autoencoder-only file (format dfs-autoencoder-1). Atomic. Throws Error.
void save_autoencoder(const std::string& path, Autoencoder& ae,
                      const nlohmann::json& provenance = nlohmann::json::object());
// True when a loaded file's metadata carries an autoencoder.
bool has_autoencoder(const std::map<std::string, std::string>& metadata);
// Builds the autoencoder described by a file's metadata and fills it from its "ae." tensors,
// checking names and shapes. Throws Error naming the problem. On the CPU, float32.
Autoencoder load_autoencoder_from(const std::map<std::string, std::string>& metadata,
                                  const std::map<std::string, torch::Tensor>& tensors,
                                  const std::string& path_for_messages);
// Reads an autoencoder from a file (an autoencoder-only file or a latent model file).
Autoencoder load_autoencoder(const std::string& path);

}  // namespace dfs::diffusion
