// fast_cpu_util.h — helpers shared by the fast CPU kernels' sources (fast_cpu.cpp,
// fast_frame.cpp); engine-internal. Those files are compiled with OpenMP (CMakeLists.txt), so
// at::parallel_for splits their loops across LibTorch's intra-op threads.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace dfs::diffusion::fast::detail {

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
// One build for every x86-64 machine, with AVX-512 and AVX2 versions of the hot loops picked
// at load time (GCC function multi-versioning); the loops are written for the vectoriser.
#define DFS_VECTOR_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define DFS_VECTOR_CLONES
#endif

// Items per parallel_for chunk: an equal share per thread, at least `minimum`.
inline int64_t chunk_for(int64_t items, int64_t minimum) {
  const int64_t threads = std::max(1, at::get_num_threads());
  return std::max(minimum, (items + threads - 1) / threads);
}

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

}  // namespace dfs::diffusion::fast::detail
