// The packed video dataset: append, save, load (validated), conversions.
#include "dfs/diffusion/train/dataset.h"

#include <cstring>
#include <cmath>
#include <cstdio>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/weights.h"
#include "file_metadata.h"

namespace dfs::diffusion::train {

namespace {

Error dataset_error(const std::string& path, const std::string& what) {
  return Error("dataset '" + path + "': " + what);
}

}  // namespace

int64_t VideoDataset::train_frame_count() const {
  int64_t n = 0;
  for (const auto& c : clips) n += c.train_length;
  return n;
}

int64_t VideoDataset::held_out_frame_count() const {
  int64_t n = 0;
  for (const auto& c : clips) n += c.held_out_length();
  return n;
}

size_t VideoDataset::clip_index(const std::string& name) const {
  for (size_t i = 0; i < clips.size(); ++i)
    if (clips[i].name == name) return i;
  std::string names;
  for (const auto& c : clips) names += (names.empty() ? "" : ", ") + c.name;
  throw Error("the dataset has no clip named '" + name + "' (it has: " + names + ")");
}

std::string VideoDataset::fingerprint() const {
  // FNV-1a (64 bit) over the frame bytes and the clip layout: cheap, stable across machines.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) {
      h ^= b[i];
      h *= 1099511628211ull;
    }
  };
  if (frames.defined()) {
    const auto f = frames.contiguous();
    mix(f.data_ptr<uint8_t>(), static_cast<size_t>(f.numel()));
  }
  for (const auto& c : clips) {
    mix(&c.first, sizeof c.first);
    mix(&c.length, sizeof c.length);
    mix(&c.train_length, sizeof c.train_length);
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%dx%dx%lld:%016llx", width(), height(),
                static_cast<long long>(frame_count()), static_cast<unsigned long long>(h));
  return buf;
}

void append_clip(VideoDataset& dataset, const std::string& name, const std::string& source,
                 const torch::Tensor& frames, double held_out_fraction) {
  if (!frames.defined() || frames.dim() != 4 || frames.size(3) != 3 ||
      frames.scalar_type() != torch::kUInt8)
    throw Error("clip '" + name + "': frames must be uint8 [T, H, W, 3]");
  if (frames.size(0) < 1) throw Error("clip '" + name + "' has no frames");
  if (held_out_fraction < 0 || held_out_fraction > 1)
    throw Error("held-out fraction must be in [0, 1], got " + std::to_string(held_out_fraction));
  if (dataset.frames.defined() &&
      (frames.size(1) != dataset.height() || frames.size(2) != dataset.width()))
    throw Error("clip '" + name + "' is " + std::to_string(frames.size(2)) + "x" +
                std::to_string(frames.size(1)) + " but the dataset is " +
                std::to_string(dataset.width()) + "x" + std::to_string(dataset.height()));
  for (const auto& c : dataset.clips)
    if (c.name == name) throw Error("the dataset already has a clip named '" + name + "'");

  ClipInfo info;
  info.name = name;
  info.source = source;
  info.first = dataset.frame_count();
  info.length = frames.size(0);
  int64_t held =
      static_cast<int64_t>(std::llround(held_out_fraction * static_cast<double>(info.length)));
  if (held_out_fraction > 0 && held < 1 && info.length >= 2) held = 1;
  info.train_length = info.length - held;
  const auto f = frames.to(torch::kCPU).contiguous();
  dataset.frames = dataset.frames.defined() ? torch::cat({dataset.frames, f}, 0) : f.clone();
  dataset.clips.push_back(info);
}

void append_clip(VideoDataset& dataset, const std::string& name, const std::string& source,
                 const std::vector<Frame>& frames, double held_out_fraction) {
  if (frames.empty() || frames.front().empty()) throw Error("clip '" + name + "' has no frames");
  const int w = frames.front().width, h = frames.front().height;
  auto t = torch::empty({static_cast<int64_t>(frames.size()), h, w, 3}, torch::kUInt8);
  for (size_t i = 0; i < frames.size(); ++i) {
    const Frame& f = frames[i];
    if (f.width != w || f.height != h)
      throw Error("clip '" + name + "': frame " + std::to_string(i) + " is " +
                  std::to_string(f.width) + "x" + std::to_string(f.height) + ", frame 0 is " +
                  std::to_string(w) + "x" + std::to_string(h));
    auto* dst = t[static_cast<int64_t>(i)].data_ptr<uint8_t>();
    for (int y = 0; y < h; ++y)
      std::memcpy(dst + static_cast<size_t>(y) * static_cast<size_t>(w) * 3, f.row(y),
                  static_cast<size_t>(w) * 3);
  }
  append_clip(dataset, name, source, t, held_out_fraction);
}

void save_dataset(const std::string& path, const VideoDataset& dataset) {
  if (!dataset.frames.defined() || dataset.clips.empty())
    throw Error("refusing to write an empty dataset to '" + path + "'");
  TensorFile file;
  const auto c = static_cast<int64_t>(dataset.clips.size());
  auto offsets = torch::empty({c + 1}, torch::kInt64);
  auto train = torch::empty({c}, torch::kInt64);
  nlohmann::json clips = nlohmann::json::array();
  for (int64_t i = 0; i < c; ++i) {
    const auto& clip = dataset.clips[static_cast<size_t>(i)];
    offsets[i] = clip.first;
    train[i] = clip.train_length;
    clips.push_back({{"name", clip.name}, {"source", clip.source}});
  }
  offsets[c] = dataset.frame_count();
  file.tensors["frames"] = dataset.frames.contiguous();
  file.tensors["clip_offsets"] = offsets;
  file.tensors["clip_train"] = train;
  file.metadata["format"] = kDatasetFormat;
  file.metadata["version"] = "1";
  file.metadata["clips"] = clips.dump();
  file.metadata["provenance"] = dataset.provenance.dump();
  save_safetensors(path, file);
}

VideoDataset load_dataset(const std::string& path) {
  const TensorFile file = detail::read_tensor_file(path, "dataset");
  const detail::MetadataReader meta(file, [&](const std::string& key) {
    return dataset_error(
        path, "missing metadata '" + key + "' — is this a dataset made by `dforce dataset`?");
  });
  if (meta("format") != kDatasetFormat)
    throw dataset_error(
        path, "metadata format is '" + meta("format") + "', expected '" + kDatasetFormat + "'");
  if (meta("version") != "1")
    throw dataset_error(path, "unsupported version '" + meta("version") + "'");
  auto tensor = [&](const char* key) -> torch::Tensor {
    auto it = file.tensors.find(key);
    if (it == file.tensors.end())
      throw dataset_error(path, std::string("missing tensor '") + key + "'");
    return it->second;
  };
  VideoDataset ds;
  ds.frames = tensor("frames");
  const auto offsets_t = tensor("clip_offsets");
  const auto train_t = tensor("clip_train");
  if (ds.frames.scalar_type() != torch::kUInt8 || ds.frames.dim() != 4 || ds.frames.size(3) != 3)
    throw dataset_error(path, "'frames' must be uint8 [N, H, W, 3]");
  if (ds.frames.size(0) < 1 || ds.frames.size(1) < 1 || ds.frames.size(2) < 1)
    throw dataset_error(path, "'frames' is empty");
  if (offsets_t.scalar_type() != torch::kInt64 || offsets_t.dim() != 1 || offsets_t.size(0) < 2)
    throw dataset_error(path, "'clip_offsets' must be int64 [C + 1] with C >= 1");
  const int64_t c = offsets_t.size(0) - 1;
  if (train_t.scalar_type() != torch::kInt64 || train_t.dim() != 1 || train_t.size(0) != c)
    throw dataset_error(path, "'clip_train' must be int64 [C] matching 'clip_offsets'");
  nlohmann::json clips;
  try {
    clips = nlohmann::json::parse(meta("clips"));
    ds.provenance = nlohmann::json::parse(meta("provenance"));
  } catch (const nlohmann::json::exception& e) {
    throw dataset_error(path, std::string("metadata is not valid JSON: ") + e.what());
  }
  if (!clips.is_array() || static_cast<int64_t>(clips.size()) != c)
    throw dataset_error(path, "metadata 'clips' must list " + std::to_string(c) + " clips");
  const auto* off = offsets_t.data_ptr<int64_t>();
  const auto* tr = train_t.data_ptr<int64_t>();
  if (off[0] != 0 || off[c] != ds.frames.size(0))
    throw dataset_error(path, "clip offsets do not cover the frames (first must be 0, last " +
                                  std::to_string(ds.frames.size(0)) + ")");
  for (int64_t i = 0; i < c; ++i) {
    ClipInfo info;
    info.first = off[i];
    info.length = off[i + 1] - off[i];
    info.train_length = tr[i];
    if (info.length < 1) throw dataset_error(path, "clip " + std::to_string(i) + " has no frames");
    if (info.train_length < 0 || info.train_length > info.length)
      throw dataset_error(path, "clip " + std::to_string(i) + " has an invalid training length");
    const auto& j = clips[static_cast<size_t>(i)];
    if (!j.is_object() || !j.contains("name") || !j["name"].is_string())
      throw dataset_error(path, "clip " + std::to_string(i) + " has no name in the metadata");
    info.name = j["name"].get<std::string>();
    info.source = j.value("source", std::string());
    ds.clips.push_back(info);
  }
  return ds;
}

torch::Tensor uint8_to_float(const torch::Tensor& frames_hwc) {
  const int64_t d = frames_hwc.dim();
  return frames_hwc.to(torch::kFloat32).movedim(d - 1, d - 3).div(127.5).sub(1.0).contiguous();
}

torch::Tensor float_to_uint8(const torch::Tensor& frames_chw) {
  const int64_t d = frames_chw.dim();
  return frames_chw.detach()
      .to(torch::kCPU, torch::kFloat32)
      .add(1.0)
      .mul(127.5)
      .round()
      .clamp(0, 255)
      .to(torch::kUInt8)
      .movedim(d - 3, d - 1)
      .contiguous();
}

torch::Tensor frames_to_float(const VideoDataset& dataset, int64_t first, int64_t count) {
  if (first < 0 || count < 0 || first + count > dataset.frame_count())
    throw Error("frame range out of the dataset");
  return uint8_to_float(dataset.frames.narrow(0, first, count));
}

}  // namespace dfs::diffusion::train
