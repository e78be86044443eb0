// fast_decoder.h — the autoencoder's decoder on oneDNN's Winograd convolutions (CPU, float32;
// engine-internal, torch).
//
// LibTorch runs the decoder's 3x3 convolutions as direct convolutions (oneDNN's, ~190 GFLOP/s
// on the 2-core VM), which made decoding ~40 % of a rollout. oneDNN's Winograd convolutions
// (Lavin & Gray 2016) do the same maths with fewer multiplications: F(4x4, 3x3) 4x fewer,
// F(2x2, 3x3) 2.25x. On the VM F(4x4, 3x3) ran the decoder's layers 2.2x faster than direct
// and 1.1-1.4x faster than F(2x2, 3x3), which oneDNN lists first, so the plan asks for it by
// name. They only run on oneDNN's blocked layout (nChw16c) and LibTorch 1.13 cannot reach
// them, so this plan runs the whole decoder in that layout through oneDNN's C++ API
// (libdnnl-dev; LibTorch's CPU library loads the same libdnnl):
//   conv            Winograd where oneDNN offers it, else its direct convolution;
//   residual block  x += b(silu(a(silu(x)))): the sum as the second conv's post-op (in place);
//   SiLU            oneDNN's swish (Winograd takes no eltwise post-op);
//   upsampling      nearest x2 (oneDNN resampling);
//   pixel shuffle   the last conv's output reordered to channels-last, then either shuffled
//                   to [H, W, 3] or left for fast::finish_shuffled_frame to read in place.
// The maths is the decoder's; Winograd's transforms change float rounding only (~1e-6
// relative; tests/diffusion/test_fast_decoder.cpp bounds it against LibTorch's decoder).
//
// Not built when oneDNN's headers were missing at build time (e.g. a pip LibTorch, which
// hides its own oneDNN): create() returns null and the rollout decodes with LibTorch.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>

namespace dfs::diffusion {
class AutoencoderImpl;
}

namespace dfs::diffusion::fast {

class FastDecoder {
 public:
  // A plan for `ae`'s decoder (its weights copied now: later changes to them are not seen).
  // Null when oneDNN is not built in, the decoder holds a layer the plan does not know, the
  // module is not float32 on the CPU, or this CPU has no Winograd kernel (the plan would then
  // run oneDNN's plain kernels in a layout LibTorch has no reason to prefer). Plans for the
  // latent size h x w are built here; others on first use.
  static std::shared_ptr<FastDecoder> create(AutoencoderImpl& ae, int64_t h, int64_t w);
  virtual ~FastDecoder() = default;

  // Un-normalised latents [1, C, h, w] (any layout) -> decoded RGB [8h, 8w, 3] (HWC,
  // contiguous, float32, not clamped); undefined when oneDNN has no fast plan for this size
  // (decode with LibTorch then). Thread-safe (calls are serialised).
  virtual torch::Tensor decode_hwc(const torch::Tensor& raw_latent) = 0;
  // The same before the decoder's last pixel shuffle by `shuffle` (set here; 1 when it has
  // none): [8h / r, 8w / r, 3 r r], channel c r r + i r + j of pixel (y, x) being pixel
  // (y r + i, x r + j), channel c of decode_hwc's result (what fast::finish_shuffled_frame
  // reads, so the shuffled frame is never written out).
  virtual torch::Tensor decode_unshuffled(const torch::Tensor& raw_latent, int64_t& shuffle) = 0;
  // Which kernels the plan uses, e.g. "oneDNN Winograd F(4x4,3x3): 10 of 10 convolutions".
  virtual std::string describe() const = 0;
};

}  // namespace dfs::diffusion::fast
