// Encoder round trips: encode known frames, decode them back, compare.
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "dfs/media/decoder.h"
#include "dfs/media/encoder.h"
#include "dfs/media/frame_ops.h"
#include "dfs/media/probe.h"
#include "media_test_util.h"

using namespace dfs::media;
using dfs::Frame;

namespace {

std::vector<Frame> pattern_clip(int w, int h, int n) {
  std::vector<Frame> frames;
  for (int t = 0; t < n; ++t) frames.push_back(dfs_test::pattern_frame(w, h, t));
  return frames;
}

std::vector<Frame> decode_all(const std::string& path) {
  std::vector<Frame> out;
  auto dec = open_decoder(path);
  while (auto f = dec->read()) out.push_back(std::move(f->image));
  return out;
}

// Default settings but `fps` frames per second and, where given, the x264 `preset`.
EncodeSettings at_fps(double fps, const std::string& preset = "") {
  EncodeSettings s;
  s.fps = fps;
  if (!preset.empty()) s.preset = preset;
  return s;
}

// Encodes `frames` to `path` with `s`; what probe() then reports of the file.
ProbeInfo encode_and_probe(const std::string& path, const std::vector<Frame>& frames,
                           const EncodeSettings& s) {
  encode_frames(path, frames, s);
  return probe(path);
}

// Crops a decoded frame back to w x h (the encoder pads odd sizes to even).
Frame crop_to(const Frame& f, int w, int h) {
  Frame out(w, h);
  for (int y = 0; y < h; ++y) std::memcpy(out.row(y), f.row(y), static_cast<size_t>(3) * w);
  return out;
}

}  // namespace

TEST_CASE("PNG sequence round trip is bit-exact", "[media][encoder][roundtrip]") {
  dfs_test::ScratchDir dir;
  std::vector<Frame> frames;
  for (unsigned i = 0; i < 5; ++i) frames.push_back(dfs_test::noise_frame(33, 17, i));
  const std::string out = dir.file("seq");
  encode_frames(out + "/", frames);
  for (size_t i = 0; i < frames.size(); ++i) {
    char name[32];
    std::snprintf(name, sizeof(name), "frame_%06zu.png", i);
    CHECK(read_image(out + "/" + name) == frames[i]);
  }
  CHECK_FALSE(std::filesystem::exists(out + "/frame_000005.png"));
}

TEST_CASE("single PNG round trip is bit-exact and refuses a second frame",
          "[media][encoder][roundtrip]") {
  dfs_test::ScratchDir dir;
  const Frame f = dfs_test::noise_frame(321, 241, 7);
  write_png(dir.file("one.png"), f);
  CHECK(read_image(dir.file("one.png")) == f);
  Encoder enc;
  enc.open(dir.file("two.png"));
  enc.write(f);
  CHECK_THROWS_AS(enc.write(f), Error);
}

TEST_CASE(
    "MP4/H.264 round trip keeps count, rate and quality (PSNR > 33 dB, SSIM > 0.92 at CRF 18)",
    "[media][encoder][roundtrip]") {
  dfs_test::ScratchDir dir;
  const auto frames = pattern_clip(96, 64, 24);
  auto s = at_fps(12, "veryfast");
  s.crf = 18;
  const ProbeInfo p = encode_and_probe(dir.file("clip.mp4"), frames, s);
  CHECK(p.codec == "h264");
  CHECK(p.pixel_format == "yuv420p");
  CHECK(p.fps == Approx(12.0));
  CHECK(p.frame_count == 24);
  CHECK_FALSE(p.variable_fps);
  const auto decoded = decode_all(dir.file("clip.mp4"));
  REQUIRE(decoded.size() == frames.size());
  for (size_t i = 0; i < frames.size(); ++i) {
    INFO("frame " << i);
    CHECK(psnr(decoded[i], frames[i]) > 33.0);
    CHECK(ssim(decoded[i], frames[i]) > 0.92);
  }
}

TEST_CASE("MP4 is written with +faststart (moov before mdat)", "[media][encoder]") {
  dfs_test::ScratchDir dir;
  encode_frames(dir.file("fs.mp4"), pattern_clip(64, 48, 4), EncodeSettings{});
  std::ifstream in(dir.file("fs.mp4"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  const auto moov = bytes.find("moov"), mdat = bytes.find("mdat");
  REQUIRE(moov != std::string::npos);
  REQUIRE(mdat != std::string::npos);
  CHECK(moov < mdat);
}

TEST_CASE("odd sizes are padded to even for H.264 and VP9 and the picture is intact",
          "[media][encoder][roundtrip]") {
  dfs_test::ScratchDir dir;
  const auto frames = pattern_clip(321, 241, 6);
  for (const char* name : {"odd.mp4", "odd.webm", "odd.mkv"}) {
    INFO(name);
    encode_frames(dir.file(name), frames, at_fps(24, "ultrafast"));
    const auto decoded = decode_all(dir.file(name));
    REQUIRE(decoded.size() == frames.size());
    CHECK(decoded[0].width == 322);
    CHECK(decoded[0].height == 242);
    for (size_t i = 0; i < frames.size(); ++i)
      CHECK(psnr(crop_to(decoded[i], 321, 241), frames[i]) > 30.0);
  }
  EncodeSettings scale;
  scale.even_size = EvenSize::kScale;
  encode_frames(dir.file("scaled.mp4"), frames, scale);
  CHECK(probe(dir.file("scaled.mp4")).width == 320);
  CHECK(probe(dir.file("scaled.mp4")).height == 240);
}

TEST_CASE("WebM/VP9 round trip keeps count and rate (PSNR > 32 dB)",
          "[media][encoder][roundtrip]") {
  dfs_test::ScratchDir dir;
  const auto frames = pattern_clip(64, 48, 10);
  const ProbeInfo p = encode_and_probe(dir.file("clip.webm"), frames, at_fps(30));
  CHECK(p.codec == "vp9");
  CHECK(p.fps == Approx(30.0).margin(0.05));
  CHECK(p.frame_count == 10);
  const auto decoded = decode_all(dir.file("clip.webm"));
  REQUIRE(decoded.size() == frames.size());
  for (size_t i = 0; i < frames.size(); ++i) CHECK(psnr(decoded[i], frames[i]) > 32.0);
}

TEST_CASE("GIF with few colours round-trips exactly, many colours stay close",
          "[media][encoder][roundtrip]") {
  dfs_test::ScratchDir dir;
  // Few colours: each frame a different pair of flat colours (≤ 256 → exact palette).
  std::vector<Frame> flat;
  for (int t = 0; t < 6; ++t) {
    Frame f(40, 30);
    for (int y = 0; y < 30; ++y)
      for (int x = 0; x < 40; ++x) {
        std::uint8_t* p = f.row(y) + 3 * x;
        const bool left = x < 10 + 3 * t;
        p[0] = left ? 200 : static_cast<std::uint8_t>(20 * t);
        p[1] = left ? 30 : 100;
        p[2] = left ? static_cast<std::uint8_t>(40 * t) : 250;
      }
    flat.push_back(f);
  }
  const auto s = at_fps(10);
  const ProbeInfo p = encode_and_probe(dir.file("flat.gif"), flat, s);
  CHECK(p.codec == "gif");
  CHECK(p.fps == Approx(10.0).margin(0.01));
  const auto decoded = decode_all(dir.file("flat.gif"));
  REQUIRE(decoded.size() == flat.size());
  for (size_t i = 0; i < flat.size(); ++i) CHECK(decoded[i] == flat[i]);

  // Full-colour gradients: median cut + dithering keeps PSNR well above a naive 3-3-2 palette.
  const auto smooth = pattern_clip(64, 48, 4);
  encode_frames(dir.file("smooth.gif"), smooth, s);
  const auto back = decode_all(dir.file("smooth.gif"));
  REQUIRE(back.size() == smooth.size());
  for (size_t i = 0; i < smooth.size(); ++i) CHECK(psnr(back[i], smooth[i]) > 30.0);
}

TEST_CASE("non-integer frame rates are kept (29.97)", "[media][encoder]") {
  dfs_test::ScratchDir dir;
  encode_frames(dir.file("ntsc.mp4"), pattern_clip(32, 32, 8),
                at_fps(30000.0 / 1001.0, "ultrafast"));
  CHECK(probe(dir.file("ntsc.mp4")).fps == Approx(29.97).margin(0.01));
}

TEST_CASE("frames of another size are letterboxed to the first frame's size", "[media][encoder]") {
  dfs_test::ScratchDir dir;
  Encoder enc;
  enc.open(dir.file("mixed/"), EncodeSettings{});
  enc.write(dfs_test::pattern_frame(64, 48, 0));
  enc.write(dfs_test::pattern_frame(32, 32, 1));
  enc.close();
  CHECK(enc.frames_written() == 2);
  const Frame second = read_image(dir.file("mixed/frame_000001.png"));
  CHECK(second.width == 64);
  CHECK(second.height == 48);
}

TEST_CASE("encoder settings and usage errors are Errors with a message", "[media][encoder][bad]") {
  dfs_test::ScratchDir dir;
  Encoder enc;
  EncodeSettings bad_fps;
  bad_fps.fps = 0;
  CHECK_THROWS_WITH(enc.open(dir.file("a.mp4"), bad_fps), Catch::Contains("frame rate"));
  CHECK_THROWS_WITH(enc.open(dir.file("a.xyz")), Catch::Contains("extension"));
  EncodeSettings bad_json;
  bad_json.metadata_json = "{not json";
  CHECK_THROWS_WITH(enc.open(dir.file("a.mp4"), bad_json), Catch::Contains("JSON"));
  EncodeSettings bad_preset;
  bad_preset.preset = "warp-speed";
  enc.open(dir.file("p.mp4"), bad_preset);
  CHECK_THROWS_WITH(enc.write(dfs_test::pattern_frame(16, 16, 0)), Catch::Contains("preset"));
  Encoder empty;
  empty.open(dir.file("empty.mp4"));
  CHECK_THROWS_WITH(empty.close(), Catch::Contains("no frames"));
  CHECK_FALSE(std::filesystem::exists(dir.file("empty.mp4")));
  Encoder unopened;
  CHECK_THROWS_AS(unopened.write(dfs_test::pattern_frame(16, 16, 0)), Error);
  CHECK_THROWS_AS(enc.write(Frame{}), Error);
}

TEST_CASE("writing into a missing or read-only folder fails at open with the folder named",
          "[media][encoder][bad]") {
  dfs_test::ScratchDir dir;
  Encoder enc;
  const std::string missing = dir.file("no/such/folder/out.mp4");
  CHECK_THROWS_WITH(enc.open(missing), Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(enc.open(dir.file("nope/frames/")), Catch::Contains("does not exist"));
  // /proc is a read-only pseudo file system: creating files there fails even for root, for whom
  // chmod'ed folders would still be writable.
  CHECK_THROWS_WITH(enc.open("/proc/dfs_out.mp4"), Catch::Contains("cannot create"));
  CHECK_THROWS_WITH(enc.open("/proc/dfs_out.png"), Catch::Contains("cannot create"));
  CHECK_THROWS_WITH(enc.open("/proc/dfs_out.gif"), Catch::Contains("cannot create"));
  if (!dfs_test::running_as_root()) {
    std::filesystem::create_directory(dir.file("ro"));
    std::filesystem::permissions(
        dir.file("ro"), std::filesystem::perms::owner_read | std::filesystem::perms::owner_exec);
    CHECK_THROWS_WITH(enc.open(dir.file("ro/out.mp4")), Catch::Contains("cannot create"));
    std::filesystem::permissions(dir.file("ro"), std::filesystem::perms::owner_all);
  }
}

TEST_CASE("streaming many frames does not need them all in memory", "[media][encoder]") {
  dfs_test::ScratchDir dir;
  Encoder enc;
  enc.open(dir.file("stream.mp4"), at_fps(25, "ultrafast"));
  for (int t = 0; t < 150; ++t) enc.write(dfs_test::pattern_frame(64, 48, t));
  enc.close();
  CHECK(probe(dir.file("stream.mp4")).frame_count == 150);
}
