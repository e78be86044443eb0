// generation_worker.cpp — see generation_worker.h.
#include "generation_worker.h"

#include <QElapsedTimer>
#include <QMetaType>
#include <algorithm>
#include <cstdint>
#include <vector>

#ifdef __linux__
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

namespace dfs::ui {
namespace {

// Streams final frames to the GUI thread as queued signals.
class SignalSink : public project::FrameSink {
 public:
  explicit SignalSink(GenerationWorker* worker) : worker_(worker) {}
  void write(int position, const Frame& frame, project::FrameOrigin origin) override {
    const bool generated = origin == project::FrameOrigin::Generated;
    if (generated) generated_.push_back(position);
    emit worker_->frame_final(position, frame, generated);
  }
  const std::vector<int>& generated() const { return generated_; }

 private:
  GenerationWorker* worker_;
  std::vector<int> generated_;
};

}  // namespace

// The GUI must win the CPU when it wakes up (a repaint, a click); the generation can wait a
// few milliseconds. Linux lets one thread be niced; threads it creates afterwards (LibTorch's
// intra-op pool, when first used here) inherit it. Elsewhere this is a no-op.
void lower_this_thread_priority() {
#ifdef __linux__
  static thread_local bool done = false;
  if (done) return;
  done = true;
  constexpr int kWorkerNice = 5;
  setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kWorkerNice);
#endif
}

void warm_up(diffusion::Model& model) {
  try {
    const diffusion::ModelInfo& info = model.info();
    if (info.width <= 0 || info.height <= 0 || info.channels != 3 || info.max_frames < 2) return;
    // The shapes of a default extension's first window (project defaults, fitted to the model
    // as the window fits them), so the kernels LibTorch picks for them are the ones it reuses.
    project::GenerationSettings settings;
    project::fit_window_to_model(settings, info);
    diffusion::RolloutSettings& r = settings.rollout;
    r.sampler.schedule.shape = diffusion::ScheduleShape::FullSequence;
    r.sampler.schedule.steps = 1;
    Frame grey(info.width, info.height);
    std::fill(grey.rgb.begin(), grey.rgb.end(), std::uint8_t{128});
    std::vector<diffusion::TimelineFrame> timeline(static_cast<size_t>(r.context + r.horizon));
    for (int i = 0; i < r.context; ++i) {
      timeline[static_cast<size_t>(i)].content = grey;
      timeline[static_cast<size_t>(i)].pinned = true;
    }
    diffusion::RolloutCallbacks callbacks;
    callbacks.want_preview = true;
    callbacks.on_progress = [](const diffusion::RolloutProgress&) {};
    diffusion::run_rollout(model, timeline, r, callbacks);
  } catch (const std::exception&) {
    // Only a head start: a model that cannot run says so when a generation starts.
  }
}

void register_meta_types() {
  qRegisterMetaType<dfs::Frame>("dfs::Frame");
  qRegisterMetaType<dfs::diffusion::ModelInfo>("dfs::diffusion::ModelInfo");
  qRegisterMetaType<dfs::diffusion::Model>("dfs::diffusion::Model");
  qRegisterMetaType<dfs::project::Project>("dfs::project::Project");
  qRegisterMetaType<dfs::project::GenerationProgress>("dfs::project::GenerationProgress");
  qRegisterMetaType<dfs::ui::GenerationRequest>("dfs::ui::GenerationRequest");
  qRegisterMetaType<dfs::ui::GenerationSummary>("dfs::ui::GenerationSummary");
}

void GenerationWorker::load_model(const QString& path, const QString& executable_path) {
  lower_this_thread_priority();
  try {
    std::string warning;
    diffusion::Model model = project::load_model_or_demo(
        path.toStdString(), executable_path.toStdString(), &warning, device_);
    warm_up(model);
    model_ = model;
    emit model_loaded(model_->info(), path, QString::fromStdString(warning));
  } catch (const std::exception& e) {
    emit model_failed(QString::fromUtf8(e.what()));
  }
}

void GenerationWorker::adopt_model(const dfs::diffusion::Model& model, const QString& note) {
  lower_this_thread_priority();
  model_ = model;
  warm_up(*model_);
  emit model_loaded(model_->info(), QString(), note);
}

void GenerationWorker::generate(const dfs::project::Project& project,
                                const dfs::ui::GenerationRequest& request) {
  lower_this_thread_priority();
  if (!model_) {
    emit failed(tr("No model is loaded yet. Open one with Model > Open model."));
    return;
  }
  SignalSink sink(this);
  GenerationSummary summary;
  summary.seed = project.generation.rollout.seed;
  try {
    project::JobOptions options;
    options.want_preview = request.want_preview;
    options.emit_all = false;  // the GUI already has the source frames
    options.previous = request.previous;
    options.base_dir = request.base_dir;
    options.decoders = &clip_;
    project::GenerationJob job(project, *model_, options);
    QElapsedTimer since_last;
    since_last.start();
    bool first = true;
    int last_window = -1;
    auto on_progress = [&](const project::GenerationProgress& p) {
      const bool last = p.total_steps > 0 && p.step >= p.total_steps;
      // A new window is always reported (the heat map follows it), however fast the steps.
      const bool new_window = p.window != last_window;
      if (first || last || new_window || since_last.elapsed() >= kProgressIntervalMs) {
        first = false;
        last_window = p.window;
        since_last.restart();
        emit progress(p);
      }
    };
    const project::GenerationResult result = job.run(sink, on_progress, &cancel_);
    summary.cancelled = result.cancelled;
    summary.generated = result.generated;
    summary.seconds = result.seconds;
    summary.frames_per_second = result.frames_per_second();
    summary.model_forwards = result.model_forwards;
    emit finished(summary);
  } catch (const std::exception& e) {
    clip_.close();  // a clip that failed is opened afresh next time
    // Frames already sent stay with the GUI: an error does not lose finished work.
    emit failed(QString::fromUtf8(e.what()));
  }
}

}  // namespace dfs::ui
