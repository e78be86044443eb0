// dfs/diffusion/api.h — the torch-free façade of the diffusion-forcing engine.
//
// This header is the contract between dfs_diffusion and its callers (dfs_project, the UI,
// the CLI). It includes no torch header: callers that only generate video never pay for
// LibTorch's headers. Everything torch-specific lives in the other headers of this folder
// (sampler.h, rollout.h, model.h, ...), which the engine and the trainer use.
//
// Units, everywhere in this header:
//   * a noise *level* is a fraction in [0, 1]: 0 = clean, 1 = pure noise;
//   * a schedule *entry* is an integer in 0..steps (0 = clean, steps = pure noise);
//   * frame indices are 0-based positions on the caller's timeline.
//
// Thread-safety: a Model may be used by one thread at a time (the Studio's worker thread
// owns it). Free functions are pure and thread-safe. Errors a user can cause (bad file,
// setting out of range) throw dfs::diffusion::Error with a message a person can act on.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "dfs/frame.h"

namespace dfs::diffusion {

// [SECTION] Errors ---------------------------------------------------------------------

struct Error : std::runtime_error {  // every user-causable engine error
  using std::runtime_error::runtime_error;
};

// [SECTION] Scheduling matrices ---------------------------------------------------------

enum class ScheduleShape {
  FullSequence,    // M[m,t] = S - m for every generated frame
  Autoregressive,  // pyramid with u = S: frame t done before t+1 starts
  Pyramid,         // M[m,t] = clip(S + floor(t*u) - m, 0, S)
  Trapezoid,       // both ends of the window finish first, the middle last
  AsyncBlocks,     // blocks of `block` frames; block i lags block i-1 by `ar_step` steps
};

const char* to_string(ScheduleShape shape);  // "full_sequence", "pyramid", ...
ScheduleShape schedule_shape_from_string(const std::string& name);  // throws Error

struct ScheduleSettings {
  ScheduleShape shape = ScheduleShape::Pyramid;  // matrix shape
  int steps = 10;                                // S, sampling steps, >= 1
  double uncertainty = 1.0;                      // u for pyramid / trapezoid, >= 0 (steps)
  int ar_step = 2;                               // async_blocks: lag between blocks (steps)
  int block = 2;                                 // async_blocks: frames per block, >= 1
  friend bool operator==(const ScheduleSettings&, const ScheduleSettings&) = default;
};

// An integer matrix [rows, frames], entries 0..steps. Row 0 holds each frame's start entry,
// the last row is all 0, and every column is non-increasing.
struct SchedulingMatrix {
  int rows = 0;
  int frames = 0;
  int steps = 0;           // S: the largest possible entry
  std::vector<int> cells;  // row-major, rows * frames

  int at(int row, int frame) const { return cells[static_cast<size_t>(row) * frames + frame]; }
};

// Builds the matrix for one window. `start_levels[t]` is frame t's start level in [0, 1]:
// 0 = pinned / clean (its column is 0 throughout), 1 = generated from pure noise, between =
// partial re-noising (its column starts at round(level * steps) and follows the shape).
// Throws Error on invalid input (steps < 1, negative uncertainty, level outside [0, 1],
// block < 1, ar_step < 0, no frames).
SchedulingMatrix build_schedule(const ScheduleSettings& settings,
                                const std::vector<double>& start_levels);

// The matrix as text, one row per line, entries right-aligned (the CLI and logs use it).
std::string to_text(const SchedulingMatrix& matrix);

// [SECTION] Sampling and guidance settings ---------------------------------------------

enum class GuidanceMode {
  None,        // one plain model call per step
  Vanilla,     // eps(empty) + w * (eps(h) - eps(empty)); history fully masked for eps(empty)
  Fractional,  // eps(h) + (w - 1) * (eps(h_f) - eps(empty)); history re-noised to level f
};

const char* to_string(GuidanceMode mode);                         // "none", "vanilla", ...
GuidanceMode guidance_mode_from_string(const std::string& name);  // throws Error

struct GuidanceSettings {
  GuidanceMode mode = GuidanceMode::None;
  double scale = 1.0;             // w; 1 = plain call
  double fractional_level = 0.5;  // f in (0, 1), fractional mode only
  friend bool operator==(const GuidanceSettings&, const GuidanceSettings&) = default;
};

// How a frame moves from one level to the next. Both spend one model call per step.
enum class Solver {
  Ddim,     // first order: DDIM (Song et al. 2021) with eta = 0, DDPM-like with eta > 0
  DpmPP2M,  // DPM-Solver++(2M) (Lu et al. 2022, Alg. 2; k-diffusion's sample_dpmpp_2m), per
            // frame: each frame's step uses its own previous x0 estimate; deterministic
            // (eta must be 0). Reaches DDIM's quality in fewer steps.
};
const char* to_string(Solver solver);                // "ddim", "dpmpp-2m"
Solver solver_from_string(const std::string& name);  // throws Error

struct SamplerSettings {
  ScheduleSettings schedule;              // matrix shape and step count
  Solver solver = Solver::Ddim;           // the update rule along each frame's column
  double eta = 0.0;                       // 0 = DDIM, > 0 = DDPM-like stochasticity, <= 1
  double stabilization_user = 0.02;       // level at which user-pinned frames are fed
  double stabilization_generated = 0.02;  // level at which earlier generated frames are fed
  GuidanceSettings guidance;              // history guidance
  friend bool operator==(const SamplerSettings&, const SamplerSettings&) = default;
};

// [SECTION] Models ----------------------------------------------------------------------

struct ModelInfo {
  std::string name;  // from the config, e.g. "demo"
  int width = 0;     // model resolution, pixels (frames in and out are this size)
  int height = 0;
  int channels = 3;  // of the frames (RGB)
  // Latent models: the diffusion transformer runs on an autoencoder's latents, 8x smaller per
  // side; 0 for pixel-space models.
  int latent_channels = 0;
  int latent_width = 0;
  int latent_height = 0;
  int max_frames = 0;          // context + horizon must not exceed this
  bool causal = false;         // temporal attention causal (KV cache) or bidirectional
  std::string objective;       // "v", "x0" or "eps"
  std::string noise_schedule;  // "cosine", "sigmoid" or "linear"
  int64_t parameter_count = 0;
  std::string device;           // "cpu" or "cuda:0" once loaded
  std::string config_json;      // the full config from the file's __metadata__
  std::string provenance_json;  // training provenance and metrics, "{}" if none
};

// An RAII handle on a loaded model (weights + config). Copies share the same weights.
class Model {
 public:
  // Loads a .safetensors model file. device: "auto" (CUDA if available), "cpu" or "cuda".
  // Throws Error naming the problem (missing file, corrupt header, missing tensor, ...).
  static Model load(const std::string& path, const std::string& device = "auto");

  // A randomly initialised model from a named preset ("demo", "tiny", ...) — lets
  // everything run before a trained model exists. Throws Error for an unknown preset.
  static Model random(const std::string& preset, uint64_t seed, const std::string& device = "cpu");

  const ModelInfo& info() const;

  struct Impl;  // defined in dfs/diffusion/model_impl.h (engine-internal; torch lives there)
  explicit Model(std::shared_ptr<Impl> impl);

 private:
  friend Impl& model_impl(const Model& model);  // model_impl.h
  std::shared_ptr<Impl> impl_;
};

// [SECTION] Rollouts --------------------------------------------------------------------

// One position on the timeline handed to a rollout.
struct TimelineFrame {
  Frame content;           // at the model's resolution; empty if there is nothing here yet
  bool pinned = false;     // true: conditioning frame, returned bit-identical, never changed
  double start_level = 1;  // unpinned frames: 1 = generate from noise, (0, 1) = partial
                           // re-noising of `content` (SDEdit-like); ignored when pinned
};

struct RolloutSettings {
  SamplerSettings sampler;
  int context = 4;       // known frames the window carries (pinned or generated earlier)
  int horizon = 4;       // frames generated together; context + horizon <= max_frames
  uint64_t seed = 0;     // same seed + settings + device => identical output
  bool kv_cache = true;  // causal models: compute each window's history once per window
                         // (same result to ~1e-5); no effect on bidirectional models
  // Latent models: add back, where the scene is static, the fine detail of the nearest pinned
  // frame that the autoencoder loses (transfer_detail in autoencoder.h). No effect on pixel
  // models.
  bool detail_transfer = true;
  // true: the reference kernels, op for op what a plain LibTorch eager port runs (same seed and
  // settings give the same bytes as that port and as earlier versions). false (default): the
  // engine's fast CPU kernels (threaded GEMMs, in-place attention, GEMM head, channels-last
  // convolutions), equal to the reference up to float rounding.
  bool exact = false;
  friend bool operator==(const RolloutSettings&, const RolloutSettings&) = default;
};

struct RolloutProgress {
  int step = 0;          // sampling steps done so far, over all windows
  int total_steps = 0;   // all sampling steps of the rollout
  int frames_final = 0;  // frames handed to on_frame so far
  int window = 0;        // current window index
  int windows = 0;       // number of windows
  int window_first = 0;  // timeline index of the window's first frame
  int matrix_row = 0;    // current row of the window's scheduling matrix
  // Current x0 estimate of the frames being generated, for live preview: (index, frame).
  std::vector<std::pair<int, Frame>> preview;
};

struct RolloutCallbacks {
  // A frame is final (never changes again). Called in timeline order for generated frames;
  // pinned frames are reported too, unchanged. The caller may stream it to an encoder.
  std::function<void(int index, const Frame& frame)> on_frame;
  // After every sampling step. Building previews costs time: set want_preview = false if
  // the preview field is not needed.
  std::function<void(const RolloutProgress&)> on_progress;
  bool want_preview = true;
  // Checked every sampling step. When set, the rollout stops and returns what is final.
  const std::atomic<bool>* cancel = nullptr;
};

struct RolloutResult {
  bool cancelled = false;
  int frames_final = 0;    // how many timeline positions were finalised (from index 0)
  double seconds = 0;      // wall time
  int model_forwards = 0;  // batched forward calls
  // Where the wall time went: the network's forwards, decoding final frames into bytes
  // (detail transfer included), encoding timeline frames; the rest is the sampler's own work
  // and bookkeeping.
  double seconds_model = 0, seconds_decode = 0, seconds_encode = 0;
  // The part of seconds_decode that ran on the helper thread beside the network (not part of
  // the wall time; the wait for it after the last forward is): when the network runs on fewer
  // threads than there are cores.
  double seconds_decode_helper = 0;
};

// Denoises every unpinned frame of `timeline` (any length; memory does not grow with it:
// each window's frames are handed to on_frame as soon as they are final). Pinned frames
// anywhere condition the windows they fall in. Throws Error for invalid settings
// (context + horizon > max_frames, content of the wrong size, a level out of range).
RolloutResult run_rollout(Model& model, const std::vector<TimelineFrame>& timeline,
                          const RolloutSettings& settings, const RolloutCallbacks& callbacks);

// Plans the windows of a rollout without running it: for each window, the timeline indices
// it covers and which of them are known (pinned or generated earlier). The Studio uses this
// to show which pins the current window uses and to draw its heat map.
struct WindowPlan {
  int first = 0;            // first timeline index
  std::vector<int> frames;  // timeline indices in the window, in order
  std::vector<bool> known;  // frames[i] is known context (not generated in this window)
  SchedulingMatrix matrix;  // the matrix this window runs
};
std::vector<WindowPlan> plan_rollout(const ModelInfo& model,
                                     const std::vector<TimelineFrame>& timeline,
                                     const RolloutSettings& settings);

// [SECTION] Runtime ---------------------------------------------------------------------

// Sets LibTorch's intra-op threads: `threads` if > 0, else $DFS_THREADS if set, else the
// machine's core count. Returns the count in force. Call once at start-up. Also sets
// OpenBLAS's own pool to 1 thread (or $DFS_BLAS_THREADS): two spinning pools on the same
// cores were 2.8-4x slower than one (measured, runtime.cpp).
int configure_threads(int threads = 0);

struct RuntimeInfo {
  std::string version;        // this project's version
  std::string torch_version;  // LibTorch version
  std::string blas;           // the BLAS library actually loaded (e.g. "OpenBLAS (pthread)")
  int threads = 0;            // intra-op threads
  int blas_threads = 0;       // OpenBLAS's own pool (0 = not OpenBLAS / unknown)
  bool cuda_available = false;
  int cuda_devices = 0;
};
RuntimeInfo runtime_info();

}  // namespace dfs::diffusion
