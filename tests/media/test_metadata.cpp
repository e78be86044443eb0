// Generation metadata: written on export (container tag + sidecar), read back identically.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

#include "dfs/media/encoder.h"
#include "dfs/media/metadata.h"
#include "media_test_util.h"

using namespace dfs::media;
namespace fs = std::filesystem;

namespace {

// Settings as the Studio writes them: nested objects, arrays, unicode, quotes, long lists.
std::string generation_json() {
  std::string noise = "[";
  for (int i = 0; i < 64; ++i) {
    if (i) noise.push_back(',');
    noise.append(std::to_string(i / 64.0));
  }
  noise += "]";
  return R"({"model":"demo-64x48.safetensors","seed":1234567,"schedule":{"shape":"pyramid","u":2.5,)"
         R"("steps":50},"pins":[0,1,2,47],"noise_levels":)" +
         noise +
         R"(,"guidance":{"kind":"fractional","w":1.5,"f":0.25},"note":"caf\u00e9 \"quoted\"",)"
         R"("version":"0.1.0"})";
}

std::vector<dfs::Frame> few_frames() {
  return {dfs_test::pattern_frame(32, 24, 0), dfs_test::pattern_frame(32, 24, 1)};
}

}  // namespace

TEST_CASE("generation metadata survives in the container of MP4, MKV and WebM",
          "[media][metadata]") {
  dfs_test::ScratchDir dir;
  const std::string json = generation_json();
  for (const char* name : {"gen.mp4", "gen.mkv", "gen.webm", "gen.mov"}) {
    INFO(name);
    EncodeSettings s;
    s.metadata_json = json;
    s.write_sidecar = false;  // prove the container alone carries it
    s.preset = "ultrafast";
    encode_frames(dir.file(name), few_frames(), s);
    CHECK_FALSE(fs::exists(sidecar_path(dir.file(name))));
    const auto back = read_generation_metadata(dir.file(name));
    REQUIRE(back.has_value());
    CHECK(*back == json);
  }
}

TEST_CASE("GIF, PNG and PNG sequences carry metadata in a sidecar", "[media][metadata]") {
  dfs_test::ScratchDir dir;
  const std::string json = generation_json();
  for (const char* name : {"gen.gif", "gen.png", "frames/"}) {
    INFO(name);
    EncodeSettings s;
    s.metadata_json = json;
    const std::string path = dir.file(name);
    if (std::string(name) == "gen.png") {
      encode_frames(path, {few_frames()[0]}, s);
    } else {
      encode_frames(path, few_frames(), s);
    }
    CHECK(fs::exists(sidecar_path(path)));
    const auto back = read_generation_metadata(path);
    REQUIRE(back.has_value());
    CHECK(*back == json);
  }
  CHECK(sidecar_path(dir.file("frames/")) == dir.file("frames.json"));
}

TEST_CASE("sidecar wins only when the container has no JSON, foreign files give nothing",
          "[media][metadata]") {
  dfs_test::ScratchDir dir;
  EncodeSettings s;
  s.metadata_json = R"({"seed":1})";
  s.preset = "ultrafast";
  encode_frames(dir.file("a.mp4"), few_frames(), s);
  // Both present: the container (written with the video) is read first.
  std::ofstream(sidecar_path(dir.file("a.mp4"))) << R"({"seed":2})";
  CHECK(read_generation_metadata(dir.file("a.mp4")) == std::optional<std::string>(R"({"seed":1})"));
  // No metadata at all, a missing file, a sidecar with garbage: nullopt, no exception.
  encode_frames(dir.file("plain.mp4"), few_frames(), EncodeSettings{});
  CHECK_FALSE(read_generation_metadata(dir.file("plain.mp4")).has_value());
  CHECK_FALSE(read_generation_metadata(dir.file("missing.mp4")).has_value());
  std::ofstream(dir.file("junk.gif")) << "GIF89a";
  std::ofstream(sidecar_path(dir.file("junk.gif"))) << "{broken";
  CHECK_FALSE(read_generation_metadata(dir.file("junk.gif")).has_value());
  CHECK_FALSE(read_generation_metadata(dir.path().string()).has_value());
}

TEST_CASE("the ffmpeg program sees the metadata as the comment tag", "[media][metadata]") {
  if (!dfs_test::have_ffmpeg_cli()) DFS_SKIP("ffmpeg program not on PATH");
  dfs_test::ScratchDir dir;
  EncodeSettings s;
  s.metadata_json = R"({"seed":42,"model":"demo"})";
  encode_frames(dir.file("tagged.mp4"), few_frames(), s);
  const std::string out = dir.file("tags.txt");
  const std::string cmd =
      "ffprobe -v error -show_entries format_tags=comment -of "
      "default=nw=1:nk=1 " +
      dir.file("tagged.mp4") + " > " + out;
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::ifstream in(out);
  std::string line;
  std::getline(in, line);
  CHECK(line == s.metadata_json);
}
