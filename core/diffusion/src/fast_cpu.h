// fast_cpu.h — the engine's fast CPU kernels for the denoiser (engine-internal, torch).
//
// The reference forward (network.cpp, DenoiserImpl::run) is plain LibTorch eager: the same ops
// a Python port runs, so it gives the same bytes. On the CPU that leaves speed on the table:
// with OpenBLAS kept at one thread (runtime.cpp), every linear layer is one single-threaded
// GEMM; attention permutes q/k/v into copies before a batched product; the transposed-conv
// head has no fast CPU kernel. These kernels compute the same maths with the layouts chosen
// for the CPU:
//   - linear(): rows split across LibTorch's intra-op threads, one BLAS GEMM per chunk;
//   - attention(): q/k/v read in place from the qkv projection, one head at a time in
//     vectorised loops (scores, softmax and the weighted sum fused; the sequences are 16-48
//     long, where a BLAS call costs more than the arithmetic), output written in token order,
//     so neither the spatial nor the temporal attention copies a permuted tensor;
//   - rope_inplace(): the rotary rotation applied in place on the qkv buffer;
//   - conv_transpose_head(): the overlapping-patch head as one GEMM + col2im.
// Results equal the reference up to float summation order (tests/diffusion check the bound).
// Used only on the CPU with float32 weights and when a GEMM is found at run time: oneDNN's
// dnnl_sgemm (LibTorch's CPU library loads libdnnl; it runs concurrent calls in parallel) or
// else the BLAS's sgemm_ (libblas.so.3); otherwise available() is false and the reference path
// runs.
#pragma once

#include <torch/torch.h>

namespace dfs::diffusion::fast {

// True when dnnl_sgemm or the BLAS sgemm_ was found (the fast kernels can run).
bool available();

// x [N, in] (any leading dims, contiguous last) @ weight^T + bias -> [N, out] (same leading
// dims). Rows are split across intra-op threads.
// What linear() applies to its output rows while they are in cache.
enum class Epilogue { None, Gelu };  // Gelu: x * (1 + erf(x / sqrt 2)) / 2, as torch::gelu

torch::Tensor linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                     Epilogue epilogue = Epilogue::None);

// The gated residual of an adaLN block, h += gate * (x @ weight^T + bias), in place, without
// materialising the product: h [B, T, L, d] contiguous, gate = chunk gate_chunk of the
// per-frame modulation mod [B, T, k * d].
void linear_gated_residual(const torch::Tensor& x, const torch::Tensor& weight,
                           const torch::Tensor& bias, torch::Tensor& h, const torch::Tensor& mod,
                           int64_t gate_chunk);

// erf(x) in vectorisable arithmetic (a rational approximation good to a few float ulps), for
// the GELU epilogue; exposed for its test.
void erf_inplace(float* x, int64_t n);

// How a group of attention sequences lies in the qkv buffer [tokens, 3 * dim] and in the
// output [tokens, dim]: group g = outer * inner_count + inner starts at token
// outer * outer_stride + inner * inner_stride; consecutive sequence elements are seq_stride
// tokens apart.
struct AttentionLayout {
  int64_t outer_count = 1, inner_count = 1;
  int64_t outer_stride = 0, inner_stride = 0, seq_stride = 1;  // in tokens
  int64_t seq = 0;                                             // sequence length
};

// The space-time block's two layouts of tokens [B, T, L]: spatial, the L tokens of each of the
// B * T frames; temporal, each of the B * L positions across the T frames (stride L tokens).
AttentionLayout spatial_layout(int64_t frames, int64_t tokens);
AttentionLayout temporal_layout(int64_t batch, int64_t frames, int64_t tokens);

// Multi-head attention softmax(q k^T / sqrt(hd) + mask) v for every group of `layout`, q/k/v
// read from qkv [tokens, 3 * heads * hd] (q, k, v blocks, heads inside each), output
// [tokens, heads * hd] in the same token order. mask [seq, seq] additive float or undefined.
// With past_k/past_v [groups, heads, P, hd] (a KV cache, keys already rotated) each sequence
// also attends to its group's P cached rows, placed before its own; the mask is then
// [seq, P + seq].
torch::Tensor attention(const torch::Tensor& qkv, const AttentionLayout& layout, int64_t heads,
                        const torch::Tensor& mask, const torch::Tensor& past_k = {},
                        const torch::Tensor& past_v = {});

// adaLN in one pass (DiT Sec. 3.2): layer_norm(x) * (1 + scale) + shift over the last axis, for
// x [B, T, L, d] and the per-frame modulation mod [B, T, k * d], whose chunks shift_chunk and
// scale_chunk hold shift and scale. eps as the reference's layer norm.
torch::Tensor modulate(const torch::Tensor& x, const torch::Tensor& mod, int64_t shift_chunk,
                       int64_t scale_chunk, double eps);

// Rotates q and k of qkv [B, T, L, 3 * dim] in place by time position t (cos/sin [T, hd],
// "rotate half" layout, Su et al. 2021 Eq. 34), as the reference's q * cos + rotate_half(q) *
// sin.
void rope_inplace(torch::Tensor& qkv, const torch::Tensor& cos, const torch::Tensor& sin,
                  int64_t heads);

// The overlapping-patch head: tokens h [BT, gh, gw, d] through ConvTranspose2d(weight [d, C,
// k, k], bias [C], stride, padding) -> [BT, C, H, W], as one GEMM and a col2im.
torch::Tensor conv_transpose_head(const torch::Tensor& h, const torch::Tensor& weight,
                                  const torch::Tensor& bias, int64_t stride, int64_t padding,
                                  int64_t out_h, int64_t out_w);

// A decoded frame to 8-bit RGB in one pass per row (the rollout's last step for latent models):
// decoded [H, W, 3] float in [-1, 1] (a channels-last decoder output; clamped here), written to
// rgb [H, W, 3] as round((v + 1) * 127.5). With a reference (ref_decoded and ref_pixels [3, H,
// W], clamped) the reference's detail is transferred first, as transfer_detail(): the 9x9 mean
// (valid pixels only) of the channel-mean |decoded - ref_decoded| gives the weight
// exp(-(mean / tolerance)^2) of ref_pixels - ref_decoded.
void finish_frame(const torch::Tensor& decoded, const torch::Tensor& ref_decoded,
                  const torch::Tensor& ref_pixels, double tolerance, std::uint8_t* rgb);
// The same from the decoder's last activation before its pixel shuffle by `shuffle` (r):
// unshuffled [H / r, W / r, 3 r r], channel c r r + i r + j of pixel (y, x) being output pixel
// (y r + i, x r + j), channel c. The shuffle is read in place, not copied.
void finish_shuffled_frame(const torch::Tensor& unshuffled, int64_t shuffle,
                           const torch::Tensor& ref_decoded, const torch::Tensor& ref_pixels,
                           double tolerance, std::uint8_t* rgb);

}  // namespace dfs::diffusion::fast
