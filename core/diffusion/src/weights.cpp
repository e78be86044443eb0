// Our own .safetensors reader and writer.
//
// Format (https://github.com/huggingface/safetensors, "Format"): 8-byte little-endian u64 N,
// N bytes of UTF-8 JSON, then the byte buffer. Each tensor entry gives dtype, shape and
// data_offsets [begin, end) relative to the start of the byte buffer.
//
// The reader trusts nothing: the header length, every JSON field's type, every shape
// dimension, every offset and every product of them is checked against the file before a
// single tensor is allocated, so an allocation never exceeds the file's own size.
#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <unistd.h>
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/weights.h"
#include "dfs/partial_files.h"

namespace dfs::diffusion {

namespace {

static_assert(
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
    "the safetensors reader copies raw little-endian bytes; add byte swapping for this host");

constexpr std::uint64_t kMaxHeaderBytes = 100ull << 20;  // the reference implementation's limit
constexpr int kMaxJsonDepth = 16;                        // our headers nest 3 levels deep
constexpr int kMaxRank = 8;
constexpr std::uint64_t kMaxBytes = 1ull << 50;  // 1 PiB: no real tensor is larger

struct DtypeInfo {
  const char* name;
  torch::ScalarType type;
  std::uint64_t size;
};

constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64, 8},   {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8},   {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},     {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* dtype_by_name(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo* dtype_by_type(torch::ScalarType type) {
  for (const auto& d : kDtypes)
    if (type == d.type) return &d;
  return nullptr;
}

[[noreturn]] void fail(const std::string& what) {
  throw Error("invalid safetensors file: " + what);
}

// Rejects JSON nested deeper than kMaxJsonDepth before the parser sees it (a hostile header
// of a million '[' must not exhaust the stack anywhere).
void check_nesting(const char* text, size_t size) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = 0; i < size; ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\')
        ++i;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"')
      in_string = true;
    else if (c == '{' || c == '[') {
      if (++depth > kMaxJsonDepth)
        fail("the JSON header nests deeper than " + std::to_string(kMaxJsonDepth) + " levels");
    } else if (c == '}' || c == ']') {
      --depth;
    }
  }
}

std::uint64_t read_u64_le(const std::uint8_t* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::uint64_t as_u64(const nlohmann::json& j, const std::string& what) {
  if (!j.is_number_integer()) fail(what + " must be a non-negative integer");
  if (j.is_number_unsigned()) return j.get<std::uint64_t>();
  const auto v = j.get<std::int64_t>();
  if (v < 0) fail(what + " must be non-negative, got " + std::to_string(v));
  return static_cast<std::uint64_t>(v);
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  std::uint64_t begin;
  std::uint64_t end;
};

}  // namespace

TensorFile parse_safetensors(const std::uint8_t* data, size_t size) {
  if (data == nullptr && size > 0) fail("no data");
  if (size < 8)
    fail("the file is " + std::to_string(size) +
         " bytes; it must start with an 8-byte header length");
  const std::uint64_t header_size = read_u64_le(data);
  if (header_size > kMaxHeaderBytes)
    fail("the header claims " + std::to_string(header_size) + " bytes (limit " +
         std::to_string(kMaxHeaderBytes) + ")");
  if (header_size > size - 8)
    fail("the header claims " + std::to_string(header_size) + " bytes but the file has only " +
         std::to_string(size - 8) + " after the length field (truncated?)");
  if (header_size < 2) fail("the header is too short to be a JSON object");
  const char* header = reinterpret_cast<const char*>(data + 8);
  if (header[0] != '{') fail("the header does not start with '{'");
  check_nesting(header, header_size);

  const auto j =
      nlohmann::json::parse(header, header + header_size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail("the header is not valid JSON");
  if (!j.is_object()) fail("the header is not a JSON object");

  const std::uint8_t* buffer = data + 8 + header_size;
  const std::uint64_t buffer_size = size - 8 - header_size;

  TensorFile file;
  std::vector<Entry> entries;
  for (const auto& [name, value] : j.items()) {
    if (name == "__metadata__") {
      if (!value.is_object()) fail("__metadata__ must be an object of strings");
      for (const auto& [key, text] : value.items()) {
        if (!text.is_string()) fail("__metadata__ entry '" + key + "' is not a string");
        file.metadata[key] = text.get<std::string>();
      }
      continue;
    }
    const std::string where = "tensor '" + name + "'";
    if (name.empty()) fail("a tensor has an empty name");
    if (!value.is_object()) fail(where + " is not an object");
    const auto dtype_it = value.find("dtype");
    const auto shape_it = value.find("shape");
    const auto offsets_it = value.find("data_offsets");
    if (dtype_it == value.end() || !dtype_it->is_string()) fail(where + " has no dtype string");
    if (shape_it == value.end() || !shape_it->is_array()) fail(where + " has no shape array");
    if (offsets_it == value.end() || !offsets_it->is_array() || offsets_it->size() != 2)
      fail(where + " needs data_offsets [begin, end]");

    Entry entry;
    entry.name = name;
    entry.dtype = dtype_by_name(dtype_it->get<std::string>());
    if (entry.dtype == nullptr)
      fail(where + " has unsupported dtype '" + dtype_it->get<std::string>() + "'");
    if (shape_it->size() > static_cast<size_t>(kMaxRank))
      fail(where + " has rank " + std::to_string(shape_it->size()) + " (limit " +
           std::to_string(kMaxRank) + ")");

    entry.begin = as_u64((*offsets_it)[0], where + " data_offsets[0]");
    entry.end = as_u64((*offsets_it)[1], where + " data_offsets[1]");
    if (entry.begin > entry.end) fail(where + " has data_offsets with begin > end");
    if (entry.end > buffer_size)
      fail(where + " ends at byte " + std::to_string(entry.end) + " but the data is only " +
           std::to_string(buffer_size) + " bytes (truncated?)");

    // bytes = prod(shape) * dtype size, every multiplication checked for overflow (kMaxBytes
    // also keeps every dimension inside int64); it must then equal the span it claims.
    std::uint64_t bytes = entry.dtype->size;
    for (size_t d = 0; d < shape_it->size(); ++d) {
      const std::uint64_t dim = as_u64((*shape_it)[d], where + " shape[" + std::to_string(d) + "]");
      if (dim > kMaxBytes) fail(where + " dimension " + std::to_string(dim) + " exceeds any file");
      if (dim != 0 && bytes > kMaxBytes / dim)
        fail(where + " shape needs more bytes than any file holds");
      bytes *= dim;
      entry.shape.push_back(static_cast<int64_t>(dim));
    }
    if (entry.end - entry.begin != bytes)
      fail(where + " has " + std::to_string(entry.end - entry.begin) +
           " bytes of data but its shape and dtype need " + std::to_string(bytes));
    entries.push_back(std::move(entry));
  }

  std::vector<const Entry*> by_offset;
  for (const auto& e : entries) by_offset.push_back(&e);
  std::sort(by_offset.begin(), by_offset.end(), [](const Entry* a, const Entry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  const Entry* furthest = nullptr;  // the non-empty tensor that ends last so far
  for (const Entry* e : by_offset) {
    if (e->begin == e->end) continue;
    if (furthest != nullptr && e->begin < furthest->end)
      fail("tensors '" + furthest->name + "' and '" + e->name + "' overlap");
    if (furthest == nullptr || e->end > furthest->end) furthest = e;
  }

  for (const auto& e : entries) {
    auto tensor = torch::empty(e.shape, torch::TensorOptions().dtype(e.dtype->type));
    if (e.end > e.begin) std::memcpy(tensor.data_ptr(), buffer + e.begin, e.end - e.begin);
    file.tensors.emplace(e.name, std::move(tensor));
  }
  return file;
}

TensorFile load_safetensors(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) throw Error("model file '" + path + "' does not exist");
  if (std::filesystem::is_directory(path, ec))
    throw Error("'" + path + "' is a directory, not a model file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open '" + path + "': " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff length = in.tellg();
  if (length < 0) throw Error("cannot read the size of '" + path + "'");
  in.seekg(0, std::ios::beg);
  std::vector<std::uint8_t> bytes(static_cast<size_t>(length));
  if (length > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), length))
    throw Error("cannot read '" + path + "' (" + std::to_string(length) + " bytes)");
  try {
    return parse_safetensors(bytes.data(), bytes.size());
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

void save_safetensors(const std::string& path, const TensorFile& file) {
  nlohmann::json header = nlohmann::json::object();
  if (!file.metadata.empty()) {
    nlohmann::json meta = nlohmann::json::object();
    for (const auto& [key, value] : file.metadata) meta[key] = value;
    header["__metadata__"] = meta;
  }
  std::vector<torch::Tensor> blobs;
  std::uint64_t offset = 0;
  for (const auto& [name, tensor] : file.tensors) {
    if (name.empty() || name == "__metadata__")
      throw Error("cannot save a tensor named '" + name + "'");
    const DtypeInfo* dtype = dtype_by_type(tensor.scalar_type());
    if (dtype == nullptr)
      throw Error("cannot save tensor '" + name + "': dtype " +
                  std::string(c10::toString(tensor.scalar_type())) +
                  " is not supported by safetensors");
    auto blob = tensor.detach().to(torch::kCPU).contiguous();
    const std::uint64_t bytes = static_cast<std::uint64_t>(blob.numel()) * dtype->size;
    header[name] = {{"dtype", dtype->name},
                    {"shape", blob.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    blobs.push_back(std::move(blob));
  }
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // keeps the byte buffer 8-byte aligned

  // Atomic replace: write a sibling temp file, flush it to disk, then rename over the target,
  // so a crash or a full disk never leaves a half-written model behind.
  const std::string temp = dfs::partial_name(path);
  dfs::remove_stale_partials(std::filesystem::path(path).parent_path(),
                             std::filesystem::path(path).filename().string());
  std::FILE* out = std::fopen(temp.c_str(), "wb");
  if (out == nullptr) throw Error("cannot write '" + temp + "': " + std::strerror(errno));
  bool ok = true;
  std::uint8_t length[8];
  std::uint64_t n = text.size();
  for (int i = 0; i < 8; ++i) length[i] = static_cast<std::uint8_t>(n >> (8 * i));
  ok = ok && std::fwrite(length, 1, 8, out) == 8;
  ok = ok && std::fwrite(text.data(), 1, text.size(), out) == text.size();
  for (const auto& blob : blobs) {
    const size_t bytes = static_cast<size_t>(blob.numel()) * blob.element_size();
    ok = ok && (bytes == 0 || std::fwrite(blob.data_ptr(), 1, bytes, out) == bytes);
  }
  ok = ok && std::fflush(out) == 0;
  ok = ok && ::fsync(::fileno(out)) == 0;
  const int saved_errno = errno;
  ok = (std::fclose(out) == 0) && ok;
  if (!ok) {
    std::remove(temp.c_str());
    throw Error("cannot write '" + path + "': " + dfs::write_error_text(saved_errno ? saved_errno : EIO));
  }
  if (std::rename(temp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(temp.c_str());
    throw Error("cannot replace '" + path + "': " + std::strerror(err));
  }
}

}  // namespace dfs::diffusion
