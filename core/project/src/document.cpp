// document.cpp — the Project value: layouts, validation, JSON, and the Document (undo, save).
//
// Index
//   [SECTION] Enums
//   [SECTION] Timeline layouts and edits
//   [SECTION] Results
//   [SECTION] Equality and validation
//   [SECTION] JSON readers/writers (json_io.h)
//   [SECTION] Project JSON
//   [SECTION] Atomic file write
//   [SECTION] Document
#include "dfs/project/document.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dfs/limits.h"
#include "dfs/partial_files.h"
#include "dfs/version.h"
#include "json_io.h"

namespace dfs::project {

namespace fs = std::filesystem;
using detail::json;

namespace {

// Limits a user can reach from the UI or a file come from the one table in dfs/limits.h.
constexpr int kMaxTimelineFrames = limits::kTimelineFrames.int_max();

std::string fmt_double(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

void check_position(const Timeline& t, int position, const char* what) {
  if (position < 0 || position >= t.length())
    throw Error(std::string(what) + ": frame " + std::to_string(position) +
                " is outside the timeline (0.." + std::to_string(t.length() - 1) + ")");
}

void check_level(double level, const char* what) {
  if (!std::isfinite(level) || level < 0.0 || level > 1.0)
    throw Error(std::string(what) + ": noise level must be in [0, 1] (got " + fmt_double(level) +
                ")");
}

}  // namespace

// [SECTION] Enums ---------------------------------------------------------------------------

const char* to_string(FitMode mode) {
  switch (mode) {
    case FitMode::Letterbox:
      return "letterbox";
    case FitMode::Crop:
      return "crop";
    case FitMode::Stretch:
      return "stretch";
  }
  return "letterbox";
}

FitMode fit_mode_from_string(const std::string& s) {
  if (s == "letterbox" || s == "pad") return FitMode::Letterbox;
  if (s == "crop") return FitMode::Crop;
  if (s == "stretch") return FitMode::Stretch;
  throw Error("unknown fit mode '" + s + "' (expected letterbox, crop or stretch)");
}

const char* to_string(ExportFormat format) {
  switch (format) {
    case ExportFormat::Mp4:
      return "mp4";
    case ExportFormat::WebM:
      return "webm";
    case ExportFormat::Gif:
      return "gif";
    case ExportFormat::PngSequence:
      return "png_sequence";
    case ExportFormat::PngFrame:
      return "png_frame";
  }
  return "mp4";
}

ExportFormat export_format_from_string(const std::string& s) {
  if (s == "mp4") return ExportFormat::Mp4;
  if (s == "webm") return ExportFormat::WebM;
  if (s == "gif") return ExportFormat::Gif;
  if (s == "png_sequence" || s == "png-seq" || s == "pngs") return ExportFormat::PngSequence;
  if (s == "png_frame" || s == "png") return ExportFormat::PngFrame;
  throw Error("unknown export format '" + s +
              "' (expected mp4, webm, gif, png_sequence or png_frame)");
}

ExportFormat export_format_from_path(const std::string& path) {
  if (path.empty()) throw Error("no output path given");
  if (path.back() == '/') return ExportFormat::PngSequence;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return ExportFormat::PngSequence;
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext.empty()) return ExportFormat::PngSequence;
  if (ext == ".mp4" || ext == ".m4v" || ext == ".mov") return ExportFormat::Mp4;
  if (ext == ".webm") return ExportFormat::WebM;
  if (ext == ".gif") return ExportFormat::Gif;
  if (ext == ".png") return ExportFormat::PngFrame;
  throw Error("cannot export to '" + path + "': unknown extension '" + ext +
              "' (use .mp4, .webm, .gif, .png, or a folder for a PNG sequence)");
}

const char* to_string(ExportRange range) {
  switch (range) {
    case ExportRange::All:
      return "all";
    case ExportRange::Generated:
      return "generated";
    case ExportRange::InOut:
      return "in_out";
  }
  return "all";
}

ExportRange export_range_from_string(const std::string& s) {
  if (s == "all") return ExportRange::All;
  if (s == "generated") return ExportRange::Generated;
  if (s == "in_out" || s == "in-out") return ExportRange::InOut;
  throw Error("unknown export range '" + s + "' (expected all, generated or in_out)");
}

// [SECTION] Timeline layouts and edits --------------------------------------------------------

Timeline extend_layout(int clip_frames, int n) {
  if (clip_frames < 0) throw Error("extend: the clip has a negative frame count");
  if (n < 1 || n > kMaxTimelineFrames)
    throw Error("extend: frames to add must be in 1.." + std::to_string(kMaxTimelineFrames) +
                " (got " + std::to_string(n) + ")");
  Timeline t;
  t.source_count = clip_frames;
  t.new_frames = n;
  t.noise.assign(static_cast<size_t>(t.length()), 1.0);
  for (int i = 0; i < clip_frames; ++i) {
    t.pins.insert(i);
    t.noise[static_cast<size_t>(i)] = 0.0;
  }
  return t;
}

Timeline regenerate_layout(int clip_frames, int first, int last, double level) {
  if (clip_frames < 1) throw Error("regenerate: the clip has no frames");
  if (first < 0 || last >= clip_frames || first > last)
    throw Error("regenerate: range " + std::to_string(first) + ".." + std::to_string(last) +
                " must lie inside the clip (0.." + std::to_string(clip_frames - 1) + ")");
  check_level(level, "regenerate");
  Timeline t;
  t.source_count = clip_frames;
  t.noise.assign(static_cast<size_t>(clip_frames), 0.0);
  for (int i = 0; i < clip_frames; ++i) {
    if (i >= first && i <= last)
      t.noise[static_cast<size_t>(i)] = level;
    else
      t.pins.insert(i);
  }
  return t;
}

Timeline fill_gap_layout(int clip_frames, int a, int b) {
  if (clip_frames < 1) throw Error("fill gap: the clip has no frames");
  if (a < 0 || b >= clip_frames || a + 1 >= b)
    throw Error("fill gap: pins " + std::to_string(a) + " and " + std::to_string(b) +
                " must lie inside the clip (0.." + std::to_string(clip_frames - 1) +
                ") with at least one frame between them");
  return regenerate_layout(clip_frames, a + 1, b - 1, 1.0);
}

void set_pinned(Timeline& t, int position, bool pinned) {
  check_position(t, position, "pin");
  if (pinned)
    t.pins.insert(position);
  else
    t.pins.erase(position);
}

void set_pinned_range(Timeline& t, int first, int last, bool pinned) {
  if (first > last) std::swap(first, last);
  check_position(t, first, "pin range");
  check_position(t, last, "pin range");
  for (int i = first; i <= last; ++i) set_pinned(t, i, pinned);
}

void pin_all_source(Timeline& t) {
  for (int i = 0; i < t.source_count; ++i) t.pins.insert(i);
}

void clear_pins(Timeline& t) {
  t.pins.clear();
}

void set_noise(Timeline& t, int position, double level) {
  check_position(t, position, "noise");
  check_level(level, "noise");
  t.noise.resize(static_cast<size_t>(t.length()), 1.0);
  t.noise[static_cast<size_t>(position)] = level;
}

void set_noise_range(Timeline& t, int first, int last, double level) {
  if (first > last) std::swap(first, last);
  check_position(t, first, "noise range");
  check_position(t, last, "noise range");
  check_level(level, "noise range");
  t.noise.resize(static_cast<size_t>(t.length()), 1.0);
  for (int i = first; i <= last; ++i) t.noise[static_cast<size_t>(i)] = level;
}

void set_new_frames(Timeline& t, int n) {
  if (n < 0 || n > kMaxTimelineFrames)
    throw Error("new frames must be in 0.." + std::to_string(kMaxTimelineFrames) + " (got " +
                std::to_string(n) + ")");
  t.new_frames = n;
  t.noise.resize(static_cast<size_t>(t.length()), 1.0);
  for (auto it = t.pins.begin(); it != t.pins.end();) {
    if (*it >= t.length())
      it = t.pins.erase(it);
    else
      ++it;
  }
}

// [SECTION] Results ---------------------------------------------------------------------------

bool Results::any() const {
  return std::find(generated.begin(), generated.end(), true) != generated.end();
}

bool Results::has(int position) const {
  return position >= 0 && static_cast<size_t>(position) < generated.size() &&
         generated[static_cast<size_t>(position)];
}

std::string Results::cached_frame_path(int position) const {
  if (cache_dir.empty() || position < 0) return "";
  char name[32];
  std::snprintf(name, sizeof name, "frame_%06d.png", position);
  return (fs::path(cache_dir) / name).string();
}

// [SECTION] Equality and validation -------------------------------------------------------------

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
  return out.take();
}

void validate(const Project& p, int max_frames) {
  const auto problems = validation_problems(p, max_frames);
  if (problems.empty()) return;
  std::string msg = problems.size() == 1 ? "invalid project: " : "invalid project:\n  ";
  for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "\n  " : "") + problems[i];
  throw Error(msg);
}

// [SECTION] JSON readers/writers ---------------------------------------------------------------

namespace detail {
namespace {

const char* type_word(const json& v) {
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "true/false";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

[[noreturn]] void bad_type(const std::string& field, const char* want, const json& v) {
  throw Error(field + " must be " + want + " (got " + type_word(v) + ")");
}

const json* member(const json& obj, const std::string& key) {
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

void need_object(const json& j, const std::string& where) {
  if (!j.is_object()) bad_type(where, "an object", j);
}

// Optional fields: absent keeps `out` (the default); present but mistyped or out of the type's
// range throws naming the field. Range limits are checked later by validation_problems().
void read(const json& obj, const std::string& where, const char* key, int& out) {
  const json* v = member(obj, key);
  if (!v) return;
  const std::string field = where + "." + key;
  if (!v->is_number_integer()) bad_type(field, "an integer", *v);
  const auto x = v->get<long long>();
  if (v->is_number_unsigned() &&
      v->get<unsigned long long>() > static_cast<unsigned long long>(INT32_MAX))
    throw Error(field + " is too large (got " + v->dump() + ")");
  if (x < INT32_MIN || x > INT32_MAX)
    throw Error(field + " is out of range (got " + v->dump() + ")");
  out = static_cast<int>(x);
}

void read(const json& obj, const std::string& where, const char* key, uint64_t& out) {
  const json* v = member(obj, key);
  if (!v) return;
  const std::string field = where + "." + key;
  if (!v->is_number_integer() ||
      (v->is_number_integer() && !v->is_number_unsigned() && v->get<long long>() < 0))
    bad_type(field, "a non-negative integer", *v);
  out = v->get<uint64_t>();
}

void read(const json& obj, const std::string& where, const char* key, double& out) {
  const json* v = member(obj, key);
  if (!v) return;
  if (!v->is_number()) bad_type(where + "." + key, "a number", *v);
  out = v->get<double>();
}

void read(const json& obj, const std::string& where, const char* key, bool& out) {
  const json* v = member(obj, key);
  if (!v) return;
  if (!v->is_boolean()) bad_type(where + "." + key, "true or false", *v);
  out = v->get<bool>();
}

void read(const json& obj, const std::string& where, const char* key, std::string& out) {
  const json* v = member(obj, key);
  if (!v) return;
  if (!v->is_string()) bad_type(where + "." + key, "a string", *v);
  out = v->get<std::string>();
}

// Enum fields: parse with `from`, prefix its message with the field.
template <typename E, typename From>
void read_enum(const json& obj, const std::string& where, const char* key, E& out, From from) {
  std::string s;
  read(obj, where, key, s);
  if (!member(obj, key)) return;
  try {
    out = from(s);
  } catch (const std::exception& e) {
    throw Error(where + "." + key + ": " + e.what());
  }
}

}  // namespace

json parse_object(const std::string& text, const std::string& what) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    // parse_error, and out_of_range for a number too large for a double ("9e9999"): found by
    // fuzz_project.
    throw Error(what + " is not valid JSON (" + std::string(e.what()) + ")");
  }
  if (!j.is_object()) throw Error(what + " must be a JSON object (got " + type_word(j) + ")");
  return j;
}

json clip_to_json(const ClipRef& c) {
  return json{{"path", c.path},
              {"width", c.width},
              {"height", c.height},
              {"fps", c.fps},
              {"frame_count", c.frame_count},
              {"duration_s", c.duration_s},
              {"codec", c.codec},
              {"fit", to_string(c.fit)}};
}

ClipRef clip_from_json(const json& j, const std::string& where) {
  need_object(j, where);
  ClipRef c;
  read(j, where, "path", c.path);
  read(j, where, "width", c.width);
  read(j, where, "height", c.height);
  read(j, where, "fps", c.fps);
  read(j, where, "frame_count", c.frame_count);
  read(j, where, "duration_s", c.duration_s);
  read(j, where, "codec", c.codec);
  read_enum(j, where, "fit", c.fit, fit_mode_from_string);
  return c;
}

json timeline_to_json(const Timeline& t) {
  return json{{"source_first", t.source_first},
              {"source_count", t.source_count},
              {"new_frames", t.new_frames},
              {"pins", json(std::vector<int>(t.pins.begin(), t.pins.end()))},
              {"noise", t.noise}};
}

Timeline timeline_from_json(const json& j, const std::string& where) {
  need_object(j, where);
  Timeline t;
  read(j, where, "source_first", t.source_first);
  read(j, where, "source_count", t.source_count);
  read(j, where, "new_frames", t.new_frames);
  if (t.source_count < 0 || t.new_frames < 0 || t.source_count > kMaxTimelineFrames ||
      t.new_frames > kMaxTimelineFrames)
    throw Error(where + ": source_count and new_frames must be in 0.." +
                std::to_string(kMaxTimelineFrames));
  if (const json* pins = member(j, "pins")) {
    if (!pins->is_array()) bad_type(where + ".pins", "an array of frame indices", *pins);
    for (size_t i = 0; i < pins->size(); ++i) {
      const json& v = (*pins)[i];
      if (!v.is_number_integer())
        bad_type(where + ".pins[" + std::to_string(i) + "]", "an integer", v);
      const auto x = v.get<long long>();
      if (x < INT32_MIN || x > INT32_MAX)
        throw Error(where + ".pins[" + std::to_string(i) + "] is out of range");
      t.pins.insert(static_cast<int>(x));
    }
  }
  if (const json* noise = member(j, "noise")) {
    if (!noise->is_array()) bad_type(where + ".noise", "an array of levels", *noise);
    if (noise->size() > static_cast<size_t>(2 * kMaxTimelineFrames))
      throw Error(where + ".noise is too long (" + std::to_string(noise->size()) + " levels)");
    t.noise.reserve(noise->size());
    for (size_t i = 0; i < noise->size(); ++i) {
      const json& v = (*noise)[i];
      if (!v.is_number()) bad_type(where + ".noise[" + std::to_string(i) + "]", "a number", v);
      t.noise.push_back(v.get<double>());
    }
  } else {
    // Absent: the default curve (source frames kept, new frames from noise).
    t.noise.assign(static_cast<size_t>(t.length()), 1.0);
    for (int i = 0; i < t.source_count; ++i) t.noise[static_cast<size_t>(i)] = 0.0;
  }
  return t;
}

json settings_to_json_object(const GenerationSettings& g) {
  const auto& r = g.rollout;
  const auto& s = r.sampler;
  return json{{"schedule", diffusion::to_string(s.schedule.shape)},
              {"steps", s.schedule.steps},
              {"uncertainty", s.schedule.uncertainty},
              {"ar_step", s.schedule.ar_step},
              {"block", s.schedule.block},
              {"eta", s.eta},
              {"stabilization_user", s.stabilization_user},
              {"stabilization_generated", s.stabilization_generated},
              {"guidance",
               {{"mode", diffusion::to_string(s.guidance.mode)},
                {"scale", s.guidance.scale},
                {"fractional_level", s.guidance.fractional_level}}},
              {"context", r.context},
              {"horizon", r.horizon},
              {"seed", r.seed},
              {"kv_cache", r.kv_cache},
              {"detail_transfer", r.detail_transfer},
              {"seed_locked", g.seed_locked}};
}

GenerationSettings settings_from_json_object(const json& j, const std::string& where) {
  need_object(j, where);
  GenerationSettings g;
  auto& r = g.rollout;
  auto& s = r.sampler;
  read_enum(j, where, "schedule", s.schedule.shape,
            [](const std::string& n) { return diffusion::schedule_shape_from_string(n); });
  read(j, where, "steps", s.schedule.steps);
  read(j, where, "uncertainty", s.schedule.uncertainty);
  read(j, where, "ar_step", s.schedule.ar_step);
  read(j, where, "block", s.schedule.block);
  read(j, where, "eta", s.eta);
  read(j, where, "stabilization_user", s.stabilization_user);
  read(j, where, "stabilization_generated", s.stabilization_generated);
  if (const json* gd = member(j, "guidance")) {
    const std::string w = where + ".guidance";
    need_object(*gd, w);
    read_enum(*gd, w, "mode", s.guidance.mode,
              [](const std::string& n) { return diffusion::guidance_mode_from_string(n); });
    read(*gd, w, "scale", s.guidance.scale);
    read(*gd, w, "fractional_level", s.guidance.fractional_level);
  }
  read(j, where, "context", r.context);
  read(j, where, "horizon", r.horizon);
  read(j, where, "seed", r.seed);
  read(j, where, "kv_cache", r.kv_cache);
  read(j, where, "detail_transfer", r.detail_transfer);
  read(j, where, "seed_locked", g.seed_locked);
  return g;
}

json export_to_json(const ExportSettings& e) {
  return json{{"format", to_string(e.format)},
              {"path", e.path},
              {"range", to_string(e.range)},
              {"in", e.in},
              {"out", e.out},
              {"scale", e.scale},
              {"smooth", e.smooth},
              {"fps", e.fps},
              {"quality", e.quality}};
}

ExportSettings export_from_json(const json& j, const std::string& where) {
  need_object(j, where);
  ExportSettings e;
  read_enum(j, where, "format", e.format, export_format_from_string);
  read(j, where, "path", e.path);
  read_enum(j, where, "range", e.range, export_range_from_string);
  read(j, where, "in", e.in);
  read(j, where, "out", e.out);
  read(j, where, "scale", e.scale);
  read(j, where, "smooth", e.smooth);
  read(j, where, "fps", e.fps);
  read(j, where, "quality", e.quality);
  return e;
}

// Results store the generated positions as a list (compact for long timelines).
json results_to_json(const Results& r, int /*length*/) {
  std::vector<int> positions;
  for (size_t i = 0; i < r.generated.size(); ++i)
    if (r.generated[i]) positions.push_back(static_cast<int>(i));
  return json{{"generated", positions},
              {"cache_dir", r.cache_dir},
              {"seed", r.seed},
              {"seconds", r.seconds}};
}

Results results_from_json(const json& j, const std::string& where, int length) {
  need_object(j, where);
  Results r;
  read(j, where, "cache_dir", r.cache_dir);
  read(j, where, "seed", r.seed);
  read(j, where, "seconds", r.seconds);
  if (const json* g = member(j, "generated")) {
    if (!g->is_array()) bad_type(where + ".generated", "an array of frame indices", *g);
    if (!g->empty()) r.generated.assign(static_cast<size_t>(std::max(length, 0)), false);
    for (size_t i = 0; i < g->size(); ++i) {
      const json& v = (*g)[i];
      const std::string field = where + ".generated[" + std::to_string(i) + "]";
      if (!v.is_number_integer()) bad_type(field, "an integer", v);
      const auto x = v.get<long long>();
      if (x < 0 || x >= length)
        throw Error(field + " = " + std::to_string(x) + " is outside the timeline (0.." +
                    std::to_string(length - 1) + ")");
      r.generated[static_cast<size_t>(x)] = true;
    }
  }
  return r;
}

}  // namespace detail

// [SECTION] Project JSON -----------------------------------------------------------------------

std::string to_json(const Project& p, int indent) {
  json j{{"format", kProjectFormat},
         {"format_version", kProjectFormatVersion},
         {"app_version", kVersion},
         {"clip", detail::clip_to_json(p.clip)},
         {"model_path", p.model_path},
         {"timeline", detail::timeline_to_json(p.timeline)},
         {"generation", detail::settings_to_json_object(p.generation)},
         {"export", detail::export_to_json(p.export_settings)},
         {"results", detail::results_to_json(p.results, p.timeline.length())}};
  return j.dump(indent) + (indent >= 0 ? "\n" : "");
}

Project project_from_json(const std::string& text) {
  const json j = detail::parse_object(text, "project file");
  const json* format = detail::member(j, "format");
  if (!format || !format->is_string())
    throw Error("not a Diffusion Forcing Studio project (no \"format\": \"" +
                std::string(kProjectFormat) + "\")");
  if (format->get<std::string>() != kProjectFormat)
    throw Error("not a Diffusion Forcing Studio project (format is \"" +
                format->get<std::string>() + "\", expected \"" + kProjectFormat + "\")");
  int version = 0;
  detail::read(j, "project", "format_version", version);
  if (version < 1)
    throw Error("project.format_version is missing or invalid (expected 1.." +
                std::to_string(kProjectFormatVersion) + ")");
  if (version > kProjectFormatVersion)
    throw Error("this project was saved by a newer Diffusion Forcing Studio (format version " +
                std::to_string(version) + "; this build reads up to " +
                std::to_string(kProjectFormatVersion) + ")");
  if (!detail::member(j, "timeline")) throw Error("project.timeline is missing");

  Project p;
  if (const json* c = detail::member(j, "clip")) p.clip = detail::clip_from_json(*c, "clip");
  detail::read(j, "project", "model_path", p.model_path);
  p.timeline = detail::timeline_from_json(j.at("timeline"), "timeline");
  if (const json* g = detail::member(j, "generation"))
    p.generation = detail::settings_from_json_object(*g, "generation");
  if (const json* e = detail::member(j, "export"))
    p.export_settings = detail::export_from_json(*e, "export");
  if (const json* r = detail::member(j, "results"))
    p.results = detail::results_from_json(*r, "results", p.timeline.length());
  validate(p);
  return p;
}

std::string settings_to_json(const GenerationSettings& s, int indent) {
  return detail::settings_to_json_object(s).dump(indent);
}

GenerationSettings settings_from_json(const std::string& text) {
  const json j = detail::parse_object(text, "generation settings");
  GenerationSettings g = detail::settings_from_json_object(j, "generation");
  Project probe;
  probe.generation = g;
  validate(probe);
  return g;
}

// [SECTION] Atomic file write --------------------------------------------------------------------

void write_file_atomically(const std::string& path, const std::string& text) {
  if (path.empty()) throw Error("cannot save: no file name given");
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error("cannot save '" + path + "': the folder '" + dir.string() + "' does not exist");
  if (fs::is_directory(target, ec)) throw Error("cannot save '" + path + "': it is a folder");

  // The temporary file sits in the same folder so that rename() is atomic (same filesystem).
  // Its name says what it is (dfs/partial_files.h); leftovers of killed processes are swept.
  static std::atomic<unsigned> counter{0};
  const std::string tmp = dfs::partial_name(path, counter++);
  dfs::remove_stale_partials(dir, target.filename().string());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot save '" + path + "': " + std::strerror(errno));
  auto fail = [&](const std::string& what) {
    const std::string reason = dfs::write_error_text(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error("cannot save '" + path + "': " + what + " failed (" + reason + ")");
  };
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("writing");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("flushing to disk");
  if (::close(fd) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Error("cannot save '" + path + "': closing failed (" + reason + ")");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Error("cannot save '" + path + "': replacing the file failed (" + reason + ")");
  }
  // Make the rename itself durable (best effort: not every filesystem supports it).
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

// [SECTION] Document
// -------------------------------------------------------------------------------

Document::Document(Project project) : project_(std::move(project)) {
  validate(project_);
}

bool Document::edit(const std::string& label, const std::function<void(Project&)>& change,
                    const std::string& merge_key) {
  Project next = project_;
  try {
    change(next);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(label + ": " + e.what());
  }
  // Results follow the timeline's length (an edit that adds frames adds "not generated").
  if (!next.results.generated.empty())
    next.results.generated.resize(static_cast<size_t>(std::max(next.timeline.length(), 0)), false);
  validate(next);
  if (next == project_) return false;

  const bool merge = !merge_key.empty() && merge_open_ && !undo_.empty() &&
                     undo_.back().merge_key == merge_key && redo_.empty();
  if (!merge) {
    undo_.push_back(Step{label, merge_key, std::move(project_)});
    if (undo_.size() > kMaxUndo) undo_.erase(undo_.begin());
  }
  merge_open_ = !merge_key.empty();
  redo_.clear();
  project_ = std::move(next);
  dirty_ = true;
  ++revision_;
  return true;
}

void Document::end_merge() {
  merge_open_ = false;
}

void Document::set_results(Results results) {
  Project next = project_;
  next.results = std::move(results);
  validate(next);
  project_ = std::move(next);
  dirty_ = true;
  ++revision_;
}

std::string Document::undo_label() const {
  return undo_.empty() ? "" : undo_.back().label;
}
std::string Document::redo_label() const {
  return redo_.empty() ? "" : redo_.back().label;
}

void Document::apply_snapshot(Project snapshot) {
  // Results are not undone: the generated pixels still exist. Keep them, fitted to the
  // restored timeline's length.
  snapshot.results = project_.results;
  if (!snapshot.results.generated.empty())
    snapshot.results.generated.resize(static_cast<size_t>(snapshot.timeline.length()), false);
  project_ = std::move(snapshot);
  dirty_ = true;
  ++revision_;
}

bool Document::undo() {
  merge_open_ = false;
  if (undo_.empty()) return false;
  Step step = std::move(undo_.back());
  undo_.pop_back();
  redo_.push_back(Step{step.label, step.merge_key, project_});
  apply_snapshot(std::move(step.before));
  return true;
}

bool Document::redo() {
  merge_open_ = false;
  if (redo_.empty()) return false;
  Step step = std::move(redo_.back());
  redo_.pop_back();
  undo_.push_back(Step{step.label, step.merge_key, project_});
  apply_snapshot(std::move(step.before));
  return true;
}

void Document::clear_history() {
  undo_.clear();
  redo_.clear();
  merge_open_ = false;
}

Document Document::load(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("cannot open project '" + path + "': no such file");
  if (fs::is_directory(path, ec)) throw Error("cannot open project '" + path + "': it is a folder");
  const auto size = fs::file_size(path, ec);
  constexpr std::uintmax_t kMaxProjectBytes = 256u << 20;  // a million frames of levels fits
  if (ec || size > kMaxProjectBytes)
    throw Error("cannot open project '" + path + "': " + (ec ? ec.message() : "file too large"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open project '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  Document doc;
  try {
    doc.project_ = project_from_json(text.str());
  } catch (const Error& e) {
    throw Error("cannot open project '" + path + "': " + e.what());
  }
  doc.path_ = path;
  return doc;
}

void Document::save_as(const std::string& path) {
  write_file_atomically(path, to_json(project_));
  path_ = path;
  dirty_ = false;
  ++revision_;
}

void Document::save() {
  if (path_.empty()) throw Error("cannot save: the project has no file name yet (use Save As)");
  save_as(path_);
}

std::string Document::resolve(const std::string& p) const {
  if (p.empty()) return p;
  const fs::path in(p);
  if (in.is_absolute()) return p;
  std::error_code ec;
  const fs::path base =
      path_.empty() ? fs::current_path(ec) : fs::absolute(path_, ec).parent_path();
  return (base / in).lexically_normal().string();
}

}  // namespace dfs::project
