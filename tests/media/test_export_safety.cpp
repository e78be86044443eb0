// An export never leaves a half-written file under its final name: it is written as
// "<path>.partial-<pid>" and renamed by close(); failures and discard() remove the partial file;
// partial files of dead processes are cleaned up by the next export to the same name.
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <csignal>
#include <filesystem>
#include <fstream>

#include "dfs/media/decoder.h"
#include "dfs/media/encoder.h"
#include "dfs/media/error.h"
#include "dfs/partial_files.h"
#include "media_test_util.h"

using namespace dfs::media;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string own_partial(const std::string& path) {
  return path + ".partial-" + std::to_string(::getpid());
}

// The pid of a process that has exited and been reaped.
pid_t dead_pid() {
  const pid_t child = ::fork();
  if (child == 0) ::_exit(0);
  int status = 0;
  ::waitpid(child, &status, 0);
  return child;
}

// Lowers this process's file-size limit for one scope (SIGXFSZ ignored, so writes get EFBIG).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &saved_);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lower = saved_;
    lower.rlim_cur = bytes;
    ::setrlimit(RLIMIT_FSIZE, &lower);
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &saved_);
    std::signal(SIGXFSZ, old_handler_);
  }

 private:
  rlimit saved_{};
  void (*old_handler_)(int) = SIG_DFL;
};

}  // namespace

TEST_CASE("an open export lives under a partial name until close() renames it",
          "[media][encoder][safety]") {
  dfs_test::ScratchDir dir;
  for (const std::string ext : {".mp4", ".webm", ".gif", ".mkv"}) {
    const std::string out = dir.file("clip" + ext);
    Encoder enc;
    EncodeSettings s;
    s.metadata_json = R"({"seed": 3})";
    enc.open(out, s);
    for (int t = 0; t < 6; ++t) enc.write(dfs_test::pattern_frame(48, 32, t));
    CHECK_FALSE(fs::exists(out));
    CHECK(fs::exists(own_partial(out)));
    enc.close();
    CHECK(fs::exists(out));
    CHECK_FALSE(fs::exists(own_partial(out)));
    CHECK(probe(out).frame_count == 6);
  }
  // Only the finished files and their sidecars remain.
  CHECK(names_in(dir.path()) ==
        std::vector<std::string>{"clip.gif", "clip.gif.json", "clip.mkv", "clip.mkv.json",
                                 "clip.mp4", "clip.mp4.json", "clip.webm", "clip.webm.json"});
}

TEST_CASE("discard() and an export with no frames leave nothing behind",
          "[media][encoder][safety]") {
  dfs_test::ScratchDir dir;
  const std::string out = dir.file("gone.mp4");
  {
    Encoder enc;
    enc.open(out);
    enc.write(dfs_test::pattern_frame(32, 32, 0));
    enc.discard();
    CHECK_FALSE(enc.is_open());
    enc.close();  // idempotent after discard
  }
  {
    Encoder enc;
    enc.open(out);
    CHECK_THROWS_AS(enc.close(), Error);
  }
  {
    Encoder enc;  // a single PNG: the folder is probed at open, nothing is left by it
    enc.open(dir.file("one.png"));
  }
  CHECK(names_in(dir.path()).empty());
}

TEST_CASE("an export replaces an existing file only when it is complete",
          "[media][encoder][safety]") {
  dfs_test::ScratchDir dir;
  const std::string out = dir.file("keep.mp4");
  encode_frames(out, {dfs_test::pattern_frame(32, 32, 0), dfs_test::pattern_frame(32, 32, 1)});
  const auto before = fs::file_size(out);
  Encoder enc;
  enc.open(out);
  for (int t = 0; t < 20; ++t) enc.write(dfs_test::pattern_frame(64, 64, t));
  CHECK(fs::file_size(out) == before);  // the old file is untouched while the new one is written
  enc.discard();
  CHECK(fs::file_size(out) == before);
  CHECK(probe(out).frame_count == 2);
}

TEST_CASE("partial files of dead processes are removed, live ones are kept",
          "[media][encoder][safety]") {
  dfs_test::ScratchDir dir;
  const std::string out = dir.file("again.mp4");
  const std::string stale = out + ".partial-" + std::to_string(dead_pid());
  const std::string live = out + ".partial-1";  // pid 1 always exists
  const std::string other = dir.file("other.mp4.partial-" + std::to_string(dead_pid()));
  for (const auto& p : {stale, live, other}) std::ofstream(p) << "half a file";
  encode_frames(out, {dfs_test::pattern_frame(32, 32, 0)});
  CHECK_FALSE(fs::exists(stale));
  CHECK(fs::exists(live));
  CHECK(fs::exists(other));  // another export's business

  // A PNG sequence: stale frame partials in its folder go, finished frames stay.
  const std::string seq = dir.file("seq");
  fs::create_directory(seq);
  const std::string stale_frame = seq + "/frame_000003.png.partial-" + std::to_string(dead_pid());
  std::ofstream(stale_frame) << "half a PNG";
  encode_frames(seq + "/", {dfs_test::pattern_frame(16, 16, 0), dfs_test::pattern_frame(16, 16, 1)});
  CHECK(names_in(seq) == std::vector<std::string>{"frame_000000.png", "frame_000001.png"});
}

TEST_CASE("a full disk fails the export with a message and leaves no file under the final name",
          "[media][encoder][safety][bad]") {
  dfs_test::ScratchDir dir;
  const std::string keep = dir.file("keep.mp4");
  encode_frames(keep, {dfs_test::pattern_frame(32, 32, 0)});
  const auto keep_size = fs::file_size(keep);
  for (const std::string name : {"full.mp4", "full.webm", "full.gif", "keep.mp4", "seq/"}) {
    const std::string out = dir.file(name);
    std::string message;
    {
      const FileSizeLimit limit(16 * 1024);
      try {
        Encoder enc;
        enc.open(out);
        // Noise does not compress: 40 frames of 96x96 are far past 16 KiB in every format.
        for (unsigned t = 0; t < 40; ++t) enc.write(dfs_test::noise_frame(96, 96, t));
        enc.close();
      } catch (const Error& e) {
        message = e.what();
      }
    }
    INFO(name << ": " << message);
    CHECK(message.find("large") != std::string::npos);  // "File too large" (EFBIG)
    if (name == "keep.mp4") {
      CHECK(fs::file_size(keep) == keep_size);  // the previous export survives
      CHECK(probe(keep).frame_count == 1);
    } else if (name == "seq/") {
      // Every frame under its final name is whole; the one that failed is not there.
      for (const auto& f : names_in(dir.file("seq"))) {
        CHECK(f.find(".partial") == std::string::npos);
        CHECK(read_image(dir.file("seq/" + f)).width == 96);
      }
    } else {
      CHECK_FALSE(fs::exists(out));
    }
    CHECK_FALSE(fs::exists(own_partial(out)));
  }
}

TEST_CASE("partial file names are recognised exactly", "[media][safety]") {
  using dfs::partial_file_pid;
  CHECK(partial_file_pid("a.mp4.partial-123", "a.mp4", true) == 123);
  CHECK(partial_file_pid("a.mp4.partial-123-7", "a.mp4", true) == 123);
  CHECK(partial_file_pid("a.mp4.partial-123", "a.mp", true) == -1);  // another file's
  CHECK(partial_file_pid("a.mp4x.partial-123", "a.mp4", true) == -1);
  CHECK(partial_file_pid("frame_000001.png.partial-9", "frame_", false) == 9);
  CHECK(partial_file_pid("a.mp4.partial-", "a.mp4", true) == -1);
  CHECK(partial_file_pid("a.mp4.partial-12x", "a.mp4", true) == -1);
  CHECK(partial_file_pid("a.mp4.partial-1-", "a.mp4", true) == -1);
  CHECK(partial_file_pid("a.mp4", "a.mp4", true) == -1);
  CHECK(dfs::partial_name("x/p.dfsproj", 4) ==
        "x/p.dfsproj.partial-" + std::to_string(::getpid()) + "-4");
}
