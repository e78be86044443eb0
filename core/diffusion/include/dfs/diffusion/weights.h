// dfs/diffusion/weights.h — our own .safetensors reader and writer (torch).
//
// Format: 8-byte little-endian header length N, N bytes of JSON header
// {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets": [begin, end]}, ...},
// then the raw little-endian tensor bytes. Every header field is bounds-checked (header size,
// offsets inside the file and ordered, shape product * dtype size == byte length, known
// dtype, no overlaps); a malformed file throws Error naming the problem, never crashes and
// never allocates more than the file's size.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

namespace dfs::diffusion {

struct TensorFile {
  std::map<std::string, std::string> metadata;   // __metadata__ (string -> string)
  std::map<std::string, torch::Tensor> tensors;  // CPU tensors (f32, f16, bf16, i64, i32, u8, ...)
};

// Writes atomically (temp file + rename). Throws Error on I/O failure (full disk, read-only).
void save_safetensors(const std::string& path, const TensorFile& file);
// Reads and validates. Throws Error naming the problem.
TensorFile load_safetensors(const std::string& path);
// Same, from memory (the fuzz test and the libFuzzer target use this).
TensorFile parse_safetensors(const std::uint8_t* data, size_t size);

}  // namespace dfs::diffusion
