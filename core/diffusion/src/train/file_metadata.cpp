// Reading a stored safetensors file with errors a person can act on (see file_metadata.h).
#include "file_metadata.h"

#include <utility>

namespace dfs::diffusion::train::detail {

TensorFile read_tensor_file(const std::string& path, const std::string& what) {
  try {
    return load_safetensors(path);
  } catch (const Error& e) {
    throw Error("cannot read " + what + ": " + e.what());
  }
}

MetadataReader::MetadataReader(const TensorFile& file,
                               std::function<Error(const std::string& key)> missing)
    : file_(file), missing_(std::move(missing)) {}

const std::string& MetadataReader::operator()(const std::string& key) const {
  const auto it = file_.metadata.find(key);
  if (it == file_.metadata.end()) throw missing_(key);
  return it->second;
}

}  // namespace dfs::diffusion::train::detail
