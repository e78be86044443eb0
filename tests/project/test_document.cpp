// Tests of dfs/project/document.h: layouts, validation, JSON, atomic save, undo/redo.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "dfs/project/document.h"
#include "project_test_util.h"

namespace fs = std::filesystem;
using namespace dfs::project;

using dfs::project::test::TempDir;

namespace {

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A project that uses every field with non-default values.
Project sample_project() {
  Project p;
  p.clip.path = "clips/vtest_clip.mp4";
  p.clip.width = 320;
  p.clip.height = 240;
  p.clip.fps = 10;
  p.clip.frame_count = 75;
  p.clip.duration_s = 7.5;
  p.clip.codec = "h264";
  p.clip.fit = FitMode::Crop;
  p.model_path = "models/demo.safetensors";
  p.timeline = extend_layout(20, 6);
  p.timeline.source_first = 55;
  set_noise(p.timeline, 21, 0.25);
  set_pinned(p.timeline, 3, false);
  auto& r = p.generation.rollout;
  r.sampler.schedule.shape = dfs::diffusion::ScheduleShape::AsyncBlocks;
  r.sampler.schedule.steps = 17;
  r.sampler.schedule.uncertainty = 2.5;
  r.sampler.schedule.ar_step = 3;
  r.sampler.schedule.block = 4;
  r.sampler.eta = 0.3;
  r.sampler.stabilization_user = 0.05;
  r.sampler.stabilization_generated = 0.07;
  r.sampler.guidance.mode = dfs::diffusion::GuidanceMode::Fractional;
  r.sampler.guidance.scale = 2.5;
  r.sampler.guidance.fractional_level = 0.3;
  r.context = 3;
  r.horizon = 5;
  r.seed = 18446744073709551557ull;  // needs all 64 bits
  r.kv_cache = false;
  r.detail_transfer = false;
  p.generation.seed_locked = false;
  p.export_settings.format = ExportFormat::WebM;
  p.export_settings.path = "out/x.webm";
  p.export_settings.range = ExportRange::InOut;
  p.export_settings.in = 2;
  p.export_settings.out = 9;
  p.export_settings.scale = 2;
  p.export_settings.smooth = false;
  p.export_settings.fps = 12.5;
  p.export_settings.quality = 55;
  p.results.generated.assign(26, false);
  p.results.generated[20] = p.results.generated[25] = true;
  p.results.cache_dir = "cache";
  p.results.seed = 7;
  p.results.seconds = 3.25;
  p.takes.folder = "clip_takes";
  p.takes.current = 2;
  return p;
}

// The JSON of the sample project with one edit applied through a string replacement.
std::string sample_json_with(const std::string& from, const std::string& to) {
  std::string text = to_json(sample_project());
  const auto at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  return text;
}

std::string load_error(const std::string& text) {
  try {
    (void)project_from_json(text);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("extend layout pins every clip frame and adds N frames from noise",
          "[project][timeline]") {
  const Timeline t = extend_layout(10, 4);
  CHECK(t.length() == 14);
  CHECK(t.new_frames == 4);
  CHECK(t.pins.size() == 10);
  for (int i = 0; i < 10; ++i) {
    CHECK(t.pinned(i));
    CHECK(t.noise[i] == 0.0);
  }
  for (int i = 10; i < 14; ++i) {
    CHECK_FALSE(t.pinned(i));
    CHECK(t.noise[i] == 1.0);
    CHECK_FALSE(t.is_source(i));
  }
  CHECK_THROWS_AS(extend_layout(10, 0), Error);
}

TEST_CASE("regenerate and fill-gap layouts leave only the chosen frames unpinned",
          "[project][timeline]") {
  const Timeline r = regenerate_layout(12, 4, 6, 0.6);
  CHECK(r.length() == 12);
  CHECK(r.new_frames == 0);
  for (int i = 0; i < 12; ++i) {
    const bool inside = i >= 4 && i <= 6;
    CHECK(r.pinned(i) == !inside);
    CHECK(r.noise[i] == (inside ? 0.6 : 0.0));
  }
  const Timeline g = fill_gap_layout(12, 2, 9);
  for (int i = 0; i < 12; ++i) CHECK(g.pinned(i) == (i <= 2 || i >= 9));
  CHECK(g.noise[5] == 1.0);
  CHECK_THROWS_AS(fill_gap_layout(12, 4, 5), Error);     // nothing between the pins
  CHECK_THROWS_AS(regenerate_layout(12, 5, 12), Error);  // past the clip
  CHECK_THROWS_AS(regenerate_layout(12, 1, 2, 1.5), Error);
}

TEST_CASE("timeline edits reject positions and levels outside the timeline",
          "[project][timeline]") {
  Timeline t = extend_layout(4, 2);
  CHECK_THROWS_WITH(set_pinned(t, 6, true), Catch::Contains("outside the timeline"));
  CHECK_THROWS_WITH(set_noise(t, 1, -0.1), Catch::Contains("[0, 1]"));
  CHECK_THROWS_AS(set_noise(t, 1, std::nan("")), Error);
  set_noise_range(t, 5, 2, 0.4);  // reversed range is accepted
  for (int i = 2; i <= 5; ++i) CHECK(t.noise[i] == 0.4);
  set_new_frames(t, 1);
  CHECK(t.length() == 5);
  CHECK(t.noise.size() == 5);
  set_pinned(t, 4, true);
  set_new_frames(t, 0);
  CHECK(t.pins.count(4) == 0);  // pins beyond the end go away with the frames
}

TEST_CASE("project JSON round trip preserves every field", "[project][json]") {
  const Project p = sample_project();
  const std::string text = to_json(p);
  const Project q = project_from_json(text);
  CHECK(q == p);
  CHECK(q.generation.rollout.seed == 18446744073709551557ull);
  CHECK(to_json(q) == text);  // stable output: saving twice gives the same file
  CHECK(text.find("\"format\": \"dfstudio-project\"") != std::string::npos);
  CHECK(text.find("\"format_version\": 1") != std::string::npos);
}

TEST_CASE("out-of-range values in a project file are rejected naming the field",
          "[project][json][validation]") {
  CHECK_THAT(load_error(sample_json_with("\"steps\": 17", "\"steps\": 0")),
             Catch::Contains("generation.steps must be in 1..1000 (got 0)"));
  CHECK_THAT(load_error(sample_json_with("\"eta\": 0.3", "\"eta\": 1.5")),
             Catch::Contains("generation.eta must be in [0, 1] (got 1.5)"));
  CHECK_THAT(load_error(sample_json_with("0.25", "1.25")), Catch::Contains("timeline.noise[21]"));
  CHECK_THAT(load_error(sample_json_with("\"fractional_level\": 0.3", "\"fractional_level\": 1.0")),
             Catch::Contains("generation.guidance.fractional_level"));
  CHECK_THAT(load_error(sample_json_with("\"scale\": 2", "\"scale\": 3")),
             Catch::Contains("export.scale must be 1, 2 or 4"));
  CHECK_THAT(load_error(sample_json_with("\"horizon\": 5", "\"horizon\": -2")),
             Catch::Contains("generation.horizon"));
  CHECK_THAT(load_error(sample_json_with("\"new_frames\": 6", "\"new_frames\": 7")),
             Catch::Contains("timeline.noise has 26 levels but the timeline has 27 frames"));
  CHECK_THAT(load_error(sample_json_with("\"source_first\": 55", "\"source_first\": 60")),
             Catch::Contains("run past the clip's 75 frames"));
}

TEST_CASE("mistyped and unknown values in a project file are named",
          "[project][json][validation]") {
  CHECK_THAT(load_error(sample_json_with("\"steps\": 17", "\"steps\": \"many\"")),
             Catch::Contains("generation.steps must be an integer (got a string)"));
  CHECK_THAT(
      load_error(sample_json_with("\"schedule\": \"async_blocks\"", "\"schedule\": \"zigzag\"")),
      Catch::Contains("generation.schedule"));
  CHECK_THAT(load_error(sample_json_with("\"fit\": \"crop\"", "\"fit\": \"squash\"")),
             Catch::Contains("clip.fit: unknown fit mode 'squash'"));
  CHECK_THAT(load_error(sample_json_with("\"seed_locked\": false", "\"seed_locked\": 3")),
             Catch::Contains("generation.seed_locked must be true or false"));
}

TEST_CASE("malformed, foreign and newer project files are refused with a clear message",
          "[project][json]") {
  CHECK_THAT(load_error("{ not json"), Catch::Contains("not valid JSON"));
  // A number no double holds: nlohmann throws out_of_range, not parse_error (fuzz_project's
  // first finding; it used to escape as an unexpected exception).
  CHECK_THAT(load_error("\t9e9999e"), Catch::Contains("not valid JSON"));
  CHECK_THAT(load_error(sample_json_with("\"eta\": 0.3", "\"eta\": 1e999")),
             Catch::Contains("not valid JSON"));
  CHECK_THAT(load_error("[1, 2]"), Catch::Contains("must be a JSON object"));
  CHECK_THAT(load_error("{\"format\": \"something-else\"}"),
             Catch::Contains("not a Diffusion Forcing Studio project"));
  CHECK_THAT(load_error(sample_json_with("\"format_version\": 1", "\"format_version\": 99")),
             Catch::Contains("newer Diffusion Forcing Studio"));
  CHECK_THAT(load_error("{\"format\": \"dfstudio-project\", \"format_version\": 1}"),
             Catch::Contains("project.timeline is missing"));
}

TEST_CASE("validation lists every problem and checks the model's window", "[project][validation]") {
  Project p = sample_project();
  CHECK(validation_problems(p).empty());
  CHECK(validation_problems(p, 8) == std::vector<std::string>{});
  const auto window = validation_problems(p, 6);
  REQUIRE(window.size() == 1);
  CHECK_THAT(window[0], Catch::Contains("exceeds the model's window of 6 frames"));
  p.generation.rollout.sampler.schedule.steps = 0;
  p.generation.rollout.sampler.eta = -1;
  p.timeline.pins.insert(99);
  CHECK(validation_problems(p).size() == 3);
  CHECK_THROWS_WITH(validate(p), Catch::Contains("timeline.pins contains 99"));
  p = sample_project();
  p.clip = ClipRef{};
  CHECK_THAT(validation_problems(p).at(0), Catch::Contains("no clip"));
}

TEST_CASE("atomic save writes the file and leaves no temporary files", "[project][save]") {
  TempDir dir;
  Document doc(sample_project());
  const fs::path file = dir.path / "a.dfsproj.json";
  doc.save_as(file.string());
  CHECK_FALSE(doc.dirty());
  CHECK(doc.path() == file.string());
  const Document back = Document::load(file.string());
  CHECK(back.project() == doc.project());
  // Saving again over it replaces it; the folder holds exactly one file.
  doc.edit("Pin 3", [](Project& p) { set_pinned(p.timeline, 3, true); });
  doc.save();
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir.path)) {
    ++files;
    CHECK(entry.path().filename() == "a.dfsproj.json");
  }
  CHECK(files == 1);
  CHECK(Document::load(file.string()).project().timeline.pinned(3));
}

TEST_CASE("a failed save leaves the previous file intact", "[project][save]") {
  TempDir dir;
  const fs::path file = dir.path / "p.json";
  Document doc(sample_project());
  doc.save_as(file.string());
  const std::string before = read_all(file);

  // The target turned into a non-empty folder: rename() cannot replace it.
  const fs::path blocked = dir.path / "blocked.json";
  fs::create_directories(blocked / "inside");
  CHECK_THROWS_WITH(doc.save_as(blocked.string()), Catch::Contains("it is a folder"));
  CHECK_THROWS_WITH(write_file_atomically((dir.path / "missing" / "p.json").string(), "{}"),
                    Catch::Contains("does not exist"));
  // A failed save changes neither the document's file name nor the existing file.
  CHECK(doc.path() == file.string());
  CHECK(read_all(file) == before);
  for (const auto& entry : fs::directory_iterator(dir.path))
    CHECK(entry.path().filename().string().find(".partial-") == std::string::npos);
}

TEST_CASE("loading a missing, empty or non-project file names the file", "[project][save]") {
  TempDir dir;
  CHECK_THROWS_WITH(Document::load((dir.path / "nope.json").string()),
                    Catch::Contains("nope.json': no such file"));
  std::ofstream((dir.path / "empty.json").string()).close();
  CHECK_THROWS_WITH(Document::load((dir.path / "empty.json").string()),
                    Catch::Contains("not valid JSON"));
  CHECK_THROWS_WITH(Document::load(dir.path.string()), Catch::Contains("it is a folder"));
}

TEST_CASE("undo and redo restore pins, noise and settings edits", "[project][undo]") {
  Document doc(sample_project());
  const Project original = doc.project();
  CHECK_FALSE(doc.can_undo());
  CHECK(doc.edit("Unpin frame 5", [](Project& p) { set_pinned(p.timeline, 5, false); }));
  CHECK(doc.edit("Noise 0.5", [](Project& p) { set_noise_range(p.timeline, 20, 22, 0.5); }));
  CHECK(doc.edit("Steps 30", [](Project& p) { p.generation.rollout.sampler.schedule.steps = 30; }));
  const Project edited = doc.project();
  CHECK(doc.undo_label() == "Steps 30");

  REQUIRE(doc.undo());
  CHECK(doc.project().generation.rollout.sampler.schedule.steps == 17);
  REQUIRE(doc.undo());
  CHECK(doc.project().timeline.noise[21] == 0.25);
  REQUIRE(doc.undo());
  CHECK(doc.project() == original);
  CHECK_FALSE(doc.undo());
  CHECK(doc.redo_label() == "Unpin frame 5");

  REQUIRE(doc.redo());
  REQUIRE(doc.redo());
  REQUIRE(doc.redo());
  CHECK(doc.project() == edited);
  CHECK_FALSE(doc.redo());

  // A new edit after an undo drops the redo branch.
  doc.undo();
  doc.edit("Seed", [](Project& p) { p.generation.rollout.seed = 1; });
  CHECK_FALSE(doc.can_redo());
}

TEST_CASE("edits with the same merge key form one undo step", "[project][undo]") {
  Document doc(sample_project());
  for (int i = 1; i <= 7; ++i)
    doc.edit(
        "Noise", [i](Project& p) { set_noise(p.timeline, 22, i / 10.0); }, "noise-drag");
  CHECK(doc.project().timeline.noise[22] == 0.7);
  doc.end_merge();
  doc.edit(
      "Noise", [](Project& p) { set_noise(p.timeline, 22, 0.0); }, "noise-drag");
  REQUIRE(doc.undo());
  CHECK(doc.project().timeline.noise[22] == 0.7);
  REQUIRE(doc.undo());
  CHECK(doc.project().timeline.noise[22] == 1.0);  // the level before the drag (new frame: 1)
  CHECK_FALSE(doc.can_undo());
}

TEST_CASE("an invalid or empty edit changes nothing and records no step", "[project][undo]") {
  Document doc(sample_project());
  const auto rev = doc.revision();
  CHECK_THROWS_WITH(
      doc.edit("Bad steps", [](Project& p) { p.generation.rollout.sampler.schedule.steps = 5000; }),
      Catch::Contains("generation.steps"));
  CHECK_THROWS_AS(doc.edit("Bad pin", [](Project& p) { set_pinned(p.timeline, 500, true); }),
                  Error);
  CHECK_FALSE(doc.edit("Same", [](Project& p) { set_noise(p.timeline, 21, 0.25); }));
  CHECK(doc.project() == sample_project());
  CHECK_FALSE(doc.can_undo());
  CHECK_FALSE(doc.dirty());
  CHECK(doc.revision() == rev);
}

TEST_CASE("undo keeps the generated results", "[project][undo]") {
  Document doc(sample_project());
  doc.edit("More frames", [](Project& p) { set_new_frames(p.timeline, 10); });
  Results r;
  r.generated.assign(30, false);
  r.generated[29] = true;
  r.generated[21] = true;
  doc.set_results(r);
  REQUIRE(doc.undo());
  CHECK(doc.project().timeline.length() == 26);
  CHECK(doc.project().results.generated.size() == 26);  // fitted to the restored timeline
  CHECK(doc.project().results.has(21));
  CHECK_NOTHROW(validate(doc.project()));
}

TEST_CASE("relative paths resolve against the project file's folder", "[project][save]") {
  TempDir dir;
  Document doc(sample_project());
  doc.save_as((dir.path / "p.json").string());
  const fs::path resolved = doc.resolve(doc.project().clip.path);
  CHECK(resolved == (dir.path / "clips" / "vtest_clip.mp4").lexically_normal());
  CHECK(doc.resolve("/abs/file.mp4") == "/abs/file.mp4");
  CHECK(doc.project().results.cached_frame_path(20) ==
        (fs::path("cache") / "frame_000020.png").string());
}

TEST_CASE("export format follows the output path", "[project][export]") {
  CHECK(export_format_from_path("a/b.mp4") == ExportFormat::Mp4);
  CHECK(export_format_from_path("B.WEBM") == ExportFormat::WebM);
  CHECK(export_format_from_path("x.gif") == ExportFormat::Gif);
  CHECK(export_format_from_path("take.MKV") == ExportFormat::Mkv);
  CHECK(export_format_from_path("frame.png") == ExportFormat::PngFrame);
  CHECK(export_format_from_path("frames/") == ExportFormat::PngSequence);
  CHECK(export_format_from_path("frames") == ExportFormat::PngSequence);
  CHECK_THROWS_WITH(export_format_from_path("x.docx"),
                    Catch::Contains("unknown extension '.docx'"));
}

TEST_CASE("project files store fit modes, export formats and ranges under their old names",
          "[project][json]") {
  Project p = sample_project();
  const std::string webm = to_json(p);
  CHECK(webm.find("\"fit\": \"crop\"") != std::string::npos);
  CHECK(webm.find("\"format\": \"webm\"") != std::string::npos);
  CHECK(webm.find("\"range\": \"in_out\"") != std::string::npos);
  p.clip.fit = FitMode::Letterbox;
  p.export_settings.format = ExportFormat::PngSequence;
  p.export_settings.range = ExportRange::Generated;
  const std::string png = to_json(p);
  CHECK(png.find("\"fit\": \"letterbox\"") != std::string::npos);
  CHECK(png.find("\"format\": \"png_sequence\"") != std::string::npos);
  CHECK(png.find("\"range\": \"generated\"") != std::string::npos);
  p.export_settings.format = ExportFormat::PngFrame;
  CHECK(to_json(p).find("\"format\": \"png_frame\"") != std::string::npos);
  // Older spellings still read.
  CHECK(fit_mode_from_string("pad") == FitMode::Letterbox);
  CHECK(export_format_from_string("png-seq") == ExportFormat::PngSequence);
  CHECK(export_format_from_string("png") == ExportFormat::PngFrame);
  CHECK(export_range_from_string("in-out") == ExportRange::InOut);
}

TEST_CASE("a project holds a concrete export format, never auto", "[project][validation]") {
  Project p = sample_project();
  p.export_settings.format = ExportFormat::Auto;
  const auto problems = validation_problems(p);
  REQUIRE(problems.size() == 1);
  CHECK_THAT(problems[0], Catch::Contains("export.format must be mp4, mkv, webm"));
  CHECK_THAT(problems[0], Catch::Contains("(got auto)"));
  CHECK_THAT(load_error(sample_json_with("\"format\": \"webm\"", "\"format\": \"auto\"")),
             Catch::Contains("export.format: unknown export format 'auto'"));
  p.export_settings.format = ExportFormat::Mkv;  // Matroska is a format a project may hold
  CHECK(validation_problems(p).empty());
  CHECK(project_from_json(to_json(p)) == p);
  CHECK(to_json(p).find("\"format\": \"mkv\"") != std::string::npos);
}

TEST_CASE("every generation setting takes part in a project's equality, so each change is an "
          "undo step",
          "[project][undo]") {
  // Structured bindings name every field: adding a field to one of these structs stops this
  // test compiling until the field is listed (and changed) here too.
  using dfs::diffusion::GuidanceMode;
  using dfs::diffusion::ScheduleShape;
  const std::vector<std::pair<std::string, std::function<void(Project&)>>> changes = {
      {"shape",
       [](Project& p) {
         auto& [shape, steps, uncertainty, ar_step, block] = p.generation.rollout.sampler.schedule;
         shape = shape == ScheduleShape::Pyramid ? ScheduleShape::Trapezoid : ScheduleShape::Pyramid;
         (void)steps, (void)uncertainty, (void)ar_step, (void)block;
       }},
      {"steps", [](Project& p) { p.generation.rollout.sampler.schedule.steps += 1; }},
      {"uncertainty", [](Project& p) { p.generation.rollout.sampler.schedule.uncertainty += 0.5; }},
      {"ar_step", [](Project& p) { p.generation.rollout.sampler.schedule.ar_step += 1; }},
      {"block", [](Project& p) { p.generation.rollout.sampler.schedule.block += 1; }},
      {"eta",
       [](Project& p) {
         auto& [schedule, solver, eta, stab_user, stab_generated, guidance] =
             p.generation.rollout.sampler;
         eta = eta == 0.5 ? 0.25 : 0.5;
         (void)schedule, (void)solver, (void)stab_user, (void)stab_generated, (void)guidance;
       }},
      {"solver",
       [](Project& p) {
         auto& s = p.generation.rollout.sampler;
         using dfs::diffusion::Solver;
         s.solver = s.solver == Solver::Ddim ? Solver::DpmPP2M : Solver::Ddim;
         s.eta = 0;
       }},
      {"stabilization_user", [](Project& p) { p.generation.rollout.sampler.stabilization_user += 0.01; }},
      {"stabilization_generated",
       [](Project& p) { p.generation.rollout.sampler.stabilization_generated += 0.01; }},
      {"guidance.mode",
       [](Project& p) {
         auto& [mode, scale, fractional] = p.generation.rollout.sampler.guidance;
         mode = mode == GuidanceMode::Vanilla ? GuidanceMode::Fractional : GuidanceMode::Vanilla;
         (void)scale, (void)fractional;
       }},
      {"guidance.scale", [](Project& p) { p.generation.rollout.sampler.guidance.scale += 0.5; }},
      {"guidance.fractional_level",
       [](Project& p) { p.generation.rollout.sampler.guidance.fractional_level += 0.2; }},
      {"context",
       [](Project& p) {
         auto& [sampler, context, horizon, seed, kv_cache, detail, exact] = p.generation.rollout;
         context -= 1;
         (void)sampler, (void)horizon, (void)seed, (void)kv_cache, (void)detail, (void)exact;
       }},
      {"horizon", [](Project& p) { p.generation.rollout.horizon -= 1; }},
      {"seed", [](Project& p) { p.generation.rollout.seed += 1; }},
      {"kv_cache", [](Project& p) { p.generation.rollout.kv_cache = !p.generation.rollout.kv_cache; }},
      {"detail_transfer",
       [](Project& p) { p.generation.rollout.detail_transfer = !p.generation.rollout.detail_transfer; }},
      {"exact", [](Project& p) { p.generation.rollout.exact = !p.generation.rollout.exact; }},
      {"seed_locked",
       [](Project& p) {
         auto& [rollout, seed_locked] = p.generation;
         seed_locked = !seed_locked;
         (void)rollout;
       }},
  };
  for (const auto& [field, change] : changes) {
    INFO(field);
    Document doc(sample_project());
    Project changed = doc.project();
    change(changed);
    CHECK(changed != doc.project());
    CHECK(doc.edit("Change " + field, change));
    CHECK(doc.can_undo());
    CHECK(doc.dirty());
  }
}
