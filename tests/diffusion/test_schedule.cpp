// Scheduling matrices: each shape checked on its defining properties (docs/DESIGN.md, "Sampling
// with a scheduling matrix"). Torch-free: this file compiles fast.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <vector>

#include "dfs/diffusion/api.h"

using namespace dfs::diffusion;

namespace {

ScheduleSettings settings_for(ScheduleShape shape, int steps, double u = 1.0) {
  ScheduleSettings s;
  s.shape = shape;
  s.steps = steps;
  s.uncertainty = u;
  return s;
}

// Row at which column t first reaches 0.
int finish_row(const SchedulingMatrix& m, int t) {
  for (int r = 0; r < m.rows; ++r)
    if (m.at(r, t) == 0) return r;
  return m.rows;
}

// Last row at which column t still equals S (it has not started descending).
int last_row_at_top(const SchedulingMatrix& m, int t) {
  int last = -1;
  for (int r = 0; r < m.rows; ++r)
    if (m.at(r, t) == m.steps) last = r;
  return last;
}

void check_invariants(const SchedulingMatrix& m, const std::vector<double>& start) {
  REQUIRE(m.frames == static_cast<int>(start.size()));
  REQUIRE(m.rows >= 1);
  REQUIRE(m.cells.size() == static_cast<size_t>(m.rows) * m.frames);
  for (int t = 0; t < m.frames; ++t) {
    CHECK(m.at(0, t) == static_cast<int>(std::lround(start[t] * m.steps)));
    CHECK(m.at(m.rows - 1, t) == 0);
    for (int r = 1; r < m.rows; ++r) {
      CHECK(m.at(r, t) <= m.at(r - 1, t));
      CHECK(m.at(r, t) >= 0);
    }
  }
  // Every row transition moves at least one frame (no wasted model calls).
  for (int r = 1; r < m.rows; ++r) {
    bool moved = false;
    for (int t = 0; t < m.frames; ++t) moved = moved || m.at(r, t) != m.at(r - 1, t);
    CHECK(moved);
  }
}

const ScheduleShape kAllShapes[] = {ScheduleShape::FullSequence, ScheduleShape::Autoregressive,
                                    ScheduleShape::Pyramid, ScheduleShape::Trapezoid,
                                    ScheduleShape::AsyncBlocks};

}  // namespace

TEST_CASE("every shape: first row = start levels, last row 0, columns non-increasing",
          "[schedule]") {
  const std::vector<std::vector<double>> starts = {
      {1, 1, 1, 1, 1, 1, 1, 1},
      {0, 0, 1, 1, 1, 1},      // pinned context + generated
      {0, 0.5, 1, 0.3, 1, 0},  // pins anywhere, partial re-noising
      {1},
      {0, 0, 0},
  };
  for (ScheduleShape shape : kAllShapes) {
    for (int steps : {1, 3, 10}) {
      for (const auto& start : starts) {
        INFO(to_string(shape) << " steps " << steps);
        ScheduleSettings s = settings_for(shape, steps, 2.0);
        s.block = 2;
        s.ar_step = 3;
        check_invariants(build_schedule(s, start), start);
      }
    }
  }
}

TEST_CASE("pinned columns stay 0 in every row", "[schedule]") {
  const std::vector<double> start = {0, 1, 1, 0, 1, 0};
  for (ScheduleShape shape : kAllShapes) {
    const auto m = build_schedule(settings_for(shape, 5, 1.5), start);
    for (int r = 0; r < m.rows; ++r) {
      CHECK(m.at(r, 0) == 0);
      CHECK(m.at(r, 3) == 0);
      CHECK(m.at(r, 5) == 0);
    }
  }
}

TEST_CASE("full_sequence: M[m, t] = S - m for all generated frames", "[schedule]") {
  const auto m =
      build_schedule(settings_for(ScheduleShape::FullSequence, 10), std::vector<double>(6, 1.0));
  REQUIRE(m.rows == 11);
  for (int r = 0; r < m.rows; ++r)
    for (int t = 0; t < 6; ++t) CHECK(m.at(r, t) == 10 - r);
}

TEST_CASE("pyramid: M = clip(S + floor(t u) - m, 0, S), frame t lags t-1 by u", "[schedule]") {
  for (double u : {1.0, 2.0, 3.0, 0.5}) {
    const int steps = 10;
    const auto m =
        build_schedule(settings_for(ScheduleShape::Pyramid, steps, u), std::vector<double>(8, 1.0));
    for (int r = 0; r < m.rows; ++r)
      for (int t = 0; t < 8; ++t)
        CHECK(m.at(r, t) == std::clamp(steps + static_cast<int>(std::floor(t * u)) - r, 0, steps));
    if (u == std::floor(u)) {
      for (int t = 1; t < 8; ++t)
        CHECK(finish_row(m, t) - finish_row(m, t - 1) == static_cast<int>(u));
    }
  }
}

TEST_CASE("pyramid ranks only generated frames: pinned context does not delay the first one",
          "[schedule]") {
  const auto m = build_schedule(settings_for(ScheduleShape::Pyramid, 4, 1.0), {0, 0, 1, 1});
  CHECK(m.at(1, 2) == 3);  // first generated frame descends immediately
  CHECK(m.at(1, 3) == 4);  // the next one lags by u = 1
}

TEST_CASE("autoregressive: frame t is clean before frame t+1 starts", "[schedule]") {
  const auto m =
      build_schedule(settings_for(ScheduleShape::Autoregressive, 5), std::vector<double>(4, 1.0));
  check_invariants(m, std::vector<double>(4, 1.0));
  for (int t = 0; t + 1 < 4; ++t) CHECK(finish_row(m, t) <= last_row_at_top(m, t + 1));
  CHECK(m.rows == 5 * 4 + 1);
}

TEST_CASE("trapezoid: both ends of the window finish first, the middle last", "[schedule]") {
  const int frames = 7;
  const auto m = build_schedule(settings_for(ScheduleShape::Trapezoid, 10, 2.0),
                                std::vector<double>(frames, 1.0));
  const int first = finish_row(m, 0);
  const int last = finish_row(m, frames - 1);
  CHECK(first == last);
  const int middle = finish_row(m, frames / 2);
  CHECK(middle > first);
  for (int t = 0; t < frames; ++t) {
    CHECK(finish_row(m, t) >= first);
    CHECK(finish_row(m, t) <= middle);
  }
  // Symmetric: frame t and frame frames-1-t finish together.
  for (int t = 0; t < frames; ++t) CHECK(finish_row(m, t) == finish_row(m, frames - 1 - t));
}

TEST_CASE("async_blocks: block i lags block i-1 by ar_step, frames in a block move together",
          "[schedule]") {
  ScheduleSettings s = settings_for(ScheduleShape::AsyncBlocks, 8);
  s.block = 3;
  s.ar_step = 2;
  const auto m = build_schedule(s, std::vector<double>(9, 1.0));
  for (int t = 0; t < 9; ++t) {
    const int block = t / 3;
    CHECK(finish_row(m, t) == 8 + 2 * block);
    for (int r = 0; r < m.rows; ++r) CHECK(m.at(r, t) == m.at(r, block * 3));
  }
}

TEST_CASE("custom start levels: partial frames start at round(level * S) and never rise",
          "[schedule]") {
  const std::vector<double> start = {0.0, 0.25, 0.5, 1.0};
  const auto m = build_schedule(settings_for(ScheduleShape::FullSequence, 8), start);
  CHECK(m.at(0, 1) == 2);
  CHECK(m.at(0, 2) == 4);
  CHECK(m.at(0, 3) == 8);
  // Full sequence: the partial frames wait for the shared level to reach theirs, then follow it.
  for (int r = 0; r < m.rows; ++r) {
    CHECK(m.at(r, 2) == std::min(4, m.at(r, 3)));
    CHECK(m.at(r, 1) == std::min(2, m.at(r, 3)));
  }
}

TEST_CASE("all frames partial: no idle rows before the first change", "[schedule]") {
  const auto m = build_schedule(settings_for(ScheduleShape::FullSequence, 10), {0.5, 0.5});
  CHECK(m.rows == 6);
  CHECK(m.at(0, 0) == 5);
  CHECK(m.at(1, 0) == 4);
}

TEST_CASE("invalid schedule settings are rejected with a message", "[schedule]") {
  const std::vector<double> ok = {1, 1};
  ScheduleSettings s;
  s.steps = 0;
  CHECK_THROWS_AS(build_schedule(s, ok), Error);
  s = {};
  s.uncertainty = -1;
  CHECK_THROWS_AS(build_schedule(s, ok), Error);
  s = {};
  s.uncertainty = std::nan("");
  CHECK_THROWS_AS(build_schedule(s, ok), Error);
  s = {};
  s.shape = ScheduleShape::AsyncBlocks;
  s.block = 0;
  CHECK_THROWS_AS(build_schedule(s, ok), Error);
  s.block = 2;
  s.ar_step = -1;
  CHECK_THROWS_AS(build_schedule(s, ok), Error);
  s = {};
  CHECK_THROWS_AS(build_schedule(s, {}), Error);
  CHECK_THROWS_AS(build_schedule(s, {1.5}), Error);
  CHECK_THROWS_AS(build_schedule(s, {-0.1}), Error);
  CHECK_THROWS_WITH(build_schedule(s, {1, std::nan("")}), Catch::Contains("frame 1"));
}

TEST_CASE("shape and guidance names round-trip through strings", "[schedule]") {
  for (ScheduleShape shape : kAllShapes)
    CHECK(schedule_shape_from_string(to_string(shape)) == shape);
  for (GuidanceMode mode : {GuidanceMode::None, GuidanceMode::Vanilla, GuidanceMode::Fractional})
    CHECK(guidance_mode_from_string(to_string(mode)) == mode);
  CHECK_THROWS_AS(schedule_shape_from_string("spiral"), Error);
  CHECK_THROWS_AS(guidance_mode_from_string(""), Error);
}

TEST_CASE("to_text prints one line per row", "[schedule]") {
  const auto m = build_schedule(settings_for(ScheduleShape::Pyramid, 10, 1.0), {1, 1});
  const std::string text = to_text(m);
  CHECK(std::count(text.begin(), text.end(), '\n') == m.rows);
  CHECK(text.rfind("10 10\n", 0) == 0);
}
