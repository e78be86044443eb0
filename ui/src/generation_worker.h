// generation_worker.h — the object that owns the model and runs generations off the GUI thread.
//
// A GenerationWorker lives on its own QThread (MainWindow moves it there). Its slots are
// invoked with queued connections, so they run on that thread; it answers only through
// signals. It owns the dfs::diffusion::Model: no other thread touches it (the engine's rule:
// one thread per Model). The GUI keeps a copy of the ModelInfo for planning and display.
//
// Cancellation: request_cancel() may be called from any thread; the job checks the flag every
// sampling step, so Stop takes effect within one step, and every frame already final has been
// sent with frame_final before finished() says cancelled.
//
// The time from Generate to the first preview (issue 15): a freshly loaded model is warmed up
// (one small rollout of the default window's shapes) before model_loaded() says it is ready, so
// the first run does not pay LibTorch's first-call costs; the clip stays open between runs (its
// decoder keeps the frames it decoded), so the next run's context frames are not decoded again.
#pragma once

#include <QObject>
#include <QString>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/frame.h"
#include "dfs/project/document.h"
#include "dfs/project/generation.h"

namespace dfs::ui {

// What the GUI hands over with a run besides the project.
struct GenerationRequest {
  std::map<int, Frame> previous;  // earlier results by position, at model resolution
  std::string base_dir;           // relative clip paths resolve against this
  bool want_preview = true;       // live x0 estimates
};

// How a run ended, for the status bar and the document's Results.
struct GenerationSummary {
  bool cancelled = false;
  std::vector<int> generated;  // positions generated (final), ascending
  double seconds = 0;          // wall time of the run
  double frames_per_second = 0;
  int model_forwards = 0;
  std::uint64_t seed = 0;
};

// Registers the types above (and Frame, ModelInfo, GenerationProgress) for queued signals.
void register_meta_types();

// Lowers the calling thread's scheduling priority (Linux: nice 5, once per thread; elsewhere a
// no-op): background work (generation, take writing) must not delay the GUI thread when it
// wakes up. Threads it creates afterwards inherit it.
void lower_this_thread_priority();

// Runs one tiny rollout (the default context of grey pinned frames and a horizon of new ones,
// one step) so that LibTorch's first-call costs (allocations, kernel selection, the thread
// pool) are paid at load time rather than by the first Generate. Never throws.
void warm_up(diffusion::Model& model);

class GenerationWorker : public QObject {
  Q_OBJECT

 public:
  explicit GenerationWorker(QObject* parent = nullptr) : QObject(parent) {}

  // The GUI thread arms the flag before it queues generate(), and request_cancel() sets it:
  // generate() itself never clears it, so a Stop pressed while the run still waits in the
  // worker's queue is honoured.
  void arm() { cancel_.store(false); }            // any thread, before queuing generate()
  void request_cancel() { cancel_.store(true); }  // any thread
  // Minimum time between two progress signals: the engine reports every step, and a tiny
  // model steps faster than a screen refreshes; flooding the GUI queue would stall it.
  static constexpr int kProgressIntervalMs = 80;  // ~12 updates/s

 public slots:
  // Loads `path` ("" = the demo model, or a random one with a warning when none ships).
  void load_model(const QString& path, const QString& executable_path);
  // Uses an already-built model (tests, --bench-ui): takes a copy of the handle.
  void adopt_model(const dfs::diffusion::Model& model, const QString& note);
  void generate(const dfs::project::Project& project, const dfs::ui::GenerationRequest& request);
  // The device later load_model() calls use: "auto", "cpu" or "cuda" (Preferences).
  void set_device(const QString& device) { device_ = device.toStdString(); }

 signals:
  void model_loaded(const dfs::diffusion::ModelInfo& info, const QString& path,
                    const QString& note);
  void model_failed(const QString& message);
  void progress(const dfs::project::GenerationProgress& progress);
  void frame_final(int position, const dfs::Frame& frame, bool generated);
  void finished(const dfs::ui::GenerationSummary& summary);
  void failed(const QString& message);

 private:
  std::optional<diffusion::Model> model_;
  std::atomic<bool> cancel_{false};
  std::string device_ = "auto";
  project::ClipDecoderCache clip_;  // the clip stays open between runs
};

}  // namespace dfs::ui
