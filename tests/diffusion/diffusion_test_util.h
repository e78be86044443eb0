// diffusion_test_util.h — shared helpers for the engine tests (test_diffusion): scratch file
// paths, the message of an engine Error, and the small synthetic datasets and training settings
// the tests build again and again.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/train/ae_trainer.h"
#include "dfs/diffusion/train/dataset.h"

namespace dfs_test {

// `<temp>/<prefix>_<pid>_<name>`: a scratch file of this test process.
inline std::string pid_temp_path(const std::string& prefix, const std::string& name) {
  return (std::filesystem::temp_directory_path() /
          (prefix + "_" + std::to_string(::getpid()) + "_" + name))
      .string();
}

// `<temp>/<folder>/<name>`, the folder created.
inline std::filesystem::path temp_path_in(const std::string& folder, const std::string& name) {
  const auto dir = std::filesystem::temp_directory_path() / folder;
  std::filesystem::create_directories(dir);
  return dir / name;
}

// The message of the engine Error that `f` throws; "" when it throws none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const dfs::diffusion::Error& e) {
    return e.what();
  }
  return "";
}

// The message of the engine Error that `f` must throw; FAIL(`accepted`) when it returns.
inline std::string refusal_of(const std::function<void()>& f, const std::string& accepted) {
  try {
    f();
    FAIL(accepted);
  } catch (const dfs::diffusion::Error& e) {
    return e.what();
  }
  return "";
}

// A timeline of `frames` positions for `info`'s size whose first `pinned` are pinned, each a
// pattern varying with x, y and the frame: (x * mx + y * my) % range + step * i.
inline std::vector<dfs::diffusion::TimelineFrame> pinned_pattern_timeline(
    const dfs::diffusion::ModelInfo& info, int frames, int pinned, int mx, int my, int range,
    int step) {
  std::vector<dfs::diffusion::TimelineFrame> timeline(static_cast<size_t>(frames));
  for (int i = 0; i < pinned; ++i) {
    dfs::Frame f(info.width, info.height);
    for (int y = 0; y < info.height; ++y)
      for (int x = 0; x < 3 * info.width; ++x)
        f.row(y)[x] = static_cast<uint8_t>((x * mx + y * my) % range + step * i);
    timeline[static_cast<size_t>(i)].content = f;
    timeline[static_cast<size_t>(i)].pinned = true;
  }
  return timeline;
}

// Moving objects at 32x24 (the tiny recipe's frame size): `clips` clips of `frames` frames.
inline dfs::diffusion::train::VideoDataset synthetic_dataset(int clips, int frames, uint64_t seed) {
  return dfs::diffusion::train::make_synthetic_dataset(
      {.clips = clips, .frames = frames, .width = 32, .height = 24, .seed = seed});
}

// Autoencoder training settings: batch, square crop, and the optimizer's warm-up and schedule.
inline dfs::diffusion::train::AutoencoderTrainSettings ae_train_settings(int batch_size, int crop,
                                                                         int warmup_steps,
                                                                         int schedule_steps) {
  dfs::diffusion::train::AutoencoderTrainSettings s;
  s.batch_size = batch_size;
  s.crop = crop;
  s.optimizer.warmup_steps = warmup_steps;
  s.optimizer.schedule_steps = schedule_steps;
  return s;
}

}  // namespace dfs_test
