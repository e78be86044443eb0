// json_io.cpp — the project's JSON: the readers and writers of each part (json_io.h), and the
// project file and settings JSON built from them (to_json, project_from_json, settings_*).
//
// Index
//   [SECTION] Field readers         typed reads that name the field in their errors
//   [SECTION] Parts                 clip, timeline, settings, export, results (json_io.h)
//   [SECTION] Project JSON          the project file, and the settings alone
#include "json_io.h"

#include <algorithm>
#include <cstdint>
#include <string>
#include <type_traits>
#include <vector>

#include "dfs/limits.h"
#include "dfs/version.h"

namespace dfs::project {

using detail::json;

namespace detail {
namespace {

// Limits a user can reach from the UI or a file come from the one table in dfs/limits.h.
constexpr int kMaxTimelineFrames = limits::kTimelineFrames.int_max();

// [SECTION] Field readers -------------------------------------------------------------------------

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

// Name -> value for the enum fields the readers meet.
void from_name(const std::string& n, diffusion::ScheduleShape& out) {
  out = diffusion::schedule_shape_from_string(n);
}
void from_name(const std::string& n, diffusion::Solver& out) {
  out = diffusion::solver_from_string(n);
}
void from_name(const std::string& n, diffusion::GuidanceMode& out) {
  out = diffusion::guidance_mode_from_string(n);
}
void from_name(const std::string& n, FitMode& out) {
  out = fit_mode_from_string(n);
}
void from_name(const std::string& n, ExportFormat& out) {
  out = export_format_from_string(n);
}
void from_name(const std::string& n, ExportRange& out) {
  out = export_range_from_string(n);
}

// A field visitor that writes each field under its key (enums by name).
struct JsonWriter {
  json& out;
  template <class T>
  void operator()(const char* key, const T& value) {
    if constexpr (std::is_enum_v<T>)
      out[key] = to_string(value);
    else
      out[key] = value;
  }
  template <class Fields>
  void nested(const char* key, Fields fields) {
    json sub = json::object();
    JsonWriter writer{sub};
    fields(writer);
    out[key] = std::move(sub);
  }
};

// A field visitor that reads each field present under its key, checking its type and range
// and naming the field in its message (enums by name).
struct JsonReader {
  const json& in;
  std::string where;
  template <class T>
  void operator()(const char* key, T& value) {
    if constexpr (std::is_enum_v<T>)
      read_enum(in, where, key, value, [](const std::string& n) {
        T v{};
        from_name(n, v);
        return v;
      });
    else
      read(in, where, key, value);
  }
  template <class Fields>
  void nested(const char* key, Fields fields) {
    const json* sub = member(in, key);
    if (sub == nullptr) return;
    JsonReader reader{*sub, where + "." + key};
    need_object(*sub, reader.where);
    fields(reader);
  }
};

// Visits (key, field) pairs in order.
template <class Visit>
void fields(Visit&) {}
template <class Visit, class T, class... Rest>
void fields(Visit& v, const char* key, T& value, Rest&... rest) {
  v(key, value);
  fields(v, rest...);
}

// Each settings struct's fields with their JSON keys, written once for both directions.
template <class Clip, class Visit>
void clip_fields(Clip& c, Visit& v) {
  fields(v, "path", c.path, "width", c.width, "height", c.height, "fps", c.fps, "frame_count",
         c.frame_count, "duration_s", c.duration_s, "codec", c.codec, "fit", c.fit);
}

template <class Settings, class Visit>
void generation_fields(Settings& g, Visit& v) {
  auto& r = g.rollout;
  auto& s = r.sampler;
  auto& sc = s.schedule;
  fields(v, "schedule", sc.shape, "steps", sc.steps, "uncertainty", sc.uncertainty, "ar_step",
         sc.ar_step, "block", sc.block, "solver", s.solver, "eta", s.eta, "stabilization_user", s.stabilization_user,
         "stabilization_generated", s.stabilization_generated);
  v.nested("guidance", [&](auto& w) {
    fields(w, "mode", s.guidance.mode, "scale", s.guidance.scale, "fractional_level",
           s.guidance.fractional_level);
  });
  fields(v, "context", r.context, "horizon", r.horizon, "seed", r.seed, "kv_cache", r.kv_cache,
         "detail_transfer", r.detail_transfer, "exact", r.exact, "seed_locked", g.seed_locked);
}

template <class Export, class Visit>
void export_fields(Export& e, Visit& v) {
  fields(v, "format", e.format, "path", e.path, "range", e.range, "in", e.in, "out", e.out, "scale",
         e.scale, "smooth", e.smooth, "fps", e.fps, "quality", e.quality);
}

template <class Takes, class Visit>
void takes_fields(Takes& t, Visit& v) {
  fields(v, "folder", t.folder, "current", t.current);
}

template <class T, class Fields>
json write_fields(const T& value, Fields fields) {
  json j = json::object();
  JsonWriter writer{j};
  fields(value, writer);
  return j;
}

template <class T, class Fields>
T read_fields(const json& j, const std::string& where, Fields fields) {
  need_object(j, where);
  T value;
  JsonReader reader{j, where};
  fields(value, reader);
  return value;
}

}  // namespace

// [SECTION] Parts ---------------------------------------------------------------------------------

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
  return write_fields(c, [](auto& x, auto& v) { clip_fields(x, v); });
}

ClipRef clip_from_json(const json& j, const std::string& where) {
  return read_fields<ClipRef>(j, where, [](auto& x, auto& v) { clip_fields(x, v); });
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
  return write_fields(g, [](auto& x, auto& v) { generation_fields(x, v); });
}

GenerationSettings settings_from_json_object(const json& j, const std::string& where) {
  return read_fields<GenerationSettings>(j, where,
                                         [](auto& x, auto& v) { generation_fields(x, v); });
}

json export_to_json(const ExportSettings& e) {
  return write_fields(e, [](auto& x, auto& v) { export_fields(x, v); });
}

ExportSettings export_from_json(const json& j, const std::string& where) {
  return read_fields<ExportSettings>(j, where, [](auto& x, auto& v) { export_fields(x, v); });
}

json takes_to_json(const TakesRef& t) {
  return write_fields(t, [](auto& x, auto& v) { takes_fields(x, v); });
}

TakesRef takes_from_json(const json& j, const std::string& where) {
  return read_fields<TakesRef>(j, where, [](auto& x, auto& v) { takes_fields(x, v); });
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

// [SECTION] Project JSON --------------------------------------------------------------------------

std::string to_json(const Project& p, int indent) {
  json j{{"format", kProjectFormat},
         {"format_version", kProjectFormatVersion},
         {"app_version", kVersion},
         {"clip", detail::clip_to_json(p.clip)},
         {"model_path", p.model_path},
         {"timeline", detail::timeline_to_json(p.timeline)},
         {"generation", detail::settings_to_json_object(p.generation)},
         {"export", detail::export_to_json(p.export_settings)},
         {"results", detail::results_to_json(p.results, p.timeline.length())},
         {"takes", detail::takes_to_json(p.takes)}};
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
  if (const json* k = detail::member(j, "takes")) p.takes = detail::takes_from_json(*k, "takes");
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

}  // namespace dfs::project
