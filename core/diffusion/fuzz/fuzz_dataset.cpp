// fuzz_dataset.cpp — libFuzzer target for the training-dataset reader (load_dataset).
//
// A dataset is a .safetensors file with frames, clip offsets, the train/held-out split and JSON
// metadata (dataset.h). Contract: any file either loads into a dataset whose clips tile its
// frames exactly, or throws dfs::diffusion::Error — no crash, no other exception, no read past
// a tensor. The input is written to a file because the reader takes a path.
// Built by packaging/fuzz.sh (clang, C++17 because of LibTorch 1.13's headers); seeds in
// corpus/dataset/.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/train/dataset.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace train = dfs::diffusion::train;
  static const std::string path =
      "/tmp/dfs_fuzz_dataset_" + std::to_string(::getpid()) + ".safetensors";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  const bool written = std::fwrite(data, 1, size, f) == size;
  if (std::fclose(f) != 0 || !written) return 0;
  try {
    const train::VideoDataset ds = train::load_dataset(path);
    // What loads is consistent: clips back to back over every frame, splits inside clips.
    int64_t next = 0;
    for (const auto& c : ds.clips) {
      if (c.first != next || c.length < 1 || c.train_length < 0 || c.train_length > c.length)
        std::abort();
      next += c.length;
    }
    if (next != ds.frame_count() || ds.frames.scalar_type() != torch::kUInt8) std::abort();
    if (ds.frame_count() > 0) (void)ds.frames[ds.frame_count() - 1].sum().item<int64_t>();
  } catch (const dfs::diffusion::Error&) {
  }
  return 0;
}
