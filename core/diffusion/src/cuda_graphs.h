// cuda_graphs.h — a window's denoiser forward captured once as a CUDA graph and replayed at
// every sampling step (engine-internal, torch).
//
// A window's steps call the network with the same shapes again and again; on a GPU the small
// demo model spends most of a forward launching kernels. A CUDA graph records the launches
// once and replays them with one call. Built only against a CUDA LibTorch (CMake defines
// DFS_HAVE_CUDA_GRAPHS where torch_cuda exists); elsewhere supported() is false and run()
// throws a clear Error. Opt-in: DFS_CUDA_GRAPHS=1 or `dforce bench --cuda-graphs`.
#pragma once

#include <torch/torch.h>

#include <memory>

#include "dfs/diffusion/denoiser.h"

namespace dfs::diffusion {

class GraphedForward {
 public:
  GraphedForward();
  ~GraphedForward();
  GraphedForward(const GraphedForward&) = delete;
  GraphedForward& operator=(const GraphedForward&) = delete;

  static bool supported();  // this build can capture CUDA graphs

  // net->forward(x, levels, positions) on net's CUDA device: captured on the first call and
  // whenever the shapes change, replayed otherwise. Returns a tensor the caller owns.
  torch::Tensor run(Denoiser& net, const torch::Tensor& x, const torch::Tensor& levels,
                    const torch::Tensor& positions);
  int captures() const;  // graphs captured so far (1 per distinct shape)

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// DFS_CUDA_GRAPHS=1 asks for graphs (read each time; `dforce bench --cuda-graphs` sets it).
bool cuda_graphs_requested();

}  // namespace dfs::diffusion
