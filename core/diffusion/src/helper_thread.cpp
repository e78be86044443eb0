// A rollout's helper thread (see helper_thread.h). Compiled with OpenMP: the helper sets its
// own intra-op count through OpenMP's per-thread setting (at::set_num_threads would also
// change the count every new thread starts with).
#include "helper_thread.h"

#include <ATen/Parallel.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <string>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace dfs::diffusion {
namespace {

std::atomic<long long> g_helper_cpu_ns{0};

long long thread_cpu_ns() {
  timespec t{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return static_cast<long long>(t.tv_sec) * 1000000000LL + t.tv_nsec;
}

}  // namespace

HelperThread::HelperThread() : thread_([this] { loop(); }) {}

HelperThread::~HelperThread() {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void HelperThread::post(std::function<void()> job) {
  {
    const std::lock_guard<std::mutex> lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  wake_.notify_one();
}

void HelperThread::finish() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!jobs_.empty()) {
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    lock.unlock();
    try {
      job();
    } catch (...) {
      lock.lock();
      if (!error_) error_ = std::current_exception();
      continue;
    }
    lock.lock();
  }
  done_.wait(lock, [this] { return running_ == 0; });
  if (error_) {
    auto error = error_;
    error_ = nullptr;
    std::rethrow_exception(error);
  }
}

void HelperThread::loop() {
  at::get_num_threads();  // LibTorch's per-thread start-up first, so it cannot undo the next line
#ifdef _OPENMP
  omp_set_num_threads(1);
#endif
  // The network's thread is the run's critical path: where the helper shares its core, the
  // network goes first (nice +5, this thread only). Beside a busy loop, 3 rounds on the 2-core
  // VM: contended frames/s -1 to +29 % (median +12 %) with it, 0 to +25 % (+7 %) without.
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), 5);
  std::unique_lock<std::mutex> lock(mutex_);
  while (true) {
    wake_.wait(lock, [this] { return stop_ || !jobs_.empty(); });
    if (jobs_.empty()) return;  // stop_, and nothing left to run
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    ++running_;
    lock.unlock();
    const long long start = thread_cpu_ns();
    std::exception_ptr error;
    try {
      job();
    } catch (...) {
      error = std::current_exception();
    }
    g_helper_cpu_ns += thread_cpu_ns() - start;
    lock.lock();
    --running_;
    if (error && !error_) error_ = error;
    if (jobs_.empty() && running_ == 0) done_.notify_all();
  }
}

bool helper_thread_wanted() {
  const char* env = std::getenv("DFS_HELPER_THREAD");
  if (env != nullptr && std::string(env) == "0") return false;
  if (env != nullptr && std::string(env) == "1") return true;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  return at::get_num_threads() < cores;
}

namespace detail {
double helper_cpu_seconds() {
  return static_cast<double>(g_helper_cpu_ns.load()) * 1e-9;
}
}  // namespace detail

}  // namespace dfs::diffusion
