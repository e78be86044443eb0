// Clips made at test time by the `ffmpeg` program in many codecs and containers, decoded by
// dfs_media and compared with the known source frames.
#include <catch2/catch.hpp>
#include <cstring>

#include "dfs/media/decoder.h"
#include "dfs/media/encoder.h"
#include "dfs/media/frame_ops.h"
#include "dfs/media/probe.h"
#include "media_test_util.h"

using namespace dfs::media;
using dfs::Frame;

namespace {

constexpr int kFrames = 12;

// Writes the reference clip as a PNG sequence (lossless) and returns its frames.
std::vector<Frame> write_source(const dfs_test::ScratchDir& dir, int w, int h) {
  std::vector<Frame> frames;
  for (int t = 0; t < kFrames; ++t) frames.push_back(dfs_test::pattern_frame(w, h, t));
  encode_frames(dir.file("src/"), frames);
  return frames;
}

std::string source_input(const dfs_test::ScratchDir& dir) {
  return "-framerate 10 -i " + dir.file("src/frame_%06d.png") + " ";
}

struct Case {
  const char* name;
  const char* args;   // ffmpeg output options
  const char* file;   // output name (extension picks the container)
  const char* codec;  // expected decoder name
  double min_psnr;    // dB, against the lossless source
};

}  // namespace

TEST_CASE("clips from the ffmpeg program decode in every codec and container", "[media][formats]") {
  if (!dfs_test::have_ffmpeg_cli()) DFS_SKIP("ffmpeg program not on PATH");
  dfs_test::ScratchDir dir;
  const auto source = write_source(dir, 160, 120);
  const Case cases[] = {
      {"H.264 in MP4", "-c:v libx264 -preset ultrafast -crf 16 -pix_fmt yuv420p", "h264.mp4",
       "h264", 33},
      {"H.264 4:4:4 in MOV", "-c:v libx264 -preset ultrafast -crf 16 -pix_fmt yuv444p", "h264.mov",
       "h264", 38},
      {"HEVC in MKV", "-c:v libx265 -preset ultrafast -crf 18 -x265-params log-level=none",
       "hevc.mkv", "hevc", 32},
      {"VP9 in WebM", "-c:v libvpx-vp9 -crf 24 -b:v 0 -deadline realtime -cpu-used 8", "vp9.webm",
       "vp9", 30},
      {"MPEG-4 part 2 in AVI", "-c:v mpeg4 -q:v 2", "mpeg4.avi", "mpeg4", 30},
      {"MJPEG (full-range yuvj) in AVI", "-c:v mjpeg -q:v 2", "mjpeg.avi", "mjpeg", 30},
      {"ProRes 422 10-bit in MOV", "-c:v prores_ks -profile:v 2", "prores.mov", "prores", 38},
      {"GIF (ffmpeg's fixed palette)", "-c:v gif", "anim.gif", "gif", 18},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    const std::string out = dir.file(c.file);
    REQUIRE(dfs_test::run_ffmpeg(source_input(dir) + c.args + " " + out));
    const ProbeInfo p = probe(out);
    CHECK(p.codec == c.codec);
    CHECK(p.width == 160);
    CHECK(p.height == 120);
    CHECK(p.frame_count == kFrames);
    CHECK(p.fps == Approx(10.0).margin(0.01));
    DecoderOptions opt;
    auto dec = open_decoder(out, opt);
    std::vector<Frame> decoded;
    while (auto f = dec->read()) {
      CHECK(f->index == static_cast<std::int64_t>(decoded.size()));
      decoded.push_back(f->image);
    }
    REQUIRE(decoded.size() == source.size());
    double worst = 1e9;
    for (size_t i = 0; i < source.size(); ++i) worst = std::min(worst, psnr(decoded[i], source[i]));
    INFO("worst PSNR " << worst);
    CHECK(worst > c.min_psnr);
    // Seek equals sequential, backwards and forwards.
    auto seeker = open_decoder(out, DecoderOptions{0, 0, FitMode::Letterbox, true, 0});
    for (std::int64_t n : {11, 3, 7, 0, 10, 5}) CHECK(seeker->frame_at(n).image == decoded[n]);
  }
}

TEST_CASE("odd frame sizes (321x241) decode at their size", "[media][formats]") {
  if (!dfs_test::have_ffmpeg_cli()) DFS_SKIP("ffmpeg program not on PATH");
  dfs_test::ScratchDir dir;
  const auto source = write_source(dir, 321, 241);
  for (const char* args : {"-c:v libx264 -preset ultrafast -crf 10 -pix_fmt yuv444p odd.mkv",
                           "-c:v mjpeg -q:v 2 odd.avi"}) {
    INFO(args);
    std::string a = args;
    const std::string name = a.substr(a.rfind(' ') + 1);
    a = a.substr(0, a.rfind(' ')) + " " + dir.file(name);
    REQUIRE(dfs_test::run_ffmpeg(source_input(dir) + a));
    auto dec = open_decoder(dir.file(name));
    CHECK(dec->output_width() == 321);
    CHECK(dec->output_height() == 241);
    const auto f = dec->frame_at(6);
    CHECK(psnr(f.image, source[6]) > 30.0);
  }
}

TEST_CASE("rotation metadata is reported and applied", "[media][formats]") {
  if (!dfs_test::have_ffmpeg_cli()) DFS_SKIP("ffmpeg program not on PATH");
  dfs_test::ScratchDir dir;
  write_source(dir, 160, 120);
  const std::string plain = dir.file("plain.mp4");
  REQUIRE(
      dfs_test::run_ffmpeg(source_input(dir) + "-c:v libx264 -preset ultrafast -crf 10 " + plain));
  for (int tag : {90, 180, 270}) {
    // FFmpeg 5.1's muxer stores "rotate=T" as a display matrix turning the picture T degrees
    // counter-clockwise (ffprobe: "rotation=T"), i.e. (360 - T) clockwise for the viewer.
    const int degrees = (360 - tag) % 360;
    INFO("rotate tag " << tag << ", clockwise " << degrees);
    const std::string rotated = dir.file("rot" + std::to_string(tag) + ".mp4");
    REQUIRE(dfs_test::run_ffmpeg(
        "-i " + plain + " -c copy -metadata:s:v:0 rotate=" + std::to_string(tag) + " " + rotated));
    const ProbeInfo p = probe(rotated);
    CHECK(p.rotation == degrees);
    const bool quarter = degrees != 180;
    CHECK(p.display_width == (quarter ? 120 : 160));
    CHECK(p.display_height == (quarter ? 160 : 120));
    const Frame upright = open_decoder(rotated)->frame_at(4).image;
    DecoderOptions raw;
    raw.apply_rotation = false;
    const Frame stored = open_decoder(rotated, raw)->frame_at(4).image;
    REQUIRE(stored.width == 160);
    REQUIRE(upright.width == (quarter ? 120 : 160));
    // Stored pixel (x, y) lands where a clockwise rotation puts it.
    for (auto [x, y] :
         {std::pair{0, 0}, std::pair{159, 0}, std::pair{10, 100}, std::pair{150, 60}}) {
      int ux = x, uy = y;
      if (degrees == 90) {
        ux = 119 - y;
        uy = x;
      }
      if (degrees == 180) {
        ux = 159 - x;
        uy = 119 - y;
      }
      if (degrees == 270) {
        ux = y;
        uy = 159 - x;
      }
      CHECK(std::memcmp(stored.row(y) + 3 * x, upright.row(uy) + 3 * ux, 3) == 0);
    }
    // And the picture is the one the ffmpeg program shows (it auto-rotates too).
    const std::string shown = dir.file("shown" + std::to_string(tag) + ".png");
    REQUIRE(
        dfs_test::run_ffmpeg("-i " + rotated + " -vf \"select=eq(n\\,4)\" -frames:v 1 " + shown));
    const Frame cli = read_image(shown);
    REQUIRE(cli.width == upright.width);
    CHECK(psnr(cli, upright) > 35.0);
  }
}

TEST_CASE("variable frame rate is detected and frames are indexed by presentation order",
          "[media][formats]") {
  if (!dfs_test::have_ffmpeg_cli()) DFS_SKIP("ffmpeg program not on PATH");
  dfs_test::ScratchDir dir;
  const auto source = write_source(dir, 96, 64);
  const std::string vfr = dir.file("vfr.mkv");
  // Frame N at N(N+1)/20 s: gaps of 0.1, 0.2, ... 1.1 s (on the encoder's 0.1 s grid).
  REQUIRE(dfs_test::run_ffmpeg(source_input(dir) +
                               "-vf setpts='N*(N+1)/20/TB' -vsync vfr -c:v libx264 -preset "
                               "ultrafast -crf 10 " +
                               vfr));
  const ProbeInfo p = probe(vfr);
  CHECK(p.variable_fps);
  CHECK(p.frame_count == kFrames);
  auto dec = open_decoder(vfr);
  std::vector<double> times;
  std::vector<Frame> frames;
  while (auto f = dec->read()) {
    times.push_back(f->time);
    frames.push_back(f->image);
  }
  REQUIRE(frames.size() == static_cast<size_t>(kFrames));
  CHECK(times[1] - times[0] == Approx(0.1).margin(0.002));
  CHECK(times[11] - times[10] > 5 * (times[1] - times[0]));  // the rate really varies
  for (size_t i = 0; i < frames.size(); ++i) CHECK(psnr(frames[i], source[i]) > 35.0);
  auto seeker = open_decoder(vfr);
  for (std::int64_t n : {9, 2, 11, 0, 6}) CHECK(seeker->frame_at(n).image == frames[n]);
}

TEST_CASE("still images open as one-frame clips", "[media][formats]") {
  dfs_test::ScratchDir dir;
  const Frame f = dfs_test::noise_frame(50, 30, 3);
  write_png(dir.file("still.png"), f);
  const ProbeInfo p = probe(dir.file("still.png"));
  CHECK(p.frame_count == 1);
  CHECK(p.width == 50);
  auto dec = open_decoder(dir.file("still.png"));
  auto first = dec->read();
  REQUIRE(first);
  CHECK(first->image == f);
  CHECK_FALSE(dec->read());
  if (dfs_test::have_ffmpeg_cli()) {
    REQUIRE(dfs_test::run_ffmpeg("-i " + dir.file("still.png") + " " + dir.file("still.jpg")));
    CHECK(psnr(read_image(dir.file("still.jpg")), f) > 10.0);  // noise is JPEG's worst case
  }
}
