// AdamW + clipping + EMA and the learning-rate schedule (see optimizer.h).
#include "dfs/diffusion/train/optimizer.h"

#include <algorithm>
#include <cmath>

namespace dfs::diffusion::train {

double learning_rate_at(const OptimizerSettings& s, int64_t step) {
  if (s.warmup_steps > 0 && step < s.warmup_steps)
    return s.learning_rate * static_cast<double>(step + 1) / static_cast<double>(s.warmup_steps);
  const double span = static_cast<double>(std::max<int64_t>(1, s.schedule_steps - s.warmup_steps));
  const double progress = std::min(1.0, static_cast<double>(step - s.warmup_steps) / span);
  const double lo = s.learning_rate * s.min_learning_rate_fraction;
  return lo + 0.5 * (s.learning_rate - lo) * (1 + std::cos(M_PI * progress));
}

void AdamWState::add(const std::string& name, const torch::Tensor& param,
                     const torch::Tensor& ema_copy) {
  torch::NoGradGuard no_grad;
  names.push_back(name);
  params.push_back(param);
  auto e = ema_copy;
  e.copy_(param);
  e.set_requires_grad(false);
  ema.push_back(e);
  m.push_back(torch::zeros_like(param));
  v.push_back(torch::zeros_like(param));
  decays.push_back(param.dim() >= 2);
}

double adamw_update(AdamWState& st, const OptimizerSettings& s, int64_t step, double lr) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  for (auto& p : st.params)
    if (p.grad().defined()) norms.push_back(p.grad().pow(2).sum());
  const double norm = norms.empty() ? 0.0 : std::sqrt(torch::stack(norms).sum().item<double>());
  const double clip = (s.grad_clip > 0 && norm > s.grad_clip) ? s.grad_clip / (norm + 1e-6) : 1.0;
  const double t = static_cast<double>(step + 1);
  const double bc1 = 1 - std::pow(s.beta1, t);
  const double bc2 = 1 - std::pow(s.beta2, t);
  for (size_t i = 0; i < st.params.size(); ++i) {
    auto& p = st.params[i];
    if (!p.grad().defined()) continue;
    auto g = p.grad();
    if (clip != 1.0) g = g * clip;
    if (st.decays[i] && s.weight_decay > 0) p.mul_(1 - lr * s.weight_decay);
    st.m[i].mul_(s.beta1).add_(g, 1 - s.beta1);
    st.v[i].mul_(s.beta2).addcmul_(g, g, 1 - s.beta2);
    const auto denom = (st.v[i] / bc2).sqrt_().add_(s.eps);
    p.addcdiv_(st.m[i], denom, -lr / bc1);
  }
  const double d = std::min(s.ema_decay, (1.0 + t) / (10.0 + t));
  for (size_t i = 0; i < st.params.size(); ++i) st.ema[i].mul_(d).add_(st.params[i], 1 - d);
  for (auto& p : st.params) p.mutable_grad() = torch::Tensor();
  return norm;
}

}  // namespace dfs::diffusion::train
