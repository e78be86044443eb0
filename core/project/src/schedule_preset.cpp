// schedule_preset.cpp — see dfs/project/schedule_preset.h.
#include "dfs/project/schedule_preset.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dfs/limits.h"
#include "json_io.h"

namespace dfs::project {
namespace {

using nlohmann::json;

constexpr std::size_t kMaxNameLength = 100;
// A preset's curve is a timeline's; the same bound as the timeline's length.
constexpr std::size_t kMaxLevels = static_cast<std::size_t>(limits::kTimelineFrames.int_max());

void add_problem(std::vector<std::string>& out, const std::string& problem) {
  if (!problem.empty()) out.push_back(problem);
}

int read_int(const json& obj, const char* key, const std::string& where) {
  const json& v = detail::need_member(obj, where, key);
  if (!v.is_number_integer()) throw Error(where + "." + key + " must be an integer");
  const auto x = v.get<long long>();
  if (x < -1000000000LL || x > 1000000000LL)
    throw Error(where + "." + key + " is out of range (got " + v.dump() + ")");
  return static_cast<int>(x);
}

double read_number(const json& obj, const char* key, const std::string& where) {
  const json& v = detail::need_member(obj, where, key);
  if (!v.is_number()) throw Error(where + "." + key + " must be a number");
  return v.get<double>();
}

std::vector<double> read_levels(const json& v, const std::string& where) {
  if (!v.is_array()) throw Error(where + " must be an array of numbers in [0, 1]");
  if (v.size() > kMaxLevels)
    throw Error(where + " has " + std::to_string(v.size()) + " levels (at most " +
                std::to_string(kMaxLevels) + ")");
  std::vector<double> out;
  out.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    const std::string field = where + "[" + std::to_string(i) + "]";
    if (!v[i].is_number()) throw Error(field + " must be a number");
    const double x = v[i].get<double>();
    if (!limits::kStartLevel.contains(x))
      throw Error(limits::problem(limits::kStartLevel, x, field));
    out.push_back(x);
  }
  return out;
}

json parse(const std::string& text, const std::string& what) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw Error(what + " is not valid JSON (" + std::string(e.what()) + ")");
  }
}

}  // namespace

// [SECTION] Presets -----------------------------------------------------------------------------

SchedulePreset preset_from_project(const Project& p, const std::string& name, bool with_levels) {
  SchedulePreset preset;
  preset.name = name;
  preset.schedule = p.generation.rollout.sampler.schedule;
  if (with_levels)
    for (int i = 0; i < p.timeline.length(); ++i)
      if (!p.timeline.pinned(i)) preset.start_levels.push_back(p.timeline.noise[i]);
  return preset;
}

void apply_preset(Project& p, const SchedulePreset& preset) {
  const auto problems = preset_problems(preset);
  if (!problems.empty()) throw Error("schedule preset '" + preset.name + "': " + problems.front());
  Project next = p;
  next.generation.rollout.sampler.schedule = preset.schedule;
  std::vector<int> unpinned;
  for (int i = 0; i < next.timeline.length(); ++i)
    if (!next.timeline.pinned(i)) unpinned.push_back(i);
  const auto levels = resample_levels(preset.start_levels, static_cast<int>(unpinned.size()));
  for (std::size_t k = 0; k < levels.size(); ++k) next.timeline.noise[unpinned[k]] = levels[k];
  validate(next);
  p = std::move(next);
}

std::vector<std::string> preset_problems(const SchedulePreset& preset) {
  std::vector<std::string> out;
  if (preset.name.empty()) out.push_back("name must not be empty");
  if (preset.name.size() > kMaxNameLength)
    out.push_back("name must be at most " + std::to_string(kMaxNameLength) + " characters");
  const auto& s = preset.schedule;
  add_problem(out, limits::problem(limits::kSteps, s.steps, "schedule.steps"));
  add_problem(out, limits::problem(limits::kUncertainty, s.uncertainty, "schedule.uncertainty"));
  add_problem(out, limits::problem(limits::kArStep, s.ar_step, "schedule.ar_step"));
  add_problem(out, limits::problem(limits::kBlock, s.block, "schedule.block"));
  if (preset.start_levels.size() > kMaxLevels) out.push_back("start_levels has too many levels");
  for (std::size_t i = 0; i < preset.start_levels.size(); ++i)
    add_problem(out, limits::problem(limits::kStartLevel, preset.start_levels[i],
                                     "start_levels[" + std::to_string(i) + "]"));
  return out;
}

std::string preset_to_json(const SchedulePreset& preset, int indent) {
  const auto& s = preset.schedule;
  json j = {{"format", kPresetFormat},
            {"format_version", kPresetFormatVersion},
            {"name", preset.name},
            {"schedule",
             {{"shape", diffusion::to_string(s.shape)},
              {"steps", s.steps},
              {"uncertainty", s.uncertainty},
              {"ar_step", s.ar_step},
              {"block", s.block}}},
            {"start_levels", preset.start_levels}};
  return j.dump(indent) + "\n";
}

SchedulePreset preset_from_json(const std::string& text) {
  const json j = parse(text, "the preset");
  if (!j.is_object()) throw Error("the preset must be a JSON object");
  const auto format = j.find("format");
  if (format == j.end() || !format->is_string() || format->get<std::string>() != kPresetFormat)
    throw Error(std::string("not a schedule preset (\"format\" must be \"") + kPresetFormat +
                "\")");
  const int version = read_int(j, "format_version", "preset");
  if (version > kPresetFormatVersion)
    throw Error("preset.format_version " + std::to_string(version) +
                " is newer than this program reads (" + std::to_string(kPresetFormatVersion) +
                "); update Diffusion Forcing Studio");
  SchedulePreset preset;
  const json& name = detail::need_member(j, "preset", "name");
  if (!name.is_string()) throw Error("preset.name must be a string");
  preset.name = name.get<std::string>();
  const json& sj = detail::need_member(j, "preset", "schedule");
  if (!sj.is_object()) throw Error("preset.schedule must be an object");
  auto& s = preset.schedule;
  const json& shape = detail::need_member(sj, "preset.schedule", "shape");
  if (!shape.is_string()) throw Error("preset.schedule.shape must be a string");
  try {
    s.shape = diffusion::schedule_shape_from_string(shape.get<std::string>());
  } catch (const std::exception& e) {
    throw Error(std::string("preset.schedule.shape: ") + e.what());
  }
  s.steps = read_int(sj, "steps", "preset.schedule");
  s.uncertainty = read_number(sj, "uncertainty", "preset.schedule");
  // Optional: only async_blocks uses them; absent keeps the defaults.
  if (sj.contains("ar_step")) s.ar_step = read_int(sj, "ar_step", "preset.schedule");
  if (sj.contains("block")) s.block = read_int(sj, "block", "preset.schedule");
  if (j.contains("start_levels"))
    preset.start_levels = read_levels(j["start_levels"], "preset.start_levels");
  const auto problems = preset_problems(preset);
  if (!problems.empty()) {
    std::string all = "preset." + problems.front();
    for (std::size_t i = 1; i < problems.size(); ++i) all += "\npreset." + problems[i];
    throw Error(all);
  }
  return preset;
}

std::string preset_file_name(const std::string& name) {
  std::string out;
  for (const char c : name) {
    const bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '_';
    out += keep ? c : '_';
  }
  if (out.empty()) out = "preset";
  return out + kPresetExtension;
}

void save_preset(const std::string& path, const SchedulePreset& preset) {
  const auto problems = preset_problems(preset);
  if (!problems.empty()) throw Error(path + ": " + problems.front());
  write_file_atomically(path, preset_to_json(preset));
}

SchedulePreset load_preset(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot be read (missing or not permitted)");
  // Presets are a few kilobytes; a huge file is not one.
  constexpr std::streamoff kMaxBytes = 64 << 20;
  in.seekg(0, std::ios::end);
  if (in.tellg() > kMaxBytes) throw Error(path + ": too large to be a schedule preset");
  in.seekg(0);
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return preset_from_json(text.str());
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

// [SECTION] Noise curves ------------------------------------------------------------------------

std::vector<double> resample_levels(const std::vector<double>& levels, int n) {
  if (n <= 0 || levels.empty()) return {};
  const int m = static_cast<int>(levels.size());
  if (m == n) return levels;
  if (m == 1) return std::vector<double>(static_cast<std::size_t>(n), levels.front());
  std::vector<double> out(static_cast<std::size_t>(n));
  for (int i = 0; i < n; ++i) {
    // Position i of n mapped onto [0, m - 1]: the ends meet the ends.
    const double x = n == 1 ? 0.0 : static_cast<double>(i) * (m - 1) / (n - 1);
    const int lo = std::min(static_cast<int>(std::floor(x)), m - 2);
    const double f = x - lo;
    out[static_cast<std::size_t>(i)] = levels[lo] * (1 - f) + levels[lo + 1] * f;
  }
  return out;
}

std::vector<double> noise_range(const Timeline& t, int first, int last) {
  if (first < 0 || last >= t.length() || first > last)
    throw Error("noise range " + std::to_string(first) + "-" + std::to_string(last) +
                " is outside the timeline (0-" + std::to_string(t.length() - 1) + ")");
  return {t.noise.begin() + first, t.noise.begin() + last + 1};
}

void paste_noise_range(Timeline& t, int first, int last, const std::vector<double>& levels) {
  noise_range(t, first, last);  // checks the range
  if (levels.empty()) throw Error("there is no noise curve to paste (no levels)");
  for (std::size_t i = 0; i < levels.size(); ++i)
    if (!limits::kStartLevel.contains(levels[i]))
      throw Error(limits::problem(limits::kStartLevel, levels[i],
                                  "level " + std::to_string(i) + " of the pasted curve"));
  const auto resampled = resample_levels(levels, last - first + 1);
  std::copy(resampled.begin(), resampled.end(), t.noise.begin() + first);
}

std::string levels_to_json(const std::vector<double>& levels) {
  return json(levels).dump();
}

std::vector<double> levels_from_json(const std::string& text) {
  const json j = parse(text, "the noise curve");
  auto levels = read_levels(j, "the noise curve");
  if (levels.empty()) throw Error("the noise curve is empty");
  return levels;
}

}  // namespace dfs::project
