// EvalReport as JSON and as the table `dforce eval` prints (see eval.h).
#include "dfs/diffusion/train/eval.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "eval_report.h"

namespace dfs::diffusion::train {

namespace detail {

std::string format_number(double v, int decimals) {
  if (std::isinf(v)) return "inf";
  if (std::isnan(v)) return "n/a";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

}  // namespace detail

using detail::format_number;

nlohmann::json EvalReport::to_json() const {
  nlohmann::json j;
  j["model"] = model_path;
  j["seconds"] = seconds;
  auto num = [](double v) -> nlohmann::json {
    return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
  };
  auto vec = [&](const std::vector<double>& v) {
    nlohmann::json a = nlohmann::json::array();
    for (double x : v) a.push_back(num(x));
    return a;
  };
  for (const auto& l : loss_by_level)
    j["loss_by_level"].push_back({{"level", l.level}, {"loss", num(l.loss)}});
  for (const auto& p : prediction) {
    nlohmann::json e = {{"clip", p.clip},
                        {"segments", p.segments},
                        {"baseline", p.baseline},
                        {"sharpness_ratio_sample", vec(p.sharpness_ratio_sample)}};
    // A prediction and its yardstick: "psnr_<name>" and "ssim_<name>".
    auto scores = [&](const std::string& name, const std::vector<double>& psnr,
                      const std::vector<double>& ssim) {
      e["psnr_" + name] = vec(psnr);
      e["ssim_" + name] = vec(ssim);
    };
    scores("sample", p.psnr_sample, p.ssim_sample);
    scores("mean", p.psnr_mean, p.ssim_mean);
    scores("copy_last", p.psnr_copy, p.ssim_copy);
    scores("linear", p.psnr_linear, p.ssim_linear);
    scores("baseline_sample_upscaled", p.psnr_baseline_sample, p.ssim_baseline_sample);
    scores("baseline_mean_upscaled", p.psnr_baseline_mean, p.ssim_baseline_mean);
    e["psnr_sample_64x48"] = vec(p.psnr_sample_64);
    e["psnr_mean_64x48"] = vec(p.psnr_mean_64);
    e["psnr_copy_last_64x48"] = vec(p.psnr_copy_64);
    e["psnr_linear_64x48"] = vec(p.psnr_linear_64);
    e["psnr_baseline_mean_64x48"] = vec(p.psnr_baseline_mean_64);
    j["prediction"].push_back(e);
  }
  for (const auto& r : rollouts) {
    nlohmann::json counts = nlohmann::json::object();
    for (const auto& [name, k] : r.nearest_clip_counts) counts[name] = k;
    j["rollouts"].push_back({{"clip", r.clip},
                             {"stabilization", r.stabilization},
                             {"frames", r.frames},
                             {"in_range_mean", r.in_range_mean},
                             {"in_range_contrast", r.in_range_contrast},
                             {"in_range_sharpness", r.in_range_sharpness},
                             {"in_range_all", r.in_range_all},
                             {"truth_in_range_all", r.truth_in_range_all},
                             {"in_range_all_own_clip", r.in_range_all_own},
                             {"truth_in_range_all_own_clip", r.truth_in_range_all_own},
                             {"own_clip_ranges",
                              {{"mean", {r.ranges.mean_lo, r.ranges.mean_hi}},
                               {"contrast", {r.ranges.contrast_lo, r.ranges.contrast_hi}},
                               {"sharpness", {r.ranges.sharpness_lo, r.ranges.sharpness_hi}}}},
                             {"same_scene", r.same_scene},
                             {"first_scene_exit", r.first_scene_exit},
                             {"nearest_clip_counts", counts},
                             {"seconds", r.seconds}});
  }
  const auto& t = training_ranges;
  j["training_ranges"] = {{"mean", {t.mean_lo, t.mean_hi}},
                          {"contrast", {t.contrast_lo, t.contrast_hi}},
                          {"sharpness", {t.sharpness_lo, t.sharpness_hi}}};
  return j;
}

std::string EvalReport::to_text() const {
  std::ostringstream o;
  o << "(a) held-out loss by noise level (unweighted objective MSE)\n    level:";
  for (const auto& l : loss_by_level) o << "  " << format_number(l.level);
  o << "\n    loss: ";
  for (const auto& l : loss_by_level) o << "  " << format_number(l.loss, 4);
  o << "\n";
  for (const auto& p : prediction) {
    o << "(b) " << p.clip << " (" << p.segments
      << " segments), PSNR dB / SSIM per predicted frame\n";
    auto row = [&](const char* name, const std::vector<double>& ps, const std::vector<double>& ss) {
      char head[32];
      std::snprintf(head, sizeof head, "    %-12s", name);
      o << head;
      for (size_t k = 0; k < ps.size(); ++k)
        o << " " << format_number(ps[k], 1) << "/" << format_number(ss[k], 2);
      o << "\n";
    };
    row("sample", p.psnr_sample, p.ssim_sample);
    row("mean", p.psnr_mean, p.ssim_mean);
    row("copy-last", p.psnr_copy, p.ssim_copy);
    row("linear", p.psnr_linear, p.ssim_linear);
    if (!p.baseline.empty()) {
      row("base sample", p.psnr_baseline_sample, p.ssim_baseline_sample);
      row("base mean", p.psnr_baseline_mean, p.ssim_baseline_mean);
    }
    auto row64 = [&](const char* name, const std::vector<double>& ps) {
      char head[40];
      std::snprintf(head, sizeof head, "    %-12s", name);
      o << head;
      for (double v : ps) o << " " << format_number(v, 1) << "     ";
      o << "\n";
    };
    if (!p.psnr_mean_64.empty() && (p.psnr_mean_64.size() == p.psnr_mean.size())) {
      o << "    at 64x48 (PSNR dB):\n";
      row64("sample", p.psnr_sample_64);
      row64("mean", p.psnr_mean_64);
      row64("copy-last", p.psnr_copy_64);
      row64("linear", p.psnr_linear_64);
      if (!p.baseline.empty()) row64("base mean", p.psnr_baseline_mean_64);
      o << "    sharpness of one sample / truth:";
      for (double v : p.sharpness_ratio_sample) o << " " << format_number(100 * v, 0) << "%";
      o << "\n";
    }
  }
  if (!rollouts.empty()) {
    const auto& t = training_ranges;
    o << "(c) long rollouts; in-range = inside the 1-99% range of all training frames: mean "
      << format_number(t.mean_lo, 1) << ".." << format_number(t.mean_hi, 1) << ", contrast "
      << format_number(t.contrast_lo, 1) << ".." << format_number(t.contrast_hi, 1)
      << ", sharpness " << format_number(t.sharpness_lo, 1) << ".."
      << format_number(t.sharpness_hi, 1) << "\n"
      << "    own = all three inside the ranges of the context's own clip's training frames;\n"
      << "    truth = the clip's held-out true frames inside (the yardstick's own score)\n";
    std::string last_clip;
    for (const auto& r : rollouts) {
      if (r.clip == last_clip) continue;
      last_clip = r.clip;
      const auto& c = r.ranges;
      o << "    " << r.clip << " own ranges: mean " << format_number(c.mean_lo, 1) << ".."
        << format_number(c.mean_hi, 1) << ", contrast " << format_number(c.contrast_lo, 1) << ".."
        << format_number(c.contrast_hi, 1) << ", sharpness " << format_number(c.sharpness_lo, 1)
        << ".." << format_number(c.sharpness_hi, 1) << "\n";
    }
    o << "    clip        stab   frames  in-range(mean/contrast/sharp/all) truth   own  truth  "
         "same-scene  first-exit  nearest\n";
    for (const auto& r : rollouts) {
      char line[256];
      std::string nearest;
      for (const auto& [name, k] : r.nearest_clip_counts)
        nearest += name + ":" + std::to_string(k) + " ";
      std::snprintf(line, sizeof line,
                    "    %-10s  %5.3f  %6d  %5.1f%% %5.1f%% %5.1f%% %5.1f%% %5.1f%% %5.1f%% "
                    "%5.1f%%     %5.1f%%      %6d  ",
                    r.clip.c_str(), r.stabilization, r.frames, 100 * r.in_range_mean,
                    100 * r.in_range_contrast, 100 * r.in_range_sharpness, 100 * r.in_range_all,
                    100 * r.truth_in_range_all, 100 * r.in_range_all_own,
                    100 * r.truth_in_range_all_own, 100 * r.same_scene, r.first_scene_exit);
      o << line << nearest << "\n";
    }
  }
  return o.str();
}

}  // namespace dfs::diffusion::train
