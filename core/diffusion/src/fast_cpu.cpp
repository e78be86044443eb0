// The engine's fast CPU kernels (see fast_cpu.h).
#include "fast_cpu.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>

#include "dfs/diffusion/api.h"

namespace dfs::diffusion::fast {

namespace {

// Fortran BLAS sgemm_ (column-major), as every BLAS exports it; found at run time in the
// libblas.so.3 LibTorch already loaded, so nothing extra is linked.
using Sgemm = void (*)(const char* transa, const char* transb, const int* m, const int* n,
                       const int* k, const float* alpha, const float* a, const int* lda,
                       const float* b, const int* ldb, const float* beta, float* c, const int* ldc);

Sgemm find_sgemm() {
  static const Sgemm fn = reinterpret_cast<Sgemm>(dlsym(RTLD_DEFAULT, "sgemm_"));
  return fn;
}

// oneDNN's row-major sgemm (libdnnl, which LibTorch's CPU library loads). Preferred: measured on
// the 2-core machine, OpenBLAS (pthread build) serialises sgemm_ calls made from two threads at
// once, so row chunks on two threads ran at one core's 100 GFLOP/s; dnnl_sgemm reached 200.
using DnnlSgemm = int (*)(char transa, char transb, int64_t m, int64_t n, int64_t k, float alpha,
                          const float* a, int64_t lda, const float* b, int64_t ldb, float beta,
                          float* c, int64_t ldc);

DnnlSgemm find_dnnl_sgemm() {
  static const DnnlSgemm fn = reinterpret_cast<DnnlSgemm>(dlsym(RTLD_DEFAULT, "dnnl_sgemm"));
  return fn;
}

// Row-major C[m, n] (ldc) = alpha * op(A)[m, k] op(B)[k, n] + beta * C, where op transposes
// when the flag is set; A/B row-major with leading dimensions lda/ldb. Written through the
// column-major sgemm_ as C^T = op(B)^T op(A)^T.
// small: the attention's per-head products (16-48 rows), where OpenBLAS's small-matrix kernels
// cost half of oneDNN's per-call overhead; the linears and the head use oneDNN where it is.
void gemm_rm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
             int64_t ldc, bool small = false) {
  const auto dnnl = find_dnnl_sgemm();
  if (dnnl != nullptr && (!small || find_sgemm() == nullptr)) {
    dnnl(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    return;
  }
  const char ta = trans_b ? 'T' : 'N';
  const char tb = trans_a ? 'T' : 'N';
  const int mi = static_cast<int>(n), ni = static_cast<int>(m), ki = static_cast<int>(k);
  const int la = static_cast<int>(ldb), lb = static_cast<int>(lda), lc = static_cast<int>(ldc);
  find_sgemm()(&ta, &tb, &mi, &ni, &ki, &alpha, b, &la, a, &lb, &beta, c, &lc);
}

int64_t chunk_for(int64_t items, int64_t minimum) {
  const int64_t threads = std::max(1, at::get_num_threads());
  return std::max(minimum, (items + threads - 1) / threads);
}

}  // namespace

bool available() {
  return find_dnnl_sgemm() != nullptr || find_sgemm() != nullptr;
}

torch::Tensor linear(const torch::Tensor& x_in, const torch::Tensor& weight,
                     const torch::Tensor& bias) {
  const int64_t in = weight.size(1), out_features = weight.size(0);
  const auto x = x_in.contiguous();
  const int64_t rows = x.numel() / in;
  auto sizes = x.sizes().vec();
  sizes.back() = out_features;
  auto out = torch::empty(sizes, x.options());
  const auto w = weight.contiguous();
  const float* xp = x.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const float* bp = bias.defined() ? bias.contiguous().data_ptr<float>() : nullptr;
  at::parallel_for(0, rows, chunk_for(rows, 16), [&](int64_t r0, int64_t r1) {
    if (bp != nullptr)
      for (int64_t r = r0; r < r1; ++r) std::copy(bp, bp + out_features, op + r * out_features);
    // out[r0:r1] = x[r0:r1] @ W^T (+ bias already there)
    gemm_rm(false, true, r1 - r0, out_features, in, 1.0f, xp + r0 * in, in, wp, in,
            bp != nullptr ? 1.0f : 0.0f, op + r0 * out_features, out_features);
  });
  return out;
}

torch::Tensor attention(const torch::Tensor& qkv_in, const AttentionLayout& l, int64_t heads,
                        const torch::Tensor& mask_in) {
  const auto qkv = qkv_in.contiguous();
  const int64_t dim = qkv.size(-1) / 3, hd = dim / heads, s = l.seq;
  const int64_t tokens = qkv.numel() / (3 * dim);
  const int64_t items = l.outer_count * l.inner_count * heads;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  auto scores = torch::empty({items, s, s}, qkv.options());
  auto out = torch::empty({tokens, dim}, qkv.options());
  const float* base = qkv.data_ptr<float>();
  float* sp = scores.data_ptr<float>();
  float* op = out.data_ptr<float>();
  torch::Tensor mask;
  if (mask_in.defined()) mask = mask_in.to(torch::kFloat32).contiguous();
  const float* mp = mask.defined() ? mask.data_ptr<float>() : nullptr;
  const int64_t row_in = l.seq_stride * 3 * dim;  // leading dimension of q/k/v rows
  const int64_t row_out = l.seq_stride * dim;
  const auto first_token = [&](int64_t item) {
    const int64_t group = item / heads;
    return (group / l.inner_count) * l.outer_stride + (group % l.inner_count) * l.inner_stride;
  };
  // scores = scale * q k^T (+ mask), one small GEMM per group and head.
  at::parallel_for(0, items, chunk_for(items, 4), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t head = i % heads;
      const float* q = base + first_token(i) * 3 * dim + head * hd;
      const float* k = q + dim;
      float* sc = sp + i * s * s;
      gemm_rm(false, true, s, s, hd, scale, q, row_in, k, row_in, 0.0f, sc, s, /*small=*/true);
      if (mp != nullptr)
        for (int64_t j = 0; j < s * s; ++j) sc[j] += mp[j];
    }
  });
  const auto probs = torch::softmax(scores, -1);
  const float* pp = probs.data_ptr<float>();
  // out = probs v, written straight into token order.
  at::parallel_for(0, items, chunk_for(items, 4), [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t head = i % heads;
      const int64_t token = first_token(i);
      const float* v = base + token * 3 * dim + 2 * dim + head * hd;
      gemm_rm(false, false, s, hd, s, 1.0f, pp + i * s * s, s, v, row_in, 0.0f,
              op + token * dim + head * hd, row_out, /*small=*/true);
    }
  });
  return out;
}

torch::Tensor modulate(const torch::Tensor& x_in, const torch::Tensor& mod_in, int64_t shift_chunk,
                       int64_t scale_chunk, double eps) {
  const auto x = x_in.contiguous();
  const auto mod = mod_in.contiguous();
  const int64_t frames = x.size(0) * x.size(1), l = x.size(2), d = x.size(3);
  const int64_t mod_width = mod.size(-1);
  auto out = torch::empty_like(x);
  const float* xp = x.data_ptr<float>();
  const float* mp = mod.data_ptr<float>();
  float* op = out.data_ptr<float>();
  const int64_t rows = frames * l;
  at::parallel_for(0, rows, chunk_for(rows, 16), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const float* row = xp + r * d;
      const float* m = mp + (r / l) * mod_width;
      const float* shift = m + shift_chunk * d;
      const float* scale = m + scale_chunk * d;
      // Eight independent float accumulators, so the compiler vectorises both passes.
      float part[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t i = 0;
      for (; i + 8 <= d; i += 8)
        for (int j = 0; j < 8; ++j) part[j] += row[i + j];
      float sum = 0;
      for (; i < d; ++i) sum += row[i];
      for (float p : part) sum += p;
      const float mean_f = sum / static_cast<float>(d);
      float part_sq[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (i = 0; i + 8 <= d; i += 8)
        for (int j = 0; j < 8; ++j) {
          const float c = row[i + j] - mean_f;
          part_sq[j] += c * c;
        }
      float sum_sq = 0;
      for (; i < d; ++i) sum_sq += (row[i] - mean_f) * (row[i] - mean_f);
      for (float p : part_sq) sum_sq += p;
      const float rstd =
          static_cast<float>(1.0 / std::sqrt(static_cast<double>(sum_sq) / d + eps));
      float* o = op + r * d;
      for (int64_t k = 0; k < d; ++k)
        o[k] = (row[k] - mean_f) * rstd * (1.0f + scale[k]) + shift[k];
    }
  });
  return out;
}

void rope_inplace(torch::Tensor& qkv, const torch::Tensor& cos_in, const torch::Tensor& sin_in,
                  int64_t heads) {
  const int64_t b = qkv.size(0), t = qkv.size(1), l = qkv.size(2), dim = qkv.size(3) / 3;
  const int64_t hd = dim / heads, half = hd / 2;
  if (!qkv.is_contiguous()) throw Error("rope_inplace needs a contiguous qkv buffer");
  const auto cos = cos_in.to(torch::kFloat32).contiguous();
  const auto sin = sin_in.to(torch::kFloat32).contiguous();
  const float* cp = cos.data_ptr<float>();
  const float* snp = sin.data_ptr<float>();
  float* base = qkv.data_ptr<float>();
  at::parallel_for(0, b * t, chunk_for(b * t, 1), [&](int64_t f0, int64_t f1) {
    for (int64_t f = f0; f < f1; ++f) {
      const int64_t time = f % t;
      const float* c = cp + time * hd;
      const float* sn = snp + time * hd;
      for (int64_t tok = 0; tok < l; ++tok) {
        float* row = base + (f * l + tok) * 3 * dim;
        for (int64_t part = 0; part < 2; ++part)  // q, then k
          for (int64_t h = 0; h < heads; ++h) {
            float* x = row + part * dim + h * hd;
            for (int64_t i = 0; i < half; ++i) {
              const float x1 = x[i], x2 = x[i + half];
              x[i] = x1 * c[i] - x2 * sn[i];
              x[i + half] = x2 * c[i + half] + x1 * sn[i + half];
            }
          }
      }
    }
  });
}

torch::Tensor conv_transpose_head(const torch::Tensor& h, const torch::Tensor& weight,
                                  const torch::Tensor& bias, int64_t stride, int64_t padding,
                                  int64_t out_h, int64_t out_w) {
  const int64_t bt = h.size(0), gh = h.size(1), gw = h.size(2), d = h.size(3);
  const int64_t channels = weight.size(1), k = weight.size(2);
  const int64_t cols_per_token = channels * k * k;
  // cols[token, (c, ky, kx)] = sum_d h[token, d] W[d, c, ky, kx]: each token's tile.
  const auto tokens = h.reshape({bt * gh * gw, d}).contiguous();
  const auto w = weight.reshape({d, cols_per_token}).contiguous();
  auto cols = torch::empty({bt * gh * gw, cols_per_token}, tokens.options());
  const int64_t rows = tokens.size(0);
  const float* tp = tokens.data_ptr<float>();
  const float* wp = w.data_ptr<float>();
  float* cp = cols.data_ptr<float>();
  at::parallel_for(0, rows, chunk_for(rows, 16), [&](int64_t r0, int64_t r1) {
    gemm_rm(false, false, r1 - r0, cols_per_token, d, 1.0f, tp + r0 * d, d, wp, cols_per_token,
            0.0f, cp + r0 * cols_per_token, cols_per_token);
  });
  // Overlapping tiles add up: col2im with the transposed conv's geometry.
  auto image = at::col2im(cols.view({bt, gh * gw, cols_per_token}).transpose(1, 2), {out_h, out_w},
                          {k, k}, {1, 1}, {padding, padding}, {stride, stride});
  if (bias.defined()) image.add_(bias.view({1, channels, 1, 1}));
  return image;
}

}  // namespace dfs::diffusion::fast
