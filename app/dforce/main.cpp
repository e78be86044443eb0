// dforce — the command line of Diffusion Forcing Studio. Thin: parse, wire, run.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <algorithm>
#include <exception>
#include <iostream>

#include "commands.h"
#include "dfs/diffusion/api.h"
#include "dfs/diffusion/openmp_policy.h"

namespace dforce {

void print_version() {
  const auto info = dfs::diffusion::runtime_info();
  std::printf("dforce %s (Diffusion Forcing Studio)\n", info.version.c_str());
  std::printf("  libtorch : %s\n", info.torch_version.c_str());
  std::printf("  blas     : %s\n", info.blas.c_str());
  std::printf("  threads  : %d\n", info.threads);
  if (info.blas_threads > 0) std::printf("  blas thr : %d\n", info.blas_threads);
  std::printf("  omp wait : %s\n", dfs::diffusion::openmp_wait_policy().c_str());
  std::printf("  cuda     : %s", info.cuda_available ? "available" : "not available");
  if (info.cuda_available)
    std::printf(" (%d device%s)", info.cuda_devices, info.cuda_devices == 1 ? "" : "s");
  std::printf("\n");
#ifdef DFS_WITH_MEDIA
  std::printf("  build    : full (media + generation)\n");
#else
  std::printf("  build    : core-only (no FFmpeg/OpenCV/Qt)\n");
#endif
}

}  // namespace dforce

int main(int argc, char** argv) {
  // A write past a file-size limit (ulimit -f) must fail with EFBIG and a message, like a full
  // disk, instead of killing the process with SIGXFSZ before it can clean up its partial file.
  std::signal(SIGXFSZ, SIG_IGN);
  CLI::App app{
      "dforce — Diffusion Forcing Studio: generate, extend and edit video from the command line"};
  app.require_subcommand(0, 1);
  int threads = 0;
  bool version = false;
  app.add_option("--threads", threads, "Intra-op threads (default: $DFS_THREADS or all cores)")
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--version", version, "Print version, LibTorch, BLAS, threads and CUDA, then exit");

#ifdef DFS_CMD_ENGINE
  dforce::register_engine_commands(app);
#endif
#ifdef DFS_CMD_TRAIN
  dforce::register_train_commands(app);
#endif
#ifdef DFS_CMD_AE
  dforce::register_ae_commands(app);
#endif
#ifdef DFS_CMD_LAUNCH
  dforce::register_launch_commands(app);
#endif
#ifdef DFS_CMD_MEDIA
  dforce::register_media_commands(app);
#endif
#ifdef DFS_CMD_GENERATE
  dforce::register_generate_commands(app);
#endif

  try {
    // Threads are set before any command callback runs (parse_complete_callback runs first).
    app.parse_complete_callback([&] {
      // Ranks started by torchrun or srun share the machine's cores (dforce launch sets
      // $DFS_THREADS itself).
      if (threads == 0 && std::getenv("DFS_THREADS") == nullptr)
        if (const char* local = std::getenv("LOCAL_WORLD_SIZE"); local != nullptr) {
          const int n = std::max(1, std::atoi(local));
          threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / n);
        }
      dfs::diffusion::configure_threads(threads);
    });
    app.parse(argc, argv);
    if (version) {
      dforce::print_version();
      return 0;
    }
    if (app.get_subcommands().empty()) {
      std::cout << app.help();
      return 0;
    }
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    // A rank of a data-parallel run says which one it is.
    const char* rank = std::getenv("RANK");
    const char* world = std::getenv("WORLD_SIZE");
    if (rank != nullptr && world != nullptr && std::string(world) != "1")
      std::fprintf(stderr, "dforce (rank %s of %s): error: %s\n", rank, world, e.what());
    else
      std::fprintf(stderr, "dforce: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
