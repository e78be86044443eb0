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
#include "fast_cpu_util.h"

namespace dfs::diffusion::fast {

using detail::chunk_for;
using detail::exp_nonpositive;

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

}  // namespace

bool available() {
  return find_dnnl_sgemm() != nullptr || find_sgemm() != nullptr;
}

namespace {

// erf by the rational approximation of Eigen's generic_fast_erf_float (x clamped to [-4, 4],
// where float erf is already +-1): odd degree-13 numerator over even degree-8 denominator.
DFS_VECTOR_CLONES
void erf_block(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i] < -4.0f ? -4.0f : (x[i] > 4.0f ? 4.0f : x[i]);
    const float v2 = v * v;
    float p = -2.72614225801306e-10f;
    p = p * v2 + 2.77068142495902e-08f;
    p = p * v2 - 2.10102402082508e-06f;
    p = p * v2 - 5.69250639462346e-05f;
    p = p * v2 - 7.34990630326855e-04f;
    p = p * v2 - 2.95459980854025e-03f;
    p = p * v2 - 1.60960333262415e-02f;
    float q = -1.45660718464996e-05f;
    q = q * v2 - 2.13374055278905e-04f;
    q = q * v2 - 1.68282697438203e-03f;
    q = q * v2 - 7.37332916720468e-03f;
    q = q * v2 - 1.42647390514189e-02f;
    x[i] = v * p / q;
  }
}

// GELU in place on n values: x * (1 + erf(x / sqrt 2)) / 2. scratch holds n floats.
void gelu_block(float* x, int64_t n, float* scratch) {
  for (int64_t i = 0; i < n; ++i) scratch[i] = x[i] * 0.70710678118654752f;
  erf_block(scratch, n);
  for (int64_t i = 0; i < n; ++i) x[i] = 0.5f * x[i] * (1.0f + scratch[i]);
}

}  // namespace

void erf_inplace(float* x, int64_t n) {
  erf_block(x, n);
}

namespace {

// out[rows, out_features] = x @ W^T + bias, then `finish(r0, r1, c0, c1)` on each finished
// block of rows [r0, r1) and columns [c0, c1), in the thread that computed it. Many rows: row
// chunks across the threads; few (a per-frame modulation: one row per frame): column chunks.
template <typename Finish>
void linear_into(const float* xp, int64_t rows, int64_t in, const float* wp, const float* bp,
                 int64_t out_features, float* op, const Finish& finish) {
  const int64_t threads = std::max(1, at::get_num_threads());
  if (rows >= 32 * threads) {
    at::parallel_for(0, rows, chunk_for(rows, 16), [&](int64_t r0, int64_t r1) {
      if (bp != nullptr)
        for (int64_t r = r0; r < r1; ++r) std::copy(bp, bp + out_features, op + r * out_features);
      gemm_rm(false, true, r1 - r0, out_features, in, 1.0f, xp + r0 * in, in, wp, in,
              bp != nullptr ? 1.0f : 0.0f, op + r0 * out_features, out_features);
      finish(r0, r1, int64_t{0}, out_features);
    });
  } else {
    at::parallel_for(0, out_features, chunk_for(out_features, 64), [&](int64_t c0, int64_t c1) {
      if (bp != nullptr)
        for (int64_t r = 0; r < rows; ++r) std::copy(bp + c0, bp + c1, op + r * out_features + c0);
      gemm_rm(false, true, rows, c1 - c0, in, 1.0f, xp, in, wp + c0 * in, in,
              bp != nullptr ? 1.0f : 0.0f, op + c0, out_features);
      finish(int64_t{0}, rows, c0, c1);
    });
  }
}

}  // namespace

torch::Tensor linear(const torch::Tensor& x_in, const torch::Tensor& weight,
                     const torch::Tensor& bias, Epilogue epilogue) {
  const int64_t in = weight.size(1), out_features = weight.size(0);
  const auto x = x_in.contiguous();
  const int64_t rows = x.numel() / in;
  auto sizes = x.sizes().vec();
  sizes.back() = out_features;
  auto out = torch::empty(sizes, x.options());
  const auto w = weight.contiguous();
  const auto b = bias.defined() ? bias.contiguous() : bias;
  float* op = out.data_ptr<float>();
  linear_into(x.data_ptr<float>(), rows, in, w.data_ptr<float>(),
              b.defined() ? b.data_ptr<float>() : nullptr, out_features, op,
              [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
                if (epilogue != Epilogue::Gelu) return;
                std::vector<float> scratch(c1 - c0);
                for (int64_t r = r0; r < r1; ++r)
                  gelu_block(op + r * out_features + c0, c1 - c0, scratch.data());
              });
  return out;
}

void linear_gated_residual(const torch::Tensor& x_in, const torch::Tensor& weight,
                           const torch::Tensor& bias, torch::Tensor& h, const torch::Tensor& mod_in,
                           int64_t gate_chunk) {
  const int64_t in = weight.size(1), d = weight.size(0);
  const auto x = x_in.contiguous();
  const int64_t rows = x.numel() / in;
  if (!h.is_contiguous() || h.numel() != rows * d || h.dim() != 4)
    throw Error("fast gated residual: h must be a contiguous [B, T, L, d] matching the rows");
  const auto mod = mod_in.contiguous();
  const int64_t per_frame = h.size(2), mod_width = mod.size(-1);
  auto y = torch::empty({rows, d}, x.options());
  const auto w = weight.contiguous();
  const auto b = bias.defined() ? bias.contiguous() : bias;
  float* yp = y.data_ptr<float>();
  float* hp = h.data_ptr<float>();
  const float* mp = mod.data_ptr<float>();
  linear_into(x.data_ptr<float>(), rows, in, w.data_ptr<float>(),
              b.defined() ? b.data_ptr<float>() : nullptr, d, yp,
              [&](int64_t r0, int64_t r1, int64_t c0, int64_t c1) {
                for (int64_t r = r0; r < r1; ++r) {
                  const float* gate = mp + (r / per_frame) * mod_width + gate_chunk * d;
                  float* hr = hp + r * d;
                  const float* yr = yp + r * d;
                  for (int64_t c = c0; c < c1; ++c) hr[c] += gate[c] * yr[c];
                }
              });
}

namespace {

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
[[gnu::always_inline]] inline void store_lanes(float* p, const Lanes& v) {
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

AttentionLayout spatial_layout(int64_t frames, int64_t tokens) {
  AttentionLayout l;
  l.outer_count = frames;
  l.outer_stride = tokens;
  l.seq_stride = 1;
  l.seq = tokens;
  return l;
}

AttentionLayout temporal_layout(int64_t batch, int64_t frames, int64_t tokens) {
  AttentionLayout l;
  l.outer_count = batch;
  l.outer_stride = frames * tokens;
  l.inner_count = tokens;
  l.inner_stride = 1;
  l.seq_stride = tokens;
  l.seq = frames;
  return l;
}

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
    past_v = past_v_in.defined() ? past_v_in.to(torch::kFloat32).contiguous() : torch::Tensor();
    if (past_k.dim() != 4 || past_k.size(0) != groups || past_k.size(1) != heads ||
        past_k.size(3) != hd || !past_v.defined() || past_v.sizes() != past_k.sizes())
      throw Error("fast attention: the cached keys/values do not match the call");
    past = past_k.size(2);
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
  // Overlapping tiles add up (col2im with the transposed conv's geometry), gathered per output
  // row so that the rows can be split across threads: output (y, x) takes tile row
  // ky = y + padding - ty * stride of every token row ty that reaches it, likewise for x.
  auto image = torch::empty({bt, channels, out_h, out_w}, tokens.options());
  float* ip = image.data_ptr<float>();
  const float* biasp = bias.defined() ? bias.contiguous().data_ptr<float>() : nullptr;
  const auto reach = [&](int64_t pos, int64_t grid, int64_t& first, int64_t& last) {
    // Token indices t with 0 <= pos + padding - t * stride < k.
    first = std::max<int64_t>(0, (pos + padding - k + stride) / stride);
    last = std::min<int64_t>(grid - 1, (pos + padding) / stride);
  };
  const int64_t out_rows = bt * channels * out_h;
  at::parallel_for(0, out_rows, chunk_for(out_rows, 8), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t y = r % out_h, c = (r / out_h) % channels, frame = r / (out_h * channels);
      int64_t ty0, ty1;
      reach(y, gh, ty0, ty1);
      float* row = ip + r * out_w;
      for (int64_t x = 0; x < out_w; ++x) {
        int64_t tx0, tx1;
        reach(x, gw, tx0, tx1);
        float sum = 0.0f;
        for (int64_t ty = ty0; ty <= ty1; ++ty) {
          const int64_t ky = y + padding - ty * stride;
          for (int64_t tx = tx0; tx <= tx1; ++tx) {
            const int64_t kx = x + padding - tx * stride;
            sum += cp[((frame * gh + ty) * gw + tx) * cols_per_token + (c * k + ky) * k + kx];
          }
        }
        row[x] = biasp != nullptr ? sum + biasp[c] : sum;
      }
    }
  });
  return image;
}

}  // namespace dfs::diffusion::fast
