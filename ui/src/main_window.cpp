// main_window.cpp — see dfs/ui/main_window.h. Construction (docks, status bar, how the widgets
// talk to the window, the worker thread's start and stop) and the refresh that copies the
// document into the widgets. The other parts of MainWindow are listed in main_window_state.h.
#include "dfs/ui/main_window.h"

#include <QDockWidget>
#include <QFileInfo>
#include <QLabel>
#include <QMessageBox>
#include <QGuiApplication>
#include <QScreen>
#include <QScrollArea>
#include <QSettings>
#include <QStatusBar>
#include <QTextBrowser>
#include <QTimer>
#include <algorithm>
#include <cstdint>
#include <exception>
#include <vector>

#include "controls_panel.h"
#include "generation_worker.h"
#include "heat_map_panel.h"
#include "main_window_state.h"
#include "noise_curve_panel.h"
#include "planning.h"
#include "timeline_widget.h"
#include "viewer_widget.h"

namespace dfs::ui {

constexpr const char* kGeometryKey = "window/geometry";
constexpr const char* kDockStateKey = "window/docks";

// The status bar's form of a model note: its first sentence, at most 80 characters (the whole
// note is the label's tooltip and in the Model panel).
QString short_note(const QString& note) {
  QString first = note.section(QStringLiteral(". "), 0, 0).trimmed();
  if (first.size() > 80) first = first.left(79) + QChar(0x2026);
  return first;
}

MainWindow::MainWindow(StudioOptions options, QWidget* parent)
    : QMainWindow(parent), s_(std::make_unique<State>()) {
  s_->options = std::move(options);
  s_->take_writer.setMaxThreadCount(1);  // takes and autosave frames, in order (FIFO)
  register_meta_types();
  setWindowTitle(tr("Diffusion Forcing Studio"));
  // PNG: Debian's Qt has no SVG image plugin unless qt6-svg is installed.
  setWindowIcon(QIcon(":/icons/dfstudio.png"));
  setAcceptDrops(true);
  build_ui();
  build_takes_dock();  // before the menus: the View menu lists every dock
  build_menus();
  connect_worker();
  restore_layout();
  init_learning();  // [SECTION] Learning (main_window_learn.cpp)

  s_->play_timer.setTimerType(Qt::PreciseTimer);
  connect(&s_->play_timer, &QTimer::timeout, this, &MainWindow::step_playback);
  s_->autosave_timer.setInterval(std::max(10, s_->options.autosave_ms));
  connect(&s_->autosave_timer, &QTimer::timeout, this, &MainWindow::autosave);
  if (s_->options.autosave) s_->autosave_timer.start();

  refresh_all();
  if (s_->options.load_model) load_model(s_->options.model_path);
  if (!s_->options.clip_path.isEmpty()) {
    const QString clip = s_->options.clip_path;
    QTimer::singleShot(0, this, [this, clip] { open_clip(clip); });
  }
}

MainWindow::~MainWindow() {
  commit_written_takes(true, true);  // nothing half-kept: frames on disk and in the index
  s_->take_writer.waitForDone();     // an autosave's frames (the folder stays for recovery)
  if (s_->worker != nullptr) s_->worker->request_cancel();
  if (s_->export_cancel) s_->export_cancel->store(true);
  s_->export_future.waitForFinished();  // the task removes its partial output as it stops
  s_->worker_thread.quit();
  s_->worker_thread.wait();
  s_->thumbnails.reset();
}

// The window opens where it was last closed, with its docks where the user left them; the first
// time, at 1500 x 950 or what the screen's available area allows (a 1366 x 768 laptop), centred.
// A saved geometry from a screen that is gone is moved back on screen by restoreGeometry.
void MainWindow::restore_layout() {
  const QSettings settings;
  const QByteArray geometry = settings.value(kGeometryKey).toByteArray();
  if (!s_->options.restore_layout || geometry.isEmpty() || !restoreGeometry(geometry)) {
    const QScreen* screen = QGuiApplication::primaryScreen();
    const QRect available = screen ? screen->availableGeometry() : QRect(0, 0, 1500, 950);
    const QSize size = QSize(1500, 950).boundedTo(available.size() * 0.96);
    resize(size);
    move(available.center() - QPoint(size.width() / 2, size.height() / 2));
  }
  if (s_->options.restore_layout) restoreState(settings.value(kDockStateKey).toByteArray());
}

void MainWindow::save_layout() const {
  if (!s_->options.restore_layout) return;
  QSettings settings;
  settings.setValue(kGeometryKey, saveGeometry());
  settings.setValue(kDockStateKey, saveState());
}

void MainWindow::build_ui() {
  setDockNestingEnabled(true);
  s_->viewer = new ViewerWidget;
  setCentralWidget(s_->viewer);

  auto make_dock = [this](const QString& title, const QString& name, QWidget* content,
                          Qt::DockWidgetArea area) {
    auto* dock = new QDockWidget(title, this);
    dock->setObjectName(name);
    dock->setWidget(content);
    addDockWidget(area, dock);
    return dock;
  };

  s_->timeline = new TimelineWidget;
  s_->timeline->setMinimumHeight(110);
  auto* timeline_dock =
      make_dock(tr("Filmstrip"), "filmstrip", s_->timeline, Qt::BottomDockWidgetArea);

  s_->noise = new NoiseCurvePanel;
  s_->noise->setMinimumHeight(150);
  auto* noise_dock = make_dock(tr("Per-frame noise"), "noise", s_->noise, Qt::BottomDockWidgetArea);
  splitDockWidget(timeline_dock, noise_dock, Qt::Vertical);

  s_->controls = new ControlsPanel;
  auto* scroll = new QScrollArea;
  scroll->setWidget(s_->controls);
  scroll->setWidgetResizable(true);
  scroll->setMinimumWidth(360);
  auto* controls_dock = make_dock(tr("Generate"), "generate", scroll, Qt::RightDockWidgetArea);

  s_->heat = new HeatMapPanel;
  s_->heat->setMinimumHeight(150);
  auto* heat_dock = make_dock(tr("Scheduling matrix"), "heatmap", s_->heat, Qt::LeftDockWidgetArea);

  s_->model_text = new QTextBrowser;
  s_->model_text->setOpenExternalLinks(false);
  auto* model_dock = make_dock(tr("Model"), "model", s_->model_text, Qt::LeftDockWidgetArea);
  splitDockWidget(heat_dock, model_dock, Qt::Vertical);
  resizeDocks({heat_dock, model_dock}, {560, 260}, Qt::Vertical);
  resizeDocks({heat_dock, controls_dock}, {420, 380}, Qt::Horizontal);
  resizeDocks({timeline_dock, noise_dock}, {120, 180}, Qt::Vertical);

  s_->status_device = new QLabel;
  s_->status_model = new QLabel;
  s_->status_fps = new QLabel;
  s_->status_note = new QLabel;
  s_->status_note->setStyleSheet("color: #f2a93b;");
  statusBar()->addPermanentWidget(s_->status_note);
  statusBar()->addPermanentWidget(s_->status_model);
  statusBar()->addPermanentWidget(s_->status_fps);
  statusBar()->addPermanentWidget(s_->status_device);

  // Widget -> window wiring.
  connect(s_->timeline, &TimelineWidget::seek_requested, this, &MainWindow::seek);
  connect(s_->timeline, &TimelineWidget::selection_changed, this, &MainWindow::set_selection);
  connect(s_->timeline, &TimelineWidget::pin_toggle_requested, this, &MainWindow::toggle_pin);
  connect(s_->timeline, &TimelineWidget::context_menu_requested, this,
          &MainWindow::show_timeline_menu);
  connect(s_->noise, &NoiseCurvePanel::levels_changed, this,
          [this](const std::vector<double>& levels) {
            project::Project preview = s_->doc.project();
            if (levels.size() == preview.timeline.noise.size()) preview.timeline.noise = levels;
            refresh_plan(&preview);
          });
  connect(s_->noise, &NoiseCurvePanel::levels_committed, this,
          [this](const std::vector<double>& levels, const QString& what) {
            edit_project(what, [levels](project::Project& p) {
              if (levels.size() == p.timeline.noise.size()) p.timeline.noise = levels;
            });
          });
  connect(s_->noise, &NoiseCurvePanel::selection_changed, this, &MainWindow::set_selection);
  connect(s_->noise, &NoiseCurvePanel::frame_clicked, this, &MainWindow::seek);
  connect(s_->heat, &HeatMapPanel::shape_picked, this, [this](diffusion::ScheduleShape shape) {
    edit_project(tr("Schedule: %1").arg(diffusion::to_string(shape)), [shape](project::Project& p) {
      p.generation.rollout.sampler.schedule.shape = shape;
    });
  });
  connect(s_->heat, &HeatMapPanel::start_level_painted, this, [this](int position, double level) {
    if (s_->generating) return;
    try {
      if (s_->doc.edit(
              tr("Paint start levels").toStdString(),
              [position, level](project::Project& p) {
                project::set_noise(p.timeline, position, level);
              },
              "heat_map_paint"))
        refresh_all();
    } catch (const std::exception& e) {
      statusBar()->showMessage(QString::fromUtf8(e.what()), 5000);
    }
  });
  connect(s_->heat, &HeatMapPanel::painting_finished, this, [this] { s_->doc.end_merge(); });
  connect(s_->controls, &ControlsPanel::edit_requested, this,
          [this](const QString& label, const ProjectEdit& change, const QString& merge_key) {
            try {
              if (s_->doc.edit(label.toStdString(), change, merge_key.toStdString())) refresh_all();
            } catch (const std::exception& e) {
              report_error(tr("Invalid setting"), QString::fromUtf8(e.what()));
              refresh_all();  // put the controls back to the document's values
            }
          });
  connect(s_->controls, &ControlsPanel::generate_clicked, this, &MainWindow::start_generation);
  connect(s_->controls, &ControlsPanel::stop_clicked, this, &MainWindow::stop_generation);
}

// Refresh: document -> widgets. Cheap enough to run after every edit.

void MainWindow::refresh_all() {
  ScopedWork work(s_->work, "refresh the window");
  const project::Project& p = s_->doc.project();
  const project::Timeline& t = p.timeline;
  s_->timeline->set_layout(t.length(), t.source_first, t.source_count, p.clip.frame_count,
                           p.clip.fps);
  s_->noise->set_levels(t.noise);
  s_->timeline->set_in_out(p.export_settings.in, p.export_settings.out);
  refresh_flags();
  s_->controls->refresh(p, s_->model_info ? &*s_->model_info : nullptr);
  s_->heat->set_shape(p.generation.rollout.sampler.schedule.shape);
  refresh_plan();
  if (s_->current >= t.length()) s_->current = std::max(0, t.length() - 1);
  s_->timeline->set_current(s_->current);
  s_->noise->set_current_frame(s_->current);
  refresh_viewer();
  refresh_status();
  s_->undo_action->setEnabled(s_->doc.can_undo() && !s_->generating);
  s_->redo_action->setEnabled(s_->doc.can_redo() && !s_->generating);
  s_->undo_action->setText(s_->doc.can_undo()
                               ? tr("&Undo %1").arg(QString::fromStdString(s_->doc.undo_label()))
                               : tr("&Undo"));
  s_->redo_action->setText(s_->doc.can_redo()
                               ? tr("&Redo %1").arg(QString::fromStdString(s_->doc.redo_label()))
                               : tr("&Redo"));
  const QString name = s_->doc.path().empty()
                           ? tr("untitled")
                           : QFileInfo(QString::fromStdString(s_->doc.path())).fileName();
  setWindowTitle(QString("%1%2 - Diffusion Forcing Studio").arg(name, s_->doc.dirty() ? "*" : ""));
  note_document_change();  // [SECTION] Recovery: counts edits, autosaves every N (recovery.cpp)
}

void MainWindow::refresh_plan(const project::Project* override_project) {
  const project::Project& p = override_project ? *override_project : s_->doc.project();
  if (!s_->model_info) {
    s_->heat->set_problem(tr("Loading the model..."));
    s_->controls->set_window_pins(tr("(no model yet)"));
    return;
  }
  s_->plan = plan_windows(p, *s_->model_info, s_->generated);
  if (!s_->plan.problem.isEmpty()) {
    s_->heat->set_plans({});
    s_->heat->set_problem(s_->plan.problem);
    s_->controls->set_window_pins(s_->plan.problem);
    return;
  }
  s_->heat->set_plans(s_->plan.windows);
  const int shown =
      std::clamp(s_->heat->shown_window(), 0, static_cast<int>(s_->plan.windows.size()) - 1);
  s_->controls->set_window_pins(
      tr("window %1 of %2: %3")
          .arg(shown + 1)
          .arg(s_->plan.windows.size())
          .arg(describe_window_pins(s_->plan.windows[static_cast<size_t>(shown)], p.timeline)));
}

void MainWindow::refresh_flags() {
  const project::Timeline& t = s_->doc.project().timeline;
  std::vector<std::uint8_t> flags(static_cast<size_t>(t.length()), 0);
  for (int i = 0; i < t.length(); ++i) {
    std::uint8_t f = 0;
    if (t.is_source(i)) f |= kFrameHasSource;
    if (t.pinned(i)) f |= kFramePinned;
    if (s_->generated.count(i)) f |= kFrameGenerated;
    flags[static_cast<size_t>(i)] = f;
  }
  s_->timeline->set_flags(flags);
  s_->noise->set_frame_flags(flags);
}

void MainWindow::refresh_viewer() {
  const project::Project& p = s_->doc.project();
  const project::Timeline& t = p.timeline;
  const int pos = s_->current;
  QImage original;
  if (t.is_source(pos) && s_->decoder) {
    const int clip_frame = t.clip_frame(pos);
    if (clip_frame != s_->decoded_index) {
      try {
        s_->decoded_image = to_qimage(s_->decoder->frame_at(clip_frame).image);
        s_->decoded_index = clip_frame;
      } catch (const std::exception& e) {
        s_->decoded_image = QImage();
        s_->decoded_index = -1;
        statusBar()->showMessage(tr("Frame %1 could not be decoded: %2")
                                     .arg(clip_frame)
                                     .arg(QString::fromUtf8(e.what())),
                                 5000);
      }
    }
    original = s_->decoded_image;
  }
  QImage result;
  bool is_preview = false;
  if (auto it = s_->previews.find(pos); it != s_->previews.end()) {
    result = to_qimage(it->second);
    is_preview = true;
  } else if (auto g = s_->generated.find(pos); g != s_->generated.end()) {
    result = to_qimage(g->second);
  }
  QStringList state;
  if (t.length() > 0) {
    if (t.is_source(pos))
      state << tr("clip frame %1").arg(t.clip_frame(pos));
    else
      state << tr("new frame");
    if (t.pinned(pos))
      state << tr("pinned");
    else if (pos < static_cast<int>(t.noise.size()))
      state << tr("noise %1").arg(t.noise[static_cast<size_t>(pos)], 0, 'f', 2);
    if (s_->generated.count(pos)) state << tr("generated");
    if (is_preview) state << tr("live preview");
  }
  const QString caption =
      t.length() == 0
          ? tr("No clip. File > Open clip, File > Open sample clip, or drop a video here.")
          : tr("Frame %1 / %2   %3   %4")
                .arg(pos)
                .arg(t.length() - 1)
                .arg(TimelineWidget::timecode(pos, p.clip.fps > 0 ? p.clip.fps : 8.0),
                     state.join("  |  "));
  apply_take_compare(pos, original, result);  // comparing two takes: they replace both sides
  s_->viewer->set_frame(original, result, is_preview, caption);
}

void MainWindow::refresh_status() {
  if (s_->model_info) {
    const auto& m = *s_->model_info;
    const auto rt = diffusion::runtime_info();
    const bool cuda = QString::fromStdString(m.device).startsWith("cuda");
    s_->status_device->setText(cuda ? tr("Device: %1").arg(QString::fromStdString(m.device))
                                    : tr("Device: CPU (%1 threads)").arg(rt.threads));
    s_->status_model->setText(
        tr("Model: %1 %2x%3").arg(QString::fromStdString(m.name)).arg(m.width).arg(m.height));
  } else {
    s_->status_device->setText(tr("Device: -"));
    s_->status_model->setText(tr("Model: loading..."));
  }
  s_->status_fps->setText(s_->last_fps > 0 ? tr("%1 frames/s").arg(s_->last_fps, 0, 'f', 2)
                                           : tr("- frames/s"));
  s_->status_note->setText(short_note(s_->model_note));
  s_->status_note->setToolTip(s_->model_note);
}

void MainWindow::report_error(const QString& title, const QString& message) {
  s_->last_error = message;
  statusBar()->showMessage(title + ": " + message, 10000);
  emit error_reported(message);
  if (s_->options.quiet_errors) return;
  auto* box = new QMessageBox(QMessageBox::Warning, title, message, QMessageBox::Ok, this);
  box->setAttribute(Qt::WA_DeleteOnClose);
  box->open();  // not exec(): the window keeps running (a generation may be finishing)
}

const project::Document& MainWindow::document() const {
  return s_->doc;
}
QString MainWindow::last_error() const {
  return s_->last_error;
}
ImGuiWidget* MainWindow::heat_map_widget() const {
  return s_->heat;
}
ImGuiWidget* MainWindow::noise_curve_widget() const {
  return s_->noise;
}

}  // namespace dfs::ui
