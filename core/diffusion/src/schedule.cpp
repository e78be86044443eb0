// Scheduling matrices (Diffusion Forcing, Chen et al. 2024, Sec. 3.3 / Appendix "scheduling
// matrix"): pure functions from settings + per-frame start levels to an integer matrix.
// No torch here: the Studio draws these matrices without touching LibTorch.
#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/enum_names.h"
#include "dfs/limits.h"

namespace dfs::diffusion {

namespace {

constexpr EnumNames<ScheduleShape, 5> kShapeNames{
    {{ScheduleShape::FullSequence, "full_sequence"},
     {ScheduleShape::Autoregressive, "autoregressive"},
     {ScheduleShape::Pyramid, "pyramid"},
     {ScheduleShape::Trapezoid, "trapezoid"},
     {ScheduleShape::AsyncBlocks, "async_blocks"}}};

constexpr EnumNames<GuidanceMode, 3> kGuidanceNames{{{GuidanceMode::None, "none"},
                                                     {GuidanceMode::Vanilla, "vanilla"},
                                                     {GuidanceMode::Fractional, "fractional"}}};

constexpr EnumNames<Solver, 2> kSolverNames{
    {{Solver::Ddim, "ddim"}, {Solver::DpmPP2M, "dpmpp-2m"}}};

}  // namespace

const char* to_string(Solver solver) {
  return enum_name(kSolverNames, solver, "unknown");
}

Solver solver_from_string(const std::string& name) {
  if (const auto solver = enum_from_name(kSolverNames, name)) return *solver;
  throw Error("unknown solver '" + name + "' (expected " + enum_choices(kSolverNames) + ")");
}

const char* to_string(ScheduleShape shape) {
  return enum_name(kShapeNames, shape, "unknown");
}

ScheduleShape schedule_shape_from_string(const std::string& name) {
  if (const auto shape = enum_from_name(kShapeNames, name)) return *shape;
  throw Error("unknown schedule shape '" + name + "' (expected " + enum_choices(kShapeNames) + ")");
}

const char* to_string(GuidanceMode mode) {
  return enum_name(kGuidanceNames, mode, "unknown");
}

GuidanceMode guidance_mode_from_string(const std::string& name) {
  if (const auto mode = enum_from_name(kGuidanceNames, name)) return *mode;
  throw Error("unknown history guidance '" + name + "' (expected " + enum_choices(kGuidanceNames) +
              ")");
}

namespace {

// How many steps generated frame number `rank` (0-based among the window's unpinned frames,
// `count` of them) lags the first one before it starts descending from S.
int shape_lag(const ScheduleSettings& s, int rank, int count) {
  switch (s.shape) {
    case ScheduleShape::FullSequence:
      return 0;
    case ScheduleShape::Autoregressive:
      return rank * s.steps;
    case ScheduleShape::Pyramid:
      return static_cast<int>(std::floor(rank * s.uncertainty));
    case ScheduleShape::Trapezoid: {
      // Distance to the nearer end of the window: the ends lag 0 and finish first.
      const int distance = std::min(rank, count - 1 - rank);
      return static_cast<int>(std::floor(distance * s.uncertainty));
    }
    case ScheduleShape::AsyncBlocks:
      return (rank / s.block) * s.ar_step;
  }
  return 0;
}

void validate(const ScheduleSettings& s, const std::vector<double>& start_levels) {
  // Bounds from the one table in dfs/limits.h (shared with project, CLI and Studio).
  auto check = [](const limits::Range& r, double v) {
    if (auto why = limits::problem(r, v); !why.empty()) throw Error(why);
  };
  check(limits::kSteps, s.steps);
  check(limits::kUncertainty, s.uncertainty);
  check(limits::kBlock, s.block);
  check(limits::kArStep, s.ar_step);
  if (start_levels.empty()) throw Error("a schedule needs at least one frame");
  check(limits::kScheduleFrames, static_cast<double>(start_levels.size()));
  for (size_t t = 0; t < start_levels.size(); ++t)
    if (auto why = limits::problem(limits::kStartLevel, start_levels[t],
                                   "start level of frame " + std::to_string(t));
        !why.empty())
      throw Error(why);
}

}  // namespace

SchedulingMatrix build_schedule(const ScheduleSettings& settings,
                                const std::vector<double>& start_levels) {
  validate(settings, start_levels);
  const int frames = static_cast<int>(start_levels.size());
  const int steps = settings.steps;

  // Column t starts at start[t] = round(level * S) and follows the shape's own descent
  // shape(m, t) = clip(S + lag(t) - m, 0, S) once that falls below it: M = min(start, shape).
  // Frames with start 0 (pinned) stay 0 and do not count in the shape's frame ranks.
  std::vector<int> start(frames);
  std::vector<int> lag(frames, 0);
  int generated = 0;
  for (int t = 0; t < frames; ++t) {
    start[t] = static_cast<int>(std::lround(start_levels[t] * steps));
    if (start[t] > 0) ++generated;
  }
  int rank = 0;
  int max_lag = 0;
  for (int t = 0; t < frames; ++t) {
    if (start[t] == 0) continue;
    lag[t] = shape_lag(settings, rank++, generated);
    max_lag = std::max(max_lag, lag[t]);
  }
  const long long full_rows = static_cast<long long>(steps) + max_lag + 1;
  if (full_rows * frames > 50'000'000LL)
    throw Error("the scheduling matrix would have " + std::to_string(full_rows) + " rows x " +
                std::to_string(frames) + " frames; use fewer steps or a smaller lag");

  SchedulingMatrix matrix;
  matrix.frames = frames;
  matrix.steps = steps;
  std::vector<int> row(frames);
  std::vector<int> previous;
  for (long long m = 0; m < full_rows; ++m) {
    for (int t = 0; t < frames; ++t) {
      const long long shaped = std::clamp<long long>(steps + lag[t] - m, 0, steps);
      row[t] = static_cast<int>(std::min<long long>(start[t], shaped));
    }
    // Rows where nothing moves (partial frames waiting for the shape) would cost a model call
    // for nothing: keep only rows that differ from the previous one.
    if (!previous.empty() && row == previous) continue;
    matrix.cells.insert(matrix.cells.end(), row.begin(), row.end());
    previous = row;
    ++matrix.rows;
  }
  return matrix;
}

std::string to_text(const SchedulingMatrix& matrix) {
  std::ostringstream out;
  const int width = static_cast<int>(std::to_string(matrix.steps).size());
  for (int m = 0; m < matrix.rows; ++m) {
    for (int t = 0; t < matrix.frames; ++t) {
      const std::string cell = std::to_string(matrix.at(m, t));
      if (t > 0) out << ' ';
      out << std::string(static_cast<size_t>(width) - std::min(cell.size(), size_t(width)), ' ')
          << cell;
    }
    out << '\n';
  }
  return out.str();
}

}  // namespace dfs::diffusion
