// project_test_util.h — what the project tests share: a fresh temp folder per test and the
// shipped sample clip.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace dfs::project::test {

// The sample clip shipped in resources/samples (75 frames, 10 fps).
inline const std::string kSampleClip =
    std::string(DFS_SOURCE_DIR) + "/resources/samples/vtest_clip.mp4";

// A fresh folder under the system temp dir ("dfs_<what>_<pid>_<n>"), removed at the end of
// the test.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& what = "project_test") {
    static int counter = 0;
    path = std::filesystem::temp_directory_path() /
           ("dfs_" + what + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

}  // namespace dfs::project::test
