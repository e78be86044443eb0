// dfs/project/generation.h — THE generation path. The Studio's worker thread and `dforce
// extend/generate` both run a GenerationJob, so a setting means the same in both.
//
// Index
//   [SECTION] Sinks              where final frames go: memory (GUI), an encoder (CLI), PNG cache
//   [SECTION] Progress & result
//   [SECTION] GenerationJob      Project + Model -> decode, fit, build timeline, run_rollout, sink
//   [SECTION] Generation metadata  the settings JSON embedded in exports, and restoring from it
//   [SECTION] Model lookup       the shipped demo model's search order
//
// What a job does, in order:
//   1. decodes the source frames the rollout needs (via dfs_media, or a caller's FrameSource),
//      fits them to the model's resolution (Project.clip.fit: letterbox / crop / stretch);
//   2. builds the engine's TimelineFrame vector: pinned positions -> pinned, unpinned source
//      positions -> their noise level over the source content, new positions -> level 1 (or
//      their noise level over the previous result, when `previous` results are given);
//   3. calls dfs::diffusion::run_rollout and streams every final frame, in timeline order, to
//      the sink; kept positions before the first window and after the last one (which the
//      rollout never looks at) are streamed straight from the decoder, so decoding and memory
//      scale with the part being generated, not with the clip's length.
//
// Thread-safety: a GenerationJob is created and run on one thread (the worker); only the
// cancel flag is touched from another thread. The sink and progress callbacks are called on
// the thread that runs the job. The Model must not be used by anyone else meanwhile.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/frame.h"
#include "dfs/media/probe.h"
#include "dfs/project/document.h"

namespace dfs::media {
class Decoder;
}

namespace dfs::project {

// [SECTION] Sinks -----------------------------------------------------------------------------

// Where a frame came from, so a sink can filter (export "generated only").
enum class FrameOrigin {
  Source,     // a pinned/kept clip frame (fitted to the model's resolution, unchanged)
  Generated,  // made by this run (from noise or by partial re-noising)
  Previous,   // a pinned new position carried over from an earlier run's result
};

struct SinkFormat {
  int width = 0;  // model resolution, pixels (sinks scale on their own if they want)
  int height = 0;
  double fps = 8;  // the clip's frame rate (or 8 without a clip)
  int frames = 0;  // positions the job will hand over at most (the timeline length)
};

// Receives final frames in increasing position order, each position at most once.
class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void begin(const SinkFormat& format) { (void)format; }
  virtual void write(int position, const Frame& frame, FrameOrigin origin) = 0;
  // Called once at the end, also after a cancel or an error (then `cancelled` = true, and a
  // file sink still finalises what it has, so the file is playable).
  virtual void finish(bool cancelled) { (void)cancelled; }
};

// Keeps every frame in memory (the Studio). Thread-safe: the GUI may read while the worker
// writes (frames are copied out under a lock).
class MemorySink : public FrameSink {
 public:
  void begin(const SinkFormat& format) override;
  void write(int position, const Frame& frame, FrameOrigin origin) override;
  void finish(bool cancelled) override;

  SinkFormat format() const;
  std::map<int, Frame> frames() const;  // a copy: position -> frame
  std::vector<int> positions() const;   // positions received, ascending
  bool has(int position) const;
  Frame frame(int position) const;         // empty Frame if not received
  FrameOrigin origin(int position) const;  // throws Error if not received
  bool finished() const;
  bool cancelled() const;

 private:
  mutable std::mutex mutex_;
  SinkFormat format_;
  std::map<int, Frame> frames_;
  std::map<int, FrameOrigin> origins_;
  bool finished_ = false;
  bool cancelled_ = false;
};

// Encodes frames to a file/folder through dfs_media using ExportSettings (format, range,
// scale, fps, quality); embeds `metadata_json` (generation_metadata_json) in the container and
// writes the .json sidecar. Frames outside the export range are dropped. Throws Error if the
// output cannot be written (message names the path).
class EncoderSink : public FrameSink {
 public:
  EncoderSink(ExportSettings settings, std::string metadata_json);
  ~EncoderSink() override;
  void begin(const SinkFormat& format) override;
  void write(int position, const Frame& frame, FrameOrigin origin) override;
  void finish(bool cancelled) override;
  // Abandons the output instead of finishing it: nothing appears under the final name (an
  // export the user cancelled or that failed halfway). Never throws.
  void discard();
  int frames_written() const;
  const std::string& output_path() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Writes generated frames as PNG files into a cache folder (Results.cached_frame_path naming)
// and forwards every frame to `next` (may be null). Lets a saved project reopen with results.
class PngCacheSink : public FrameSink {
 public:
  PngCacheSink(std::string cache_dir, FrameSink* next);
  void begin(const SinkFormat& format) override;
  void write(int position, const Frame& frame, FrameOrigin origin) override;
  void finish(bool cancelled) override;

 private:
  std::string dir_;
  FrameSink* next_;
};

// Forwards each frame to several sinks (e.g. memory + cache + encoder).
class TeeSink : public FrameSink {
 public:
  explicit TeeSink(std::vector<FrameSink*> sinks) : sinks_(std::move(sinks)) {}
  void begin(const SinkFormat& format) override;
  void write(int position, const Frame& frame, FrameOrigin origin) override;
  void finish(bool cancelled) override;

 private:
  std::vector<FrameSink*> sinks_;
};

// [SECTION] Progress & result --------------------------------------------------------------

struct GenerationProgress {
  enum class Phase { Decoding, Generating, Done };
  Phase phase = Phase::Decoding;
  int step = 0;                // sampling steps done, over all windows
  int total_steps = 0;         // all sampling steps of the run (0 while decoding)
  int frames_final = 0;        // generated frames final so far
  int frames_to_generate = 0;  // unpinned positions of the run
  int window = 0;              // current rollout window, of `windows`
  int windows = 0;
  int window_first = 0;  // timeline position of the current window's first frame
  int matrix_row = 0;    // current row of that window's scheduling matrix (heat map)
  double elapsed_s = 0;  // since run() started
  double eta_s = -1;     // estimated seconds left; -1 = unknown yet
  // Current x0 estimates (position, frame at model resolution) for live preview; empty unless
  // want_preview.
  std::vector<std::pair<int, Frame>> preview;
};
using ProgressCallback = std::function<void(const GenerationProgress&)>;

struct GenerationResult {
  bool cancelled = false;
  std::vector<int> generated;  // positions generated and handed to the sink, ascending
  std::vector<bool> final;     // per position: handed to the sink (source or generated)
  double seconds = 0;          // wall time of run()
  double decode_seconds = 0;   // of which decoding + fitting source frames
  int model_forwards = 0;
  double frames_per_second() const;  // generated frames / generation seconds (0 if none)
};

// [SECTION] GenerationJob ------------------------------------------------------------------

// Returns clip frame `clip_frame` at the clip's own size (the Studio passes its decoded frames;
// by default the job decodes the clip with dfs_media). Throw to report a failure.
using FrameSource = std::function<Frame(int clip_frame)>;

// Keeps a clip's decoder open between jobs, for a caller that runs many jobs on one clip (the
// Studio's worker): the frames it decoded stay in its cache (dfs::media::Decoder's LRU), so the
// next run's context frames are not decoded again. A file whose size or modification time
// changed is opened afresh. Used by one thread at a time.
class ClipDecoderCache {
 public:
  ClipDecoderCache();
  ~ClipDecoderCache();
  ClipDecoderCache(const ClipDecoderCache&) = delete;
  ClipDecoderCache& operator=(const ClipDecoderCache&) = delete;
  // The open decoder of `path`. Throws what dfs::media::open_decoder throws.
  media::Decoder& open(const std::string& path);
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

struct JobOptions {
  bool want_preview = true;  // fill GenerationProgress::preview (costs a little time)
  bool emit_all = true;      // hand every position to the sink; false = generated only
  FrameSource source;        // null = decode Project.clip.path with dfs_media
  // Earlier results by position (at model resolution): pinned new positions and partially
  // re-noised new positions start from these. Missing entries are generated from noise.
  std::map<int, Frame> previous;
  std::string base_dir;  // relative clip paths resolve against this ("" = cwd)
  // Where the clip's decoder comes from (null: the job opens its own and closes it at the end).
  ClipDecoderCache* decoders = nullptr;
};

// What a job will do, computed without a model's weights (the Studio redraws it as sliders
// move): which positions are kept/generated, where the rollout starts, and its windows.
struct GenerationPlan {
  int start = 0;                  // first position handed to the rollout (earlier: streamed)
  int end = 0;                    // one past the last position any window uses (later: streamed)
  int frames_to_generate = 0;     // positions that are not kept
  std::vector<bool> has_content;  // per position: a source frame or a previous result exists
  std::vector<bool> kept;         // per position: pinned, or level 0 over existing content
  std::vector<diffusion::WindowPlan> windows;  // timeline positions, as in GenerationJob::windows
};
// Validates `project` against `model` and plans it. `previous` = positions that have an earlier
// result (JobOptions::previous's keys). Throws Error with the same messages as GenerationJob.
GenerationPlan plan_generation(const Project& project, const diffusion::ModelInfo& model,
                               const std::set<int>& previous = {});

class GenerationJob {
 public:
  // Validates `project` against `model` (context + horizon <= max_frames, pins with content,
  // clip present when the timeline has source frames) and plans the run. Throws Error with a
  // message a person can act on. Keeps a reference to `model`: it must outlive the job.
  GenerationJob(Project project, diffusion::Model& model, JobOptions options = {});
  ~GenerationJob();
  GenerationJob(const GenerationJob&) = delete;
  GenerationJob& operator=(const GenerationJob&) = delete;

  const Project& project() const;
  int frames_to_generate() const;      // unpinned positions
  int first_rollout_position() const;  // positions before this are streamed, not rolled
  int rollout_end() const;             // positions from here on are streamed too
  // The rollout windows (timeline positions, known flags, scheduling matrix) for the heat map
  // and "which pins this window uses". Positions are timeline positions.
  const std::vector<diffusion::WindowPlan>& windows() const;

  // Runs to the end or until *cancel becomes true (checked every sampling step and between
  // decoded frames). On cancel, everything final so far has been handed to the sink and the
  // result says cancelled. Errors (a clip that stops decoding, a sink that cannot write) throw
  // Error after sink.finish(true) was called. Call once.
  GenerationResult run(FrameSink& sink, const ProgressCallback& on_progress = {},
                       const std::atomic<bool>* cancel = nullptr);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Fits a clip frame to the model's resolution (the job's step 1, exposed for the Studio's
// viewer and tests). Throws Error for an empty frame.
Frame fit_to_model(const Frame& frame, int width, int height, FitMode fit);

// Fills a clip's probe summary (size as displayed, fps, frame count, duration, codec) from a
// probe of its file; keeps the path and the fit mode.
void set_clip_probe(ClipRef& clip, const media::ProbeInfo& info);

// The engine timeline for positions [first, end) (end < 0: the timeline's length) from frames
// already at model resolution: `content[p]` is position p's content (empty where there is none;
// entries outside [first, end) are ignored). Element i of the result is position first + i. Pure;
// the job's step 2, exposed for tests. A position is *kept* (pinned for the engine, output
// bit-identical) when it is pinned, or when its level is 0 and it has content; a position without
// content is generated from noise whatever its level. Throws Error when a pinned position has no
// content.
std::vector<diffusion::TimelineFrame> build_rollout_timeline(const Timeline& timeline,
                                                             const std::vector<Frame>& content,
                                                             int first = 0, int end = -1);

// Brings context/horizon inside the model's window when they do not fit (horizon shrinks
// first, down to 1, then context). Returns true if it changed anything. For defaults the user
// did not choose; explicit choices should be validated and reported instead.
bool fit_window_to_model(GenerationSettings& settings, const diffusion::ModelInfo& model);

// [SECTION] Generation metadata ---------------------------------------------------------------

// The JSON embedded in every export (container metadata + sidecar):
//   {"format": "dfstudio-generation", "format_version": 1, "app": "Diffusion Forcing Studio",
//    "app_version": "...", "model": {"path", "name", "width", "height", "max_frames", ...},
//    "seed": ..., "settings": {...settings_to_json...}, "clip": {...}, "timeline": {"source_first",
//    "source_count", "new_frames", "pins": [...], "noise": [...]}, "fit": "letterbox",
//    "export": {...}, "generated": [positions]}
inline constexpr const char* kGenerationFormat = "dfstudio-generation";
inline constexpr int kGenerationFormatVersion = 1;
std::string generation_metadata_json(const Project& project, const diffusion::ModelInfo* model,
                                     int indent = -1);

struct RestoreOptions {
  bool settings = true;  // rollout settings + seed
  bool timeline = true;  // pins, noise levels, source range, new frames
  bool clip = true;      // the source clip path + fit mode (when the file is still there or not)
  bool model = true;     // the model path
};
// Restores `project` from metadata JSON (generation_metadata_json, or a project file's JSON).
// Throws Error (project unchanged) for JSON that is neither, or has invalid values.
void restore_from_metadata(Project& project, const std::string& json,
                           const RestoreOptions& what = {});
// Reads the metadata embedded in an exported file (dfs::media::read_generation_metadata, or its
// .json sidecar) and restores from it. Throws Error if the file carries none.
void restore_from_exported_file(Project& project, const std::string& exported_path,
                                const RestoreOptions& what = {});

// [SECTION] Model lookup ----------------------------------------------------------------------

// The shipped demo model, searched in order: $DFS_MODEL, <exe dir>/../../models/demo.safetensors
// (a build tree), <exe dir>/../share/dfstudio/models/demo.safetensors (an install),
// ./models/demo.safetensors. Returns "" when none exists.
std::string find_demo_model(const std::string& executable_path);

// Loads `path` ("" = find_demo_model). A missing path named demo.safetensors counts as "the demo
// model" and is searched for like "". When no model file exists at all, returns
// Model::random("demo", 0) and sets *warning to a sentence saying so. Any other missing path, or
// a file that exists but fails to load, throws Error (never silently replaced).
diffusion::Model load_model_or_demo(const std::string& path, const std::string& executable_path,
                                    std::string* warning, const std::string& device = "auto");

}  // namespace dfs::project
