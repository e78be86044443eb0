// Reading stored safetensors files (datasets, checkpoints) with errors a person can act on.
// Internal to src/train; definitions in file_metadata.cpp.
#pragma once

#include <functional>
#include <string>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/weights.h"

namespace dfs::diffusion::train::detail {

// Loads the safetensors file at `path`; a failure throws Error("cannot read <what>: <why>").
TensorFile read_tensor_file(const std::string& path, const std::string& what);

// A loaded file's metadata by key. An absent key throws the Error that `missing(key)` makes.
// Holds a reference: the file must outlive the reader.
class MetadataReader {
 public:
  MetadataReader(const TensorFile& file, std::function<Error(const std::string& key)> missing);
  const std::string& operator()(const std::string& key) const;

 private:
  const TensorFile& file_;
  std::function<Error(const std::string& key)> missing_;
};

}  // namespace dfs::diffusion::train::detail
