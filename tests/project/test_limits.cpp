// The one table of limits (dfs/limits.h): engine and project accept exactly the same values.
// For each setting, the bounds themselves are accepted by both layers and the nearest values
// outside are refused by both (the CLI's checks are in cli_end_to_end.sh, the Studio's spin
// boxes in test_studio_workflow.cpp).
#include <catch2/catch.hpp>

#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/sampler.h"
#include "dfs/limits.h"
#include "dfs/project/document.h"

namespace dd = dfs::diffusion;
namespace dl = dfs::limits;
namespace dp = dfs::project;

namespace {

struct Setting {
  const char* name;
  const dl::Range& range;
  std::function<void(dd::SamplerSettings&, int&, int&, double)> set;  // (sampler, context, horizon)
};

bool engine_accepts(const Setting& s, double v) {
  dd::SamplerSettings sampler;
  sampler.guidance.mode = dd::GuidanceMode::Fractional;  // so that scale and level are checked
  int context = 2, horizon = 2;
  s.set(sampler, context, horizon, v);
  try {
    dd::validate_sampler_settings(sampler);
    (void)dd::build_schedule(sampler.schedule, std::vector<double>(4, 1.0));
    return true;
  } catch (const dd::Error&) {
    return false;
  }
}

bool project_accepts(const Setting& s, double v) {
  dp::Project p;
  auto& r = p.generation.rollout;
  r.sampler.guidance.mode = dd::GuidanceMode::Fractional;
  s.set(r.sampler, r.context, r.horizon, v);
  return dp::validation_problems(p).empty();
}

// The nearest representable values just outside an end (the end itself when it is open).
double outside_below(const dl::Range& r) {
  if (r.lo_open) return r.lo;
  return r.integer ? r.lo - 1 : std::nextafter(r.lo, -std::numeric_limits<double>::infinity());
}
double outside_above(const dl::Range& r) {
  if (r.hi_open) return r.hi;
  return r.integer ? r.hi + 1 : std::nextafter(r.hi, std::numeric_limits<double>::infinity());
}
double inside_low(const dl::Range& r) { return r.lo_open ? (r.integer ? r.lo + 1 : r.lo + 1e-6) : r.lo; }
double inside_high(const dl::Range& r) { return r.hi_open ? (r.integer ? r.hi - 1 : r.hi - 1e-6) : r.hi; }

}  // namespace

TEST_CASE("engine and project refuse the same values: one table of limits", "[limits]") {
  // Settings both layers check. Context and horizon are the project's (the engine's window is
  // bounded by the model); the schedule settings are the engine's and the project's.
  const std::vector<Setting> settings = {
      {"steps", dl::kSteps,
       [](dd::SamplerSettings& s, int&, int&, double v) { s.schedule.steps = static_cast<int>(v); }},
      {"uncertainty", dl::kUncertainty,
       [](dd::SamplerSettings& s, int&, int&, double v) { s.schedule.uncertainty = v; }},
      {"ar_step", dl::kArStep,
       [](dd::SamplerSettings& s, int&, int&, double v) { s.schedule.ar_step = static_cast<int>(v); }},
      {"block", dl::kBlock,
       [](dd::SamplerSettings& s, int&, int&, double v) { s.schedule.block = static_cast<int>(v); }},
      {"eta", dl::kEta, [](dd::SamplerSettings& s, int&, int&, double v) { s.eta = v; }},
      {"stabilization_user", dl::kStabilization,
       [](dd::SamplerSettings& s, int&, int&, double v) { s.stabilization_user = v; }},
      {"stabilization_generated", dl::kStabilization,
       [](dd::SamplerSettings& s, int&, int&, double v) { s.stabilization_generated = v; }},
      {"guidance scale", dl::kGuidanceScale,
       [](dd::SamplerSettings& s, int&, int&, double v) { s.guidance.scale = v; }},
      {"guidance fraction", dl::kGuidanceFraction,
       [](dd::SamplerSettings& s, int&, int&, double v) { s.guidance.fractional_level = v; }},
  };
  for (const auto& s : settings) {
    INFO(s.name << " in " << dl::describe(s.range));
    for (double v : {inside_low(s.range), inside_high(s.range), (s.range.lo + s.range.hi) / 2}) {
      if (s.range.integer) v = std::round(v);
      INFO("value " << v);
      CHECK(engine_accepts(s, v));
      CHECK(project_accepts(s, v));
    }
    for (double v : {outside_below(s.range), outside_above(s.range),
                     std::numeric_limits<double>::quiet_NaN()}) {
      if (s.range.integer && std::isnan(v)) continue;  // an int field cannot hold NaN
      INFO("value " << v);
      CHECK_FALSE(engine_accepts(s, v));
      CHECK_FALSE(project_accepts(s, v));
    }
  }
}

TEST_CASE("project window and export limits come from the table", "[limits]") {
  dp::Project p;
  p.generation.rollout.horizon = dl::kHorizon.int_max();
  p.generation.rollout.context = dl::kContext.int_max();
  CHECK(dp::validation_problems(p).empty());
  p.generation.rollout.horizon = dl::kHorizon.int_max() + 1;
  CHECK_FALSE(dp::validation_problems(p).empty());
  p.generation.rollout.horizon = 4;

  p.export_settings.fps = dl::kExportFps.hi;
  CHECK(dp::validation_problems(p).empty());
  p.export_settings.fps = std::nextafter(dl::kExportFps.hi, 1e9);
  CHECK_FALSE(dp::validation_problems(p).empty());
  p.export_settings.fps = 0;  // "the clip's rate", not a rate
  CHECK(dp::validation_problems(p).empty());

  p.export_settings.quality = dl::kExportQuality.int_max() + 1;
  CHECK_FALSE(dp::validation_problems(p).empty());
}

TEST_CASE("a limit's message names the setting, the range and the value", "[limits]") {
  CHECK(dl::problem(dl::kSteps, 1001) == "sampling steps must be in 1..1000, got 1001");
  CHECK(dl::problem(dl::kStabilization, 1, "pins") == "pins must be in [0, 1), got 1");
  CHECK(dl::problem(dl::kSteps, 1000).empty());
  CHECK_FALSE(dl::kEta.contains(std::numeric_limits<double>::infinity()));
  CHECK_FALSE(dl::kEta.contains(std::numeric_limits<double>::quiet_NaN()));
  try {
    dd::ScheduleSettings s;
    s.steps = 5000;
    (void)dd::build_schedule(s, {1.0});
    FAIL("5000 steps were accepted");
  } catch (const dd::Error& e) {
    CHECK_THAT(e.what(), Catch::Contains("1..1000") && Catch::Contains("5000"));
  }
}
