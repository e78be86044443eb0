// Tests of dfs/project/generation.h: the one generation path (timeline building, the job with a
// real engine model, cancel, sinks, export metadata, model lookup).
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "dfs/media/decoder.h"
#include "dfs/media/metadata.h"
#include "dfs/media/probe.h"
#include "dfs/project/document.h"
#include "dfs/project/generation.h"
#include "project_test_util.h"

namespace fs = std::filesystem;
using namespace dfs::project;
using dfs::Frame;

using dfs::project::test::TempDir;

namespace {

using dfs::project::test::kSampleClip;

// A deterministic 4:3 test picture that differs per frame index.
Frame test_picture(int index, int w = 80, int h = 60) {
  Frame f(w, h);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      uint8_t* px = f.row(y) + 3 * x;
      px[0] = static_cast<uint8_t>((x * 3 + index * 11) & 255);
      px[1] = static_cast<uint8_t>((y * 4 + index * 5) & 255);
      px[2] = static_cast<uint8_t>(((x + y) * 2 + index * 17) & 255);
    }
  return f;
}

// One tiny random model for the whole test run (building it costs time; the job borrows it).
dfs::diffusion::Model& tiny_model() {
  static dfs::diffusion::Model model = dfs::diffusion::Model::random("tiny", 1234, "cpu");
  return model;
}

// An extend project over a synthetic clip of `clip_frames` frames, small and quick.
Project synthetic_extend(int clip_frames, int n, int max_frames) {
  Project p;
  p.clip.path = "synthetic";
  p.clip.width = 80;
  p.clip.height = 60;
  p.clip.fps = 10;
  p.clip.frame_count = clip_frames;
  p.timeline = extend_layout(clip_frames, n);
  auto& r = p.generation.rollout;
  r.sampler.schedule.steps = 2;
  r.context = std::max(1, max_frames / 2);
  r.horizon = std::max(1, max_frames - r.context);
  r.seed = 42;
  return p;
}

JobOptions synthetic_source() {
  JobOptions o;
  o.source = [](int i) { return test_picture(i); };
  o.want_preview = false;
  return o;
}

}  // namespace

TEST_CASE("build_rollout_timeline marks kept frames, start levels and frames to generate",
          "[project][generation]") {
  Timeline t = extend_layout(4, 2);
  set_pinned(t, 1, false);
  set_noise(t, 1, 0.5);  // partial re-noising of a source frame
  set_pinned(t, 2, false);
  set_noise(t, 2, 0.0);  // unpinned at level 0: kept as it is
  set_noise(t, 5, 0.3);  // a new frame without content: generated from noise anyway
  std::vector<Frame> content = {
      test_picture(0), test_picture(1), test_picture(2), test_picture(3), {}, {}};
  const auto tl = build_rollout_timeline(t, content);
  REQUIRE(tl.size() == 6);
  CHECK(tl[0].pinned);
  CHECK(tl[0].content == content[0]);
  CHECK_FALSE(tl[1].pinned);
  CHECK(tl[1].start_level == 0.5);
  CHECK(tl[2].pinned);
  CHECK_FALSE(tl[4].pinned);
  CHECK(tl[4].content.empty());
  CHECK(tl[5].start_level == 1.0);

  const auto tail = build_rollout_timeline(t, content, 3);
  REQUIRE(tail.size() == 3);
  CHECK(tail[0].content == content[3]);

  set_pinned(t, 4, true);
  CHECK_THROWS_WITH(build_rollout_timeline(t, content),
                    Catch::Contains("frame 4 is pinned but has no picture"));
}

TEST_CASE("fit_to_model letterboxes, crops and stretches to the model's size",
          "[project][generation]") {
  const Frame wide = test_picture(0, 160, 60);
  const Frame box = fit_to_model(wide, 64, 48, FitMode::Letterbox);
  CHECK(box.width == 64);
  CHECK(box.height == 48);
  // Letterbox of a 8:3 picture into 4:3 leaves black rows at the top.
  CHECK(box.row(0)[0] == 0);
  CHECK(box.row(0)[3 * 32 + 1] == 0);
  const Frame crop = fit_to_model(wide, 64, 48, FitMode::Crop);
  CHECK(crop.row(0)[3 * 32 + 1] != 0);  // crop fills the box
  CHECK(fit_to_model(wide, 64, 48, FitMode::Stretch).byte_size() == 64u * 48 * 3);
  const Frame same = test_picture(3, 64, 48);
  CHECK(fit_to_model(same, 64, 48, FitMode::Crop) == same);  // already the right size: untouched
  CHECK_THROWS_AS(fit_to_model(Frame{}, 64, 48, FitMode::Letterbox), Error);
}

TEST_CASE("fit_window_to_model shrinks the horizon first", "[project][generation]") {
  dfs::diffusion::ModelInfo info;
  info.max_frames = 6;
  GenerationSettings s;
  s.rollout.context = 4;
  s.rollout.horizon = 4;
  CHECK(fit_window_to_model(s, info));
  CHECK(s.rollout.context == 4);
  CHECK(s.rollout.horizon == 2);
  CHECK_FALSE(fit_window_to_model(s, info));
  s.rollout.context = 9;
  CHECK(fit_window_to_model(s, info));
  CHECK(s.rollout.context + s.rollout.horizon <= 6);
  CHECK(s.rollout.horizon >= 1);
}

TEST_CASE("extending the sample clip gives N new frames and the pinned frames bit-identical",
          "[project][generation]") {
  auto& model = tiny_model();
  const auto& info = model.info();
  Project p;
  p.clip.path = kSampleClip;
  p.clip.frame_count = static_cast<int>(dfs::media::probe(kSampleClip).frame_count);
  p.clip.fps = 10;
  REQUIRE(p.clip.frame_count == 75);
  const int n = 3;
  p.timeline = extend_layout(12, n);
  p.timeline.source_first = 75 - 12;  // the clip's last 12 frames
  p.generation.rollout.sampler.schedule.steps = 2;
  p.generation.rollout.context = std::max(1, info.max_frames / 2);
  p.generation.rollout.horizon = std::max(1, info.max_frames - p.generation.rollout.context);
  GenerationJob job(p, model, JobOptions{});
  CHECK(job.frames_to_generate() == n);
  CHECK(job.first_rollout_position() == 12 - p.generation.rollout.context);
  REQUIRE_FALSE(job.windows().empty());

  MemorySink sink;
  int progress_calls = 0;
  const GenerationResult r = job.run(sink, [&](const GenerationProgress&) { ++progress_calls; });
  CHECK_FALSE(r.cancelled);
  CHECK(progress_calls > 0);
  CHECK(sink.finished());
  CHECK_FALSE(sink.cancelled());
  REQUIRE(sink.positions().size() == 15u);
  CHECK(r.generated == std::vector<int>{12, 13, 14});
  CHECK(sink.format().width == info.width);

  // Every pinned frame equals the decoded clip frame fitted to the model: bit-identical.
  const auto decoded = dfs::media::read_frames(kSampleClip, 63, 74);
  REQUIRE(decoded.size() == 12u);
  for (int i = 0; i < 12; ++i) {
    INFO("position " << i);
    CHECK(sink.origin(i) == FrameOrigin::Source);
    CHECK(sink.frame(i) == fit_to_model(decoded[static_cast<size_t>(i)].image, info.width,
                                        info.height, FitMode::Letterbox));
  }
  for (int i = 12; i < 15; ++i) {
    CHECK(sink.origin(i) == FrameOrigin::Generated);
    CHECK(sink.frame(i).width == info.width);
    CHECK(sink.frame(i).height == info.height);
  }
}

TEST_CASE("same seed and settings give identical frames, another seed differs",
          "[project][generation]") {
  auto& model = tiny_model();
  const Project p = synthetic_extend(4, 2, model.info().max_frames);
  MemorySink a, b, c;
  GenerationJob(p, model, synthetic_source()).run(a);
  GenerationJob(p, model, synthetic_source()).run(b);
  Project other = p;
  other.generation.rollout.seed = 43;
  GenerationJob(other, model, synthetic_source()).run(c);
  CHECK(a.frame(4) == b.frame(4));
  CHECK(a.frame(5) == b.frame(5));
  CHECK_FALSE(a.frame(5) == c.frame(5));
}

TEST_CASE("cancel keeps the frames finished before it, in order", "[project][generation]") {
  auto& model = tiny_model();
  const int max_frames = model.info().max_frames;
  Project p = synthetic_extend(4, 6, max_frames);
  p.generation.rollout.context = 1;
  p.generation.rollout.horizon = 1;  // one frame per window: 6 windows
  std::atomic<bool> cancel{false};
  GenerationJob job(p, model, synthetic_source());
  MemorySink sink;
  const GenerationResult r = job.run(
      sink,
      [&](const GenerationProgress& g) {
        if (g.frames_final >= 2) cancel = true;
      },
      &cancel);
  CHECK(r.cancelled);
  CHECK(sink.cancelled());
  REQUIRE(r.generated.size() >= 2u);
  CHECK(r.generated.size() < 6u);
  // What was kept is a prefix of the timeline: the source frames, then the first generated.
  const auto positions = sink.positions();
  for (size_t i = 0; i < positions.size(); ++i) CHECK(positions[i] == static_cast<int>(i));
  for (int g : r.generated) {
    CHECK(sink.has(g));
    CHECK(sink.origin(g) == FrameOrigin::Generated);
  }

  // Cancelled before it starts: nothing generated, the sink still finished.
  std::atomic<bool> early{true};
  MemorySink none;
  const GenerationResult r2 = GenerationJob(p, model, synthetic_source()).run(none, {}, &early);
  CHECK(r2.cancelled);
  CHECK(r2.generated.empty());
  CHECK(none.finished());
}

TEST_CASE("regenerating a range changes only that range", "[project][generation]") {
  auto& model = tiny_model();
  Project p = synthetic_extend(8, 1, model.info().max_frames);
  p.timeline = regenerate_layout(8, 3, 4, 0.6);
  JobOptions o = synthetic_source();
  MemorySink sink;
  const auto r = GenerationJob(p, model, o).run(sink);
  CHECK(r.generated == std::vector<int>{3, 4});
  const auto& info = model.info();
  for (int i : {0, 1, 2, 5, 6, 7})
    CHECK(sink.frame(i) ==
          fit_to_model(test_picture(i), info.width, info.height, FitMode::Letterbox));
  CHECK(sink.origin(3) == FrameOrigin::Generated);
}

TEST_CASE("a pinned new frame uses its previous result, unchanged", "[project][generation]") {
  auto& model = tiny_model();
  const auto& info = model.info();
  Project p = synthetic_extend(3, 3, info.max_frames);
  set_pinned(p.timeline, 3, true);
  CHECK_THROWS_WITH(GenerationJob(p, model, synthetic_source()),
                    Catch::Contains("frame 3 is pinned but has no picture"));
  JobOptions o = synthetic_source();
  o.previous[3] = test_picture(99, info.width, info.height);
  MemorySink sink;
  const auto r = GenerationJob(p, model, o).run(sink);
  CHECK(r.generated == std::vector<int>{4, 5});
  CHECK(sink.origin(3) == FrameOrigin::Previous);
  CHECK(sink.frame(3) == o.previous[3]);
}

TEST_CASE("jobs that cannot run are refused with a message before anything runs",
          "[project][generation]") {
  auto& model = tiny_model();
  const int max_frames = model.info().max_frames;
  Project p = synthetic_extend(4, 2, max_frames);
  p.generation.rollout.context = max_frames;
  p.generation.rollout.horizon = 1;
  CHECK_THROWS_WITH(GenerationJob(p, model, synthetic_source()),
                    Catch::Contains("exceeds the model's window"));
  Project all_pinned = synthetic_extend(4, 1, max_frames);
  all_pinned.timeline = regenerate_layout(4, 1, 1);
  set_pinned(all_pinned.timeline, 1, true);
  CHECK_THROWS_WITH(GenerationJob(all_pinned, model, synthetic_source()),
                    Catch::Contains("nothing to generate"));
  Project no_clip = synthetic_extend(4, 2, max_frames);
  no_clip.clip.path = (fs::temp_directory_path() / "dfs_no_such_clip.mp4").string();
  MemorySink sink;
  GenerationJob job(no_clip, model, JobOptions{});
  CHECK_THROWS_WITH(job.run(sink), Catch::Contains("dfs_no_such_clip.mp4"));
  CHECK(sink.finished());
  CHECK(sink.cancelled());
}

TEST_CASE("an exported MP4 carries the settings and they restore the project",
          "[project][generation][metadata]") {
  auto& model = tiny_model();
  const auto& info = model.info();
  TempDir dir;
  Project p = synthetic_extend(3, 2, info.max_frames);
  p.generation.rollout.seed = 777;
  p.generation.rollout.sampler.schedule.shape = dfs::diffusion::ScheduleShape::Trapezoid;
  p.export_settings.path = (dir.path / "out.mp4").string();
  p.export_settings.scale = 2;
  EncoderSink sink(p.export_settings, generation_metadata_json(p, &info));
  GenerationJob(p, model, synthetic_source()).run(sink);
  CHECK(sink.frames_written() == 5);

  const auto probe = dfs::media::probe(p.export_settings.path);
  CHECK(probe.frame_count == 5);
  CHECK(probe.width == info.width * 2);
  CHECK(probe.height == info.height * 2);
  CHECK(probe.fps == Approx(10.0));

  Project restored;
  restore_from_exported_file(restored, p.export_settings.path);
  CHECK(restored.generation.rollout.seed == 777);
  CHECK(restored.generation.rollout.sampler.schedule.shape ==
        dfs::diffusion::ScheduleShape::Trapezoid);
  CHECK(restored.timeline == p.timeline);
  CHECK(restored.clip.path == "synthetic");
  RestoreOptions only_settings;
  only_settings.timeline = only_settings.clip = only_settings.model = false;
  Project keep;
  restore_from_exported_file(keep, p.export_settings.path, only_settings);
  CHECK(keep.timeline.length() == 0);
  CHECK(keep.generation.rollout.seed == 777);

  // Export "generated only" to a GIF: two frames.
  Project g = p;
  g.export_settings.path = (dir.path / "gen.gif").string();
  g.export_settings.format = ExportFormat::Gif;
  g.export_settings.range = ExportRange::Generated;
  EncoderSink gif(g.export_settings, generation_metadata_json(g, &info));
  GenerationJob(g, model, synthetic_source()).run(gif);
  CHECK(gif.frames_written() == 2);
  CHECK(dfs::media::read_generation_metadata(g.export_settings.path).has_value());
}

TEST_CASE("restoring from a file without settings or from foreign JSON is refused clearly",
          "[project][metadata]") {
  Project p;
  CHECK_THROWS_WITH(restore_from_exported_file(p, kSampleClip),
                    Catch::Contains("carries no generation settings"));
  CHECK_THROWS_WITH(restore_from_metadata(p, "{\"format\": \"other\"}"),
                    Catch::Contains("not Diffusion Forcing Studio"));
  CHECK_THROWS_WITH(restore_from_metadata(p, "]"), Catch::Contains("not valid JSON"));
  const std::string bad =
      "{\"format\": \"dfstudio-generation\", \"format_version\": 1, \"settings\": {\"steps\": -4}}";
  CHECK_THROWS_WITH(restore_from_metadata(p, bad), Catch::Contains("generation.steps"));
  CHECK(p == Project{});  // untouched
}

TEST_CASE("the demo model is found through DFS_MODEL and missing models fall back with a warning",
          "[project][model]") {
  TempDir dir;
  const std::string fake_exe = (dir.path / "bin" / "dforce").string();
  const fs::path model_file = dir.path / "m.safetensors";
  std::ofstream(model_file).put('x');
  ::setenv("DFS_MODEL", model_file.c_str(), 1);
  CHECK(find_demo_model(fake_exe) == model_file.string());
  ::unsetenv("DFS_MODEL");
  fs::create_directories(dir.path / "share" / "dfstudio" / "models");
  fs::copy_file(model_file, dir.path / "share" / "dfstudio" / "models" / "demo.safetensors");
  CHECK(fs::equivalent(find_demo_model(fake_exe),
                       dir.path / "share" / "dfstudio" / "models" / "demo.safetensors"));

  const std::string lonely_exe = (dir.path / "a" / "b" / "c" / "dforce").string();
  if (find_demo_model(lonely_exe).empty()) {  // no models/ in the working directory either
    std::string warning;
    auto model = load_model_or_demo("", lonely_exe, &warning, "cpu");
    CHECK_THAT(warning, Catch::Contains("randomly initialised"));
    CHECK(model.info().width > 0);
  }
  std::string warning;
  CHECK_THROWS_WITH(
      load_model_or_demo((dir.path / "typo.safetensors").string(), lonely_exe, &warning),
      Catch::Contains("typo.safetensors' does not exist"));
  // A file that exists but is not a model is reported, never replaced by the fallback.
  CHECK_THROWS_WITH(load_model_or_demo(model_file.string(), lonely_exe, &warning),
                    Catch::Contains("m.safetensors"));
}

TEST_CASE("plan_generation needs no weights and matches the job's windows",
          "[project][generation]") {
  auto& model = tiny_model();
  Project p = synthetic_extend(10, 5, model.info().max_frames);
  const GenerationPlan plan = plan_generation(p, model.info());
  GenerationJob job(p, model, synthetic_source());
  CHECK(plan.start == job.first_rollout_position());
  CHECK(plan.frames_to_generate == 5);
  REQUIRE(plan.windows.size() == job.windows().size());
  for (size_t w = 0; w < plan.windows.size(); ++w) {
    CHECK(plan.windows[w].frames == job.windows()[w].frames);
    CHECK(plan.windows[w].known == job.windows()[w].known);
  }
  // Every window's known frames come before or among its generated ones, and all generated
  // positions are covered exactly once.
  std::vector<int> generated;
  for (const auto& w : plan.windows)
    for (size_t i = 0; i < w.frames.size(); ++i)
      if (!w.known[i]) generated.push_back(w.frames[i]);
  CHECK(generated == std::vector<int>{10, 11, 12, 13, 14});
  set_pinned(p.timeline, 12, true);
  CHECK_THROWS_WITH(plan_generation(p, model.info()),
                    Catch::Contains("frame 12 is pinned but has no picture"));
  CHECK_NOTHROW(plan_generation(p, model.info(), {12}));
}

TEST_CASE("the PNG cache keeps generated frames and the tee feeds every sink",
          "[project][generation]") {
  auto& model = tiny_model();
  TempDir dir;
  Project p = synthetic_extend(3, 2, model.info().max_frames);
  p.results.cache_dir = (dir.path / "cache").string();
  MemorySink a, b;
  TeeSink tee({&a, &b});
  PngCacheSink cache(p.results.cache_dir, &tee);
  const auto r = GenerationJob(p, model, synthetic_source()).run(cache);
  CHECK(a.positions() == b.positions());
  CHECK(a.positions().size() == 5u);
  for (int g : r.generated) {
    const std::string png = p.results.cached_frame_path(g);
    REQUIRE(fs::exists(png));
    CHECK(dfs::media::read_image(png) == a.frame(g));  // PNG is lossless
  }
  CHECK_FALSE(fs::exists(p.results.cached_frame_path(0)));  // source frames are not cached
}

TEST_CASE("generation settings JSON round trips and rejects bad values", "[project][json]") {
  GenerationSettings s;
  s.rollout.sampler.schedule.shape = dfs::diffusion::ScheduleShape::FullSequence;
  s.rollout.sampler.guidance.mode = dfs::diffusion::GuidanceMode::Vanilla;
  s.rollout.sampler.guidance.scale = 3;
  s.rollout.seed = 99;
  s.seed_locked = false;
  const GenerationSettings back = settings_from_json(settings_to_json(s));
  Project x, y;
  x.generation = s;
  y.generation = back;
  CHECK(x == y);
  CHECK_THROWS_WITH(settings_from_json("{\"guidance\": {\"scale\": -1}}"),
                    Catch::Contains("generation.guidance.scale"));
  CHECK_THROWS_WITH(settings_from_json("{\"guidance\": {\"mode\": \"loud\"}}"),
                    Catch::Contains("generation.guidance.mode"));
}

TEST_CASE("a new frame with a previous result is re-noised from it at its level",
          "[project][generation]") {
  auto& model = tiny_model();
  const auto& info = model.info();
  Project p = synthetic_extend(3, 2, info.max_frames);
  set_noise(p.timeline, 3, 0.4);
  JobOptions o = synthetic_source();
  o.previous[3] = test_picture(50, info.width, info.height);
  const GenerationPlan plan = plan_generation(p, info, {3});
  CHECK(plan.has_content[3]);
  CHECK_FALSE(plan.kept[3]);
  MemorySink with_previous, from_noise;
  GenerationJob(p, model, o).run(with_previous);
  GenerationJob(p, model, synthetic_source()).run(from_noise);
  CHECK(with_previous.origin(3) == FrameOrigin::Generated);
  // Starting at 0.4 from a picture is not the same as starting from pure noise.
  CHECK_FALSE(with_previous.frame(3) == from_noise.frame(3));
  // Level 0 over a previous result keeps it bit-identical.
  set_noise(p.timeline, 3, 0.0);
  MemorySink kept;
  GenerationJob(p, model, o).run(kept);
  CHECK(kept.origin(3) == FrameOrigin::Previous);
  CHECK(kept.frame(3) == o.previous[3]);
}

TEST_CASE("schedule and guidance settings reach the engine", "[project][generation]") {
  auto& model = tiny_model();
  const Project base = synthetic_extend(3, 2, model.info().max_frames);
  MemorySink plain, guided, full;
  GenerationJob(base, model, synthetic_source()).run(plain);
  Project g = base;
  g.generation.rollout.sampler.guidance.mode = dfs::diffusion::GuidanceMode::Vanilla;
  g.generation.rollout.sampler.guidance.scale = 3.0;
  GenerationJob(g, model, synthetic_source()).run(guided);
  Project f = base;
  f.generation.rollout.sampler.schedule.shape = dfs::diffusion::ScheduleShape::Autoregressive;
  GenerationJob job(f, model, synthetic_source());
  // Autoregressive: the last frame starts only after the first is done, so more rows.
  CHECK(job.windows().at(0).matrix.rows >
        plan_generation(base, model.info()).windows.at(0).matrix.rows);
  job.run(full);
  CHECK_FALSE(plain.frame(4) == guided.frame(4));
  CHECK_FALSE(plain.frame(4) == full.frame(4));
}

TEST_CASE("frames far from the generated ones are streamed, and not decoded when not wanted",
          "[project][generation]") {
  auto& model = tiny_model();
  const auto& info = model.info();
  Project p = synthetic_extend(60, 1, info.max_frames);
  p.timeline = regenerate_layout(60, 30, 31, 1.0);
  int reads = 0;
  JobOptions o = synthetic_source();
  o.source = [&reads](int i) {
    ++reads;
    return test_picture(i);
  };
  GenerationJob job(p, model, o);
  CHECK(job.first_rollout_position() == 30 - p.generation.rollout.context);
  CHECK(job.rollout_end() < 60);
  CHECK(job.rollout_end() > 31);
  MemorySink all;
  const auto r = job.run(all);
  CHECK(r.generated == std::vector<int>{30, 31});
  const auto positions = all.positions();
  REQUIRE(positions.size() == 60u);
  for (int i = 0; i < 60; ++i) CHECK(positions[static_cast<size_t>(i)] == i);
  for (int i : {0, 29, 32, 59})
    CHECK(all.frame(i) ==
          fit_to_model(test_picture(i), info.width, info.height, FitMode::Letterbox));
  CHECK(reads == 58);  // each clip frame read once, except the two regenerated from noise

  // Generated frames only: the clip is read just where the windows need it.
  reads = 0;
  JobOptions only = o;
  only.emit_all = false;
  GenerationJob lean(p, model, only);
  MemorySink generated;
  lean.run(generated);
  CHECK(generated.positions() == std::vector<int>{30, 31});
  CHECK(reads == lean.rollout_end() - lean.first_rollout_position() - 2);
  CHECK(generated.frame(30) == all.frame(30));  // same frames either way
}
