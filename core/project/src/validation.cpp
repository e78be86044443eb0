// validation.cpp — validation_problems and validate: every field of a Project checked against
// the shared limits (dfs/limits.h), each problem named by its field.
#include "dfs/project/document.h"

#include <cmath>
#include <string>
#include <vector>

#include "dfs/limits.h"
#include "errors.h"

namespace dfs::project {

using detail::fmt_double;

namespace {

// Collects problems; each names its field.
class Problems {
 public:
  void add(const std::string& s) { list_.push_back(s); }
  void int_range(const std::string& field, long long v, long long lo, long long hi) {
    if (v < lo || v > hi)
      add(field + " must be in " + std::to_string(lo) + ".." + std::to_string(hi) + " (got " +
          std::to_string(v) + ")");
  }
  // Closed or half-open ranges of doubles; rejects NaN/inf.
  void real_range(const std::string& field, double v, double lo, double hi, bool lo_open = false,
                  bool hi_open = false) {
    const bool ok =
        std::isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (!ok)
      add(field + " must be in " + (lo_open ? "(" : "[") + fmt_double(lo) + ", " + fmt_double(hi) +
          (hi_open ? ")" : "]") + " (got " + fmt_double(v) + ")");
  }
  // A range from the shared table (dfs/limits.h).
  void range(const std::string& field, double v, const limits::Range& r) {
    if (r.integer)
      int_range(field, static_cast<long long>(v), static_cast<long long>(r.lo),
                static_cast<long long>(r.hi));
    else
      real_range(field, v, r.lo, r.hi, r.lo_open, r.hi_open);
  }
  std::vector<std::string> take() { return std::move(list_); }

 private:
  std::vector<std::string> list_;
};

}  // namespace

std::vector<std::string> validation_problems(const Project& p, int max_frames) {
  Problems out;
  // Clip.
  const ClipRef& c = p.clip;
  out.int_range("clip.width", c.width, 0, 1 << 16);
  out.int_range("clip.height", c.height, 0, 1 << 16);
  out.int_range("clip.frame_count", c.frame_count, 0, 1LL << 31);
  out.real_range("clip.fps", c.fps, 0, 10000);
  out.real_range("clip.duration_s", c.duration_s, 0, 1e9);

  // Timeline.
  const Timeline& t = p.timeline;
  out.range("timeline.source_first", t.source_first, limits::kTimelineFrames);
  out.range("timeline.source_count", t.source_count, limits::kTimelineFrames);
  out.range("timeline.new_frames", t.new_frames, limits::kTimelineFrames);
  if (t.source_count > 0 && c.empty())
    out.add("timeline.source_count is " + std::to_string(t.source_count) +
            " but the project has no clip (clip.path is empty)");
  if (c.frame_count > 0 && t.source_count > 0 &&
      static_cast<long long>(t.source_first) + t.source_count > c.frame_count)
    out.add("timeline source frames " + std::to_string(t.source_first) + ".." +
            std::to_string(t.source_first + t.source_count - 1) + " run past the clip's " +
            std::to_string(c.frame_count) + " frames");
  const long long length = static_cast<long long>(t.source_count) + t.new_frames;
  if (static_cast<long long>(t.noise.size()) != length)
    out.add("timeline.noise has " + std::to_string(t.noise.size()) +
            " levels but the timeline has " + std::to_string(length) + " frames");
  for (size_t i = 0; i < t.noise.size(); ++i)
    out.real_range("timeline.noise[" + std::to_string(i) + "]", t.noise[i], 0.0, 1.0);
  for (int pin : t.pins)
    if (pin < 0 || pin >= length)
      out.add("timeline.pins contains " + std::to_string(pin) + ", outside the timeline (0.." +
              std::to_string(length - 1) + ")");

  // Generation settings.
  const auto& r = p.generation.rollout;
  const auto& s = r.sampler;
  out.range("generation.steps", s.schedule.steps, limits::kSteps);
  out.range("generation.uncertainty", s.schedule.uncertainty, limits::kUncertainty);
  out.range("generation.ar_step", s.schedule.ar_step, limits::kArStep);
  out.range("generation.block", s.schedule.block, limits::kBlock);
  out.range("generation.eta", s.eta, limits::kEta);
  out.range("generation.stabilization_user", s.stabilization_user, limits::kStabilization);
  out.range("generation.stabilization_generated", s.stabilization_generated,
            limits::kStabilization);
  out.range("generation.guidance.scale", s.guidance.scale, limits::kGuidanceScale);
  out.range("generation.guidance.fractional_level", s.guidance.fractional_level,
            limits::kGuidanceFraction);
  out.range("generation.context", r.context, limits::kContext);
  out.range("generation.horizon", r.horizon, limits::kHorizon);
  if (max_frames > 0 && r.context + r.horizon > max_frames)
    out.add("generation.context + generation.horizon = " + std::to_string(r.context + r.horizon) +
            " exceeds the model's window of " + std::to_string(max_frames) + " frames");

  // Export.
  const ExportSettings& e = p.export_settings;
  if (e.format == ExportFormat::Auto)  // a project stores the format the path resolved to
    out.add("export.format must be " + enum_choices(kProjectExportFormatNames) + " (got " +
            to_string(e.format) + ")");
  if (e.scale != 1 && e.scale != 2 && e.scale != 4)
    out.add("export.scale must be 1, 2 or 4 (got " + std::to_string(e.scale) + ")");
  if (e.fps != 0) out.range("export.fps", e.fps, limits::kExportFps);  // 0 = the clip's rate
  out.range("export.quality", e.quality, limits::kExportQuality);
  if (e.range == ExportRange::InOut) {
    if (e.in < 0 || e.out < e.in || e.out >= length)
      out.add("export.in..export.out (" + std::to_string(e.in) + ".." + std::to_string(e.out) +
              ") must be a range inside the timeline (0.." + std::to_string(length - 1) + ")");
  }
  if (e.format == ExportFormat::PngFrame && length > 0)
    out.int_range("export.in", e.in, 0, length - 1);

  // Results.
  if (!p.results.generated.empty() && static_cast<long long>(p.results.generated.size()) != length)
    out.add("results.generated covers " + std::to_string(p.results.generated.size()) +
            " frames but the timeline has " + std::to_string(length));
  out.real_range("results.seconds", p.results.seconds, 0, 1e12);
  if (p.takes.current < 0)
    out.add("takes.current must be a take id >= 0 (got " + std::to_string(p.takes.current) + ")");
  return out.take();
}

void validate(const Project& p, int max_frames) {
  const auto problems = validation_problems(p, max_frames);
  if (problems.empty()) return;
  std::string msg = problems.size() == 1 ? "invalid project: " : "invalid project:\n  ";
  for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "\n  " : "") + problems[i];
  throw Error(msg);
}

}  // namespace dfs::project
