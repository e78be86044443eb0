// dfs/media/thumbnails.h — N evenly spaced thumbnails of a clip, made off the calling thread.
//
// ThumbnailJob starts a worker thread in its constructor. The callback runs ON THAT WORKER
// THREAD once per thumbnail, in order (a Qt caller forwards it with a queued signal). cancel()
// is honoured between thumbnails (one seek + decode at most, ~0.4 s on a 250-frame GOP at
// 768x576 here); the destructor cancels and joins, so a job can be dropped at any time. Errors (bad
// file) are not thrown: they are stored and reported through error() and the finished callback.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "dfs/frame.h"
#include "dfs/media/frame_ops.h"

namespace dfs::media {

struct ThumbnailRequest {
  std::string path;  // clip
  int count = 10;    // thumbnails wanted (clamped to the frame count)
  int width = 160;   // thumbnail box, pixels
  int height = 90;
  FitMode fit = FitMode::Letterbox;
};

// Indices of `count` evenly spaced frames of a `frame_count`-frame clip: the centres of
// `count` equal segments, i.e. floor((i + 0.5) * frame_count / count). Pure.
std::vector<std::int64_t> thumbnail_indices(std::int64_t frame_count, int count);

class ThumbnailJob {
 public:
  // (ordinal 0..count-1, frame index in the clip, thumbnail)
  using OnThumbnail = std::function<void(int, std::int64_t, const Frame&)>;
  // (true if every thumbnail was delivered; false on cancel or error)
  using OnFinished = std::function<void(bool)>;

  ThumbnailJob(ThumbnailRequest request, OnThumbnail on_thumbnail, OnFinished on_finished = {});
  ~ThumbnailJob();  // cancel() + wait()
  ThumbnailJob(const ThumbnailJob&) = delete;
  ThumbnailJob& operator=(const ThumbnailJob&) = delete;

  void cancel();          // asks the worker to stop; returns at once
  void wait();            // blocks until the worker has finished
  bool finished() const;  // the worker has returned
  bool cancelled() const;
  int delivered() const;                     // thumbnails delivered so far
  std::optional<std::string> error() const;  // set if the clip could not be read

 private:
  void run();
  ThumbnailRequest request_;
  OnThumbnail on_thumbnail_;
  OnFinished on_finished_;
  std::atomic<bool> cancel_{false};
  std::atomic<bool> finished_{false};
  std::atomic<int> delivered_{0};
  mutable std::mutex error_mutex_;
  std::optional<std::string> error_;
  std::thread worker_;
};

// Synchronous helper: all thumbnails at once (used by the CLI and tests). Throws Error.
std::vector<Frame> make_thumbnails(const ThumbnailRequest& request);

}  // namespace dfs::media
