// dfs/diffusion/train/ae_trainer.h — training and evaluating the latent autoencoder (torch).
//
// Training: random square crops of the dataset's training frames (all clips, training parts
// only; held-out frames and wholly held-out clips are never seen), random horizontal flips,
// reconstruction loss
//   l1_weight |x^ - x|_1 + gradient_weight |grad x^ - grad x|_1 + ssim_weight (1 - SSIM(x^, x))
// (image gradients as forward differences; SSIM of Wang et al. 2004 with an 11-tap Gaussian,
// sigma 1.5, separable), and Gaussian noise of `latent_noise` times the batch's latent std
// added to the latents before decoding, so the decoder tolerates the small latent errors a
// diffusion model makes. AdamW + EMA (optimizer.h); the exported file holds the EMA weights,
// the per-channel latent statistics measured on the training frames, and the fitted preview.
//
// Determinism: step s's crops, flips and noise come from generators seeded by (seed, s); the
// checkpoint holds weights, EMA, moments and the step, so --resume continues bit-for-bit on the
// same machine and thread count.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dfs/diffusion/autoencoder.h"
#include "dfs/diffusion/train/dataset.h"
#include "dfs/diffusion/train/optimizer.h"
#include "dfs/diffusion/train/trainer.h"

namespace dfs::diffusion::train {

inline constexpr const char* kAutoencoderCheckpointFormat = "dfs-ae-checkpoint";

struct AutoencoderTrainSettings {
  OptimizerSettings optimizer{2e-3, 0.05, 100, 10000, 0.0, 0.9, 0.99, 1e-8, 1.0, 0.999};
  int batch_size = 8;  // crops per step
  int crop = 128;      // square crop side (pixels), a multiple of 8, <= the frame's smaller side
  // The reconstruction loss's terms (see the formula above).
  double l1_weight = 1.0, gradient_weight = 0.5, ssim_weight = 0.2;
  double latent_noise = 0.05;  // latent noise before decoding, times the batch's latent std
  double p_flip = 0.5;         // horizontal flip probability
  uint64_t seed = 0;
  // Decoder fine-tuning (`dforce ae train --from AE --decoder-only`): the encoder, and so the
  // latent space a transformer was trained on, stays fixed; only the decoder learns.
  bool decoder_only = false;
  // Weight of a PatchGAN hinge loss (Isola et al. 2017; Esser et al. 2021, "VQGAN", Eq. 7 with
  // its adaptive weight) on the decoder's output; 0 = off. It trades a little PSNR for the
  // texture that L1/SSIM alone blur away.
  double adversarial_weight = 0.0;

  nlohmann::json to_json() const;
  static AutoencoderTrainSettings from_json(const nlohmann::json& j);  // throws Error
  void validate() const;                                               // throws Error
};

class AutoencoderTrainer {
 public:
  // The dataset must outlive the trainer; its frames must be multiples of 8 on each side.
  AutoencoderTrainer(const AutoencoderConfig& config, const AutoencoderTrainSettings& settings,
                     const VideoDataset& dataset, const std::string& device = "cpu");
  ~AutoencoderTrainer();
  AutoencoderTrainer(const AutoencoderTrainer&) = delete;
  AutoencoderTrainer& operator=(const AutoencoderTrainer&) = delete;

  TrainStepStats step();
  // Starts from an autoencoder's weights (its config must equal this trainer's).
  void load_weights(Autoencoder& from);
  int64_t step_count() const;
  int batch_size() const;
  double seconds() const;
  void add_seconds(double s);
  int64_t parameter_count() const;
  std::string device() const;
  const AutoencoderConfig& config() const;
  const AutoencoderTrainSettings& settings() const;

  void save_checkpoint(const std::string& path, const nlohmann::json& extra = {}) const;
  // Refuses a checkpoint of another config, settings or dataset, naming what differs.
  void load_checkpoint(const std::string& path);

  // The EMA autoencoder with its latent statistics measured and its preview fitted on (up to
  // `frames`) training frames. `preview_psnr` (if non-null) receives the preview's PSNR against
  // the decoder on those frames.
  Autoencoder finished(int frames = 512, double* preview_psnr = nullptr) const;

  struct State;

 private:
  std::unique_ptr<State> state_;
};

// A patch discriminator (PatchGAN, Isola et al. 2017): RGB crops -> a map of real/fake logits,
// one per ~46-pixel receptive field.
class PatchDiscriminatorImpl : public torch::nn::Module {
 public:
  PatchDiscriminatorImpl();
  torch::Tensor forward(const torch::Tensor& rgb);
  torch::nn::Sequential net{nullptr};
};
TORCH_MODULE(PatchDiscriminator);

// Reads the config and step of an autoencoder checkpoint without loading weights.
struct AutoencoderCheckpointInfo {
  AutoencoderConfig config;
  AutoencoderTrainSettings settings;
  int64_t step = 0;
  double seconds = 0;
  std::string dataset_fingerprint;
};
AutoencoderCheckpointInfo read_autoencoder_checkpoint_info(const std::string& path);

TrainLoopResult run_training(AutoencoderTrainer& trainer, const TrainLoopOptions& options);

// [SECTION] Encoding a dataset for a latent model ----------------------------------------

// A stable fingerprint of an autoencoder's weights and config (latent caches record it).
std::string autoencoder_fingerprint(Autoencoder& ae);

// Fills data.latents / data.latents_flipped with `ae`'s normalised latents of every frame (and
// of every frame flipped horizontally). With a non-empty `cache` path, reuses that file when
// it was made from the same dataset and autoencoder, and writes it otherwise. `log` may be
// empty. Throws Error when the frames are not multiples of 8.
void encode_dataset(VideoDataset& data, Autoencoder& ae, const std::string& cache = "",
                    const std::function<void(const std::string&)>& log = {});

// [SECTION] Evaluation ---------------------------------------------------------------------

struct ReconstructionScores {
  std::string clip;
  int frames = 0;             // frames scored
  bool unseen = false;        // the whole clip is held out (no training step saw any of it)
  double psnr = 0, ssim = 0;  // decoder(encoder(x)) against x, at the data's resolution
  double psnr_64x48 = 0;      // the same after downsampling both to 64x48 (area)
  double psnr_bicubic = 0, ssim_bicubic = 0;  // x downsampled to 64x48, back up bicubically
  double psnr_preview = 0;                    // the preview map against x
  double psnr_preview_vs_decoder = 0;         // the preview map against the decoder's output
  double sharpness_ratio = 0;                 // mean |Laplacian| of the reconstruction / of x
};

// Scores reconstruction of each clip's held-out frames (all frames of wholly held-out clips),
// at most `max_frames` per clip spread evenly. Throws Error when the data is not a multiple of 8.
std::vector<ReconstructionScores> evaluate_autoencoder(Autoencoder& ae, const VideoDataset& data,
                                                       int max_frames = 64,
                                                       const std::vector<std::string>& clips = {});
nlohmann::json to_json(const std::vector<ReconstructionScores>& scores);
std::string to_text(const std::vector<ReconstructionScores>& scores);

// Downsamples RGB float [N, 3, H, W] by area averaging to w x h (the "at 64x48" yardstick).
torch::Tensor area_downsample(const torch::Tensor& x, int width, int height);

}  // namespace dfs::diffusion::train
