// media_test_util.h — shared helpers for the dfs_media tests: real-footage paths, a scratch
// directory per test, synthetic frames, and running the `ffmpeg` program to make test clips.
#pragma once

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "dfs/frame.h"

#include "dfs_skip.h"

namespace dfs_test {

namespace fs = std::filesystem;

// Real footage from Debian's opencv-doc package.
inline std::string footage(const std::string& name) {
  return "/usr/share/doc/opencv-doc/examples/data/" + name;
}
inline bool have_footage() {
  return fs::exists(footage("vtest.avi"));
}

inline bool have_ffmpeg_cli() {
  static const bool ok = std::system("ffmpeg -hide_banner -version > /dev/null 2>&1") == 0;
  return ok;
}

// Runs `ffmpeg -y -v error <args>`; true on success.
inline bool run_ffmpeg(const std::string& args) {
  const std::string cmd = "ffmpeg -nostdin -y -hide_banner -v error " + args + " > /dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

// A fresh directory under the system temp dir, removed with its contents on destruction.
class ScratchDir {
 public:
  ScratchDir() {
    static std::atomic<int> counter{0};
    const auto stamp = std::chrono::steady_clock::now().time_since_epoch().count();
    path_ = fs::temp_directory_path() / ("dfs_media_test_" + std::to_string(::getpid()) + "_" +
                                         std::to_string(stamp) + "_" + std::to_string(counter++));
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// A smooth synthetic frame that changes with `t` (gradients + a moving square): easy for lossy
// codecs, so PSNR bounds are meaningful, and different for every t.
inline dfs::Frame pattern_frame(int w, int h, int t) {
  dfs::Frame f(w, h);
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      std::uint8_t* p = f.row(y) + 3 * x;
      p[0] = static_cast<std::uint8_t>((x * 255) / std::max(1, w - 1));
      p[1] = static_cast<std::uint8_t>((y * 255) / std::max(1, h - 1));
      p[2] = static_cast<std::uint8_t>((t * 16) & 255);
    }
  }
  // Even size and position: edges fall on 2x2 chroma-block borders, so yuv420p subsampling
  // alone does not cap the PSNR of lossy round trips.
  const int size = std::max(2, std::min(w, h) / 4) & ~1;
  const int x0 = ((t * 4) % std::max(1, w - size)) & ~1;
  const int y0 = ((t * 2) % std::max(1, h - size)) & ~1;
  for (int y = y0; y < y0 + size; ++y)
    for (int x = x0; x < x0 + size; ++x) {
      std::uint8_t* p = f.row(y) + 3 * x;
      p[0] = 240;
      p[1] = 240;
      p[2] = 30;
    }
  return f;
}

// Uniform random pixels (worst case for lossy codecs; used where bit-exactness is expected).
inline dfs::Frame noise_frame(int w, int h, unsigned seed) {
  dfs::Frame f(w, h);
  std::mt19937 rng(seed);
  for (auto& b : f.rgb) b = static_cast<std::uint8_t>(rng() & 255);
  return f;
}

inline bool running_as_root() {
  return ::geteuid() == 0;
}

}  // namespace dfs_test
