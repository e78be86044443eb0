// app/dforce/train_cli.h — what the training commands (cmd_train.cpp, cmd_ae.cpp,
// cmd_dataset.cpp) share: size parsing, checkpoint names and the training progress line.
// Timestamps, peak memory and Ctrl-C handling are in commands.h (every command uses them).
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
#include "dfs/diffusion/train/dataset.h"
#include "dfs/diffusion/train/train_job.h"
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

void print_dataset(const train::VideoDataset& ds, const std::string& path);
#ifdef DFS_WITH_MEDIA
// Decodes clips (files, folders of clips or images) to width x height with `fit_name` and packs
// them into a dataset, the last `held_out` of each clip held out. skip_bad: warn and go on.
train::VideoDataset pack_clips(const std::vector<std::string>& inputs, int width, int height,
                               const std::string& fit_name, double held_out, int64_t max_frames,
                               const std::string& command, bool skip_bad);
#endif

using train::default_checkpoint_path;  // dfs/diffusion/train/train_job.h

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
