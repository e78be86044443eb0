// Runtime set-up: intra-op threads and what the process actually runs on (BLAS, CUDA).
#include <torch/torch.h>

#include <dlfcn.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "dfs/diffusion/api.h"
#include "dfs/version.h"

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

}  // namespace

int configure_threads(int threads) {
  if (threads <= 0) threads = env_int("DFS_THREADS", 0);
  if (threads <= 0) threads = static_cast<int>(std::thread::hardware_concurrency());
  if (threads <= 0) threads = 1;
  at::set_num_threads(threads);
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
