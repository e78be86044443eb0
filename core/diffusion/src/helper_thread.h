// helper_thread.h — one background thread for work a rollout can overlap with the network
// (engine-internal; no torch in this header).
//
// Decoding a finished frame needs nothing from the next forward, so when the network runs on
// fewer threads than the machine has cores (beside a busy program the engine drops to one
// thread, load_adaptive.h; the Studio leaves a core to its window), the rollout decodes on this
// thread instead of between forwards. Its jobs run on one intra-op thread (OpenMP's per-thread
// setting: the caller's count is untouched) and its CPU time is reported to the load check, so
// the share it takes from a busy neighbour is not read as that neighbour going quiet.
#pragma once

#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace dfs::diffusion {

class HelperThread {
 public:
  HelperThread();
  ~HelperThread();  // runs what is queued, then joins
  HelperThread(const HelperThread&) = delete;
  HelperThread& operator=(const HelperThread&) = delete;

  void post(std::function<void()> job);
  // Runs the jobs still queued on the calling thread (at its own thread count: a caller that
  // would otherwise sit idle is the faster worker), then waits for the one the helper is
  // running. Rethrows the first exception a job threw (once).
  void finish();

 private:
  void loop();
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::deque<std::function<void()>> jobs_;
  int running_ = 0;
  bool stop_ = false;
  std::exception_ptr error_;
  std::thread thread_;
};

// Whether a rollout should decode on a helper thread now: the calling thread's intra-op count
// is below the machine's cores, and $DFS_HELPER_THREAD is not 0 ("1" uses one regardless).
bool helper_thread_wanted();

namespace detail {
// CPU time helper threads have used (seconds, all helpers, since the process began): the load
// check (load_adaptive.h) counts it as taken from other programs.
double helper_cpu_seconds();
}  // namespace detail

}  // namespace dfs::diffusion
