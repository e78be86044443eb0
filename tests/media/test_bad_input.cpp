// Bad input: every case ends in a clear dfs::media::Error naming the file, or in a best-effort
// result — never a crash, a hang or an unbounded allocation.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <random>

#include "dfs/media/decoder.h"
#include "dfs/media/encoder.h"
#include "dfs/media/probe.h"
#include "media_test_util.h"

using namespace dfs::media;
namespace fs = std::filesystem;

namespace {

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// The first `fraction` of `src` copied to `dst`.
void truncate_copy(const std::string& src, const std::string& dst, double fraction) {
  std::ifstream in(src, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  bytes.resize(static_cast<size_t>(bytes.size() * fraction));
  write_bytes(dst, bytes);
}

// probe() and open_decoder() both fail with an Error whose message names the file and
// contains `expected`.
void check_refused(const std::string& path, const std::string& expected) {
  INFO(path);
  CHECK_THROWS_WITH(probe(path), Catch::Contains(expected) && Catch::Contains(path));
  CHECK_THROWS_WITH(open_decoder(path), Catch::Contains(expected) && Catch::Contains(path));
}

}  // namespace

TEST_CASE("a missing path is refused as missing", "[media][bad]") {
  check_refused("/nonexistent/dir/clip.mp4", "does not exist");
  check_refused("", "no file name");
}

TEST_CASE("a directory is refused as a directory", "[media][bad]") {
  dfs_test::ScratchDir dir;
  check_refused(dir.path().string(), "is a directory");
}

TEST_CASE("devices and pipes are refused instead of blocking", "[media][bad]") {
  check_refused("/dev/zero", "not a regular file");
  check_refused("/dev/null", "not a regular file");
}

TEST_CASE("the frame cache is bounded in bytes as well as frames", "[media][decoder][cache]") {
  FrameCache cache(100, 3 * 64 * 48 * 3);  // room for three 64x48 frames
  for (std::int64_t i = 0; i < 10; ++i) {
    DecodedFrame f;
    f.index = i;
    f.image = dfs::Frame(64, 48);
    cache.put(f);
  }
  CHECK(cache.size() == 3);
  CHECK(cache.bytes() <= 3u * 64 * 48 * 3);
  CHECK(cache.find(9) != nullptr);
  CHECK(cache.find(6) == nullptr);
  DecodedFrame huge;
  huge.index = 42;
  huge.image = dfs::Frame(200, 200);  // larger than the whole budget: not cached at all
  cache.put(huge);
  CHECK(cache.find(42) == nullptr);
  CHECK(cache.size() == 3);
}

TEST_CASE("a zero-byte file is refused as empty", "[media][bad]") {
  dfs_test::ScratchDir dir;
  write_bytes(dir.file("empty.mp4"), "");
  check_refused(dir.file("empty.mp4"), "empty");
}

TEST_CASE("a text file renamed .mp4 is refused as not a video", "[media][bad]") {
  dfs_test::ScratchDir dir;
  write_bytes(dir.file("notes.mp4"), "These are my shopping notes, not a video.\nMilk\nEggs\n");
  check_refused(dir.file("notes.mp4"), "not a video file");
}

TEST_CASE("an unreadable file is refused as unreadable", "[media][bad]") {
  if (dfs_test::running_as_root()) {
    // root reads files whatever their mode, so chmod 000 cannot make one unreadable here.
    DFS_SKIP("running as root: permission bits do not block reads, check skipped");
  }
  dfs_test::ScratchDir dir;
  write_bytes(dir.file("secret.mp4"), "x");
  fs::permissions(dir.file("secret.mp4"), fs::perms::none);
  check_refused(dir.file("secret.mp4"), "cannot be read");
}

TEST_CASE("an audio-only file is refused as having no video", "[media][bad]") {
  if (!dfs_test::have_ffmpeg_cli()) DFS_SKIP("ffmpeg program not on PATH");
  dfs_test::ScratchDir dir;
  REQUIRE(dfs_test::run_ffmpeg("-f lavfi -i sine=frequency=440:duration=1 -c:a aac " +
                               dir.file("tone.m4a")));
  check_refused(dir.file("tone.m4a"), "audio only");
  REQUIRE(dfs_test::run_ffmpeg("-f lavfi -i sine=duration=1 " + dir.file("tone.wav")));
  check_refused(dir.file("tone.wav"), "audio only");
}

TEST_CASE("a huge declared resolution is refused before anything is allocated", "[media][bad]") {
  dfs_test::ScratchDir dir;
  // A YUV4MPEG2 header declaring 16000x16000 (256 megapixels, 384 MB a frame) and 8 bytes of
  // "picture": a hostile file must not make us allocate the frame.
  write_bytes(dir.file("huge.y4m"),
              "YUV4MPEG2 W16000 H16000 F25:1 Ip A1:1 C420jpeg\nFRAME\n12345678");
  check_refused(dir.file("huge.y4m"), "megapixel limit");
  // A smaller limit on the decoder refuses an ordinary clip the same way.
  DecoderOptions tight;
  tight.max_pixels = 100 * 100;
  write_png(dir.file("big.png"), dfs_test::pattern_frame(200, 200, 0));
  CHECK_THROWS_WITH(open_decoder(dir.file("big.png"), tight), Catch::Contains("megapixel limit"));
}

TEST_CASE("Megamind_bugy.avi decodes completely and seeks exactly", "[media][bad][damaged]") {
  if (!dfs_test::have_footage()) DFS_SKIP("opencv-doc sample footage not installed");
  // The "buggy" file breaks OpenCV's old AVI reader; FFmpeg reads all of it.
  auto dec = open_decoder(dfs_test::footage("Megamind_bugy.avi"), DecoderOptions{64, 48});
  std::vector<dfs::Frame> frames;
  while (auto f = dec->read()) frames.push_back(f->image);
  CHECK(frames.size() == 270);
  for (std::int64_t n : {200, 17, 269, 0, 133}) CHECK(dec->frame_at(n).image == frames[n]);
}

TEST_CASE("a stream with corrupted bytes returns the frames that decode and reports damage",
          "[media][bad][damaged]") {
  if (!dfs_test::have_footage()) DFS_SKIP("opencv-doc sample footage not installed");
  dfs_test::ScratchDir dir;
  const std::string path = dir.file("damaged.avi");
  fs::copy_file(dfs_test::footage("vtest.avi"), path);
  {
    // Overwrite 12 stretches of 3000 bytes between 20 % and 75 % with noise.
    std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
    const auto size = fs::file_size(path);
    std::mt19937 rng(5);
    for (int k = 0; k < 12; ++k) {
      f.seekp(static_cast<std::streamoff>(size * (0.2 + 0.05 * k)));
      for (int i = 0; i < 3000; ++i) f.put(static_cast<char>(rng() & 255));
    }
  }
  DecoderOptions opt{64, 48};
  auto dec = open_decoder(path, opt);
  std::int64_t count = 0, last = -1;
  while (auto f = dec->read()) {
    CHECK(f->index > last);
    last = f->index;
    ++count;
  }
  CHECK(count > 700);  // nearly everything still decodes
  CHECK(count <= 795);
  const DecodeReport report = dec->report();
  CHECK(report.damaged());
  CHECK_FALSE(report.messages.empty());
}

TEST_CASE("files truncated at 10, 50 and 90 percent give their decodable frames",
          "[media][bad][truncated]") {
  if (!dfs_test::have_footage()) DFS_SKIP("opencv-doc sample footage not installed");
  dfs_test::ScratchDir dir;
  // A streamable container (AVI) and MP4 with +faststart (index first, data cut off) from our
  // encoder; an MP4 without faststart loses its index at the end and must be refused clearly.
  std::vector<dfs::Frame> source;
  for (int t = 0; t < 40; ++t) source.push_back(dfs_test::pattern_frame(64, 48, t));
  EncodeSettings s;
  s.preset = "ultrafast";
  encode_frames(dir.file("full.mp4"), source, s);
  for (double fraction : {0.1, 0.5, 0.9}) {
    INFO("fraction " << fraction);
    const std::string avi = dir.file("cut" + std::to_string(int(fraction * 100)) + ".avi");
    truncate_copy(dfs_test::footage("vtest.avi"), avi, fraction);
    auto dec = open_decoder(avi, DecoderOptions{64, 48});
    std::int64_t count = 0;
    while (dec->read()) ++count;
    CHECK(count > 795 * fraction * 0.8);
    CHECK(count <= 795);
    CHECK(dec->info().frame_count == count);  // the index only counts what is there

    const std::string mp4 = dir.file("cut" + std::to_string(int(fraction * 100)) + ".mp4");
    truncate_copy(dir.file("full.mp4"), mp4, fraction);
    try {
      auto d = open_decoder(mp4);
      std::int64_t n = 0;
      while (auto f = d->read()) {
        ++n;
        CHECK(f->image.width == 64);
      }
      CHECK(n <= 40);
      if (fraction >= 0.5) CHECK(n > 0);
    } catch (const Error& e) {
      CHECK(std::string(e.what()).find(mp4) != std::string::npos);
      CHECK(fraction < 0.5);  // only a cut inside the header may make it unreadable
    }
  }
  if (dfs_test::have_ffmpeg_cli()) {
    const std::string tail_index = dir.file("tail.mp4");
    REQUIRE(dfs_test::run_ffmpeg("-i " + dir.file("full.mp4") + " -c copy " + tail_index));
    truncate_copy(tail_index, dir.file("tail_cut.mp4"), 0.9);
    check_refused(dir.file("tail_cut.mp4"), "not a video file");
  }
}

TEST_CASE("an image file as a clip is a one-frame clip, a broken image is refused",
          "[media][bad]") {
  dfs_test::ScratchDir dir;
  write_png(dir.file("pic.png"), dfs_test::pattern_frame(40, 20, 2));
  CHECK(probe(dir.file("pic.png")).frame_count == 1);
  std::ifstream in(dir.file("pic.png"), std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), {});
  write_bytes(dir.file("cut.png"), bytes.substr(0, 40));  // header only, no pixels
  CHECK_THROWS_AS(open_decoder(dir.file("cut.png")), Error);
}

TEST_CASE("out-of-range frame indices and closed decoders are Errors", "[media][bad]") {
  dfs_test::ScratchDir dir;
  encode_frames(dir.file("seq/"), {dfs_test::pattern_frame(16, 16, 0)});
  auto dec = open_decoder(dir.file("seq/frame_000000.png"));
  CHECK_THROWS_WITH(dec->frame_at(1), Catch::Contains("out of range"));
  CHECK_THROWS_WITH(dec->frame_at(-1), Catch::Contains("out of range"));
  dec->close();
  CHECK_THROWS_AS(dec->read(), Error);
  CHECK_THROWS_AS(make_decoder()->frame_at(0), Error);
  DecoderOptions half;
  half.width = 64;  // height missing
  CHECK_THROWS_WITH(open_decoder(dir.file("seq/frame_000000.png"), half),
                    Catch::Contains("both width and height"));
}
