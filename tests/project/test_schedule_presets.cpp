// Tests of dfs/project/schedule_preset.h: preset JSON and files, applying a preset to a project,
// and the noise curve's resampling, clipboard text and paste.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "dfs/project/schedule_preset.h"
#include "project_test_util.h"

namespace fs = std::filesystem;
using namespace dfs::project;
using dfs::diffusion::ScheduleShape;

using dfs::project::test::TempDir;

namespace {

// A project on a 6-frame clip (the clip itself is not opened here).
Project extend_project(int clip_frames = 6, int new_frames = 4) {
  Project p;
  p.clip.path = "clip.mp4";
  p.clip.width = 64;
  p.clip.height = 48;
  p.clip.fps = 10;
  p.clip.frame_count = clip_frames;
  p.timeline = extend_layout(clip_frames, new_frames);
  return p;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace

TEST_CASE("a preset saved from a project and loaded back restores its schedule and curve",
          "[presets]") {
  TempDir dir;
  Project p = extend_project();
  auto& s = p.generation.rollout.sampler.schedule;
  s.shape = ScheduleShape::AsyncBlocks;
  s.steps = 37;
  s.uncertainty = 2.5;
  s.ar_step = 3;
  s.block = 4;
  set_noise_range(p.timeline, 6, 9, 0.75);
  set_noise(p.timeline, 8, 0.25);
  const Project saved = p;
  const fs::path file = dir.path / preset_file_name("Slow blocks!");
  CHECK(file.filename() == "Slow_blocks_.json");
  save_preset(file.string(), preset_from_project(p, "Slow blocks!"));

  s = {};
  set_noise_range(p.timeline, 6, 9, 1.0);
  REQUIRE_FALSE(p == saved);

  const SchedulePreset loaded = load_preset(file.string());
  CHECK(loaded.name == "Slow blocks!");
  apply_preset(p, loaded);
  CHECK(p.generation.rollout.sampler.schedule == saved.generation.rollout.sampler.schedule);
  CHECK(p.timeline.noise == saved.timeline.noise);
  CHECK(p == saved);
}

TEST_CASE("a preset's curve goes onto the unpinned frames, resampled to their count", "[presets]") {
  // Saved from a 6 + 4 extend: the curve is the 4 new frames' levels, not the pinned clip's.
  Project source = extend_project(6, 4);
  paste_noise_range(source.timeline, 6, 9, {0.2, 0.4, 0.6, 0.8});
  const SchedulePreset preset = preset_from_project(source, "ramp");
  CHECK(preset.start_levels == std::vector<double>{0.2, 0.4, 0.6, 0.8});

  Project p = extend_project(30, 7);  // a longer clip, 7 new frames
  const auto pinned_before = noise_range(p.timeline, 0, 29);
  apply_preset(p, preset);
  CHECK(noise_range(p.timeline, 0, 29) == pinned_before);  // pinned frames keep theirs
  const auto got = noise_range(p.timeline, 30, 36);
  CHECK(got.front() == Approx(0.2));
  CHECK(got[3] == Approx(0.5));
  CHECK(got.back() == Approx(0.8));

  // A regenerated range in the middle of a clip takes the same curve.
  Project regen = extend_project(20, 1);
  regen.timeline = regenerate_layout(20, 5, 8);
  apply_preset(regen, preset);
  CHECK(noise_range(regen.timeline, 5, 8) == preset.start_levels);
}

TEST_CASE("a broken preset file gives a clear error and changes nothing", "[presets]") {
  TempDir dir;
  Project p = extend_project();
  const Project before = p;
  const SchedulePreset good = preset_from_project(p, "good");
  const std::string text = preset_to_json(good);

  struct Case {
    std::string text;
    std::string says;
  };
  std::string bad_steps = text;
  bad_steps.replace(bad_steps.find("\"steps\": 10"), 11, "\"steps\": 0");
  std::string bad_shape = text;
  bad_shape.replace(bad_shape.find("\"pyramid\""), 9, "\"spiral\"");
  const std::vector<Case> cases = {
      {"{ not json", "not valid JSON"},
      {"[1, 2]", "must be a JSON object"},
      {R"({"format": "dfstudio-project", "format_version": 1})", "not a schedule preset"},
      {bad_steps, "schedule.steps"},
      {bad_shape, "preset.schedule.shape"},
      {R"({"format": "dfstudio-schedule-preset", "format_version": 9, "name": "x"})", "newer"},
      {R"({"format": "dfstudio-schedule-preset", "format_version": 1, "name": "x",
           "schedule": {"shape": "pyramid", "steps": 5, "uncertainty": 1},
           "start_levels": [0.5, 1.5]})",
       "start_levels[1]"},
      {R"({"format": "dfstudio-schedule-preset", "format_version": 1, "name": "x"})",
       "schedule is missing"},
  };
  for (const Case& c : cases) {
    const fs::path file = dir.path / "broken.json";
    write_text(file, c.text);
    INFO(c.text);
    try {
      apply_preset(p, load_preset(file.string()));
      FAIL("a broken preset was accepted");
    } catch (const Error& e) {
      const std::string what = e.what();
      CHECK(what.find(file.string()) == 0);  // names the file
      CHECK(what.find(c.says) != std::string::npos);
    }
    CHECK(p == before);
  }
  CHECK_THROWS_WITH(load_preset((dir.path / "missing.json").string()),
                    Catch::Contains("cannot be read"));
}

TEST_CASE("resample_levels keeps the ends and interpolates linearly", "[presets]") {
  CHECK(resample_levels({0.2, 0.4, 0.6}, 3) == std::vector<double>{0.2, 0.4, 0.6});
  CHECK(resample_levels({0.3}, 4) == std::vector<double>(4, 0.3));
  const auto up = resample_levels({0.0, 1.0, 0.0}, 5);
  REQUIRE(up.size() == 5);
  CHECK(up[1] == Approx(0.5));
  CHECK(up[2] == Approx(1.0));
  CHECK(up[3] == Approx(0.5));
  const auto down = resample_levels({0.0, 0.25, 0.5, 0.75, 1.0}, 3);
  REQUIRE(down.size() == 3);
  CHECK(down[0] == Approx(0.0));
  CHECK(down[1] == Approx(0.5));
  CHECK(down[2] == Approx(1.0));
  CHECK(resample_levels({}, 3).empty());
  CHECK(resample_levels({1.0}, 0).empty());
}

TEST_CASE("a noise curve survives its clipboard text and pastes onto a range", "[presets]") {
  Timeline t = extend_layout(4, 8);  // 12 positions
  paste_noise_range(t, 4, 7, {1.0, 0.8, 0.6, 0.4});
  const auto source = noise_range(t, 4, 7);
  const auto parsed = levels_from_json(levels_to_json(source));
  CHECK(parsed == source);

  Timeline same = t;
  paste_noise_range(same, 8, 11, parsed);
  CHECK(noise_range(same, 8, 11) == source);

  Timeline longer = t;
  paste_noise_range(longer, 4, 10, parsed);  // 4 levels onto 7 positions
  const auto got = noise_range(longer, 4, 10);
  CHECK(got.front() == Approx(1.0));
  CHECK(got.back() == Approx(0.4));
  CHECK(got[3] == Approx(0.7));

  const Timeline before = t;
  CHECK_THROWS_WITH(levels_from_json("hello"), Catch::Contains("not valid JSON"));
  CHECK_THROWS_WITH(levels_from_json("[]"), Catch::Contains("empty"));
  CHECK_THROWS_WITH(levels_from_json("[0.5, \"x\"]"), Catch::Contains("[1] must be a number"));
  CHECK_THROWS_WITH(levels_from_json("[0.5, 2]"), Catch::Contains("[1]"));
  CHECK_THROWS(paste_noise_range(t, 10, 12, {0.5}));
  CHECK_THROWS(paste_noise_range(t, 0, 3, {}));
  CHECK(t == before);
}
