// app/dforce/commands.h — how dforce's command families plug into main().
//
// Each cmd_*.cpp defines one register_*_commands(); it adds its subcommands to the app and
// sets their callbacks. A callback reports a user error by throwing (std::exception with a
// message a person can act on); main() prints "dforce: error: <message>" and exits 1.
#pragma once

#include <sys/resource.h>

#include <CLI/CLI.hpp>
#include <atomic>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <stdexcept>
#include <string>
#include <vector>

#include "dfs/clock_text.h"
#include "dfs/limits.h"

namespace dforce {

// A CLI11 check from the one table of limits (dfs/limits.h), so the CLI refuses what the
// engine, the project and the Studio refuse, with the same bounds.
inline CLI::Validator in_limits(const dfs::limits::Range& range) {
  return CLI::Validator(
      [range](std::string& text) -> std::string {
        double v = 0;
        try {
          size_t used = 0;
          v = std::stod(text, &used);
          if (used != text.size()) throw std::invalid_argument(text);
        } catch (const std::exception&) {
          return "'" + text + "' is not a number";
        }
        return dfs::limits::problem(range, v);
      },
      dfs::limits::describe(range));
}

void register_engine_commands(CLI::App& app);   // schedule, model init, info
void register_bench_commands(CLI::App& app);    // bench
void register_train_commands(CLI::App& app);    // train, eval, learn, train-bench
void register_dataset_commands(CLI::App& app);  // dataset pack, synth, build, info
void register_ae_commands(CLI::App& app);       // ae train, ae eval
void register_launch_commands(CLI::App& app);   // launch (N local data-parallel ranks)

// Runs `args` (a dforce subcommand and its arguments) as n local ranks with torchrun's
// environment on 127.0.0.1:port (0 = a free port). Returns 0 when every rank succeeded; if one
// fails, names it on stderr, stops the others (SIGTERM, SIGKILL after grace_seconds) and
// returns 1. Forwards SIGINT/SIGTERM to the ranks.
int launch_ranks(int n, int port, const std::vector<std::string>& args, double grace_seconds);

// Training speed and peak memory of a recipe on synthetic clips (`train-bench`,
// `bench --train`). device: auto, cpu or cuda; batch 0 = the recipe's.
// Under a launcher (torchrun's variables) it trains data-parallel and reports the all-reduce
// time per step; report_path (rank 0) also gets the JSON.
void run_train_bench(const std::string& recipe, int steps, const std::string& device, int batch,
                     bool json, const std::string& report_path = "");
void register_media_commands(CLI::App& app);     // probe, frames, export
void register_generate_commands(CLI::App& app);  // extend, generate

// Prints the version block (--version and the runtime part of `dforce info`).
void print_version();

using dfs::format_clock;  // dfs/clock_text.h
using dfs::now_utc;

inline std::string format_duration(double seconds) {
  return format_clock(seconds);
}

// This process's peak resident memory so far, MiB.
inline double peak_rss_mib() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return static_cast<double>(usage.ru_maxrss) / 1024.0;  // ru_maxrss is KiB on Linux
}

// Ctrl-C during long work: the first one sets g_stop (training checkpoints and stops, a
// generation keeps the frames it finished); a second one ends the process at once.
inline std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "the SIGINT handler needs a lock-free flag");
extern "C" inline void on_sigint(int) {
  g_stop.store(true);
  std::signal(SIGINT, SIG_DFL);
}

// Installs on_sigint for its lifetime (clearing g_stop first) and restores the previous
// handler when it ends, also when the work throws.
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

}  // namespace dforce
