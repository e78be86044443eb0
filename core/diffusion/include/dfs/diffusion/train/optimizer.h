// dfs/diffusion/train/optimizer.h — AdamW with global-norm clipping and a weight EMA, shared by
// the diffusion trainer and the autoencoder trainer (torch).
//
// AdamW: Loshchilov & Hutter 2019, Alg. 2, in PyTorch's formulation (decoupled decay applied
// to matrices only). Clipping: Pascanu et al. 2013 (global L2 norm). EMA with the usual warm-up
// min(decay, (1 + t) / (10 + t)) so early weights do not dominate. Learning rate: linear
// warm-up, then cosine decay (SGDR without restarts, Loshchilov & Hutter 2017, Eq. 5).
//
// Thread-safety: one thread at a time.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace dfs::diffusion::train {

struct OptimizerSettings {
  double learning_rate = 1e-3;               // peak learning rate
  double min_learning_rate_fraction = 0.05;  // the cosine decays to this fraction of the peak
  int warmup_steps = 100;                    // linear warm-up from 0 (steps)
  int64_t schedule_steps = 10000;            // cosine horizon (steps); the rate stays at min after
  double weight_decay = 0.01;                // decoupled, matrices only
  double beta1 = 0.9, beta2 = 0.99;          // Adam's moment decay rates
  double eps = 1e-8;                         // Adam's denominator guard
  double grad_clip = 1.0;                    // global L2 norm; <= 0 disables
  double ema_decay = 0.999;                  // with warm-up min(decay, (1 + t) / (10 + t))
};

// The learning rate of step `step` (0-based).
double learning_rate_at(const OptimizerSettings& s, int64_t step);

// Parameters, their moments and EMA copies, in one fixed order (names say which is which).
struct AdamWState {
  std::vector<std::string> names;
  std::vector<torch::Tensor> params;  // the live parameters (requires_grad)
  std::vector<torch::Tensor> ema;     // EMA copies (no grad)
  std::vector<torch::Tensor> m, v;    // Adam moments
  std::vector<bool> decays;           // weight decay applies (dim >= 2)

  // Registers `params` (name, tensor) with `ema` (same names) as their EMA copies, which are
  // set equal to the parameters.
  void add(const std::string& name, const torch::Tensor& param, const torch::Tensor& ema_copy);
};

// One update with the gradients currently in params[i].grad() at 0-based step `step` with rate
// `lr`; clears the gradients. Returns the global gradient norm before clipping.
double adamw_update(AdamWState& state, const OptimizerSettings& s, int64_t step, double lr);

}  // namespace dfs::diffusion::train
