// main_window_generation.cpp — MainWindow's side of generation: the worker thread's signals
// (model loaded or failed, progress, final frames, finished, failed), batching their display,
// and starting and stopping a run. The worker itself is generation_worker.cpp.
#include "dfs/ui/main_window.h"

#include <QFileInfo>
#include <QProgressBar>
#include <QRandomGenerator>
#include <QStatusBar>
#include <QThread>
#include <QTimer>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "controls_panel.h"
#include "generation_worker.h"
#include "heat_map_panel.h"
#include "main_window_state.h"
#include "timeline_widget.h"

namespace dfs::ui {
namespace {

constexpr int kDisplayIntervalMs = 100;  // generation updates reach the screen at most this often

QString format_seconds(double s) {
  if (s < 0) return QStringLiteral("--:--");
  const int total = static_cast<int>(std::lround(s));
  return QString("%1:%2").arg(total / 60, 2, 10, QChar('0')).arg(total % 60, 2, 10, QChar('0'));
}

}  // namespace

void MainWindow::connect_worker() {
  s_->worker = new GenerationWorker;
  s_->worker->moveToThread(&s_->worker_thread);
  connect(&s_->worker_thread, &QThread::finished, s_->worker, &QObject::deleteLater);
  s_->worker_thread.setObjectName("dfs-generation");
  s_->worker_thread.start();

  connect(s_->worker, &GenerationWorker::model_loaded, this, &MainWindow::on_model_loaded);
  connect(s_->worker, &GenerationWorker::model_failed, this, [this](const QString& message) {
    s_->model_loading = false;
    s_->next_model_no_edit = false;  // [SECTION] Learning: the label/flag was for this load
    s_->next_model_label.clear();
    report_error(tr("The model could not be loaded"), message);
    emit model_changed(false);
  });
  connect(s_->worker, &GenerationWorker::progress, this,
          [this](const project::GenerationProgress& p) {
            if (!s_->generating) return;
            ScopedWork work(s_->work, "receive progress");
            // Keep the data now, draw later: all generation updates reach the screen together, at
            // most kDisplayIntervalMs apart (each repaint of a window holding GL panels costs a
            // full composition, which is slow on software GL).
            for (const auto& [position, frame] : p.preview) {
              if (s_->generated.count(position)) continue;
              s_->previews[position] = frame;
              s_->pending_previews.insert(position);
            }
            if (!p.preview.empty()) s_->preview_pending = true;
            s_->latest_progress = p;
            s_->latest_progress.preview.clear();
            s_->progress_pending = true;
            schedule_display();
            emit generation_progressed(p.step, p.total_steps);
          });
  connect(s_->worker, &GenerationWorker::frame_final, this,
          [this](int position, const Frame& frame, bool generated) {
            if (!generated) return;
            ScopedWork work(s_->work, "receive a final frame");
            s_->generated[position] = frame;
            s_->previews.erase(position);
            // Frames can arrive in bursts (a whole window at once): show them together, once.
            s_->pending_results.insert(position);
            schedule_display();
          });
  s_->display_flush.setSingleShot(true);
  connect(&s_->display_flush, &QTimer::timeout, this, &MainWindow::flush_results);
  connect(s_->worker, &GenerationWorker::finished, this, [this](const GenerationSummary& summary) {
    ScopedWork work(s_->work, "the run's end (last results, take handed to the writer, refresh)");
    end_run();
    s_->last_fps = summary.frames_per_second;
    project::Results results;
    const int length = s_->doc.project().timeline.length();
    results.generated.assign(static_cast<size_t>(length), false);
    for (const auto& entry : s_->generated)
      if (entry.first < length) results.generated[static_cast<size_t>(entry.first)] = true;
    results.seed = summary.seed;
    results.seconds = summary.seconds;
    s_->doc.set_results(results);
    record_take(summary.seed, summary.seconds, summary.cancelled,
                static_cast<int>(summary.generated.size()));
    const QString text = summary.cancelled ? tr("Stopped after %1 s: kept %2 finished frames.")
                                                 .arg(summary.seconds, 0, 'f', 1)
                                                 .arg(summary.generated.size())
                                           : tr("Generated %1 frames in %2 s (%3 frames/s).")
                                                 .arg(summary.generated.size())
                                                 .arg(summary.seconds, 0, 'f', 1)
                                                 .arg(summary.frames_per_second, 0, 'f', 2);
    s_->controls->set_progress(summary.cancelled ? 0 : 1, 1, text);
    statusBar()->showMessage(text, 10000);
    // Show what was made: jump to the run's first new frame unless already on a generated one.
    if (!summary.generated.empty() && !s_->generated.count(s_->current))
      s_->current = summary.generated.front();
    refresh_all();
    emit generation_finished(summary.cancelled);
  });
  connect(s_->worker, &GenerationWorker::failed, this, [this](const QString& message) {
    end_run();
    s_->controls->set_progress(0, 1, tr("Failed: %1").arg(message));
    refresh_all();
    report_error(tr("Generation failed"), message);
    emit generation_failed(message);
  });
}

void MainWindow::end_run() {
  s_->progress_pending = false;  // the caller shows how the run ended instead
  flush_results();
  s_->generating = false;
  s_->previews.clear();
  s_->timeline->clear_previews();
  s_->heat->clear_progress();
  s_->controls->set_running(false);
}

// Generation updates reach the screen together, at most kDisplayIntervalMs apart, and the first
// after a quiet spell (a run's first preview) at once: then the flush runs on the next turn of
// the event loop, after the signals already queued, so a burst is still drawn once.
void MainWindow::schedule_display() {
  if (s_->display_flush.isActive()) return;
  const qint64 since = s_->last_display.isValid() ? s_->last_display.elapsed() : kDisplayIntervalMs;
  s_->display_flush.start(static_cast<int>(std::max<qint64>(0, kDisplayIntervalMs - since)));
}

void MainWindow::flush_results() {
  ScopedWork work(s_->work, "show previews and results");
  s_->last_display.start();
  s_->display_flush.stop();
  bool current = false;
  for (int position : s_->pending_previews) {
    auto it = s_->previews.find(position);
    if (it != s_->previews.end()) s_->timeline->set_preview_image(position, to_qimage(it->second));
    current = current || position == s_->current;
  }
  s_->pending_previews.clear();
  const bool preview_shown_now = s_->preview_pending;
  if (s_->preview_pending) {
    ++s_->preview_updates;
    s_->preview_pending = false;
  }
  if (!s_->pending_results.empty()) {
    for (int position : s_->pending_results) {
      auto it = s_->generated.find(position);
      if (it != s_->generated.end())
        s_->timeline->set_result_image(position, to_qimage(it->second));
      current = current || position == s_->current;
    }
    s_->pending_results.clear();
    refresh_flags();
  }
  if (s_->progress_pending && s_->generating) {
    s_->progress_pending = false;
    const project::GenerationProgress& p = s_->latest_progress;
    if (p.phase == project::GenerationProgress::Phase::Decoding) {
      s_->controls->set_progress(0, 1, tr("Reading the clip frames..."));
    } else {
      s_->heat->set_progress(p.window, p.matrix_row);
      s_->controls->set_progress(
          p.step, p.total_steps,
          tr("Step %1 of %2 - window %3 of %4 - frames %5 of %6 final\nelapsed %7, about %8 left")
              .arg(p.step)
              .arg(p.total_steps)
              .arg(p.window + 1)
              .arg(std::max(1, p.windows))
              .arg(p.frames_final)
              .arg(p.frames_to_generate)
              .arg(format_seconds(p.elapsed_s), format_seconds(p.eta_s)));
    }
  }
  if (current) refresh_viewer();
  if (preview_shown_now) emit preview_shown();
}

bool MainWindow::start_generation() {
  if (s_->generating) return false;
  ScopedWork work(s_->work, "start the run");
  if (!s_->model_info || s_->model_loading) {
    report_error(tr("No model"),
                 tr("The model is still loading (or failed to load): Model > Open model."));
    return false;
  }
  if (s_->exporting) {
    report_error(tr("Busy"), tr("Wait for the export to finish."));
    return false;
  }
  if (!s_->doc.project().generation.seed_locked) {
    const std::uint64_t seed = QRandomGenerator::global()->generate() & 0x7FFFFFFFu;
    s_->doc.edit(tr("Random seed %1").arg(seed).toStdString(),
                 [seed](project::Project& p) { p.generation.rollout.seed = seed; });
  }
  refresh_plan();
  if (!s_->plan.problem.isEmpty()) {
    report_error(tr("Cannot generate"), s_->plan.problem);
    return false;
  }
  pause();
  s_->doc.end_merge();
  s_->run_project = s_->doc.project();
  GenerationRequest request;
  // Earlier results the run reads: pinned ones and those partially re-noised (a frame made
  // again from pure noise never looks at its old picture; copying it would cost the GUI
  // thread ~0.2 ms per 256 x 256 frame for nothing).
  const project::Timeline& timeline = s_->run_project.timeline;
  for (const auto& [position, frame] : s_->generated)
    if (position < timeline.length() &&
        (timeline.pinned(position) || timeline.noise[static_cast<size_t>(position)] < 1.0))
      request.previous.emplace(position, frame);
  request.want_preview = true;
  request.base_dir =
      s_->doc.path().empty()
          ? std::string()
          : QFileInfo(QString::fromStdString(s_->doc.path())).absolutePath().toStdString();
  // Frames that will be re-made lose their old result now; the others stay.
  for (const auto& w : s_->plan.windows)
    for (size_t i = 0; i < w.frames.size(); ++i)
      if (!w.known[i]) {
        s_->generated.erase(w.frames[i]);
      }
  s_->previews.clear();
  s_->timeline->clear_previews();
  s_->last_display.invalidate();  // the run's first preview is shown as soon as it arrives
  s_->generating = true;
  s_->controls->set_running(true);
  s_->controls->set_progress(0, 1, tr("Starting..."));
  refresh_flags();
  s_->undo_action->setEnabled(false);
  s_->redo_action->setEnabled(false);
  GenerationWorker* worker = s_->worker;
  worker->arm();  // before queuing: a Stop from now on reaches this run
  QMetaObject::invokeMethod(
      worker,
      [worker, run = s_->run_project, request = std::move(request)] {
        worker->generate(run, request);
      },
      Qt::QueuedConnection);
  return true;
}

void MainWindow::stop_generation() {
  if (!s_->generating) return;
  s_->worker->request_cancel();
  s_->controls->set_progress(s_->controls->progress_bar()->value(),
                             s_->controls->progress_bar()->maximum(),
                             tr("Stopping after the current step..."));
}

void MainWindow::State::clear_generated() {
  generated.clear();
  previews.clear();
  timeline->clear_results();
}

bool MainWindow::is_generating() const {
  return s_->generating;
}
const std::map<int, Frame>& MainWindow::generated_frames() const {
  return s_->generated;
}
int MainWindow::preview_updates() const {
  return s_->preview_updates;
}
QString MainWindow::take_longest_work(double* ms) {
  const QString name = s_->work.longest ? QString::fromUtf8(s_->work.longest) : QString();
  if (ms != nullptr) *ms = static_cast<double>(s_->work.longest_ns) * 1e-6;
  s_->work = {};
  return name;
}

}  // namespace dfs::ui
