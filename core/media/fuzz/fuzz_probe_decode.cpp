// fuzz_probe_decode.cpp — libFuzzer target over dfs_media's probe + decode path.
//
// Not part of the default build. Build with clang (see core/media/CMakeLists.txt):
//   CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DDFS_BUILD_UI=OFF -DDFS_BUILD_TESTS=OFF \
//       -DDFS_MEDIA_FUZZER=ON -DCMAKE_CXX_FLAGS="-fsanitize=fuzzer-no-link,address,undefined"
//   cmake --build build-fuzz --target fuzz_probe_decode
//   build-fuzz/core/media/fuzz_probe_decode -max_total_time=60 corpus/
// The API takes paths (FFmpeg probes by name and content), so each input is written to a
// file first. The contract under test: any byte string either decodes or throws
// dfs::media::Error — no crash, no other exception, no unbounded allocation.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "dfs/media/decoder.h"
#include "dfs/media/probe.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, size_t size) {
  static const std::string path = "/tmp/dfs_fuzz_" + std::to_string(::getpid()) + ".bin";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    dfs::media::probe(path);
  } catch (const dfs::media::Error&) {
  }
  try {
    dfs::media::DecoderOptions options;
    options.max_pixels = 2048 * 2048;  // keep the fuzzer within its memory limit
    options.cache_frames = 4;
    options.threads = 1;
    auto decoder = dfs::media::open_decoder(path, options);
    int frames = 0;
    while (frames < 64 && decoder->read()) ++frames;
    const auto count = decoder->info().frame_count;
    if (count > 2) {
      decoder->frame_at(count / 2);
      decoder->frame_at(1);
      decoder->frame_at(0);
    }
  } catch (const dfs::media::Error&) {
  }
  return 0;
}
