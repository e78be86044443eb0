// thumbnails.cpp — evenly spaced thumbnails on a worker thread.
#include "dfs/media/thumbnails.h"

#include <algorithm>
#include <exception>

#include "dfs/media/decoder.h"
#include "dfs/media/error.h"

namespace dfs::media {

std::vector<std::int64_t> thumbnail_indices(std::int64_t frame_count, int count) {
  std::vector<std::int64_t> out;
  if (frame_count <= 0 || count <= 0) return out;
  const std::int64_t n = std::min<std::int64_t>(count, frame_count);
  out.reserve(static_cast<size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    // Centre of segment i of n equal segments: (2i + 1) * frame_count / (2n), floored.
    out.push_back(((2 * i + 1) * frame_count) / (2 * n));
  }
  return out;
}

namespace {

DecoderOptions thumbnail_options(const ThumbnailRequest& r) {
  if (r.width <= 0 || r.height <= 0) throw Error(r.path, "thumbnail size must be positive");
  DecoderOptions opt;
  opt.width = r.width;
  opt.height = r.height;
  opt.fit = r.fit;
  opt.cache_frames = 0;  // thumbnails are far apart; caching them wastes memory
  return opt;
}

}  // namespace

ThumbnailJob::ThumbnailJob(ThumbnailRequest request, OnThumbnail on_thumbnail,
                           OnFinished on_finished)
    : request_(std::move(request)),
      on_thumbnail_(std::move(on_thumbnail)),
      on_finished_(std::move(on_finished)) {
  worker_ = std::thread([this] { run(); });
}

ThumbnailJob::~ThumbnailJob() {
  cancel();
  wait();
}

void ThumbnailJob::cancel() {
  cancel_ = true;
}

void ThumbnailJob::wait() {
  if (worker_.joinable()) worker_.join();
}

bool ThumbnailJob::finished() const {
  return finished_;
}
bool ThumbnailJob::cancelled() const {
  return cancel_;
}
int ThumbnailJob::delivered() const {
  return delivered_;
}

std::optional<std::string> ThumbnailJob::error() const {
  std::lock_guard lock(error_mutex_);
  return error_;
}

void ThumbnailJob::run() {
  bool complete = false;
  try {
    auto decoder = open_decoder(request_.path, thumbnail_options(request_));
    const auto indices = thumbnail_indices(decoder->info().frame_count, request_.count);
    int ordinal = 0;
    for (std::int64_t index : indices) {
      if (cancel_) break;
      DecodedFrame f;
      try {
        f = decoder->frame_at(index);
      } catch (const Error&) {
        // A damaged spot: use the next frame that decodes rather than leaving a hole.
        decoder->seek(index);
        auto next = decoder->read();
        if (!next) throw;
        f = std::move(*next);
      }
      if (cancel_) break;
      if (on_thumbnail_) on_thumbnail_(ordinal, f.index, f.image);
      ++ordinal;
      ++delivered_;
    }
    complete = !cancel_ && ordinal == static_cast<int>(indices.size());
  } catch (const std::exception& e) {
    std::lock_guard lock(error_mutex_);
    error_ = e.what();
  }
  finished_ = true;
  if (on_finished_) {
    try {
      on_finished_(complete);
    } catch (...) {  // a callback's exception must not kill the process from a thread
    }
  }
}

std::vector<Frame> make_thumbnails(const ThumbnailRequest& request) {
  auto decoder = open_decoder(request.path, thumbnail_options(request));
  std::vector<Frame> out;
  for (std::int64_t index : thumbnail_indices(decoder->info().frame_count, request.count)) {
    out.push_back(decoder->frame_at(index).image);
  }
  return out;
}

}  // namespace dfs::media
