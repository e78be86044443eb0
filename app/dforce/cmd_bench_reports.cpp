// dforce bench --reference and --batch (see bench_reports.h).
#include <torch/torch.h>

#include <dlfcn.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <vector>

#include "bench_reports.h"
#include "dfs/diffusion/denoise.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model_impl.h"

namespace dforce {

namespace dd = dfs::diffusion;

namespace {

// GFLOP/s of `fn`, which performs `flops` operations, over `repeats` timed calls after one
// warm-up.
double gflops(const std::function<void()>& fn, double flops, int repeats) {
  fn();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < repeats; ++i) fn();
  const double s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / repeats;
  return flops / s / 1e9;
}

// `bench --reference`: the forward's achieved GFLOP/s (fast and exact kernels, batch 1 and the
// guided batch 2) against a dense 1024^3 GEMM of this machine at the same thread count,
// measured in the same run.
}  // namespace

nlohmann::json reference_report(dd::Model& model, int window, bool json) {
  auto& net = dd::model_impl(model).net;
  const auto& c = net->config();
  torch::InferenceMode guard;
  const int threads = at::get_num_threads();
  const int64_t n = 1024;
  const auto a = torch::randn({n, n}), b = torch::randn({n, n});
  const double gemm_flops = 2.0 * n * n * n;
  // The engine keeps OpenBLAS at one thread (runtime.cpp); the machine's dense rate at the
  // engine's thread count lets OpenBLAS use them all for this one product.
  using SetThreads = void (*)(int);
  using GetThreads = int (*)();
  auto set_blas = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  auto get_blas = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  const double gemm_1 = gflops([&] { torch::mm(a, b); }, gemm_flops, 5);
  double gemm_all = gemm_1;
  if (set_blas != nullptr && get_blas != nullptr && threads > 1) {
    const int before = get_blas();
    set_blas(threads);
    gemm_all = gflops([&] { torch::mm(a, b); }, gemm_flops, 5);
    set_blas(before);
  }
  const double gemm = std::max(gemm_1, gemm_all);
  nlohmann::json out = {{"threads", threads},
                        {"gemm_n", n},
                        {"gemm_gflops_one_blas_thread", gemm_1},
                        {"gemm_gflops_all_threads", gemm_all},
                        {"gemm_gflops", gemm},
                        {"forward", nlohmann::json::array()}};
  if (!json)
    std::printf(
        "  reference: dense %lldx%lld GEMM %.1f GFLOP/s (%d threads; %.1f on one BLAS thread)\n",
        static_cast<long long>(n), static_cast<long long>(n), gemm, threads, gemm_1);
  for (const int64_t batch : {1, 2}) {
    const auto x = torch::randn({batch, window, c.channels, c.height, c.width});
    const auto levels = torch::rand({batch, window});
    const double flops = dd::forward_flops(c, batch, window);
    const double fast = gflops([&] { net->forward_fast(x, levels); }, flops, 10);
    const double exact = gflops([&] { net->forward(x, levels); }, flops, 10);
    out["forward"].push_back({{"batch", batch},
                              {"frames", window},
                              {"gflop", flops / 1e9},
                              {"fast_gflops", fast},
                              {"fast_ms", flops / fast / 1e6},
                              {"exact_gflops", exact},
                              {"exact_ms", flops / exact / 1e6},
                              {"fast_fraction_of_gemm", fast / gemm},
                              {"exact_fraction_of_gemm", exact / gemm}});
    if (!json)
      std::printf(
          "  forward batch %lld x %d frames (%.2f GFLOP): fast %.1f GFLOP/s (%.1f ms, %.0f %% of "
          "the GEMM), exact %.1f GFLOP/s (%.1f ms, %.0f %%)\n",
          static_cast<long long>(batch), window, flops / 1e9, fast, flops / fast / 1e6,
          100 * fast / gemm, exact, flops / exact / 1e6, 100 * exact / gemm);
  }
  return out;
}

// `bench --batch N...`: windows batched into one forward (independent rollouts, or a guided
// window's calls), timed as the sampler calls the model: frames/s = windows x horizon /
// (steps x forward time). Model-bound: no decoding or sampler arithmetic counted.
nlohmann::json batched_windows_report(dd::Model& model, int context, int horizon, int steps,
                                      bool exact, const std::vector<int>& batches, bool json) {
  auto& impl = dd::model_impl(model);
  const auto& c = impl.config;
  const int window = context + horizon;
  nlohmann::json rows = nlohmann::json::array();
  if (!json)
    std::printf("  %-26s %8s %12s %14s\n", "batched windows (model-bound)", "windows", "ms/forward",
                "frames/s");
  for (const int batch : batches) {
    dd::ModelDenoiser denoiser(impl, false, exact);
    const auto fn = denoiser.fn();
    dd::DenoiseCall call;
    call.levels = torch::rand({batch, window});
    call.positions = torch::arange(window, torch::kFloat32);
    call.known_prefix = context;
    // New frames every call: the fast forward keeps the first block's work for frames it has
    // seen (frame_cache.h), and a repeated call would time only what is left.
    const int repeats = 10;
    std::vector<torch::Tensor> inputs;
    for (int i = 0; i <= repeats; ++i)
      inputs.push_back(torch::randn({batch, window, c.channels, c.height, c.width}));
    size_t next = 0;
    const auto run = [&] {
      call.x = inputs[next++ % inputs.size()];
      const auto out = fn(call);
      if (impl.device.is_cuda()) torch::cuda::synchronize();
      return out;
    };
    run();  // warm-up (and the graph capture)
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < repeats; ++i) run();
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
        repeats;
    const double fps = batch * horizon / (steps * ms / 1000.0);
    rows.push_back(
        {{"windows", batch}, {"ms_per_forward", ms}, {"frames_per_second", fps}, {"steps", steps}});
    if (!json) std::printf("  %-26s %8d %12.2f %14.1f\n", "", batch, ms, fps);
  }
  return rows;
}

}  // namespace dforce
