// decoder.cpp — the Decoder interface's locking front, the frame cache, convenience readers.
#include "dfs/media/decoder.h"

#include <algorithm>

namespace dfs::media {

void FrameCache::set_capacity(std::size_t capacity, std::size_t max_bytes) {
  capacity_ = capacity;
  max_bytes_ = max_bytes;
  evict();
}

void FrameCache::evict() {
  while (!entries_.empty() && (entries_.size() > capacity_ || bytes_ > max_bytes_)) {
    bytes_ -= entries_.back().image.rgb.size();
    entries_.pop_back();
  }
}

const DecodedFrame* FrameCache::find(std::int64_t index) {
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->index == index) {
      entries_.splice(entries_.begin(), entries_, it);
      return &entries_.front();
    }
  }
  return nullptr;
}

void FrameCache::put(const DecodedFrame& frame) {
  if (capacity_ == 0 || frame.image.rgb.size() > max_bytes_) return;
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it->index == frame.index) {
      entries_.splice(entries_.begin(), entries_, it);
      return;
    }
  }
  entries_.push_front(frame);
  bytes_ += frame.image.rgb.size();
  evict();
}

void Decoder::open(const std::string& path, const DecoderOptions& options) {
  std::lock_guard lock(mutex_);
  if ((options.width > 0) != (options.height > 0) || options.width < 0 || options.height < 0)
    throw Error(path, "output size must give both width and height (or neither)");
  if (open_) {
    close_impl();
    open_ = false;
  }
  cache_.clear();
  cache_.set_capacity(options.cache_frames, options.cache_bytes);
  cache_hits_ = 0;
  options_ = options;
  open_impl(path, options);
  open_ = true;
}

void Decoder::close() {
  std::lock_guard lock(mutex_);
  if (open_) close_impl();
  open_ = false;
  cache_.clear();
}

bool Decoder::is_open() const {
  std::lock_guard lock(mutex_);
  return open_;
}

ProbeInfo Decoder::info() const {
  std::lock_guard lock(mutex_);
  if (!open_) throw Error("", "decoder: no clip is open");
  return info_impl();
}

DecoderOptions Decoder::options() const {
  std::lock_guard lock(mutex_);
  return options_;
}

int Decoder::output_width() const {
  std::lock_guard lock(mutex_);
  return open_ ? output_size_impl().first : 0;
}

int Decoder::output_height() const {
  std::lock_guard lock(mutex_);
  return open_ ? output_size_impl().second : 0;
}

std::optional<DecodedFrame> Decoder::read() {
  std::lock_guard lock(mutex_);
  if (!open_) throw Error("", "decoder: no clip is open");
  auto frame = read_impl();
  if (frame) cache_.put(*frame);
  return frame;
}

DecodedFrame Decoder::frame_at(std::int64_t index) {
  std::lock_guard lock(mutex_);
  if (!open_) throw Error("", "decoder: no clip is open");
  const ProbeInfo info = info_impl();
  if (index < 0 || index >= info.frame_count) {
    throw Error(info.path, "frame " + std::to_string(index) + " is out of range (the clip has " +
                               std::to_string(info.frame_count) + " frames)");
  }
  if (const DecodedFrame* hit = cache_.find(index)) {
    ++cache_hits_;
    DecodedFrame copy = *hit;
    seek_impl(index + 1);  // lazy: the next read() continues after this frame
    return copy;
  }
  seek_impl(index);
  auto frame = read_impl();
  if (!frame || frame->index != index) {
    throw Error(info.path, "frame " + std::to_string(index) +
                               " cannot be decoded (the stream is damaged there)");
  }
  cache_.put(*frame);
  return *frame;
}

void Decoder::seek(std::int64_t index) {
  std::lock_guard lock(mutex_);
  if (!open_) throw Error("", "decoder: no clip is open");
  seek_impl(std::max<std::int64_t>(0, index));
}

std::int64_t Decoder::position() const {
  std::lock_guard lock(mutex_);
  return open_ ? position_impl() : 0;
}

DecodeReport Decoder::report() const {
  std::lock_guard lock(mutex_);
  return open_ ? report_impl() : DecodeReport{};
}

std::size_t Decoder::cache_hits() const {
  std::lock_guard lock(mutex_);
  return cache_hits_;
}

std::unique_ptr<Decoder> open_decoder(const std::string& path, const DecoderOptions& options) {
  auto decoder = make_decoder();
  decoder->open(path, options);
  return decoder;
}

std::vector<DecodedFrame> read_frames(const std::string& path, std::int64_t first,
                                      std::int64_t last, const DecoderOptions& options) {
  auto decoder = open_decoder(path, options);
  const std::int64_t count = decoder->info().frame_count;
  first = std::max<std::int64_t>(0, first);
  last = std::min(last, count - 1);
  std::vector<DecodedFrame> frames;
  if (first > last) return frames;
  decoder->seek(first);
  while (auto f = decoder->read()) {
    if (f->index > last) break;
    if (f->index >= first) frames.push_back(std::move(*f));
  }
  return frames;
}

Frame read_image(const std::string& path) {
  DecoderOptions options;
  options.cache_frames = 0;
  auto decoder = open_decoder(path, options);
  auto f = decoder->read();
  if (!f) throw Error(path, "holds no decodable picture");
  return std::move(f->image);
}

}  // namespace dfs::media
