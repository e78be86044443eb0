// Thumbnails: evenly spaced, made on a worker thread, cancellable.
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "dfs/media/decoder.h"
#include "dfs/media/thumbnails.h"
#include "media_test_util.h"

using namespace dfs::media;

TEST_CASE("thumbnail indices are the centres of equal segments", "[media][thumbnails]") {
  CHECK(thumbnail_indices(100, 4) == std::vector<std::int64_t>{12, 37, 62, 87});
  CHECK(thumbnail_indices(3, 10) == std::vector<std::int64_t>{0, 1, 2});  // clamped
  CHECK(thumbnail_indices(795, 1) == std::vector<std::int64_t>{397});
  CHECK(thumbnail_indices(0, 5).empty());
  CHECK(thumbnail_indices(10, 0).empty());
}

TEST_CASE("a thumbnail job delivers every thumbnail off the calling thread, in order",
          "[media][thumbnails]") {
  if (!dfs_test::have_footage()) DFS_SKIP("opencv-doc sample footage not installed");
  ThumbnailRequest req{dfs_test::footage("Megamind.avi"), 6, 80, 60, FitMode::Letterbox};
  std::mutex m;
  std::condition_variable cv;
  std::vector<std::int64_t> indices;
  std::vector<std::thread::id> threads;
  bool done = false, complete = false;
  ThumbnailJob job(
      req,
      [&](int ordinal, std::int64_t index, const dfs::Frame& f) {
        std::lock_guard lock(m);
        CHECK(ordinal == static_cast<int>(indices.size()));
        CHECK(f.width == 80);
        CHECK(f.height == 60);
        indices.push_back(index);
        threads.push_back(std::this_thread::get_id());
      },
      [&](bool ok) {
        std::lock_guard lock(m);
        done = true;
        complete = ok;
        cv.notify_all();
      });
  {
    std::unique_lock lock(m);
    REQUIRE(cv.wait_for(lock, std::chrono::seconds(60), [&] { return done; }));
  }
  job.wait();
  CHECK(complete);
  CHECK(job.finished());
  CHECK_FALSE(job.error());
  CHECK(indices == thumbnail_indices(270, 6));
  for (auto id : threads) CHECK(id != std::this_thread::get_id());
  // Same pictures as the decoder gives for those indices.
  auto dec = open_decoder(req.path, DecoderOptions{80, 60});
  CHECK(make_thumbnails(req)[2] == dec->frame_at(indices[2]).image);
}

TEST_CASE("cancelling a thumbnail job stops it early, dropping it joins cleanly",
          "[media][thumbnails]") {
  if (!dfs_test::have_footage()) DFS_SKIP("opencv-doc sample footage not installed");
  ThumbnailRequest req{dfs_test::footage("vtest.avi"), 200, 32, 24, FitMode::Crop};
  std::atomic<int> seen{0};
  bool finished_ok = true;
  ThumbnailJob job(
      req,
      [&](int, std::int64_t, const dfs::Frame&) {
        ++seen;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      },
      [&](bool ok) { finished_ok = ok; });
  while (seen < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  job.cancel();
  job.wait();
  CHECK(job.cancelled());
  CHECK_FALSE(finished_ok);
  CHECK(job.delivered() < 200);
  // A job destroyed while running must not crash or leak its thread.
  {
    ThumbnailJob dropped(req, [](int, std::int64_t, const dfs::Frame&) {});
  }
}

TEST_CASE("a thumbnail job on a bad file reports the error instead of throwing",
          "[media][thumbnails][bad]") {
  bool ok = true;
  ThumbnailJob job(
      ThumbnailRequest{"/nonexistent/clip.mp4"}, [](int, std::int64_t, const dfs::Frame&) {},
      [&](bool b) { ok = b; });
  job.wait();
  CHECK_FALSE(ok);
  REQUIRE(job.error());
  CHECK(job.error()->find("does not exist") != std::string::npos);
}
