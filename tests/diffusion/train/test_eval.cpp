// dforce eval's report on a tiny synthetic dataset: every part (a)-(d) is there, its numbers
// are consistent with each other, and the rollout yardstick scores true frames as in range.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <unistd.h>
#include <filesystem>
#include <string>

#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model_file.h"
#include "dfs/diffusion/model.h"
#include "dfs/diffusion/train/dataset.h"
#include "dfs/diffusion/train/eval.h"

using namespace dfs::diffusion;
using namespace dfs::diffusion::train;

namespace {

std::string saved_random_tiny_model() {
  const auto path = (std::filesystem::temp_directory_path() /
                     ("dfs_eval_" + std::to_string(::getpid()) + ".safetensors"))
                        .string();
  auto config = ModelConfig::preset("tiny");
  config.objective = Objective::X0;
  Denoiser net(config);
  net->reset_parameters(4);
  save_model(path, net, config);
  return path;
}

}  // namespace

TEST_CASE("frame statistics: mean, contrast and sharpness of known frames", "[eval]") {
  auto flat = torch::full({1, 24, 32, 3}, 100, torch::kUInt8);
  auto stats = frame_statistics(flat);
  CHECK(stats[0][0].item<double>() == Approx(100));
  CHECK(stats[0][1].item<double>() == Approx(0).margin(1e-6));  // no contrast
  CHECK(stats[0][2].item<double>() == Approx(0).margin(1e-6));  // no edges
  // A checkerboard: more contrast and far sharper than any smooth frame.
  auto board = torch::zeros({1, 24, 32, 3}, torch::kUInt8);
  for (int y = 0; y < 24; ++y)
    for (int x = 0; x < 32; ++x)
      if ((x + y) % 2) board[0][y][x].fill_(200);
  stats = frame_statistics(board);
  CHECK(stats[0][0].item<double>() == Approx(100));
  CHECK(stats[0][1].item<double>() == Approx(100).epsilon(0.01));
  CHECK(stats[0][2].item<double>() > 500);
}

TEST_CASE("eval report: loss by level, predictions, rollouts and contact sheet agree", "[eval]") {
  SyntheticSettings ss;
  ss.clips = 2;
  ss.frames = 60;
  ss.seed = 3;
  const auto data = make_synthetic_dataset(ss);
  const auto model = saved_random_tiny_model();
  EvalSettings s;
  s.loss_levels = {0.1, 1.0};
  s.loss_windows = 2;
  s.context = 4;
  s.horizon = 4;
  s.samples = 2;
  s.segments_per_clip = 1;
  s.rollout_frames = 12;
  s.rollout_context = 4;
  s.rollout_horizon = 4;
  s.sampler.schedule.steps = 3;
  const auto report = evaluate_model(model, data, s);
  std::filesystem::remove(model);

  REQUIRE(report.loss_by_level.size() == 2);
  for (const auto& l : report.loss_by_level) CHECK(std::isfinite(l.loss));
  REQUIRE(report.prediction.size() == 2);
  for (const auto& p : report.prediction) {
    REQUIRE(p.psnr_mean.size() == 4);
    REQUIRE(p.psnr_copy.size() == 4);
    for (size_t k = 0; k < 4; ++k) {
      CHECK(std::isfinite(p.psnr_sample[k]));
      CHECK(p.ssim_mean[k] <= 1.0);
    }
  }
  // Two rollouts per clip (with and without stabilisation), each scored against its own clip.
  REQUIRE(report.rollouts.size() == 4);
  for (const auto& r : report.rollouts) {
    INFO(r.clip << " stabilisation " << r.stabilization);
    CHECK(r.frames == 12);
    for (double share : {r.in_range_mean, r.in_range_contrast, r.in_range_sharpness, r.in_range_all,
                         r.in_range_all_own, r.same_scene}) {
      CHECK(share >= 0.0);
      CHECK(share <= 1.0);
    }
    CHECK(r.in_range_all <= std::min({r.in_range_mean, r.in_range_contrast, r.in_range_sharpness}));
    CHECK(r.ranges.mean_lo <= r.ranges.mean_hi);
    CHECK(r.ranges.contrast_lo <= r.ranges.contrast_hi);
    int counted = 0;
    for (const auto& [clip, n] : r.nearest_clip_counts) counted += n;
    CHECK(counted == r.frames);
    CHECK((r.first_scene_exit == -1) == (r.same_scene == 1.0));
    // The yardstick itself: the clip's own held-out frames mostly fall in its training range.
    CHECK(r.truth_in_range_all >= 0.5);
    CHECK(r.truth_in_range_all_own >= 0.5);
  }
  CHECK(report.rollouts[0].ranges.mean_lo != report.rollouts[2].ranges.mean_lo);  // per clip
  const auto j = report.to_json();
  CHECK(j["rollouts"][0].contains("truth_in_range_all"));
  CHECK(j["rollouts"][0].contains("in_range_all_own_clip"));
  CHECK(report.to_text().find("truth") != std::string::npos);
  CHECK(report.contact_sheet.width > 16 * 32);
}
