// dfs/project/schedule_preset.h — named schedule presets (shape, steps, uncertainty, async
// blocks, custom start levels) as small JSON files, and the per-frame noise curve as text (the
// Studio's Edit > Copy / Paste noise curve goes through the clipboard as a JSON array).
//
// Index
//   [SECTION] Presets          SchedulePreset, from/to a project, JSON, files
//   [SECTION] Noise curves     resampling, JSON arrays, pasting onto a range
//
// Units: start levels are fractions in [0, 1] (0 = keep, 1 = pure noise), as in document.h.
// Thread-safety: plain values and pure functions; the file functions touch only their path.
// Errors a user can cause (a bad file, a value out of range) throw dfs::project::Error naming
// the file and the field; a function that throws changes nothing.
#pragma once

#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/project/document.h"

namespace dfs::project {

// [SECTION] Presets -----------------------------------------------------------------------------

// Preset files are JSON: {"format": "dfstudio-schedule-preset", "format_version": 1, "name": ...,
// "schedule": {"shape", "steps", "uncertainty", "ar_step", "block"}, "start_levels": [...]}.
inline constexpr const char* kPresetFormat = "dfstudio-schedule-preset";
inline constexpr int kPresetFormatVersion = 1;
inline constexpr const char* kPresetExtension = ".json";

struct SchedulePreset {
  std::string name;                      // shown in menus; non-empty, at most 100 characters
  diffusion::ScheduleSettings schedule;  // shape, steps, uncertainty, ar_step, block
  // The start levels of the frames a generation changes (the timeline's unpinned positions, in
  // order) when the preset was saved: the noise curve over the generated range, whatever the
  // clip's length. Empty = the preset leaves the noise curve alone. Applied resampled onto the
  // unpinned positions of the timeline it is applied to (resample_levels).
  std::vector<double> start_levels;
  friend bool operator==(const SchedulePreset&, const SchedulePreset&) = default;
};

// The preset a project's current schedule makes (with its noise curve when `with_levels`).
SchedulePreset preset_from_project(const Project& p, const std::string& name,
                                   bool with_levels = true);
// Sets the project's schedule to the preset's and, when it has start levels and the timeline has
// unpinned positions, their levels to the preset's resampled to their count (pinned positions
// keep theirs). Throws Error (and changes nothing) when the result would not be a valid project.
void apply_preset(Project& p, const SchedulePreset& preset);

// Every problem of the preset, one message each naming the field; empty when valid.
std::vector<std::string> preset_problems(const SchedulePreset& preset);

std::string preset_to_json(const SchedulePreset& preset, int indent = 2);
// Parses and validates. Throws Error for malformed JSON, another format, a newer version, a
// missing or mistyped field, or a value out of range (named).
SchedulePreset preset_from_json(const std::string& text);

// A file name for a preset name: letters, digits, '-' and '_' kept, anything else '_', plus
// kPresetExtension ("Slow pyramid" -> "Slow_pyramid.json").
std::string preset_file_name(const std::string& name);
// Writes atomically (write_file_atomically); throws Error naming the path.
void save_preset(const std::string& path, const SchedulePreset& preset);
// Reads and validates; throws Error "<path>: <problem>".
SchedulePreset load_preset(const std::string& path);

// [SECTION] Noise curves ------------------------------------------------------------------------

// `levels` resampled linearly to `n` values (first and last kept; n == size returns a copy; a
// single level is repeated). Empty for n <= 0 or empty input.
std::vector<double> resample_levels(const std::vector<double>& levels, int n);

// The timeline's levels of positions first..last (inclusive); throws Error when outside.
std::vector<double> noise_range(const Timeline& t, int first, int last);
// Sets positions first..last to `levels` resampled to the range's length; throws Error (and
// changes nothing) for a range outside the timeline, no levels or a level outside [0, 1].
void paste_noise_range(Timeline& t, int first, int last, const std::vector<double>& levels);

// A compact JSON array, e.g. "[1,0.5,0.25]" (the clipboard text).
std::string levels_to_json(const std::vector<double>& levels);
// Parses a JSON array of numbers in [0, 1]; throws Error saying what is wrong otherwise.
std::vector<double> levels_from_json(const std::string& text);

}  // namespace dfs::project
