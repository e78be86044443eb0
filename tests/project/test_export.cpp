// project::export_project — the one export path of the Studio and `dforce export <project>`:
// a saved project's clip frames and generated frames come out in timeline order, exactly, and a
// cancelled or failed export leaves nothing under the final name.
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <catch2/catch.hpp>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/media/decoder.h"
#include "dfs/media/encoder.h"
#include "dfs/media/probe.h"
#include "dfs/project/document.h"
#include "dfs/project/export.h"
#include "dfs/project/generation.h"
#include "project_test_util.h"

namespace fs = std::filesystem;
using namespace dfs::project;
using dfs::Frame;

using dfs::project::test::TempDir;

namespace {

using dfs::project::test::kSampleClip;

dfs::diffusion::ModelInfo tiny_info() {
  static const dfs::diffusion::ModelInfo info =
      dfs::diffusion::Model::random("tiny", 5, "cpu").info();
  return info;
}

// A flat picture of the model's size, different for each value.
Frame flat(int value) {
  const auto info = tiny_info();
  Frame f(info.width, info.height);
  for (int y = 0; y < f.height; ++y)
    for (int x = 0; x < f.width * 3; ++x) f.row(y)[x] = static_cast<uint8_t>(value + x % 7);
  return f;
}

// The sample clip's first 6 frames extended by 3 generated ones, saved beside `dir` with the
// generated frames as PNGs, the way the Studio saves a project.
Document saved_project(const fs::path& dir, std::map<int, Frame>& generated) {
  Project p;
  p.clip.path = kSampleClip;
  p.clip.frame_count = static_cast<int>(dfs::media::probe(kSampleClip).frame_count);
  p.clip.fps = 10;
  p.timeline = extend_layout(6, 3);
  Results r;
  r.cache_dir = "proj_frames";
  r.generated.assign(9, false);
  fs::create_directories(dir / r.cache_dir);
  for (int pos = 6; pos < 9; ++pos) {
    generated[pos] = flat(40 * pos);
    r.generated[static_cast<size_t>(pos)] = true;
    dfs::media::write_png((dir / r.cached_frame_path(pos)).string(), generated[pos]);
  }
  Document doc;
  doc.edit("set up", [&p](Project& q) { q = p; });
  doc.set_results(r);
  doc.save_as((dir / "proj.dfsproj").string());
  return Document::load((dir / "proj.dfsproj").string());
}

bool has_partial_files(const fs::path& dir) {
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.path().filename().string().find(".partial") != std::string::npos) return true;
  return false;
}

}  // namespace

TEST_CASE("a saved project exports its clip and generated frames in order, exactly",
          "[project][export]") {
  TempDir tmp;
  std::map<int, Frame> made;
  const Document doc = saved_project(tmp.path, made);
  int missing = -1;
  const auto loaded = load_saved_results(doc, &missing);
  CHECK(missing == 0);
  REQUIRE(loaded.size() == 3u);
  for (const auto& [pos, frame] : made) CHECK(loaded.at(pos) == frame);

  Project p = doc.project();
  p.export_settings.format = ExportFormat::PngSequence;
  p.export_settings.path = (tmp.path / "out").string() + "/";
  p.export_settings.scale = 1;
  std::atomic<int> progress{0};
  const auto info = tiny_info();
  const ExportOutcome out =
      export_project(p, info, loaded, doc.resolve(p.clip.path), &progress, nullptr);
  CHECK_FALSE(out.cancelled);
  CHECK(out.frames_written == 9);
  CHECK(progress.load() == 9);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(out.output)) files.push_back(e.path());
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() == 9u);
  std::vector<Frame> frames;
  for (const auto& f : files) frames.push_back(dfs::media::read_image(f.string()));
  const auto clip = dfs::media::read_frames(kSampleClip, 0, 5);
  for (int i = 0; i < 6; ++i)  // clip frames, fitted to the model as a generation sees them
    CHECK(frames[static_cast<size_t>(i)] ==
          fit_to_model(clip[static_cast<size_t>(i)].image, info.width, info.height,
                       p.clip.fit));
  for (int i = 6; i < 9; ++i) CHECK(frames[static_cast<size_t>(i)] == made.at(i));

  // "Generated only" keeps the 3 generated frames.
  p.export_settings.range = ExportRange::Generated;
  p.export_settings.path = (tmp.path / "gen").string() + "/";
  CHECK(export_project(p, info, loaded, doc.resolve(p.clip.path)).frames_written == 3);
}

TEST_CASE("a cancelled or failed export leaves nothing under the final name",
          "[project][export]") {
  TempDir tmp;
  std::map<int, Frame> made;
  const Document doc = saved_project(tmp.path, made);
  const auto loaded = load_saved_results(doc);
  Project p = doc.project();
  p.export_settings.format = ExportFormat::Mp4;
  p.export_settings.path = (tmp.path / "final.mp4").string();

  std::atomic<bool> cancel{true};
  const ExportOutcome out =
      export_project(p, tiny_info(), loaded, doc.resolve(p.clip.path), nullptr, &cancel);
  CHECK(out.cancelled);
  CHECK_FALSE(fs::exists(tmp.path / "final.mp4"));
  CHECK_FALSE(fs::exists(tmp.path / "final.mp4.json"));
  CHECK_FALSE(has_partial_files(tmp.path));

  // The clip went missing: a clear error naming it, and no output.
  CHECK_THROWS_WITH(export_project(p, tiny_info(), loaded, (tmp.path / "gone.mp4").string()),
                    Catch::Contains("gone.mp4"));
  CHECK_FALSE(fs::exists(tmp.path / "final.mp4"));
  CHECK_FALSE(has_partial_files(tmp.path));

  // A generated-only export of a project without generated frames has nothing to write.
  p.export_settings.range = ExportRange::Generated;
  CHECK_THROWS_WITH(export_project(p, tiny_info(), {}, doc.resolve(p.clip.path)),
                    Catch::Contains("nothing was exported"));
  CHECK_FALSE(fs::exists(tmp.path / "final.mp4"));
}
