// save_loop — a process for the kill harness (kill_harness.sh) to SIGKILL in the middle of a
// project save. It saves with the product's own code (Document::save, the path the Studio's
// File > Save and the CLI's --save-project take; write_file_atomically, the Studio's autosave).
//
//   save_loop save PATH [N]     edit the project, save it to PATH (prints "saved N"); forever,
//                               or N times
//   save_loop autosave PATH [N] the same, written as the Studio's autosave does
//   save_loop check PATH    exit 0 if PATH is a complete project written by this program
//   save_loop valid PATH    exit 0 if PATH is a complete, valid project (any writer)
//   save_loop kill-in-write DIR PID MAX_US [SECONDS]
//                           the harness's precise killer: waits (inotify) until a partial file
//                           ("*.partial-*", dfs/partial_files.h) appears in DIR, sleeps a random
//                           0..MAX_US microseconds and SIGKILLs PID, so the kill lands inside
//                           a write; exit 0 if it killed, 1 if nothing was written in SECONDS
//
// Each version N is self-checking: timeline.noise[p] = ((p + N) % 101) / 100 for every p, over
// 20,000 positions (about 300 KB of JSON), so that a kill lands inside a write most of the
// time and a torn or mixed file cannot pass `check`.
#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <random>
#include <string>

#include "dfs/project/document.h"

namespace {

constexpr int kPositions = 20000;

dfs::project::Project version(int n) {
  dfs::project::Project p;
  p.clip.path = "clip.mp4";
  p.clip.width = 64;
  p.clip.height = 48;
  p.clip.fps = 8;
  p.clip.frame_count = 1;
  p.timeline = dfs::project::extend_layout(1, kPositions - 1);
  for (int i = 0; i < kPositions; ++i) p.timeline.noise[i] = ((i + n) % 101) / 100.0;
  p.timeline.noise[0] = 0;  // the clip frame
  p.timeline.pins = {0};
  p.generation.rollout.seed = static_cast<std::uint64_t>(n);
  return p;
}

int check(const std::string& path) {
  try {
    const auto doc = dfs::project::Document::load(path);
    const auto& p = doc.project();
    const int n = static_cast<int>(p.generation.rollout.seed);
    if (p.timeline.length() != kPositions) {
      std::printf("check: %d positions, expected %d\n", p.timeline.length(), kPositions);
      return 1;
    }
    if (p != version(n)) {
      std::printf("check: the file mixes versions (seed %d)\n", n);
      return 1;
    }
    std::printf("check: version %d, complete\n", n);
    return 0;
  } catch (const std::exception& e) {
    std::printf("check: %s\n", e.what());
    return 1;
  }
}

int kill_in_write(const std::string& dir, pid_t pid, long max_us, double seconds) {
  const int fd = ::inotify_init1(IN_CLOEXEC);
  if (fd < 0 || ::inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_TO) < 0) {
    std::perror("save_loop: inotify");
    return 2;
  }
  std::mt19937_64 rng(std::random_device{}());
  const auto deadline =
      std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  alignas(inotify_event) char buf[4096];
  while (std::chrono::steady_clock::now() < deadline) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) {
      if (::kill(pid, 0) != 0) return 1;  // it exited without writing
      continue;
    }
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    for (ssize_t off = 0; off < n;) {
      const auto* ev = reinterpret_cast<const inotify_event*>(buf + off);
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
      if (ev->len == 0 || std::strstr(ev->name, ".partial-") == nullptr) continue;
      if (max_us > 0) ::usleep(static_cast<useconds_t>(rng() % static_cast<unsigned long>(max_us)));
      ::kill(pid, SIGKILL);
      std::printf("killed %d after %s appeared\n", static_cast<int>(pid), ev->name);
      return 0;
    }
  }
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: save_loop save|autosave|check PATH [COUNT]\n");
    return 2;
  }
  std::signal(SIGXFSZ, SIG_IGN);  // as dforce and dfstudio do: a size limit fails the write
  if (argc >= 5 && std::strcmp(argv[1], "kill-in-write") == 0)
    return kill_in_write(argv[2], static_cast<pid_t>(std::strtol(argv[3], nullptr, 10)),
                         std::strtol(argv[4], nullptr, 10),
                         argc > 5 ? std::strtod(argv[5], nullptr) : 10.0);
  const std::string mode = argv[1], path = argv[2];
  if (mode == "check") return check(path);
  if (mode == "valid") {
    try {
      dfs::project::validate(dfs::project::Document::load(path).project());
      return 0;
    } catch (const std::exception& e) {
      std::printf("valid: %s\n", e.what());
      return 1;
    }
  }
  const long count = argc == 4 ? std::strtol(argv[3], nullptr, 10) : -1;
  try {
    for (int n = 1; count < 0 || n <= count; ++n) {
      if (mode == "save") {
        dfs::project::Document doc(version(n));
        doc.save_as(path);
      } else if (mode == "autosave") {
        dfs::project::write_file_atomically(path, dfs::project::to_json(version(n)));
      } else {
        std::fprintf(stderr, "save_loop: unknown mode '%s'\n", mode.c_str());
        return 2;
      }
      std::printf("saved %d\n", n);
      std::fflush(stdout);
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "save_loop: %s\n", e.what());
    return 1;
  }
}
