// Noise schedules, parameterisations and the .safetensors reader/writer, including a
// fuzz-style test that feeds hundreds of corrupted and truncated files to the parser.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <unistd.h>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <numbers>
#include <random>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/noise.h"
#include "dfs/diffusion/weights.h"
#include "diffusion/diffusion_test_util.h"

using namespace dfs::diffusion;

namespace {

const NoiseScheduleKind kKinds[] = {NoiseScheduleKind::Cosine, NoiseScheduleKind::Sigmoid,
                                    NoiseScheduleKind::Linear};

std::string temp_path(const std::string& name) {
  return dfs_test::pid_temp_path("dfs_test", name);
}

std::vector<std::uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

std::vector<std::uint8_t> make_file(const std::string& header, size_t data_bytes) {
  std::vector<std::uint8_t> bytes(8 + header.size() + data_bytes, 0);
  std::uint64_t n = header.size();
  for (int i = 0; i < 8; ++i) bytes[i] = static_cast<std::uint8_t>(n >> (8 * i));
  std::copy(header.begin(), header.end(), bytes.begin() + 8);
  return bytes;
}

// Parses and reports how it went: 0 = accepted, 1 = clean Error. Anything else (another
// exception type, a crash) fails the test.
int parse_outcome(const std::vector<std::uint8_t>& bytes) {
  try {
    const auto file = parse_safetensors(bytes.data(), bytes.size());
    // An accepted file must be self-consistent: its tensors fit inside it.
    size_t total = 0;
    for (const auto& [name, t] : file.tensors)
      total += static_cast<size_t>(t.numel()) * t.element_size();
    REQUIRE(total <= bytes.size());
    return 0;
  } catch (const Error&) {
    return 1;
  }
}

}  // namespace

TEST_CASE("abar is 1 at level 0, near 0 at level 1, strictly decreasing in between", "[noise]") {
  for (auto kind : kKinds) {
    INFO(to_string(kind));
    NoiseSchedule s(kind);
    CHECK(s.alpha_bar(0.0) == 1.0);
    CHECK(s.alpha_bar(1.0) == Approx(kMinAlphaBar).margin(1e-4));
    CHECK(s.alpha_bar(1.0) >= kMinAlphaBar);
    double previous = 1.0;
    for (int k = 1; k <= kTrainTimesteps; ++k) {
      const double a = s.alpha_bar(static_cast<double>(k) / kTrainTimesteps);
      if (a > kMinAlphaBar) CHECK(a < previous);
      CHECK(a <= previous);
      previous = a;
    }
  }
}

TEST_CASE("tensor abar equals scalar abar, also between grid points", "[noise]") {
  for (auto kind : kKinds) {
    NoiseSchedule s(kind);
    auto levels = torch::tensor({0.0, 0.0005, 0.02, 0.1234567, 0.5, 0.999, 1.0}, torch::kFloat64);
    auto abar = s.alpha_bar(levels);
    for (int i = 0; i < levels.numel(); ++i)
      CHECK(abar[i].item<double>() == Approx(s.alpha_bar(levels[i].item<double>())).epsilon(1e-12));
  }
}

TEST_CASE("cosine abar matches Nichol & Dhariwal Eq. 17 on the grid", "[noise]") {
  NoiseSchedule s(NoiseScheduleKind::Cosine);
  const auto f = [](double t) {
    return std::pow(std::cos((t + 0.008) / 1.008 * std::numbers::pi / 2), 2);
  };
  for (double n : {0.1, 0.25, 0.5, 0.75, 0.9})
    CHECK(s.alpha_bar(n) == Approx(f(n) / f(0)).epsilon(1e-9));
}

TEST_CASE("parameterisations round-trip: target -> x0 / eps recovers the inputs", "[noise]") {
  torch::manual_seed(1);
  const auto x0 = torch::rand({2, 3, 3, 4, 4}) * 2 - 1;
  const auto eps = torch::randn({2, 3, 3, 4, 4});
  const auto levels = torch::tensor({{0.02, 0.3, 0.7}, {0.5, 0.9, 0.999}});
  for (auto kind : kKinds) {
    NoiseSchedule s(kind);
    const auto x_n = s.add_noise(x0, eps, levels);
    for (auto objective : {Objective::V, Objective::X0, Objective::Eps}) {
      INFO(to_string(kind) << " / " << to_string(objective));
      const auto prediction = s.target(objective, x0, eps, levels);
      CHECK(torch::allclose(s.to_x0(objective, prediction, x_n, levels), x0, 1e-3, 1e-3));
      CHECK(torch::allclose(s.to_eps(objective, prediction, x_n, levels), eps, 1e-3, 1e-3));
    }
  }
}

TEST_CASE("add_noise at level 0 is the clean frame, at level 1 almost pure noise", "[noise]") {
  NoiseSchedule s;
  const auto x0 = torch::full({1, 2, 3, 2, 2}, 0.5f);
  const auto eps = torch::randn({1, 2, 3, 2, 2});
  const auto noised = s.add_noise(x0, eps, torch::tensor({{0.0f, 1.0f}}));
  CHECK(torch::equal(noised.select(1, 0), x0.select(1, 0)));
  CHECK(torch::allclose(noised.select(1, 1), eps.select(1, 1), 1e-2, 1e-2));
}

TEST_CASE("schedule and objective names round-trip", "[noise]") {
  for (auto kind : kKinds) CHECK(noise_schedule_from_string(to_string(kind)) == kind);
  for (auto o : {Objective::V, Objective::X0, Objective::Eps})
    CHECK(objective_from_string(to_string(o)) == o);
  CHECK_THROWS_AS(noise_schedule_from_string("quadratic"), Error);
  CHECK_THROWS_AS(objective_from_string("score"), Error);
}

TEST_CASE("safetensors round trip keeps metadata, dtypes, shapes and bytes", "[weights]") {
  TensorFile file;
  file.metadata["config"] = R"({"name":"tiny"})";
  file.metadata["provenance"] = "{}";
  file.tensors["a.weight"] = torch::randn({3, 5});
  file.tensors["b.half"] = torch::randn({7}).to(torch::kFloat16);
  file.tensors["c.bf16"] = torch::randn({2, 2}).to(torch::kBFloat16);
  file.tensors["d.long"] = torch::arange(10, torch::kLong).view({2, 5});
  file.tensors["e.u8"] = torch::arange(9, torch::kUInt8);
  file.tensors["f.empty"] = torch::empty({0, 4});
  file.tensors["g.scalar"] = torch::tensor(3.5);
  const auto path = temp_path("roundtrip.safetensors");
  save_safetensors(path, file);
  const auto loaded = load_safetensors(path);
  CHECK(loaded.metadata == file.metadata);
  REQUIRE(loaded.tensors.size() == file.tensors.size());
  for (const auto& [name, t] : file.tensors) {
    INFO(name);
    const auto& u = loaded.tensors.at(name);
    CHECK(u.scalar_type() == t.scalar_type());
    CHECK(u.sizes() == t.sizes());
    CHECK(torch::equal(u, t));
  }
  // The byte buffer starts 8-byte aligned.
  const auto bytes = read_bytes(path);
  CHECK((bytes[0] | (bytes[1] << 8)) % 8 == 0);
  std::filesystem::remove(path);
}

TEST_CASE("save_safetensors replaces atomically and reports unwritable paths", "[weights]") {
  TensorFile file;
  file.tensors["x"] = torch::ones({4});
  const auto path = temp_path("atomic.safetensors");
  save_safetensors(path, file);
  file.tensors["x"] = torch::zeros({4});
  save_safetensors(path, file);
  CHECK(torch::equal(load_safetensors(path).tensors.at("x"), torch::zeros({4})));
  // No temp file left behind.
  int siblings = 0;
  for (const auto& e :
       std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    if (e.path().filename().string().rfind(
            std::filesystem::path(path).filename().string() + ".partial", 0) == 0)
      ++siblings;
  CHECK(siblings == 0);
  std::filesystem::remove(path);
  CHECK_THROWS_AS(save_safetensors("/nonexistent-dir/x.safetensors", file), Error);
  CHECK_THROWS_WITH(load_safetensors("/nonexistent-dir/x.safetensors"),
                    Catch::Contains("does not exist"));
}

TEST_CASE("hostile safetensors headers give a clean Error naming the problem", "[weights]") {
  const auto data = [](const std::string& header, size_t n) { return make_file(header, n); };
  struct Case {
    std::vector<std::uint8_t> bytes;
    const char* expect;
  };
  std::vector<std::uint8_t> huge_len(16, 0);
  huge_len[7] = 0x7f;  // header length ~ 2^62
  const std::vector<Case> cases = {
      {{}, "8-byte"},
      {{1, 2, 3}, "8-byte"},
      {huge_len, "header claims"},
      {data("{", 0), "too short"},
      {data("[1,2,3]  ", 0), "start with"},
      {data("{\"a\":", 0), "not valid JSON"},
      {data(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 4), "truncated"},
      {data(R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8), "need"},
      {data(R"({"a":{"dtype":"Q4","shape":[2],"data_offsets":[0,8]}})", 8), "unsupported dtype"},
      {data(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8), "non-negative"},
      {data(R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", 8),
       "exceeds"},
      {data(R"({"a":{"dtype":"F32","shape":[65536,65536,65536],"data_offsets":[0,8]}})", 8),
       "need"},
      {data(R"({"a":{"dtype":"F32","shape":[65536,65536,65536,65536],"data_offsets":[0,8]}})", 8),
       "more bytes than"},
      {data(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})", 8), "begin > end"},
      {data(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8), "data_offsets"},
      {data(R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", 8), "shape"},
      {data(R"({"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}})", 8), "integer"},
      {data(R"({"a":{"dtype":"F32","shape":[1,1,1,1,1,1,1,1,1,2],"data_offsets":[0,8]}})", 8),
       "rank"},
      {data(
           R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
           12),
       "overlap"},
      {data(R"({"__metadata__":{"k":1}})", 0), "not a string"},
      {data(R"({"__metadata__":[]})", 0), "__metadata__"},
      {data(R"({"a":3})", 0), "not an object"},
      {data(R"({"":{"dtype":"F32","shape":[0],"data_offsets":[0,0]}})", 0), "empty name"},
      {data("{\"a\":" + std::string(100000, '[') + std::string(100000, ']') + "}", 0),
       "nests deeper"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    INFO("case " << i << " expects '" << cases[i].expect << "'");
    CHECK_THROWS_AS(parse_safetensors(cases[i].bytes.data(), cases[i].bytes.size()), Error);
    CHECK_THROWS_WITH(parse_safetensors(cases[i].bytes.data(), cases[i].bytes.size()),
                      Catch::Contains(cases[i].expect));
  }
}

TEST_CASE("fuzz: hundreds of truncated and corrupted files never crash the parser", "[weights]") {
  TensorFile file;
  file.metadata["config"] = R"({"name":"fuzz","width":8})";
  file.tensors["w1"] = torch::randn({4, 3});
  file.tensors["w2"] = torch::randn({5}).to(torch::kFloat16);
  file.tensors["w3"] = torch::arange(6, torch::kLong);
  const auto path = temp_path("fuzz.safetensors");
  save_safetensors(path, file);
  const auto good = read_bytes(path);
  std::filesystem::remove(path);
  REQUIRE(parse_outcome(good) == 0);

  // Every truncation is an error: the last tensor ends at the end of the file.
  int errors = 0;
  for (size_t n = 0; n < good.size(); ++n) {
    std::vector<std::uint8_t> cut(good.begin(), good.begin() + static_cast<long>(n));
    errors += parse_outcome(cut);
  }
  CHECK(errors == static_cast<int>(good.size()));

  // Random byte corruption in the length field and header: either a clean Error or a file
  // that is still self-consistent; never another exception or a crash.
  std::mt19937 rng(1234);
  const size_t header_end = 8 + (good[0] | (good[1] << 8));
  int rejected = 0;
  const int kTrials = 600;
  for (int trial = 0; trial < kTrials; ++trial) {
    auto bytes = good;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) {
      const size_t at = rng() % header_end;
      switch (rng() % 4) {
        case 0:
          bytes[at] = static_cast<std::uint8_t>(rng());
          break;
        case 1:
          bytes[at] ^= static_cast<std::uint8_t>(1u << (rng() % 8));
          break;
        case 2:
          bytes[at] = static_cast<std::uint8_t>("{}[]\":,0123456789-e."[rng() % 20]);
          break;
        default:
          bytes[at] = 0xff;
          break;
      }
    }
    rejected += parse_outcome(bytes);
  }
  CHECK(rejected > kTrials / 4);  // most corruptions of a tight header are caught
}
