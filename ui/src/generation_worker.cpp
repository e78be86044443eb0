// generation_worker.cpp — see generation_worker.h.
#include "generation_worker.h"

#include <QElapsedTimer>
#include <QMetaType>

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

}  // namespace

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
    model_ = model;
    emit model_loaded(model_->info(), path, QString::fromStdString(warning));
  } catch (const std::exception& e) {
    emit model_failed(QString::fromUtf8(e.what()));
  }
}

void GenerationWorker::adopt_model(const dfs::diffusion::Model& model, const QString& note) {
  lower_this_thread_priority();
  model_ = model;
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
    // Frames already sent stay with the GUI: an error does not lose finished work.
    emit failed(QString::fromUtf8(e.what()));
  }
}

}  // namespace dfs::ui
