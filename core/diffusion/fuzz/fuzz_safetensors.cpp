// libFuzzer target for the .safetensors parser: any input must either parse or throw
// dfs::diffusion::Error — never crash, hang, leak or allocate beyond the input's size.
//
//   cmake -S . -B build-fuzz -G Ninja -DCMAKE_CXX_COMPILER=clang++-14 -DDFS_BUILD_FUZZERS=ON \
//         -DDFS_WITH_MEDIA=OFF -DDFS_BUILD_UI=OFF -DDFS_BUILD_TESTS=OFF -DDFS_USE_PCH=OFF
//   cmake --build build-fuzz --target fuzz_safetensors
//   build-fuzz/core/diffusion/fuzz_safetensors -max_total_time=60 -rss_limit_mb=2048
#include <cstddef>
#include <cstdint>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/weights.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto file = dfs::diffusion::parse_safetensors(data, size);
    (void)file;
  } catch (const dfs::diffusion::Error&) {
    // A clean, explained rejection is the expected outcome for most inputs.
  }
  return 0;
}
