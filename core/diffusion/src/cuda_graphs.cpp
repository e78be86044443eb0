// A window's denoiser forward as a CUDA graph (see cuda_graphs.h).
#include "cuda_graphs.h"

#include <torch/torch.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"

#ifdef DFS_HAVE_CUDA_GRAPHS
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace dfs::diffusion {

bool cuda_graphs_requested() {
  const char* v = std::getenv("DFS_CUDA_GRAPHS");
  return v != nullptr && std::string(v) != "0" && std::string(v) != "";
}

#ifdef DFS_HAVE_CUDA_GRAPHS

struct GraphedForward::State {
  at::cuda::CUDAGraph graph;
  torch::Tensor x, levels, positions, out;  // the graph's static inputs and output
  std::vector<int64_t> shape;
  int captures = 0;
};

bool GraphedForward::supported() {
  return torch::cuda::is_available();
}

torch::Tensor GraphedForward::run(Denoiser& net, const torch::Tensor& x,
                                  const torch::Tensor& levels, const torch::Tensor& positions) {
  const auto device = net->stem->weight.device();
  if (!device.is_cuda()) throw Error("CUDA graphs need the model on a CUDA device");
  const auto dtype = net->stem->weight.scalar_type();
  std::vector<int64_t> shape = x.sizes().vec();
  if (!state_ || state_->shape != shape) {
    // (Re)capture for these shapes. Inputs live in static tensors on the device in the
    // network's dtype, so the captured forward does no host transfer.
    state_ = std::make_unique<State>();
    auto& s = *state_;
    s.shape = shape;
    s.x = x.to(device, dtype).clone();
    s.levels = levels.to(device, torch::kFloat32).clone();
    s.positions = positions.to(device, torch::kFloat32).clone();
    auto stream = c10::cuda::getStreamFromPool();
    {
      c10::cuda::CUDAStreamGuard guard(stream);
      for (int i = 0; i < 3; ++i) s.out = net->forward(s.x, s.levels, s.positions);  // warm-up
    }
    torch::cuda::synchronize();
    {
      c10::cuda::CUDAStreamGuard guard(stream);
      s.graph.capture_begin();
      s.out = net->forward(s.x, s.levels, s.positions);
      s.graph.capture_end();
    }
    torch::cuda::synchronize();
    ++s.captures;
  }
  auto& s = *state_;
  s.x.copy_(x.to(device, dtype));
  s.levels.copy_(levels.to(device, torch::kFloat32));
  s.positions.copy_(positions.to(device, torch::kFloat32));
  s.graph.replay();
  return s.out.clone();
}

int GraphedForward::captures() const {
  return state_ ? state_->captures : 0;
}

#else  // no CUDA LibTorch: nothing to capture

struct GraphedForward::State {};

bool GraphedForward::supported() {
  return false;
}

torch::Tensor GraphedForward::run(Denoiser&, const torch::Tensor&, const torch::Tensor&,
                                  const torch::Tensor&) {
  throw Error(
      "CUDA graphs need a CUDA build of LibTorch (this dforce was built against a CPU-only one)");
}

int GraphedForward::captures() const {
  return 0;
}

#endif

GraphedForward::GraphedForward() = default;
GraphedForward::~GraphedForward() = default;

}  // namespace dfs::diffusion
