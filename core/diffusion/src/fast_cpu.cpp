// The engine's fast CPU kernels (see fast_cpu.h).
#include "fast_cpu.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <vector>

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
// column-major sgemm_ as C^T = op(B)^T op(A)^T. oneDNN where it is found.
void gemm_rm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, float alpha,
             const float* a, int64_t lda, const float* b, int64_t ldb, float beta, float* c,
             int64_t ldc) {
  const auto dnnl = find_dnnl_sgemm();
  if (dnnl != nullptr) {
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

namespace {

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
// One build for every x86-64 machine, with AVX-512 and AVX2 versions of the hot loops picked
// at load time (GCC function multi-versioning); the loops are written for the vectoriser.
#define DFS_VECTOR_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DFS_VECTOR_CLONES
#endif

// e^x for x <= 0 (softmax after subtracting the row's maximum), in plain arithmetic the
// compiler vectorises: 2^n by the exponent bits, e^r for |r| <= ln2/2 by Cephes' expf
// polynomial (relative error ~1e-7, as libm's). x below -87 (and -inf: masked keys) gives 0.
inline float exp_nonpositive(float x) {
  const float clamped = x < -87.0f ? -87.0f : x;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float shifted = clamped * 1.44269504088896341f + kRound;
  const float n = shifted - kRound;
  const float r = clamped - n * 0.693359375f + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  std::int32_t bits;
  std::memcpy(&bits, &shifted, sizeof bits);
  const std::int32_t scale_bits = (bits - 0x4B400000 + 127) << 23;  // 2^n
  float scale;
  std::memcpy(&scale, &scale_bits, sizeof scale);
  return x < -87.0f ? 0.0f : y * scale;
}

// Where one attention head's keys and values come from: `past` cached rows first (row i at
// past_k + i * hd, already rotated), then `fresh` rows strided in the qkv buffer.
struct KeySource {
  const float* past_k = nullptr;
  const float* past_v = nullptr;
  int64_t past = 0;
  const float* k = nullptr;  // first fresh key; its value is at k + dim
  int64_t fresh = 0, stride = 0, dim = 0;
};

constexpr int64_t kLanes = 16;  // accumulators per block: one AVX-512 register, two AVX2
// 16 floats as one value (GCC/Clang vector extension): one register in the AVX-512 version,
// two or four in the others. Written explicitly, since the auto-vectoriser turned 16-float
// accumulator arrays into 16 scalar registers.
typedef float Lanes __attribute__((vector_size(kLanes * sizeof(float))));
#if defined(__GNUC__) && !defined(__clang__)
// The helpers below are inlined into each version; no Lanes value crosses a library ABI.
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

[[gnu::always_inline]] inline Lanes load_lanes(const float* p) {
  Lanes v;
  std::memcpy(&v, p, sizeof v);
  return v;
}
[[gnu::always_inline]] inline void store_lanes(float* p, Lanes v) {
  std::memcpy(p, &v, sizeof v);
}

// skv rounded up to whole blocks: the key-major scratch is padded with zeros.
inline int64_t padded(int64_t n) {
  return (n + kLanes - 1) / kLanes * kLanes;
}

constexpr int64_t kRows = 4;  // query rows per pass: independent accumulator chains

// softmax(scale q k^T + mask) v for one head: sq query rows (stride q_stride) against the
// source's keys, out rows (stride out_stride). Scratch: kt [hd, padded(skv)] (keys transposed),
// vals [skv, hd], rows [kRows, padded(skv)]. Four query rows at a time, so each loaded key or
// value block feeds four independent accumulators (one chain was latency-bound): scores 16
// keys at a time, outputs 16 features at a time.
DFS_VECTOR_CLONES
void attend_head(const float* q, int64_t q_stride, int64_t sq, const KeySource& src, int64_t hd,
                 float scale, const float* mask, float* out, int64_t out_stride, float* kt,
                 float* vals, float* rows) {
  const int64_t skv = src.past + src.fresh, width = padded(skv);
  for (int64_t j = 0; j < skv; ++j) {
    const float* k = j < src.past ? src.past_k + j * hd : src.k + (j - src.past) * src.stride;
    const float* v =
        j < src.past ? src.past_v + j * hd : src.k + (j - src.past) * src.stride + src.dim;
    for (int64_t d = 0; d < hd; ++d) kt[d * width + j] = k[d];
    std::memcpy(vals + j * hd, v, sizeof(float) * hd);
  }
  for (int64_t d = 0; d < hd; ++d)
    for (int64_t j = skv; j < width; ++j) kt[d * width + j] = 0.0f;
  for (int64_t i0 = 0; i0 < sq; i0 += kRows) {
    // Rows past the end repeat the last row; their results are not stored.
    const float* qr[kRows];
    for (int64_t r = 0; r < kRows; ++r) qr[r] = q + std::min(i0 + r, sq - 1) * q_stride;
    for (int64_t j0 = 0; j0 < width; j0 += kLanes) {
      Lanes a0 = {}, a1 = {}, a2 = {}, a3 = {};
      for (int64_t d = 0; d < hd; ++d) {
        const Lanes k = load_lanes(kt + d * width + j0);
        a0 += qr[0][d] * k;
        a1 += qr[1][d] * k;
        a2 += qr[2][d] * k;
        a3 += qr[3][d] * k;
      }
      store_lanes(rows + j0, a0 * scale);
      store_lanes(rows + width + j0, a1 * scale);
      store_lanes(rows + 2 * width + j0, a2 * scale);
      store_lanes(rows + 3 * width + j0, a3 * scale);
    }
    float inv[kRows];
    for (int64_t r = 0; r < kRows; ++r) {
      float* row = rows + r * width;
      if (mask != nullptr) {
        const float* mi = mask + std::min(i0 + r, sq - 1) * skv;
        for (int64_t j = 0; j < skv; ++j) row[j] += mi[j];
      }
      float top = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < skv; ++j) top = row[j] > top ? row[j] : top;
      float sum = 0.0f;
      for (int64_t j = 0; j < skv; ++j) {
        row[j] = exp_nonpositive(row[j] - top);
        sum += row[j];
      }
      inv[r] = 1.0f / sum;
    }
    const float* p0 = rows;
    const float* p1 = rows + width;
    const float* p2 = rows + 2 * width;
    const float* p3 = rows + 3 * width;
    int64_t d0 = 0;
    for (; d0 + kLanes <= hd; d0 += kLanes) {
      Lanes a0 = {}, a1 = {}, a2 = {}, a3 = {};
      for (int64_t j = 0; j < skv; ++j) {
        const Lanes v = load_lanes(vals + j * hd + d0);
        a0 += p0[j] * v;
        a1 += p1[j] * v;
        a2 += p2[j] * v;
        a3 += p3[j] * v;
      }
      const Lanes acc[kRows] = {a0 * inv[0], a1 * inv[1], a2 * inv[2], a3 * inv[3]};
      for (int64_t r = 0; r < kRows && i0 + r < sq; ++r)
        store_lanes(out + (i0 + r) * out_stride + d0, acc[r]);
    }
    for (; d0 < hd; ++d0)
      for (int64_t r = 0; r < kRows && i0 + r < sq; ++r) {
        float acc = 0.0f;
        for (int64_t j = 0; j < skv; ++j) acc += rows[r * width + j] * vals[j * hd + d0];
        out[(i0 + r) * out_stride + d0] = acc * inv[r];
      }
  }
}

}  // namespace

torch::Tensor attention(const torch::Tensor& qkv_in, const AttentionLayout& l, int64_t heads,
                        const torch::Tensor& mask_in, const torch::Tensor& past_k_in,
                        const torch::Tensor& past_v_in) {
  const auto qkv = qkv_in.contiguous();
  const int64_t dim = qkv.size(-1) / 3, hd = dim / heads, s = l.seq;
  const int64_t tokens = qkv.numel() / (3 * dim);
  const int64_t groups = l.outer_count * l.inner_count;
  const int64_t items = groups * heads;
  torch::Tensor past_k, past_v;
  int64_t past = 0;
  if (past_k_in.defined()) {
    past_k = past_k_in.to(torch::kFloat32).contiguous();
    past_v = past_v_in.to(torch::kFloat32).contiguous();
    past = past_k.size(2);
    if (past_k.dim() != 4 || past_k.size(0) != groups || past_k.size(1) != heads ||
        past_k.size(3) != hd || past_v.sizes() != past_k.sizes())
      throw Error("fast attention: the cached keys/values do not match the call");
  }
  const int64_t skv = past + s;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  auto out = torch::empty({tokens, dim}, qkv.options());
  const float* base = qkv.data_ptr<float>();
  float* op = out.data_ptr<float>();
  torch::Tensor mask;
  if (mask_in.defined()) {
    mask = mask_in.to(torch::kFloat32).contiguous();
    if (mask.numel() != s * skv) throw Error("fast attention: the mask does not match the call");
  }
  const float* mp = mask.defined() ? mask.data_ptr<float>() : nullptr;
  const float* pk = past ? past_k.data_ptr<float>() : nullptr;
  const float* pv = past ? past_v.data_ptr<float>() : nullptr;
  const int64_t row_in = l.seq_stride * 3 * dim;  // between a sequence's q/k/v rows
  const int64_t row_out = l.seq_stride * dim;
  at::parallel_for(0, items, chunk_for(items, 4), [&](int64_t i0, int64_t i1) {
    std::vector<float> scratch(hd * padded(skv) + hd * skv + kRows * padded(skv));
    for (int64_t i = i0; i < i1; ++i) {
      const int64_t group = i / heads, head = i % heads;
      const int64_t token =
          (group / l.inner_count) * l.outer_stride + (group % l.inner_count) * l.inner_stride;
      const float* q = base + token * 3 * dim + head * hd;
      KeySource src;
      src.past = past;
      if (past) {
        src.past_k = pk + (group * heads + head) * past * hd;
        src.past_v = pv + (group * heads + head) * past * hd;
      }
      src.k = q + dim;
      src.fresh = s;
      src.stride = row_in;
      src.dim = dim;
      attend_head(q, row_in, s, src, hd, scale, mp, op + token * dim + head * hd, row_out,
                  scratch.data(), scratch.data() + hd * padded(skv),
                  scratch.data() + hd * padded(skv) + hd * skv);
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
      const float rstd = static_cast<float>(1.0 / std::sqrt(static_cast<double>(sum_sq) / d + eps));
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
