// The take store (dfs/project/takes.h): takes kept as real PNG files plus a JSON index; reload
// from disk, rename, star, delete removes files, Save-As copy, and a bad or missing index gives
// a clear error and changes nothing on disk. Also the project's TakesRef: JSON, undo, equality.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "dfs/project/document.h"
#include "dfs/project/takes.h"
#include "project_test_util.h"

namespace fs = std::filesystem;
using namespace dfs::project;
using dfs::Frame;

using dfs::project::test::TempDir;

namespace {

// A frame whose every byte depends on (seed, position): two takes never share a picture.
Frame pattern(int seed, int position) {
  Frame f(32, 24);
  for (size_t i = 0; i < f.rgb.size(); ++i)
    f.rgb[i] = static_cast<uint8_t>(
        (i * 7 + static_cast<size_t>(seed) * 31 + static_cast<size_t>(position) * 13) & 0xFF);
  return f;
}

std::map<int, Frame> frames_of(int seed, int first, int last) {
  std::map<int, Frame> out;
  for (int p = first; p <= last; ++p) out[p] = pattern(seed, p);
  return out;
}

TakeInfo info_with_seed(uint64_t seed) {
  TakeInfo info;
  info.seed = seed;
  info.model_path = "models/tiny.safetensors";
  info.model_name = "tiny";
  info.settings.rollout.sampler.schedule.steps = 7;
  info.settings.rollout.seed = seed;
  info.seconds = 1.5;
  info.length = 24;
  return info;
}

std::string read_all(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_all(const fs::path& p, const std::string& text) {
  std::ofstream(p, std::ios::binary) << text;
}

}  // namespace

TEST_CASE("takes: add keeps frames as PNG files and an index that reloads equal",
          "[project][takes]") {
  TempDir dir;
  const std::string folder = (dir.path / "clip_takes").string();
  TakeStore store = TakeStore::open(folder);  // the folder does not exist yet: empty
  CHECK(store.size() == 0);
  CHECK_FALSE(fs::exists(folder));

  const TakeInfo& a = store.add(info_with_seed(11), frames_of(11, 8, 15));
  CHECK(a.id == 1);
  CHECK(a.name == "Take 1");
  CHECK(a.positions == std::vector<int>{8, 9, 10, 11, 12, 13, 14, 15});
  CHECK(a.created.size() == 20);  // 2026-12-06T02:14:31Z
  CHECK(a.created.back() == 'Z');
  const TakeInfo& b = store.add(info_with_seed(22), frames_of(22, 8, 19));
  CHECK(b.id == 2);
  CHECK(b.name == "Take 2");
  CHECK(fs::exists(store.frame_path(1, 8)));
  CHECK(fs::exists(store.frame_path(2, 19)));
  CHECK_FALSE(fs::exists(store.frame_path(1, 19)));
  CHECK(fs::exists(fs::path(folder) / kTakesIndexName));

  // Reload from disk alone: same descriptions, and frames bit-identical to what was added.
  const TakeStore again = TakeStore::open(folder);
  REQUIRE(again.size() == 2);
  CHECK((again.takes() == store.takes()));
  CHECK(again.takes()[1].settings.rollout.sampler.schedule.steps == 7);
  CHECK(again.takes()[1].seed == 22);
  CHECK(again.takes()[1].model_name == "tiny");
  const auto frames = again.load_frames(2);
  REQUIRE(frames.size() == 12);
  for (const auto& [position, frame] : frames) CHECK(frame == pattern(22, position));
  CHECK(again.load_frames(1).at(8) != frames.at(8));
}

TEST_CASE("takes: rename and star persist, delete removes the files, ids are never reused",
          "[project][takes]") {
  TempDir dir;
  const std::string folder = (dir.path / "t").string();
  TakeStore store = TakeStore::open(folder);
  store.add(info_with_seed(1), frames_of(1, 0, 3));
  store.add(info_with_seed(2), frames_of(2, 0, 3));
  store.add(info_with_seed(3), frames_of(3, 0, 3));

  store.rename(2, "the good one");
  store.set_starred(2, true);
  CHECK_THROWS_WITH(store.rename(2, "  "), Catch::Contains("cannot be empty"));
  CHECK_THROWS_WITH(store.rename(9, "x"), Catch::Contains("no take 9"));
  {
    const TakeStore reread = TakeStore::open(folder);
    REQUIRE(reread.find(2));
    CHECK(reread.find(2)->name == "the good one");
    CHECK(reread.find(2)->starred);
    CHECK_FALSE(reread.find(1)->starred);
  }

  const std::string dir1 = store.take_dir(1);
  REQUIRE(fs::exists(dir1));
  store.remove(1);
  CHECK_FALSE(fs::exists(dir1));
  CHECK(store.find(1) == nullptr);
  CHECK(store.size() == 2);
  CHECK_THROWS_WITH(store.load_frames(1), Catch::Contains("no take 1"));
  CHECK(TakeStore::open(folder).size() == 2);
  // A later take gets a fresh id even after deletes and a reload.
  TakeStore reopened = TakeStore::open(folder);
  reopened.remove(3);
  CHECK(reopened.add(info_with_seed(4), frames_of(4, 0, 1)).id == 4);
  CHECK(reopened.add(info_with_seed(5), frames_of(5, 0, 1)).name == "Take 5");
}

TEST_CASE("takes: a bad or missing index is a clear error and nothing on disk changes",
          "[project][takes]") {
  TempDir dir;
  const std::string folder = (dir.path / "t").string();
  TakeStore store = TakeStore::open(folder);
  store.add(info_with_seed(1), frames_of(1, 0, 3));
  const fs::path index = fs::path(folder) / kTakesIndexName;
  const std::string good = read_all(index);
  const std::string frame = store.frame_path(1, 2);

  SECTION("not JSON") {
    write_all(index, "{ this is not json");
    CHECK_THROWS_WITH(TakeStore::open(folder), Catch::Contains("cannot read the takes index") &&
                                                   Catch::Contains("not valid JSON") &&
                                                   Catch::Contains("left as they are"));
    CHECK(read_all(index) == "{ this is not json");
  }
  SECTION("another format") {
    write_all(index, R"({"format": "something-else", "takes": []})");
    CHECK_THROWS_WITH(TakeStore::open(folder), Catch::Contains("not a takes index"));
  }
  SECTION("a mistyped field is named") {
    std::string bad = good;
    bad.replace(bad.find("\"seed\": 1"), 9, "\"seed\": \"one\"");
    write_all(index, bad);
    CHECK_THROWS_WITH(TakeStore::open(folder), Catch::Contains("takes[0].seed"));
  }
  SECTION("a position outside the take") {
    std::string bad = good;
    bad.replace(bad.find("\"length\": 24"), 12, "\"length\": 2");
    write_all(index, bad);
    CHECK_THROWS_WITH(TakeStore::open(folder), Catch::Contains("takes[0].positions[2]"));
  }
  SECTION("the index is gone but take folders are there") {
    fs::remove(index);
    CHECK_THROWS_WITH(TakeStore::open(folder),
                      Catch::Contains("is missing") && Catch::Contains("1 take folder"));
    CHECK_FALSE(fs::exists(index));  // nothing written in its place
  }
  SECTION("a take whose frame file went missing says which file") {
    fs::remove(frame);
    const TakeStore reread = TakeStore::open(folder);
    CHECK_THROWS_WITH(reread.load_frames(1), Catch::Contains(frame));
  }
  // Whatever went wrong, the frames are still there.
  CHECK(fs::exists(store.frame_path(1, 0)));
  CHECK(fs::exists(store.take_dir(1)));
}

TEST_CASE("takes: copy_to carries every take (Save As) and refuses to overwrite a folder",
          "[project][takes]") {
  TempDir dir;
  TakeStore store = TakeStore::open((dir.path / "a_takes").string());
  store.add(info_with_seed(1), frames_of(1, 0, 3));
  store.add(info_with_seed(2), frames_of(2, 4, 5));
  store.set_starred(2, true);
  const TakeStore copy = store.copy_to((dir.path / "b_takes").string());
  CHECK((copy.takes() == store.takes()));
  const TakeStore reread = TakeStore::open((dir.path / "b_takes").string());
  CHECK((reread.takes() == store.takes()));
  CHECK(reread.load_frames(2).at(5) == pattern(2, 5));
  // The original is untouched.
  CHECK((TakeStore::open((dir.path / "a_takes").string()).takes() == store.takes()));
  CHECK_THROWS_WITH(store.copy_to((dir.path / "b_takes").string()),
                    Catch::Contains("already exists"));
}

TEST_CASE(
    "takes: the project records its takes folder and current take in JSON, undo keeps "
    "them",
    "[project][takes]") {
  Project p;
  p.clip.path = "clip.mp4";
  p.clip.frame_count = 8;
  p.timeline = extend_layout(8, 4);
  {
    // Structured bindings name every field: a new TakesRef field must be added here too.
    auto& [folder, current] = p.takes;
    folder = "clip_takes";
    current = 3;
  }
  const Project back = project_from_json(to_json(p));
  CHECK(back == p);
  CHECK(back.takes.folder == "clip_takes");
  CHECK(back.takes.current == 3);
  Project other = p;
  other.takes.current = 2;
  CHECK(other != p);  // part of the project's equality

  Document doc(p);
  REQUIRE(doc.edit("Unpin 0", [](Project& x) { set_pinned(x.timeline, 0, false); }));
  doc.set_takes({"clip_takes", 4});
  CHECK(doc.dirty());
  REQUIRE(doc.undo());
  CHECK(doc.project().takes.current == 4);  // takes are on disk: not undone
  CHECK(doc.project().timeline.pinned(0));

  Project bad = p;
  bad.takes.current = -1;
  CHECK_THROWS_WITH(validate(bad), Catch::Contains("takes.current"));
  std::string text = to_json(p);
  text.replace(text.find("\"current\": 3"), 12, "\"current\": \"x\"");
  CHECK_THROWS_WITH(project_from_json(text), Catch::Contains("takes.current"));
}

TEST_CASE("takes: time to keep and to read back 16 frames of 256x256 (hidden: run by tag)",
          "[.][takes][bench]") {
  TempDir dir;
  TakeStore store = TakeStore::open((dir.path / "t").string());
  std::map<int, Frame> frames;
  for (int p = 0; p < 16; ++p) {
    Frame f(256, 256);
    for (size_t i = 0; i < f.rgb.size(); ++i)
      f.rgb[i] = static_cast<uint8_t>((i * 2654435761u + static_cast<size_t>(p) * 97) >> 13);
    frames[p] = f;
  }
  const auto t0 = std::chrono::steady_clock::now();
  const int id = store.add(info_with_seed(1), frames).id;
  const auto t1 = std::chrono::steady_clock::now();
  const auto back = store.load_frames(id);
  const auto t2 = std::chrono::steady_clock::now();
  CHECK((back == frames));
  const auto ms = [](auto a, auto b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  WARN("keep 16 frames 256x256: " << ms(t0, t1) << " ms; read back: " << ms(t1, t2) << " ms");
}
