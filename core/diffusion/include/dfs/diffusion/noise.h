// dfs/diffusion/noise.h — noise schedules and prediction parameterisations (torch).
//
// Levels: a level n in [0, 1] is the user-facing noise fraction (0 clean, 1 pure noise).
// Discrete training timesteps k in 0..K (K = kTrainTimesteps) map to levels n = k / K;
// k = 0 is clean (abar = 1). abar(n) is the cumulative signal fraction:
//   x_n = sqrt(abar) * x0 + sqrt(1 - abar) * eps.
// abar is clamped to [kMinAlphaBar, 1] so that x0/eps/v conversions stay finite at n = 1.
#pragma once

#include <torch/torch.h>

#include <string>

namespace dfs::diffusion {

inline constexpr int kTrainTimesteps = 1000;  // K
inline constexpr double kMinAlphaBar = 1e-5;  // abar floor at level 1

enum class NoiseScheduleKind { Cosine, Sigmoid, Linear };
// The network's output. Edm: EDM preconditioning (Karras et al. 2022, Eq. 7 and Table 1) in
// this VP schedule: the network sees c_in x~ and x0 = c_skip x~ + c_out F, with x~ = x_n /
// sqrt(abar), sigma^2 = (1 - abar) / abar and sigma_data the data's standard deviation; at low
// noise c_skip -> 1 passes the input through, at high noise x0 -> sigma_data F. With
// sigma_data = 1 it equals v-prediction (F = -v) under a unit-weight loss.
enum class Objective { V, X0, Eps, Edm };

NoiseScheduleKind noise_schedule_from_string(const std::string& name);  // throws Error
std::string to_string(NoiseScheduleKind kind);
Objective objective_from_string(const std::string& name);  // throws Error
std::string to_string(Objective objective);

class NoiseSchedule {
 public:
  explicit NoiseSchedule(NoiseScheduleKind kind = NoiseScheduleKind::Cosine,
                         double sigma_data = 1.0);

  NoiseScheduleKind kind() const { return kind_; }
  double sigma_data() const { return sigma_data_; }            // Edm only
  double alpha_bar(double level) const;                        // scalar abar(n), n in [0, 1]
  torch::Tensor alpha_bar(const torch::Tensor& levels) const;  // elementwise, same shape

  // x_n from x0 and eps; levels broadcast over [B, T] -> [B, T, 1, 1, 1].
  torch::Tensor add_noise(const torch::Tensor& x0, const torch::Tensor& eps,
                          const torch::Tensor& levels) const;

  // Conversions between the model's prediction and (x0, eps) at x_n, level n.
  torch::Tensor to_x0(Objective objective, const torch::Tensor& prediction,
                      const torch::Tensor& x_n, const torch::Tensor& levels) const;
  torch::Tensor to_eps(Objective objective, const torch::Tensor& prediction,
                       const torch::Tensor& x_n, const torch::Tensor& levels) const;
  // The training target for `objective` given x0 and eps.
  torch::Tensor target(Objective objective, const torch::Tensor& x0, const torch::Tensor& eps,
                       const torch::Tensor& levels) const;
  // SNR = abar / (1 - abar), elementwise (for min-SNR weighting).
  torch::Tensor snr(const torch::Tensor& levels) const;
  // Edm's input scale c_in expressed on x_n: the network sees x_n / sqrt(1 - abar + abar
  // sigma_data^2) (= c_in x~); levels broadcast like add_noise.
  torch::Tensor edm_input_scale(const torch::Tensor& levels, const torch::Tensor& like) const;

 private:
  NoiseScheduleKind kind_;
  double sigma_data_ = 1.0;
};

}  // namespace dfs::diffusion
