// fuzz_metadata.cpp — libFuzzer target for the export-metadata reader (comment tag + sidecar).
//
// read_generation_metadata(path) reads the generation settings an exported file carries: the
// container's comment tag (through FFmpeg), else the "<path>.json" sidecar. Contract: for any
// file and any sidecar it returns nullopt or a string that is valid JSON, and never throws,
// crashes or allocates without bound. The first input byte picks what the rest is:
//   even: the exported file itself (the sidecar is absent);
//   odd:  the sidecar's content, beside a tiny foreign file.
// Built by packaging/fuzz.sh (clang, -DDFS_BUILD_FUZZERS=ON); seeds in corpus/metadata/.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "dfs/media/metadata.h"

namespace {

bool write_file(const std::string& path, const std::uint8_t* data, std::size_t size) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return false;
  const bool ok = std::fwrite(data, 1, size, f) == size;
  return std::fclose(f) == 0 && ok;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const std::string path = "/tmp/dfs_fuzz_metadata_" + std::to_string(::getpid()) + ".mp4";
  static const std::string side = dfs::media::sidecar_path(path);
  std::remove(side.c_str());
  if ((data[0] & 1) == 0) {
    if (!write_file(path, data + 1, size - 1)) return 0;
  } else {
    static const std::uint8_t foreign[] = {'n', 'o', 't', ' ', 'a', ' ', 'v', 'i', 'd', 'e', 'o'};
    if (!write_file(path, foreign, sizeof foreign) || !write_file(side, data + 1, size - 1))
      return 0;
  }
  const auto json = dfs::media::read_generation_metadata(path);  // must not throw
  if (json && !nlohmann::json::accept(*json)) std::abort();      // promised valid JSON
  return 0;
}
