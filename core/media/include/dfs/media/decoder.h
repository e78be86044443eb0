// dfs/media/decoder.h — reading frames out of a clip, sequentially or by index.
//
// Frame indices count presentation order from 0; index n is the n-th frame a player shows.
// The Decoder is an interface: its public calls take one mutex and call the *_impl virtuals,
// so one Decoder may be shared between threads (calls serialise). All libav code lives in
// core/media/src/ffmpeg/; open_decoder() returns the FFmpeg implementation.
//
// Frames come out as RGB24 (any source pixel format goes through swscale), rotated upright
// when the container carries rotation metadata, optionally resized straight to a model's
// resolution (DecoderOptions::width/height). A small LRU cache of recent frames makes
// stepping +-1 and scrubbing back and forth cheap; frames decoded on the way to a seek target
// are cached too, so stepping backwards does not re-seek every time.
//
// Damaged streams: packets that fail to decode are skipped, counted in DecodeReport, and
// read() goes on with the next frame that decodes. frame_at(n) throws Error when frame n
// itself cannot be decoded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "dfs/frame.h"
#include "dfs/media/error.h"
#include "dfs/media/frame_ops.h"
#include "dfs/media/probe.h"

namespace dfs::media {

struct DecoderOptions {
  int width = 0;                                // output size; 0,0 = native (display orientation)
  int height = 0;                               //   both or neither must be set
  FitMode fit = FitMode::Letterbox;             // how the picture goes into width x height
  bool apply_rotation = true;                   // honour the container's rotation metadata
  std::size_t cache_frames = 48;                // LRU capacity in frames (0 disables the cache)
  std::size_t cache_bytes = 256u << 20;         // ... and in bytes (4K frames: ~10 of them)
  int threads = 0;                              // decoder threads (0 = FFmpeg's choice: all cores)
  std::int64_t max_pixels = kDefaultMaxPixels;  // refuse larger coded frames before allocating
};

// One decoded picture and where it sits in the clip.
struct DecodedFrame {
  Frame image;             // RGB24, upright, at the requested size
  std::int64_t index = 0;  // presentation index, 0-based
  double time = 0;         // seconds from the first frame
  bool keyframe = false;   // an intra frame in the source stream
};

// What went wrong while decoding (for damaged files). Not an error by itself.
struct DecodeReport {
  std::int64_t frames_decoded = 0;    // frames produced so far
  std::int64_t packets_failed = 0;    // packets the decoder rejected
  std::int64_t frames_missing = 0;    // indices skipped by read() because they never decoded
  std::int64_t frames_concealed = 0;  // frames returned with damage patched over (concealment)
  std::vector<std::string> messages;  // first few distinct decoder messages, for the user
  bool damaged() const { return packets_failed > 0 || frames_missing > 0 || frames_concealed > 0; }
};

// LRU cache of decoded frames keyed by index. Not thread-safe on its own (Decoder locks).
class FrameCache {
 public:
  explicit FrameCache(std::size_t capacity = 48, std::size_t max_bytes = kDefaultCacheBytes)
      : capacity_(capacity), max_bytes_(max_bytes) {}
  void set_capacity(std::size_t capacity, std::size_t max_bytes = kDefaultCacheBytes);
  std::size_t capacity() const { return capacity_; }
  std::size_t size() const { return entries_.size(); }
  std::size_t bytes() const { return bytes_; }   // pixel bytes held
  const DecodedFrame* find(std::int64_t index);  // marks as most recent; nullptr if absent
  void put(const DecodedFrame& frame);           // evicts least recent beyond capacity or max_bytes
  void clear() {
    entries_.clear();
    bytes_ = 0;
  }

  static constexpr std::size_t kDefaultCacheBytes = 256u << 20;  // 256 MiB

 private:
  void evict();
  std::size_t capacity_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::list<DecodedFrame> entries_;  // front = most recently used; capacity is small (tens)
};

class Decoder {
 public:
  virtual ~Decoder() = default;
  Decoder(const Decoder&) = delete;
  Decoder& operator=(const Decoder&) = delete;

  // Opens `path` (closing any previous clip). Throws Error, leaving the decoder closed.
  void open(const std::string& path, const DecoderOptions& options = {});
  void close();  // idempotent
  bool is_open() const;
  ProbeInfo info() const;  // of the open clip; Error if closed
  DecoderOptions options() const;
  int output_width() const;  // size of the frames produced
  int output_height() const;

  // Next frame in presentation order; nullopt at the end of the clip. After frame_at(n) the
  // next read() returns frame n+1. Damaged frames are skipped (see report()).
  std::optional<DecodedFrame> read();
  // Frame `index` exactly (0 <= index < info().frame_count). Uses the cache, then a seek to
  // the keyframe before it and decoding forward. Throws Error when out of range or when that
  // frame cannot be decoded.
  DecodedFrame frame_at(std::int64_t index);
  // Rewinds so that read() starts at frame `index` again (cheap; decoding happens in read()).
  void seek(std::int64_t index);
  std::int64_t position() const;   // index read() would return next (best knowledge)
  DecodeReport report() const;     // damage seen so far
  std::size_t cache_hits() const;  // frame_at() calls answered from the cache (for tests)

 protected:
  Decoder() = default;
  // Implementations. Called with mutex_ held; open_impl only when closed.
  virtual void open_impl(const std::string& path, const DecoderOptions& options) = 0;
  virtual void close_impl() = 0;
  virtual ProbeInfo info_impl() const = 0;
  virtual std::pair<int, int> output_size_impl() const = 0;
  virtual std::optional<DecodedFrame> read_impl() = 0;
  // Positions the stream so that read_impl() next yields frame `index` (decodes and drops the
  // frames before it; may put them into cache_ via remember()). Throws Error if impossible.
  virtual void seek_impl(std::int64_t index) = 0;
  virtual std::int64_t position_impl() const = 0;
  virtual DecodeReport report_impl() const = 0;

  void remember(const DecodedFrame& frame) { cache_.put(frame); }  // for seek_impl

 private:
  mutable std::mutex mutex_;
  FrameCache cache_;
  DecoderOptions options_;
  bool open_ = false;
  std::size_t cache_hits_ = 0;
};

// A new, closed FFmpeg decoder.
std::unique_ptr<Decoder> make_decoder();
// make_decoder() + open(); throws Error.
std::unique_ptr<Decoder> open_decoder(const std::string& path, const DecoderOptions& options = {});

// Convenience: frames [first, last] (inclusive, clamped to the clip) of `path`.
std::vector<DecodedFrame> read_frames(const std::string& path, std::int64_t first,
                                      std::int64_t last, const DecoderOptions& options = {});

// Reads a single still image (PNG, JPEG, BMP... anything FFmpeg's image demuxers take) as RGB.
Frame read_image(const std::string& path);

}  // namespace dfs::media
