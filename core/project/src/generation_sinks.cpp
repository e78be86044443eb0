// generation_sinks.cpp — where a job's final frames go: MemorySink (the Studio), EncoderSink
// (an export through dfs_media), PngCacheSink (the results cache) and TeeSink (several at once).
#include "dfs/project/generation.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <filesystem>

#include "dfs/media/encoder.h"
#include "dfs/media/frame_ops.h"
#include "errors.h"

namespace dfs::project {

namespace fs = std::filesystem;
using detail::translate_errors;

void MemorySink::begin(const SinkFormat& format) {
  std::lock_guard lock(mutex_);
  format_ = format;
  frames_.clear();
  origins_.clear();
  finished_ = cancelled_ = false;
}

void MemorySink::write(int position, const Frame& frame, FrameOrigin origin) {
  std::lock_guard lock(mutex_);
  frames_[position] = frame;
  origins_[position] = origin;
}

void MemorySink::finish(bool cancelled) {
  std::lock_guard lock(mutex_);
  finished_ = true;
  cancelled_ = cancelled;
}

SinkFormat MemorySink::format() const {
  std::lock_guard lock(mutex_);
  return format_;
}

std::map<int, Frame> MemorySink::frames() const {
  std::lock_guard lock(mutex_);
  return frames_;
}

std::vector<int> MemorySink::positions() const {
  std::lock_guard lock(mutex_);
  std::vector<int> out;
  out.reserve(frames_.size());
  for (const auto& kv : frames_) out.push_back(kv.first);
  return out;
}

bool MemorySink::has(int position) const {
  std::lock_guard lock(mutex_);
  return frames_.count(position) != 0;
}

Frame MemorySink::frame(int position) const {
  std::lock_guard lock(mutex_);
  auto it = frames_.find(position);
  return it == frames_.end() ? Frame{} : it->second;
}

FrameOrigin MemorySink::origin(int position) const {
  std::lock_guard lock(mutex_);
  auto it = origins_.find(position);
  if (it == origins_.end()) throw Error("frame " + std::to_string(position) + " was not received");
  return it->second;
}

bool MemorySink::finished() const {
  std::lock_guard lock(mutex_);
  return finished_;
}

bool MemorySink::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

struct EncoderSink::Impl {
  ExportSettings settings;
  std::string metadata;
  media::Encoder encoder;
  int written = 0;
  bool open = false;
};

EncoderSink::EncoderSink(ExportSettings settings, std::string metadata_json)
    : impl_(std::make_unique<Impl>()) {
  impl_->settings = std::move(settings);
  impl_->metadata = std::move(metadata_json);
  if (impl_->settings.path.empty()) throw Error("no output path given for the export");
}

EncoderSink::~EncoderSink() = default;

void EncoderSink::begin(const SinkFormat& format) {
  const ExportSettings& s = impl_->settings;
  media::EncodeSettings e;
  e.format = s.format;
  e.fps = s.fps > 0 ? s.fps : (format.fps > 0 ? format.fps : 8.0);
  // Quality 0..100 -> CRF, lower CRF = better. Linear maps chosen so that the default 80 gives
  // H.264 CRF 16 (visually lossless for small upscaled frames) and VP9 CRF 27.
  const double q = std::clamp(s.quality, 0, 100);
  e.crf = s.format == ExportFormat::WebM ? static_cast<int>(std::lround(55.0 - 0.35 * q))
                                         : static_cast<int>(std::lround(40.0 - 0.3 * q));
  e.metadata_json = impl_->metadata;
  translate_errors("cannot export", [&] { impl_->encoder.open(s.path, e); });
  impl_->open = true;
}

void EncoderSink::write(int position, const Frame& frame, FrameOrigin origin) {
  const ExportSettings& s = impl_->settings;
  bool take = true;
  if (s.format == ExportFormat::PngFrame)
    take = position == s.in;
  else if (s.range == ExportRange::Generated)
    take = origin == FrameOrigin::Generated;
  else if (s.range == ExportRange::InOut)
    take = position >= s.in && position <= s.out;
  if (!take || !impl_->open) return;
  translate_errors("cannot export", [&] {
    if (s.scale > 1)
      impl_->encoder.write(media::upscale(
          frame, s.scale, s.smooth ? media::Filter::kSmooth : media::Filter::kNearest));
    else
      impl_->encoder.write(frame);
  });
  ++impl_->written;
}

void EncoderSink::finish(bool cancelled) {
  if (!impl_->open) return;
  impl_->open = false;
  if (impl_->written == 0) {
    try {
      impl_->encoder.close();
    } catch (const std::exception&) {
      // Nothing was written: there is no file to finalise.
    }
    if (!cancelled)
      throw Error("nothing to export to '" + impl_->settings.path +
                  "': the export range holds no frames");
    return;
  }
  if (cancelled) {
    // Finalise what we have so the file plays; an error here must not hide the cancel.
    try {
      impl_->encoder.close();
    } catch (const std::exception&) {
    }
    return;
  }
  translate_errors("cannot finish the export", [&] { impl_->encoder.close(); });
}

void EncoderSink::discard() {
  if (!impl_->open) return;
  impl_->open = false;
  try {
    impl_->encoder.discard();
  } catch (const std::exception&) {
    // discard() is the way out of an error already being reported.
  }
}

int EncoderSink::frames_written() const {
  return impl_->written;
}
const std::string& EncoderSink::output_path() const {
  return impl_->settings.path;
}

PngCacheSink::PngCacheSink(std::string cache_dir, FrameSink* next)
    : dir_(std::move(cache_dir)), next_(next) {}

void PngCacheSink::begin(const SinkFormat& format) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw Error("cannot create the cache folder '" + dir_ + "': " + ec.message());
  if (next_) next_->begin(format);
}

void PngCacheSink::write(int position, const Frame& frame, FrameOrigin origin) {
  if (origin == FrameOrigin::Generated) {
    Results naming;
    naming.cache_dir = dir_;
    const std::string path = naming.cached_frame_path(position);
    translate_errors("cannot cache a generated frame", [&] { media::write_png(path, frame); });
  }
  if (next_) next_->write(position, frame, origin);
}

void PngCacheSink::finish(bool cancelled) {
  if (next_) next_->finish(cancelled);
}

void TeeSink::begin(const SinkFormat& format) {
  for (FrameSink* s : sinks_) s->begin(format);
}

void TeeSink::write(int position, const Frame& frame, FrameOrigin origin) {
  for (FrameSink* s : sinks_) s->write(position, frame, origin);
}

void TeeSink::finish(bool cancelled) {
  // Every sink gets its finish even if one throws; the first error is reported.
  std::exception_ptr first;
  for (FrameSink* s : sinks_) {
    try {
      s->finish(cancelled);
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

}  // namespace dfs::project
