// dfs/project/document.h — the document a user edits in the Studio (and that `dforce generate`
// runs): which clip, which model, the timeline of frames (source frames + frames to generate),
// pins, each frame's start noise level, the rollout settings, export settings and results.
//
// Index
//   [SECTION] Errors
//   [SECTION] Clip reference        ClipRef, FitMode
//   [SECTION] Timeline              Timeline + the three layouts (extend, regenerate, fill gap)
//   [SECTION] Settings              GenerationSettings (wraps the engine's RolloutSettings)
//   [SECTION] Export settings       ExportSettings, ExportFormat, ExportRange
//   [SECTION] Results               Results
//   [SECTION] Takes                 TakesRef (the take store itself is dfs/project/takes.h)
//   [SECTION] Project               the plain value that is saved, validated, undone
//   [SECTION] JSON                  to/from JSON text, format version
//   [SECTION] Document              Project + file path + undo/redo + atomic save
//
// Units: frame indices are 0-based *timeline positions* (not clip frame numbers, except where a
// name says `clip_frame`); noise levels are fractions in [0, 1] (0 = keep, 1 = pure noise), as
// in dfs/diffusion/api.h.
//
// Thread-safety: Project is a plain value (copy it to hand it to a worker thread). A Document
// is not thread-safe: one thread (the Studio's GUI thread) owns it; a GenerationJob copies the
// Project it needs when it is created.
//
// Errors a user can cause (a bad file, a value out of range) throw dfs::project::Error whose
// message names the field, e.g. "generation.steps must be in 1..1000 (got 0)".
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/enum_names.h"
#include "dfs/fit_and_format.h"

namespace dfs::project {

// [SECTION] Errors -----------------------------------------------------------------------

struct Error : std::runtime_error {  // every user-causable project error
  using std::runtime_error::runtime_error;
};

// [SECTION] Clip reference --------------------------------------------------------------

// How a clip of another aspect ratio is brought to the model's resolution: the one FitMode of
// dfs/fit_and_format.h (Letterbox, the default, Crop, Stretch), which dfs_media implements.
using FitMode = dfs::FitMode;
using dfs::to_string;  // to_string(FitMode), to_string(ExportFormat): the names a project stores
// Parses a name of dfs::kFitModeNames ("letterbox", "crop", "stretch", or an alias); throws
// Error naming the valid values.
FitMode fit_mode_from_string(const std::string&);

// The source clip, as probed when it was opened. The probe fields are a summary for display
// and for checking the timeline against the clip; 0 / "" when unknown (no clip).
struct ClipRef {
  std::string path;  // as chosen; relative paths resolve against the project file's folder
  int width = 0;     // pixels, rotation applied
  int height = 0;
  double fps = 0;         // frames per second (average for variable-rate clips)
  int frame_count = 0;    // frames in the clip (exact when the container says so)
  double duration_s = 0;  // seconds
  std::string codec;      // e.g. "h264"
  FitMode fit = FitMode::Letterbox;

  bool empty() const { return path.empty(); }
  friend bool operator==(const ClipRef&, const ClipRef&) = default;
};

// [SECTION] Timeline ----------------------------------------------------------------------

// The frames a generation covers, in order: `source_count` clip frames starting at clip frame
// `source_first` (positions 0..source_count-1), then `new_frames` frames that exist only once
// generated (positions source_count..length()-1).
//
// What happens to a position when generating:
//   pinned             -> conditioning frame, output bit-identical to its input, never changed;
//   noise[i] == 1      -> generated from pure noise;
//   0 < noise[i] < 1   -> partial re-noising of its current content (the source frame, or for a
//                         new frame its previous result), regenerated loosely (SDEdit-like);
//   noise[i] == 0      -> kept as it is (clean, unpinned context).
// A new frame that has no previous result is always generated from noise (its level is used as
// 1, whatever the curve says).
struct Timeline {
  int source_first = 0;       // first clip frame on the timeline
  int source_count = 0;       // clip frames on the timeline
  int new_frames = 0;         // frames after the clip frames
  std::set<int> pins;         // pinned positions, each in [0, length())
  std::vector<double> noise;  // start level per position, size length(), each in [0, 1]

  int length() const { return source_count + new_frames; }
  bool is_source(int position) const { return position >= 0 && position < source_count; }
  int clip_frame(int position) const { return source_first + position; }  // for is_source()
  bool pinned(int position) const { return pins.count(position) != 0; }
  friend bool operator==(const Timeline&, const Timeline&) = default;
};

// Layouts: each replaces the timeline's structure; they throw Error on out-of-range input.
// "Extend by n": all `clip_frames` source frames pinned at level 0, then n new frames at 1.
Timeline extend_layout(int clip_frames, int n);
// "Regenerate a range": clip frames only; [first, last] unpinned at `level`, the rest pinned.
Timeline regenerate_layout(int clip_frames, int first, int last, double level = 1.0);
// "Fill the gap between two pins": clip frames only; positions <= a and >= b pinned, those
// strictly between regenerated from noise (level 1). Requires a + 1 < b.
Timeline fill_gap_layout(int clip_frames, int a, int b);

// Edits on an existing timeline (positions are clamped-checked; throw Error when outside).
void set_pinned(Timeline& t, int position, bool pinned);
void set_pinned_range(Timeline& t, int first, int last, bool pinned);  // inclusive
void pin_all_source(Timeline& t);
void clear_pins(Timeline& t);
void set_noise(Timeline& t, int position, double level);               // level in [0, 1]
void set_noise_range(Timeline& t, int first, int last, double level);  // inclusive
void set_new_frames(Timeline& t, int n);  // grows/shrinks the tail; new positions at level 1

// [SECTION] Settings ------------------------------------------------------------------------

// The rollout settings (the engine's own struct, so a setting means exactly what the engine
// says) plus what only the Studio needs.
struct GenerationSettings {
  diffusion::RolloutSettings rollout;  // schedule, steps, eta, stabilisation, guidance,
                                       // context, horizon, seed
  bool seed_locked = true;             // false: the Studio draws a new seed before each run
  friend bool operator==(const GenerationSettings&, const GenerationSettings&) = default;
};

// [SECTION] Export settings -----------------------------------------------------------------

// The one ExportFormat of dfs/fit_and_format.h. A project always holds a concrete format:
// ExportFormat::Auto (resolve from the path) is never stored, and validation rejects it.
using ExportFormat = dfs::ExportFormat;

// The names a project accepts for its export format: dfs::kExportFormatNames without Auto's.
inline constexpr auto kProjectExportFormatNames = [] {
  constexpr std::size_t kAutoNames = [] {
    std::size_t n = 0;
    for (const auto& e : kExportFormatNames) n += e.value == ExportFormat::Auto ? 1 : 0;
    return n;
  }();
  EnumNames<ExportFormat, kExportFormatNames.size() - kAutoNames> out{};
  std::size_t i = 0;
  for (const auto& e : kExportFormatNames)
    if (e.value != ExportFormat::Auto) out[i++] = e;
  return out;
}();
// Parses a name of kProjectExportFormatNames ("mp4", "png_sequence", or an alias); throws Error.
ExportFormat export_format_from_string(const std::string&);
// Guesses the format from an output path: .mp4/.m4v/.mov, .mkv, .webm, .gif, .png; a path ending
// in '/' or without an extension is a PNG sequence folder. Throws Error for other extensions.
ExportFormat export_format_from_path(const std::string& path);

enum class ExportRange {
  All,        // every timeline position
  Generated,  // only positions that were generated (not pinned)
  InOut,      // positions in [in, out]
};
inline constexpr EnumNames<ExportRange, 4> kExportRangeNames{{
    {ExportRange::All, "all"},
    {ExportRange::Generated, "generated"},
    {ExportRange::InOut, "in_out"},
    {ExportRange::InOut, "in-out"},
}};
inline const char* to_string(ExportRange range) {  // "all", "generated", "in_out"
  return enum_name(kExportRangeNames, range);
}
ExportRange export_range_from_string(const std::string&);  // throws Error naming the valid values

struct ExportSettings {
  ExportFormat format = ExportFormat::Mp4;
  std::string path;  // output file or folder; "" = ask / not chosen yet
  ExportRange range = ExportRange::All;
  int in = 0;  // InOut range (inclusive), PngFrame uses `in`
  int out = 0;
  int scale = 4;       // output = model resolution * scale; 1, 2 or 4
  bool smooth = true;  // upscale filter: true = bicubic/area, false = nearest
  double fps = 0;      // 0 = the clip's frame rate (or 8 when there is no clip)
  int quality = 80;    // 0..100 (maps to CRF for H.264/VP9)
  friend bool operator==(const ExportSettings&, const ExportSettings&) = default;
};

// [SECTION] Results -------------------------------------------------------------------------

// What the last generation produced. The pixels themselves live with the caller (the Studio
// keeps them in memory) and, when `cache_dir` is set, as PNG files frame_%06d.png there.
struct Results {
  std::vector<bool> generated;  // per position: a generated frame exists; empty = none
  std::string cache_dir;        // "" = not cached on disk; relative to the project file's folder
  uint64_t seed = 0;            // seed the results were made with
  double seconds = 0;           // wall time of the run that made them

  bool any() const;                                   // at least one generated frame
  bool has(int position) const;                       // position generated
  std::string cached_frame_path(int position) const;  // cache_dir/frame_%06d.png ("" if no cache)
  friend bool operator==(const Results&, const Results&) = default;
};

// [SECTION] Takes --------------------------------------------------------------------------

// Where the project's takes live (every kept generation; dfs/project/takes.h reads the folder)
// and which one is shown. Like Results, not undone by undo: the takes exist on disk.
struct TakesRef {
  std::string folder;  // "" = none yet; relative to the project file's folder, or absolute
                       // (an untitled project's per-session folder)
  int current = 0;     // id of the take shown; 0 = none
  friend bool operator==(const TakesRef&, const TakesRef&) = default;
};

// [SECTION] Project ------------------------------------------------------------------------

// Everything that is saved. A plain value: compare, copy, hand to a worker thread.
struct Project {
  ClipRef clip;
  std::string model_path;  // .safetensors; "" = the shipped demo model
  Timeline timeline;
  GenerationSettings generation;
  ExportSettings export_settings;
  Results results;
  TakesRef takes;
  // Every field, so that a field added later can never be silently left out of "changed?"
  // (Document::edit records an undo step only when the project compares unequal).
  friend bool operator==(const Project&, const Project&) = default;
};

// Every problem of `p`, one message each, naming the field ("timeline.noise[12] must be in
// [0, 1] (got 1.5)"); empty when valid. `max_frames` > 0 also checks context + horizon
// against a model's window.
std::vector<std::string> validation_problems(const Project& p, int max_frames = 0);
// Throws Error with all problems (one per line) when there are any.
void validate(const Project& p, int max_frames = 0);

// [SECTION] JSON ----------------------------------------------------------------------------

// Project files are JSON: {"format": "dfstudio-project", "format_version": 1, ...}.
inline constexpr const char* kProjectFormat = "dfstudio-project";
inline constexpr int kProjectFormatVersion = 1;

std::string to_json(const Project& p, int indent = 2);
// Parses and validates. Throws Error for malformed JSON, another format, a newer format version,
// a missing or mistyped field (named), or a value out of range (named).
Project project_from_json(const std::string& text);

// JSON of the settings alone (generation + export), used by the metadata and the CLI.
std::string settings_to_json(const GenerationSettings& s, int indent = 2);
GenerationSettings settings_from_json(const std::string& text);  // throws Error

// [SECTION] Document ------------------------------------------------------------------------

// A Project with a file, a dirty flag and an undo history. Snapshot-based undo: every edit
// stores the Project as it was before (projects are small: a few numbers per frame). Results
// are not part of undo (generated pixels are not thrown away by undoing a pin); undo keeps the
// current results, resized to the restored timeline.
class Document {
 public:
  Document() = default;
  explicit Document(Project project);

  const Project& project() const { return project_; }
  const std::string& path() const { return path_; }  // "" until saved or loaded
  bool dirty() const { return dirty_; }              // changed since the last save/load
  uint64_t revision() const { return revision_; }    // increments on every change (UI refresh)

  // Applies `change` to a copy of the project, validates the copy and, if valid and different,
  // makes it current and records an undo step named `label` ("Pin frame 12"). Throws Error (and
  // changes nothing) if the result is invalid. Consecutive edits with the same non-empty
  // `merge_key` merge into one undo step (a slider drag is one step); end_merge() ends that.
  // Returns whether anything changed.
  bool edit(const std::string& label, const std::function<void(Project&)>& change,
            const std::string& merge_key = "");
  void end_merge();

  // Replaces the results (after a generation). Not undoable; marks the document dirty.
  void set_results(Results results);
  // Replaces the takes folder / current take (a take was added, shown or the folder moved).
  // Not undoable, like set_results; marks the document dirty. Throws Error if invalid.
  void set_takes(TakesRef takes);

  bool can_undo() const { return !undo_.empty(); }
  bool can_redo() const { return !redo_.empty(); }
  std::string undo_label() const;  // "" when nothing to undo
  std::string redo_label() const;
  bool undo();  // false when nothing to undo
  bool redo();
  void clear_history();
  static constexpr size_t kMaxUndo = 500;  // oldest steps are dropped beyond this

  // Loads and validates a project file; relative paths inside stay as written and are resolved
  // with resolve(). Throws Error naming the file and the problem.
  static Document load(const std::string& path);
  // Writes atomically: to a temporary file in the same folder, flushed to disk, then renamed
  // over `path`, so a crash or a full disk never leaves a half-written project. Throws Error.
  void save_as(const std::string& path);
  void save();  // to path(); throws Error if there is none
  // A path from the project (clip, model, cache dir) made usable: relative paths are taken
  // against the project file's folder (or the current directory for an unsaved document).
  std::string resolve(const std::string& path_in_project) const;
  // A document read back from an autosave (or any copy) made to stand for `path` without
  // writing anything: path() becomes `path` ("" = untitled), the document is dirty and has no
  // history, so Save writes it to `path` and the file there stays as it is until then.
  void adopt_path(const std::string& path);

 private:
  struct Step {
    std::string label;
    std::string merge_key;
    Project before;
  };
  void apply_snapshot(Project snapshot);

  Project project_;
  std::string path_;
  bool dirty_ = false;
  uint64_t revision_ = 0;
  bool merge_open_ = false;
  std::vector<Step> undo_;
  std::vector<Step> redo_;
};

// Writes `text` to `path` atomically (temporary file + fsync + rename). Throws Error.
void write_file_atomically(const std::string& path, const std::string& text);

}  // namespace dfs::project
