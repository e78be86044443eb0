// The packed dataset file: round trip, split, validation of damaged files; the synthetic set.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/train/dataset.h"
#include "dfs/diffusion/weights.h"
#include "diffusion/diffusion_test_util.h"

using namespace dfs::diffusion;
using namespace dfs::diffusion::train;
using dfs_test::error_of;

namespace {

std::filesystem::path temp_path(const std::string& name) {
  return dfs_test::temp_path_in("dfs_train_tests", name);
}

VideoDataset small_synthetic(uint64_t seed = 1) {
  return dfs_test::synthetic_dataset(3, 20, seed);
}

}  // namespace

TEST_CASE("a dataset file round-trips frames, clips, split and provenance", "[train][dataset]") {
  const auto ds = small_synthetic();
  const auto path = temp_path("roundtrip.safetensors").string();
  save_dataset(path, ds);
  const auto back = load_dataset(path);
  REQUIRE(torch::equal(back.frames, ds.frames));
  REQUIRE(back.clips.size() == ds.clips.size());
  for (size_t i = 0; i < ds.clips.size(); ++i) {
    CHECK(back.clips[i].name == ds.clips[i].name);
    CHECK(back.clips[i].first == ds.clips[i].first);
    CHECK(back.clips[i].length == ds.clips[i].length);
    CHECK(back.clips[i].train_length == ds.clips[i].train_length);
  }
  CHECK(back.provenance == ds.provenance);
  CHECK(back.fingerprint() == ds.fingerprint());
}

TEST_CASE("the held-out split is the last 20 percent of each clip", "[train][dataset]") {
  VideoDataset ds;
  append_clip(ds, "a", "test", torch::zeros({10, 8, 8, 3}, torch::kUInt8));
  append_clip(ds, "b", "test", torch::ones({25, 8, 8, 3}, torch::kUInt8));
  REQUIRE(ds.clips[0].train_length == 8);
  REQUIRE(ds.clips[0].held_out_first() == 8);
  REQUIRE(ds.clips[1].first == 10);
  REQUIRE(ds.clips[1].train_length == 20);
  REQUIRE(ds.clips[1].held_out_length() == 5);
  // Held-out frames are the clip's own last frames.
  REQUIRE(ds.frames[ds.clips[1].held_out_first()].max().item<int>() == 1);
  // A clip of another size is refused with a message.
  REQUIRE_THAT(error_of([&] {
                 append_clip(ds, "c", "test", torch::zeros({4, 9, 8, 3}, torch::kUInt8));
               }),
               Catch::Contains("8x9"));
}

TEST_CASE("a damaged dataset file gives a clear error", "[train][dataset]") {
  const auto good = temp_path("good.safetensors").string();
  save_dataset(good, small_synthetic());
  std::string bytes;
  {
    std::ifstream f(good, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), {});
  }
  auto write = [](const std::string& path, const std::string& content) {
    std::ofstream f(path, std::ios::binary);
    f.write(content.data(), static_cast<std::streamsize>(content.size()));
  };
  const auto bad = temp_path("bad.safetensors").string();

  SECTION("truncated") {
    write(bad, bytes.substr(0, bytes.size() / 2));
    REQUIRE_THAT(error_of([&] { load_dataset(bad); }), Catch::Contains("cannot read dataset"));
  }
  SECTION("garbage header") {
    std::string b = bytes;
    for (size_t i = 8; i < 40; ++i) b[i] = '#';
    write(bad, b);
    REQUIRE_FALSE(error_of([&] { load_dataset(bad); }).empty());
  }
  SECTION("missing file") {
    REQUIRE_FALSE(error_of([&] { load_dataset(temp_path("nope.safetensors").string()); }).empty());
  }
  SECTION("a model file, not a dataset") {
    TensorFile f;
    f.tensors["w"] = torch::zeros({2, 2});
    f.metadata["format"] = "dfs-model-1";
    save_safetensors(bad, f);
    REQUIRE_THAT(error_of([&] { load_dataset(bad); }), Catch::Contains("dfs-dataset"));
  }
  SECTION("clip offsets that do not cover the frames") {
    TensorFile f = load_safetensors(good);
    f.tensors["clip_offsets"][1] = 1000;
    save_safetensors(bad, f);
    REQUIRE_THAT(error_of([&] { load_dataset(bad); }), Catch::Contains("clip"));
  }
  SECTION("frames of the wrong type") {
    TensorFile f = load_safetensors(good);
    f.tensors["frames"] = f.tensors["frames"].to(torch::kFloat32);
    save_safetensors(bad, f);
    REQUIRE_THAT(error_of([&] { load_dataset(bad); }), Catch::Contains("uint8"));
  }
}

TEST_CASE("synthetic moving objects are deterministic, move, and differ by seed",
          "[train][dataset]") {
  const auto a = small_synthetic(5), b = small_synthetic(5), c = small_synthetic(6);
  REQUIRE(torch::equal(a.frames, b.frames));
  REQUIRE_FALSE(torch::equal(a.frames, c.frames));
  // Consecutive frames differ (objects move) but not by much (they move a few pixels).
  const auto f0 = a.frames[0].to(torch::kFloat32), f1 = a.frames[1].to(torch::kFloat32);
  const double diff = (f0 - f1).abs().mean().item<double>();
  REQUIRE(diff > 0.1);
  REQUIRE(diff < 40);
}
