// dfs/limits.h — the one table of limits on settings a user can reach.
//
// The engine (schedule and sampler validation), the project layer (validation of a loaded or
// edited project), the CLI (option checks) and the Studio (spin-box ranges) all read their
// bounds from here, so a value one layer accepts is never refused by another. The limits bound
// memory and time, not taste: inside them every value is legal, if not always useful.
//
// Header-only, no dependencies; constexpr so the Studio can use it in widget set-up.
#pragma once

#include <cmath>
#include <sstream>
#include <string>

namespace dfs::limits {

// A closed, half-open or open interval of numbers. `integer` only changes how it is written.
struct Range {
  const char* what;  // how a message names the setting
  double lo;
  double hi;
  bool lo_open = false;
  bool hi_open = false;
  bool integer = false;

  constexpr bool contains(double v) const {
    // NaN fails every comparison, so it is outside every range; so is an infinity.
    return (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi) && v - v == 0;
  }
  // The smallest and largest value a widget may offer (an open end moves in by `step`).
  constexpr double widget_min(double step = 0.01) const { return lo_open ? lo + step : lo; }
  constexpr double widget_max(double step = 0.01) const { return hi_open ? hi - step : hi; }
  constexpr int int_min() const { return static_cast<int>(lo); }
  constexpr int int_max() const { return static_cast<int>(hi); }
};

inline std::string format_number(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// "1..1000" for integers, "[0, 1)" for reals.
inline std::string describe(const Range& r) {
  if (r.integer) return format_number(r.lo) + ".." + format_number(r.hi);
  return std::string(r.lo_open ? "(" : "[") + format_number(r.lo) + ", " + format_number(r.hi) +
         (r.hi_open ? ")" : "]");
}

// "" when `v` is inside; else "sampling steps must be in 1..1000, got 5000".
inline std::string problem(const Range& r, double v, const std::string& name = {}) {
  if (r.contains(v)) return {};
  return (name.empty() ? std::string(r.what) : name) + " must be in " + describe(r) + ", got " +
         format_number(v);
}

// clang-format off
// Sampling and schedule.
inline constexpr Range kSteps{"sampling steps", 1, 1000, false, false, true};  // the model has K = 1000 levels
inline constexpr Range kUncertainty{"schedule uncertainty (steps)", 0, 1000};
inline constexpr Range kArStep{"async_blocks ar_step", 0, 1000, false, false, true};
inline constexpr Range kBlock{"async_blocks block size (frames)", 1, 1024, false, false, true};
inline constexpr Range kScheduleFrames{"frames in one schedule window", 1, 100000, false, false, true};
inline constexpr Range kStartLevel{"start noise level", 0, 1};
inline constexpr Range kEta{"eta (0 = DDIM, 1 = DDPM)", 0, 1};
inline constexpr Range kStabilization{"stabilisation level", 0, 1, false, true};
inline constexpr Range kGuidanceScale{"history guidance scale", 0, 20};  // DFoT uses 1..~10
inline constexpr Range kGuidanceFraction{"fractional guidance level", 0, 1, true, true};
// The rollout window.
inline constexpr Range kContext{"context frames", 0, 1024, false, false, true};
inline constexpr Range kHorizon{"horizon frames", 1, 1024, false, false, true};
// The timeline.
inline constexpr Range kTimelineFrames{"timeline frames", 0, 1000000, false, false, true};
inline constexpr Range kNewFrames{"frames to generate", 1, 1000000, false, false, true};
// Export.
inline constexpr Range kExportFps{"frame rate (frames per second)", 0, 1000, true, false};
inline constexpr Range kExportQuality{"export quality", 0, 100, false, false, true};
// clang-format on

}  // namespace dfs::limits
