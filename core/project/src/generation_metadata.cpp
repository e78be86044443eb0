// generation_metadata.cpp — the settings JSON embedded in every export
// (generation_metadata_json), and restoring a project from it or from a project file.
#include "dfs/project/generation.h"

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "dfs/media/metadata.h"
#include "dfs/version.h"
#include "errors.h"
#include "json_io.h"

namespace dfs::project {

namespace fs = std::filesystem;
using detail::json;
using detail::translate_errors;

std::string generation_metadata_json(const Project& p, const diffusion::ModelInfo* model,
                                     int indent) {
  json m{{"path", p.model_path}};
  if (model) {
    m["name"] = model->name;
    m["width"] = model->width;
    m["height"] = model->height;
    m["max_frames"] = model->max_frames;
    m["causal"] = model->causal;
    m["objective"] = model->objective;
    m["noise_schedule"] = model->noise_schedule;
    m["parameter_count"] = model->parameter_count;
  }
  // Exports write this before the rollout runs (the encoder is opened first), so the frames
  // this run will generate — every unpinned position — count as well as earlier results.
  std::vector<int> generated;
  for (int i = 0; i < p.timeline.length(); ++i) {
    const bool earlier = static_cast<size_t>(i) < p.results.generated.size() &&
                         p.results.generated[static_cast<size_t>(i)];
    if (earlier || !p.timeline.pinned(i)) generated.push_back(i);
  }
  json j{{"format", kGenerationFormat},
         {"format_version", kGenerationFormatVersion},
         {"app", "Diffusion Forcing Studio"},
         {"app_version", kVersion},
         {"model", m},
         {"seed", p.generation.rollout.seed},
         {"settings", detail::settings_to_json_object(p.generation)},
         {"clip", detail::clip_to_json(p.clip)},
         {"fit", to_string(p.clip.fit)},
         {"timeline", detail::timeline_to_json(p.timeline)},
         {"export", detail::export_to_json(p.export_settings)},
         {"generated", generated}};
  return j.dump(indent);
}

void restore_from_metadata(Project& project, const std::string& text, const RestoreOptions& what) {
  const json j = detail::parse_object(text, "generation settings");
  const auto format_it = j.find("format");
  const std::string format =
      format_it != j.end() && format_it->is_string() ? format_it->get<std::string>() : "";
  Project next = project;
  if (format == kProjectFormat) {
    const Project from = project_from_json(text);
    if (what.settings) next.generation = from.generation;
    if (what.timeline) next.timeline = from.timeline;
    if (what.clip) next.clip = from.clip;
    if (what.model) next.model_path = from.model_path;
  } else if (format == kGenerationFormat) {
    int version = 0;
    if (auto v = j.find("format_version"); v != j.end() && v->is_number_integer())
      version = v->get<int>();
    if (version < 1 || version > kGenerationFormatVersion)
      throw Error("generation settings format_version " + std::to_string(version) +
                  " is not supported (this build reads 1.." +
                  std::to_string(kGenerationFormatVersion) + ")");
    if (what.settings && j.contains("settings"))
      next.generation = detail::settings_from_json_object(j.at("settings"), "settings");
    if (what.timeline && j.contains("timeline"))
      next.timeline = detail::timeline_from_json(j.at("timeline"), "timeline");
    if (what.clip && j.contains("clip")) next.clip = detail::clip_from_json(j.at("clip"), "clip");
    if (what.model && j.contains("model")) {
      const json& m = j.at("model");
      if (!m.is_object()) throw Error("model must be an object");
      if (auto path = m.find("path"); path != m.end()) {
        if (!path->is_string()) throw Error("model.path must be a string");
        next.model_path = path->get<std::string>();
      }
    }
  } else {
    throw Error("these are not Diffusion Forcing Studio generation settings (\"format\" is \"" +
                format + "\"; expected \"" + kGenerationFormat + "\" or \"" + kProjectFormat +
                "\")");
  }
  // Results of the old timeline do not describe the restored one.
  if (what.timeline) next.results = Results{};
  validate(next);
  project = std::move(next);
}

void restore_from_exported_file(Project& project, const std::string& exported_path,
                                const RestoreOptions& what) {
  std::error_code ec;
  if (!fs::exists(exported_path, ec))
    throw Error("cannot read settings from '" + exported_path + "': no such file");
  const std::optional<std::string> text =
      translate_errors("cannot read settings from '" + exported_path + "'",
                       [&] { return media::read_generation_metadata(exported_path); });
  if (!text)
    throw Error(
        "'" + exported_path +
        "' carries no generation settings (it was not exported by Diffusion Forcing Studio, "
        "or its metadata and .json sidecar were removed)");
  try {
    restore_from_metadata(project, *text, what);
  } catch (const Error& e) {
    throw Error("cannot restore settings from '" + exported_path + "': " + e.what());
  }
}

}  // namespace dfs::project
