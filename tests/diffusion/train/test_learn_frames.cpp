// "Learn this clip" below the Studio (dfs/diffusion/learn.h): the packing of decoded Frames is
// the tensor packing, a short run writes a model whose reported held-out loss is what
// held_out_loss() measures again, previews come at the end, and a stop still writes a model.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <atomic>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "dfs/diffusion/learn.h"
#include "dfs/diffusion/train/dataset.h"
#include "dfs/diffusion/train/trainer.h"
#include "diffusion/diffusion_test_util.h"

using namespace dfs::diffusion;
using namespace dfs::diffusion::train;

namespace {

std::vector<dfs::Frame> frames_of(const VideoDataset& data) {
  std::vector<dfs::Frame> out;
  for (int64_t i = 0; i < data.frame_count(); ++i) {
    dfs::Frame f(data.width(), data.height());
    const auto t = data.frames[i].contiguous();
    std::memcpy(f.rgb.data(), t.data_ptr<uint8_t>(), f.byte_size());
    out.push_back(std::move(f));
  }
  return out;
}

// A tiny (32x24) model file with random weights: the starting point of the runs below.
std::string tiny_model(const VideoDataset& data) {
  const auto path = dfs_test::temp_path_in("dfs_learn_tests", "tiny_start.safetensors").string();
  auto r = train_recipe("tiny");
  Trainer t(r.model, r.train, data);
  t.export_model(path, {{"test", "start model"}});
  return path;
}

}  // namespace

TEST_CASE("append_clip of Frames packs exactly what the tensor path packs", "[train][learn]") {
  const auto data = dfs_test::synthetic_dataset(1, 20, 5);
  VideoDataset a, b;
  append_clip(a, "c", "src", data.frames, 0.2);
  append_clip(b, "c", "src", frames_of(data), 0.2);
  REQUIRE(a.fingerprint() == b.fingerprint());
  REQUIRE(torch::equal(a.frames, b.frames));
  REQUIRE(a.clips[0].train_length == b.clips[0].train_length);
  std::vector<dfs::Frame> mixed = frames_of(data);
  mixed[3] = dfs::Frame(16, 12);
  REQUIRE(dfs_test::error_of([&] { append_clip(b, "d", "src", mixed, 0.2); }).find("frame 3") !=
          std::string::npos);
}

TEST_CASE("learn_frames: a short run writes the model, reports the held-out loss, stops",
          "[train][learn]") {
  const auto data = dfs_test::synthetic_dataset(1, 40, 9);
  const auto frames = frames_of(data);
  LearnSettings s;
  s.from = tiny_model(data);
  s.output = dfs_test::temp_path_in("dfs_learn_tests", "learned.safetensors").string();
  s.minutes = 0.05;  // 3 s
  s.clip_name = "moving";
  s.clip_source = "synthetic";
  std::filesystem::remove(s.output);
  int samples = 0, progress = 0;
  LearnCallbacks cb;
  cb.on_progress = [&](const LearnProgress& p) {
    ++progress;
    REQUIRE(std::isfinite(p.loss));
  };
  cb.on_sample = [&](const LearnSample& smp) {
    ++samples;
    REQUIRE(smp.frames.size() == 4);
    REQUIRE(smp.frames.front().width == 32);
    REQUIRE(smp.truth.size() == 4);
  };
  const auto r = learn_frames(frames, s, cb);
  REQUIRE(std::filesystem::exists(r.output));
  REQUIRE(std::filesystem::exists(r.checkpoint));
  REQUIRE(r.steps > 0);
  REQUIRE(progress == r.steps_run);
  REQUIRE(samples == 1);  // the end's (no periodic one in 3 s)
  REQUIRE(r.held_out_frames == 8);
  REQUIRE(std::isfinite(r.loss_before));
  REQUIRE(held_out_loss(r.output, frames) == Approx(r.loss_after).epsilon(1e-6));
  REQUIRE(held_out_loss(s.from, frames) == Approx(r.loss_before).epsilon(1e-6));
  REQUIRE(read_learn_checkpoint(r.checkpoint).steps == r.steps);

  // Resume continues from the checkpoint; a stop set before the first step still writes a model.
  std::atomic<bool> stop{true};
  cb.stop = &stop;
  s.resume = true;
  const auto stopped = learn_frames(frames, s, cb);
  REQUIRE(stopped.stopped);
  REQUIRE(stopped.steps == r.steps);
  REQUIRE(std::filesystem::exists(stopped.output));
  REQUIRE(std::isfinite(stopped.loss_after));
}
