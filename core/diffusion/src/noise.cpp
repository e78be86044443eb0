// Noise schedules and prediction parameterisations.
//
// Every schedule is tabulated once at the K + 1 training timesteps k = 0..K (level n = k / K)
// and interpolated linearly in log(abar) between them, so the scalar and tensor paths agree
// exactly and levels that fall on the grid (n = k / K) give the training abar exactly.
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <numbers>
#include <string>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/noise.h"
#include "dfs/enum_names.h"

namespace dfs::diffusion {

namespace {

constexpr EnumNames<NoiseScheduleKind, 3> kNoiseScheduleNames{
    {{NoiseScheduleKind::Cosine, "cosine"},
     {NoiseScheduleKind::Sigmoid, "sigmoid"},
     {NoiseScheduleKind::Linear, "linear"}}};

constexpr EnumNames<Objective, 4> kObjectiveNames{
    {{Objective::V, "v"}, {Objective::X0, "x0"}, {Objective::Eps, "eps"}, {Objective::Edm, "edm"}}};

}  // namespace

NoiseScheduleKind noise_schedule_from_string(const std::string& name) {
  if (const auto kind = enum_from_name(kNoiseScheduleNames, name)) return *kind;
  throw Error("unknown noise schedule '" + name + "' (expected " +
              enum_choices(kNoiseScheduleNames) + ")");
}

std::string to_string(NoiseScheduleKind kind) {
  return enum_name(kNoiseScheduleNames, kind, "unknown");
}

Objective objective_from_string(const std::string& name) {
  if (const auto objective = enum_from_name(kObjectiveNames, name)) return *objective;
  throw Error("unknown objective '" + name + "' (expected " + enum_choices(kObjectiveNames) + ")");
}

std::string to_string(Objective objective) {
  return enum_name(kObjectiveNames, objective, "unknown");
}

namespace {

constexpr int kK = kTrainTimesteps;
using Table = std::array<double, kK + 1>;

// Cosine schedule, Nichol & Dhariwal 2021 ("Improved DDPM"), Eq. 17:
// abar(t) = f(t) / f(0), f(t) = cos^2(((t / T + s) / (1 + s)) * pi / 2), s = 0.008.
double cosine_alpha_bar(double n) {
  constexpr double kS = 0.008;
  const auto f = [](double x) {
    const double c = std::cos((x + kS) / (1.0 + kS) * std::numbers::pi / 2.0);
    return c * c;
  };
  return f(n) / f(0.0);
}

// Sigmoid schedule, Jabri et al. 2022 ("Scalable Adaptive Computation for Iterative
// Generation", Alg. 1 sigmoid_schedule) with start -3, end 3, tau 1 — the schedule DFoT uses.
double sigmoid_alpha_bar(double n) {
  constexpr double kStart = -3.0, kEnd = 3.0, kTau = 1.0;
  const auto sig = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  const double v_start = sig(kStart / kTau);
  const double v_end = sig(kEnd / kTau);
  return (v_end - sig((n * (kEnd - kStart) + kStart) / kTau)) / (v_end - v_start);
}

Table make_table(NoiseScheduleKind kind) {
  Table table{};
  if (kind == NoiseScheduleKind::Linear) {
    // Linear betas from 1e-4 to 0.02 over K steps, Ho et al. 2020 ("DDPM"), Sec. 4:
    // abar[k] = prod_{i=1..k} (1 - beta_i).
    double abar = 1.0;
    table[0] = 1.0;
    for (int k = 1; k <= kK; ++k) {
      const double beta = 1e-4 + (0.02 - 1e-4) * (k - 1) / (kK - 1);
      abar *= 1.0 - beta;
      table[k] = abar;
    }
  } else {
    for (int k = 0; k <= kK; ++k) {
      const double n = static_cast<double>(k) / kK;
      table[k] = kind == NoiseScheduleKind::Cosine ? cosine_alpha_bar(n) : sigmoid_alpha_bar(n);
    }
  }
  table[0] = 1.0;  // level 0 is exactly clean
  for (double& a : table) a = std::clamp(a, kMinAlphaBar, 1.0);
  return table;
}

// Make(kind) for each schedule kind, built once, on first use.
template <auto Make>
const auto& once_per_kind(NoiseScheduleKind kind) {
  static const auto cosine = Make(NoiseScheduleKind::Cosine);
  static const auto sigmoid = Make(NoiseScheduleKind::Sigmoid);
  static const auto linear = Make(NoiseScheduleKind::Linear);
  switch (kind) {
    case NoiseScheduleKind::Sigmoid:
      return sigmoid;
    case NoiseScheduleKind::Linear:
      return linear;
    case NoiseScheduleKind::Cosine:
      break;
  }
  return cosine;
}

const Table& table_for(NoiseScheduleKind kind) {
  return once_per_kind<make_table>(kind);
}

torch::Tensor make_log_table(NoiseScheduleKind kind) {
  const Table& table = table_for(kind);
  auto log_table = torch::empty({kK + 1}, torch::kFloat64);
  auto* p = log_table.data_ptr<double>();
  for (int k = 0; k <= kK; ++k) p[k] = std::log(table[k]);
  return log_table;
}

// log(abar) at the K + 1 grid points as a CPU float64 tensor (built once per kind).
const torch::Tensor& log_table_for(NoiseScheduleKind kind) {
  return once_per_kind<make_log_table>(kind);
}

// Appends singleton dims so that levels [B, T] broadcast against x [B, T, C, H, W].
torch::Tensor expand_like(const torch::Tensor& per_frame, const torch::Tensor& x) {
  torch::Tensor out = per_frame;
  while (out.dim() < x.dim()) out = out.unsqueeze(-1);
  return out;
}

constexpr double kTinyVariance = 1e-12;  // guards 1 / sqrt(1 - abar) at level 0

}  // namespace

NoiseSchedule::NoiseSchedule(NoiseScheduleKind kind, double sigma_data)
    : kind_(kind), sigma_data_(sigma_data) {
  if (!(sigma_data > 0 && sigma_data <= 100))
    throw Error("sigma_data must be in (0, 100], got " + std::to_string(sigma_data));
}

namespace {

// EDM preconditioning written on x_n (Karras et al. 2022, Table 1, with x~ = x_n / sqrt(abar)
// and sigma^2 = (1 - abar) / abar, so sigma^2 + sd^2 = (1 - abar + abar sd^2) / abar = q / abar):
//   c_skip / sqrt(abar) = sqrt(abar) sd^2 / q   (the coefficient of x_n in x0)
//   c_out               = sd sqrt(1 - abar) / sqrt(q)
struct EdmCoefficients {
  torch::Tensor skip_xn;  // coefficient of x_n
  torch::Tensor out;      // coefficient of F
};

EdmCoefficients edm_coefficients(const torch::Tensor& abar, double sd) {
  const auto q = (1.0 - abar) + abar * (sd * sd);
  return {abar.sqrt() * (sd * sd) / q, sd * (1.0 - abar).clamp_min(0).sqrt() / q.sqrt()};
}

}  // namespace

torch::Tensor NoiseSchedule::edm_input_scale(const torch::Tensor& levels,
                                             const torch::Tensor& like) const {
  const auto abar = expand_like(alpha_bar(levels).to(like.scalar_type()), like);
  return ((1.0 - abar) + abar * (sigma_data_ * sigma_data_)).rsqrt();
}

double NoiseSchedule::alpha_bar(double level) const {
  const Table& table = table_for(kind_);
  if (!(level > 0.0)) return table[0];  // also maps NaN to clean rather than propagating it
  if (level >= 1.0) return table[kK];
  const double position = level * kK;
  const int lo = std::min(static_cast<int>(position), kK - 1);
  const double frac = position - lo;
  if (frac == 0.0) return table[lo];
  return std::exp((1.0 - frac) * std::log(table[lo]) + frac * std::log(table[lo + 1]));
}

torch::Tensor NoiseSchedule::alpha_bar(const torch::Tensor& levels) const {
  const auto log_table = log_table_for(kind_).to(levels.device());

  const auto position = levels.to(torch::kFloat64).clamp(0.0, 1.0) * kK;
  const auto lo = position.floor().clamp(0, kK - 1);
  const auto frac = position - lo;
  const auto lo_index = lo.to(torch::kLong);
  const auto log_abar =
      (1.0 - frac) * log_table.index({lo_index}) + frac * log_table.index({lo_index + 1});
  auto dtype = levels.is_floating_point() ? levels.scalar_type() : torch::kFloat32;
  return log_abar.exp().to(dtype);
}

torch::Tensor NoiseSchedule::add_noise(const torch::Tensor& x0, const torch::Tensor& eps,
                                       const torch::Tensor& levels) const {
  const auto abar = expand_like(alpha_bar(levels).to(x0.scalar_type()), x0);
  return abar.sqrt() * x0 + (1.0 - abar).clamp_min(0).sqrt() * eps;
}

// Parameterisations (Salimans & Ho 2022, "Progressive Distillation", Sec. 4 and App. D):
//   x_n = a x0 + s eps with a = sqrt(abar), s = sqrt(1 - abar);  v = a eps - s x0;
//   x0 = a x_n - s v;  eps = s x_n + a v.
torch::Tensor NoiseSchedule::to_x0(Objective objective, const torch::Tensor& prediction,
                                   const torch::Tensor& x_n, const torch::Tensor& levels) const {
  const auto abar = expand_like(alpha_bar(levels).to(x_n.scalar_type()), x_n);
  const auto a = abar.sqrt();
  const auto s = (1.0 - abar).clamp_min(0).sqrt();
  switch (objective) {
    case Objective::X0:
      return prediction;
    case Objective::Eps:
      return (x_n - s * prediction) / a;
    case Objective::Edm: {
      const auto c = edm_coefficients(abar, sigma_data_);
      return c.skip_xn * x_n + c.out * prediction;
    }
    case Objective::V:
      break;
  }
  return a * x_n - s * prediction;
}

torch::Tensor NoiseSchedule::to_eps(Objective objective, const torch::Tensor& prediction,
                                    const torch::Tensor& x_n, const torch::Tensor& levels) const {
  const auto abar = expand_like(alpha_bar(levels).to(x_n.scalar_type()), x_n);
  const auto a = abar.sqrt();
  const auto s = (1.0 - abar).clamp_min(0).sqrt();
  switch (objective) {
    case Objective::Eps:
      return prediction;
    case Objective::X0:
      return (x_n - a * prediction) / (1.0 - abar).clamp_min(kTinyVariance).sqrt();
    case Objective::Edm:
      return (x_n - a * to_x0(objective, prediction, x_n, levels)) /
             (1.0 - abar).clamp_min(kTinyVariance).sqrt();
    case Objective::V:
      break;
  }
  return s * x_n + a * prediction;
}

torch::Tensor NoiseSchedule::target(Objective objective, const torch::Tensor& x0,
                                    const torch::Tensor& eps, const torch::Tensor& levels) const {
  switch (objective) {
    case Objective::X0:
      return x0;
    case Objective::Eps:
      return eps;
    case Objective::Edm: {
      // F = (x0 - c_skip x~) / c_out; at level 0 (c_out = 0) the target is 0 by convention
      // (the frame is its own answer; such frames carry no loss weight in training).
      const auto abar = expand_like(alpha_bar(levels).to(x0.scalar_type()), x0);
      const auto x_n = abar.sqrt() * x0 + (1.0 - abar).clamp_min(0).sqrt() * eps;
      const auto c = edm_coefficients(abar, sigma_data_);
      return (x0 - c.skip_xn * x_n) / c.out.clamp_min(1e-6);
    }
    case Objective::V:
      break;
  }
  const auto abar = expand_like(alpha_bar(levels).to(x0.scalar_type()), x0);
  return abar.sqrt() * eps - (1.0 - abar).clamp_min(0).sqrt() * x0;
}

torch::Tensor NoiseSchedule::snr(const torch::Tensor& levels) const {
  const auto abar = alpha_bar(levels);
  return abar / (1.0 - abar).clamp_min(kTinyVariance);
}

}  // namespace dfs::diffusion
