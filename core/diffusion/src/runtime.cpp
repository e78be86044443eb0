// Runtime set-up: intra-op threads and what the process actually runs on (BLAS, CUDA).
#include <torch/torch.h>

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>

#include "dfs/diffusion/api.h"
#include "dfs/version.h"
#include "helper_thread.h"
#include "load_adaptive.h"

namespace dfs::diffusion {
namespace {

// The whole number in environment variable `name`, or `fallback` when it is not set.
int env_int(const char* name, int fallback) {
  const char* env = std::getenv(name);
  if (env == nullptr) return fallback;
  try {
    return std::stoi(env);
  } catch (const std::exception&) {
    throw Error(std::string(name) + " must be a whole number, got '" + env + "'");
  }
}

// The thread count adapt_threads_to_load() may use at most (0 = it leaves threads alone).
std::atomic<int> g_adaptive_max{0};

}  // namespace

namespace detail {

void adapt_threads_to_load() {
  const int max_threads = g_adaptive_max.load();
  if (max_threads < 2) return;
  using clock = std::chrono::steady_clock;
  static std::mutex mutex;
  static clock::time_point last_time{};
  static long long last_total = -1, last_busy = 0, last_self = 0;
  static double last_helper = 0;
  const std::lock_guard<std::mutex> lock(mutex);
  const auto now = clock::now();
  if (last_total >= 0 && now - last_time < std::chrono::milliseconds(200)) return;
  // Machine-wide jiffies: user nice system idle iowait irq softirq steal (steal is CPU the
  // hypervisor gave to others: busy as far as we are concerned).
  std::ifstream stat("/proc/stat");
  std::string cpu;
  long long v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  stat >> cpu >> v[0] >> v[1] >> v[2] >> v[3] >> v[4] >> v[5] >> v[6] >> v[7];
  if (!stat || cpu != "cpu") return;
  const long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
  const long long total = busy + v[3] + v[4];
  // This process's jiffies: utime and stime, fields 14 and 15 of /proc/self/stat (after the
  // parenthesised command name, which may hold spaces).
  std::ifstream self_stat("/proc/self/stat");
  std::string line;
  std::getline(self_stat, line);
  const auto close = line.rfind(')');
  if (close == std::string::npos) return;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) stime = std::atoll(field.c_str());
  }
  const long long self = utime + stime;
  const double helper = detail::helper_cpu_seconds();
  if (last_total >= 0 && total > last_total) {
    const int cpus = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
    const double span = static_cast<double>(total - last_total);
    double others =
        std::max(0.0, static_cast<double>((busy - last_busy) - (self - last_self))) / span * cpus;
    // A helper thread (helper_thread.h) running beside a busy program takes part of its core:
    // that program then seems to use less than it wants. Where another program is busy at all,
    // the helper's share counts as its.
    if (others >= 0.25)
      others += (helper - last_helper) * static_cast<double>(sysconf(_SC_CLK_TCK)) / span * cpus;
    // The cores left free, rounded generously (a program using 0.6 of a core leaves room).
    const int want = std::clamp(static_cast<int>(cpus - others + 0.5), 1, max_threads);
    if (want != at::get_num_threads()) at::set_num_threads(want);
  }
  last_time = now;
  last_total = total;
  last_busy = busy;
  last_self = self;
  last_helper = helper;
}

}  // namespace detail

int configure_threads(int threads) {
  const bool chosen = threads > 0 || env_int("DFS_THREADS", 0) > 0;
  if (threads <= 0) threads = env_int("DFS_THREADS", 0);
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  at::set_num_threads(threads);
  // A count someone chose stays; the default follows the machine's load ($DFS_ADAPTIVE_THREADS
  // = 0 turns that off).
  g_adaptive_max.store(chosen || env_int("DFS_ADAPTIVE_THREADS", 1) == 0 ? 0 : threads);
  // OpenBLAS keeps its own thread pool beside LibTorch's (found at run time, so nothing links
  // against OpenBLAS directly). Both pools spin while they wait; with both at the core count
  // they fight over the cores: on the 2-core CI machine 2 LibTorch threads + 2 OpenBLAS
  // threads trained at 10.2 clips/s and sampled pyramid windows at 7.7 frames/s, against 28.9
  // clips/s and 31.0 frames/s with OpenBLAS at 1 thread (models/README.md). So LibTorch's pool
  // does the parallel work and OpenBLAS runs each product on the calling thread, unless
  // $DFS_BLAS_THREADS says otherwise.
  const int blas_threads = env_int("DFS_BLAS_THREADS", 1);
  if (blas_threads <= 0) throw Error("DFS_BLAS_THREADS must be 1 or more");
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
    set(blas_threads);
  return at::get_num_threads();
}

namespace {

// Which BLAS the dynamic loader actually mapped: Debian's LibTorch links the generic
// libblas.so.3, which the alternatives system points at OpenBLAS or the reference BLAS.
std::string loaded_blas() {
  std::ifstream maps("/proc/self/maps");
  std::string line;
  std::string found;
  while (std::getline(maps, line)) {
    if (line.find("openblas") != std::string::npos) {
      if (line.find("pthread") != std::string::npos) return "OpenBLAS (pthread)";
      if (line.find("openmp") != std::string::npos) return "OpenBLAS (OpenMP)";
      found = "OpenBLAS";
    } else if (found.empty() && line.find("libmkl") != std::string::npos) {
      found = "MKL";
    } else if (found.empty() && line.find("/blas/libblas") != std::string::npos) {
      found = "reference BLAS (slow: install libopenblas0-pthread)";
    } else if (found.empty() && line.find("libblis") != std::string::npos) {
      found = "BLIS";
    }
  }
  if (!found.empty()) return found;
  return at::hasMKL() ? "MKL (linked into LibTorch)" : "unknown";
}

}  // namespace

RuntimeInfo runtime_info() {
  RuntimeInfo info;
  info.version = kVersion;
#ifdef DFS_TORCH_VERSION_STRING
  info.torch_version = DFS_TORCH_VERSION_STRING;
#else
  info.torch_version = TORCH_VERSION;
#endif
  info.blas = loaded_blas();
  info.threads = at::get_num_threads();
  using GetThreads = int (*)();
  if (auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads")))
    info.blas_threads = get();
  info.cuda_available = torch::cuda::is_available();
  info.cuda_devices = info.cuda_available ? static_cast<int>(torch::cuda::device_count()) : 0;
  return info;
}

}  // namespace dfs::diffusion
