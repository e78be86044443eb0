// app/dforce/train_cli.h — what the training commands (cmd_train.cpp, cmd_ae.cpp) share:
// size parsing, timestamps, peak memory, Ctrl-C handling and the progress line.
#pragma once

#include <sys/resource.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "dfs/diffusion/api.h"
#include "dfs/diffusion/train/trainer.h"

namespace dforce {

namespace train = dfs::diffusion::train;
using dfs::diffusion::Error;
namespace fs = std::filesystem;

inline std::pair<int, int> parse_size(const std::string& text) {
  int w = 0, h = 0;
  char x = 0;
  std::istringstream in(text);
  if (!(in >> w >> x >> h) || (x != 'x' && x != 'X') || w < 8 || h < 8 || w > 4096 || h > 4096 ||
      !in.eof())
    throw Error("--size must look like 64x48 (each side 8..4096), got '" + text + "'");
  return {w, h};
}

inline std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

inline std::string format_duration(double seconds) {
  return dforce::format_clock(seconds);
}

inline double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is KiB on Linux
}

// Ctrl-C: the first one asks the training loop to checkpoint and stop; a second one kills.
inline std::atomic<bool> g_stop{false};
extern "C" inline void on_sigint(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
}

class SigintGuard {
 public:
  SigintGuard() {
    g_stop.store(false);
    previous_ = std::signal(SIGINT, on_sigint);
  }
  ~SigintGuard() { std::signal(SIGINT, previous_); }
  SigintGuard(const SigintGuard&) = delete;
  SigintGuard& operator=(const SigintGuard&) = delete;

 private:
  void (*previous_)(int) = SIG_DFL;
};

inline std::string default_checkpoint_path(const std::string& output) {
  fs::path p(output);
  if (p.extension() == ".safetensors") p.replace_extension("");
  return p.string() + ".ckpt.safetensors";
}

inline std::string join_command(const std::vector<std::string>& parts) {
  std::string s;
  for (const auto& p : parts) s += (s.empty() ? "" : " ") + p;
  return s;
}

// One progress line: on a terminal it rewrites itself, in a log it appears every 10 s.
class ProgressPrinter {
 public:
  explicit ProgressPrinter(int64_t total) : total_(total), tty_(isatty(fileno(stdout)) != 0) {}
  void operator()(const train::TrainProgress& p) {
    const auto now = std::chrono::steady_clock::now();
    if (!tty_ && !p.checkpointed && std::chrono::duration<double>(now - last_).count() < 10 &&
        p.step > 1)
      return;
    last_ = now;
    char line[256];
    std::snprintf(
        line, sizeof line,
        "step %lld%s  loss %.4f (avg %.4f)  lr %.2e  %.2f samples/s  elapsed %s  ETA %s%s",
        static_cast<long long>(p.step), total_ > 0 ? ("/" + std::to_string(total_)).c_str() : "",
        p.loss, p.loss_average, p.learning_rate, p.samples_per_second,
        format_duration(p.elapsed_seconds).c_str(), format_duration(p.eta_seconds).c_str(),
        p.checkpointed ? "  [checkpoint]" : "");
    if (tty_)
      std::printf("\r%-120s", line);
    else
      std::printf("%s\n", line);
    std::fflush(stdout);
  }
  void finish() {
    if (tty_) std::printf("\n");
  }

 private:
  int64_t total_;
  bool tty_;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace dforce
