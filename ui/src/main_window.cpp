// main_window.cpp — see dfs/ui/main_window.h.
//
// Index
//   [SECTION] State
//   [SECTION] Construction: docks, menus, worker thread
//   [SECTION] Refresh: document -> widgets
//   [SECTION] Files: clips, projects, drag and drop, recent files, autosave
//   [SECTION] Model
//   [SECTION] Editing
//   [SECTION] Generation
//   [SECTION] Playback
//   [SECTION] Export
#include "dfs/ui/main_window.h"

#include <algorithm>
#include <QAction>
#include <QActionGroup>
#include <QApplication>
#include <QCloseEvent>
#include <QCoreApplication>
#include <QDesktopServices>
#include <QDir>
#include <QDockWidget>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QElapsedTimer>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QLabel>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QMimeData>
#include <QPointer>
#include <QProgressBar>
#include <QProgressDialog>
#include <QPushButton>
#include <QRandomGenerator>
#include <QScrollArea>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTextBrowser>
#include <QThread>
#include <QTimer>
#include <QUrl>
#include <QVBoxLayout>
#include <atomic>
#include <cmath>
#include <set>
#include <thread>

#include "controls_panel.h"
#include "dfs/media/decoder.h"
#include "dfs/media/encoder.h"
#include "dfs/media/metadata.h"
#include "dfs/media/probe.h"
#include "dfs/media/thumbnails.h"
#include "dfs/project/generation.h"
#include "export_dialog.h"
#include "generation_worker.h"
#include "heat_map_panel.h"
#include "noise_curve_panel.h"
#include "planning.h"
#include "timeline_widget.h"
#include "viewer_widget.h"

namespace dfs::ui {
namespace {

constexpr int kThumbnailCount = 240;  // stills per clip for the filmstrip (any length)
constexpr int kThumbnailWidth = 96;
constexpr int kThumbnailHeight = 72;
constexpr int kDefaultNewFrames = 16;  // "extend by" when a clip is opened
constexpr int kMaxRecent = 8;
constexpr int kDisplayIntervalMs = 100;  // generation updates reach the screen this often
constexpr const char* kProjectFilter = "Studio projects (*.dfsproj *.json)";
constexpr const char* kClipFilter =
    "Video clips (*.mp4 *.mov *.m4v *.mkv *.webm *.avi *.gif);;All files (*)";

QImage to_qimage(const Frame& frame) {
  if (frame.empty()) return {};
  return QImage(frame.rgb.data(), frame.width, frame.height, frame.stride(), QImage::Format_RGB888)
      .copy();
}

QString format_seconds(double s) {
  if (s < 0) return QStringLiteral("--:--");
  const int total = static_cast<int>(std::lround(s));
  return QString("%1:%2").arg(total / 60, 2, 10, QChar('0')).arg(total % 60, 2, 10, QChar('0'));
}

bool is_video_extension(const QString& suffix) {
  static const QStringList kVideo = {"mp4", "mov", "m4v", "mkv",  "webm",
                                     "avi", "gif", "mpg", "mpeg", "ogv"};
  return kVideo.contains(suffix.toLower());
}

}  // namespace

// [SECTION] State --------------------------------------------------------------------------

struct MainWindow::State {
  StudioOptions options;
  project::Document doc;
  // Source clip (GUI thread decoder for the viewer; the worker and exports open their own).
  QString clip_path;
  std::unique_ptr<media::Decoder> decoder;
  int decoded_index = -1;
  QImage decoded_image;
  std::unique_ptr<media::ThumbnailJob> thumbnails;
  int thumbnail_ticket = 0;
  // Model, owned by the worker; the GUI keeps its description.
  std::optional<diffusion::ModelInfo> model_info;
  bool model_loading = false;  // a load is queued on the worker
  QString model_note;
  QThread worker_thread;
  GenerationWorker* worker = nullptr;
  // Generation.
  bool generating = false;
  std::map<int, Frame> generated;
  std::map<int, Frame> previews;
  project::Project run_project;
  std::set<int> pending_results;   // final frames received but not shown yet
  std::set<int> pending_previews;  // previews received but not shown yet
  bool preview_pending = false;
  bool progress_pending = false;
  project::GenerationProgress latest_progress;
  QTimer display_flush;
  int preview_updates = 0;
  double last_fps = 0;
  PlanResult plan;
  // Viewing and playback.
  int current = 0;
  int selection_first = 0;
  int selection_last = -1;
  QTimer play_timer;
  int play_direction = 0;  // 0 = paused, +1 forward, -1 backward
  int play_speed = 1;      // J/L pressed repeatedly doubles it
  // Export.
  bool exporting = false;
  std::shared_ptr<std::atomic<int>> export_done;
  std::shared_ptr<std::atomic<bool>> export_cancel;
  QProgressDialog* export_dialog = nullptr;
  QTimer export_poll;
  // Autosave.
  QTimer autosave_timer;
  QString last_error;
  // Widgets.
  ViewerWidget* viewer = nullptr;
  TimelineWidget* timeline = nullptr;
  NoiseCurvePanel* noise = nullptr;
  HeatMapPanel* heat = nullptr;
  ControlsPanel* controls = nullptr;
  QTextBrowser* model_text = nullptr;
  QLabel* status_device = nullptr;
  QLabel* status_model = nullptr;
  QLabel* status_fps = nullptr;
  QLabel* status_note = nullptr;
  QAction* undo_action = nullptr;
  QAction* redo_action = nullptr;
  QMenu* recent_menu = nullptr;
  std::vector<QAction*> view_modes;
};

// [SECTION] Construction --------------------------------------------------------------------

MainWindow::MainWindow(StudioOptions options, QWidget* parent)
    : QMainWindow(parent), s_(std::make_unique<State>()) {
  s_->options = std::move(options);
  register_meta_types();
  setWindowTitle(tr("Diffusion Forcing Studio"));
  // PNG: Debian's Qt has no SVG image plugin unless qt6-svg is installed.
  setWindowIcon(QIcon(":/icons/dfstudio.png"));
  setAcceptDrops(true);
  resize(1500, 950);
  build_ui();
  build_menus();
  connect_worker();

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
  if (s_->worker != nullptr) s_->worker->request_cancel();
  if (s_->export_cancel) s_->export_cancel->store(true);
  s_->worker_thread.quit();
  s_->worker_thread.wait();
  s_->thumbnails.reset();
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
  s_->heat->setMinimumHeight(220);
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
          [this](int position, const QPoint& at) {
            QMenu menu(this);
            const bool pinned = s_->doc.project().timeline.pinned(position);
            menu.addAction(
                pinned ? tr("Unpin frame %1").arg(position) : tr("Pin frame %1").arg(position),
                this, [this, position] { toggle_pin(position); });
            if (s_->selection_first <= s_->selection_last) {
              const int a = s_->selection_first, b = s_->selection_last;
              menu.addAction(tr("Pin frames %1-%2").arg(a).arg(b), this, [this, a, b] {
                edit_project(tr("Pin %1-%2").arg(a).arg(b), [a, b](project::Project& p) {
                  project::set_pinned_range(p.timeline, a, b, true);
                });
              });
              menu.addAction(tr("Unpin frames %1-%2").arg(a).arg(b), this, [this, a, b] {
                edit_project(tr("Unpin %1-%2").arg(a).arg(b), [a, b](project::Project& p) {
                  project::set_pinned_range(p.timeline, a, b, false);
                });
              });
            }
            menu.addSeparator();
            menu.addAction(tr("Pin all source frames"), this, [this] {
              edit_project(tr("Pin all source frames"),
                           [](project::Project& p) { project::pin_all_source(p.timeline); });
            });
            menu.addAction(tr("Clear pins"), this, [this] {
              edit_project(tr("Clear pins"),
                           [](project::Project& p) { project::clear_pins(p.timeline); });
            });
            menu.exec(at);
          });
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

void MainWindow::build_menus() {
  // File
  QMenu* file = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&Open clip..."), QKeySequence::Open, this, &MainWindow::open_clip_dialog);
  file->addAction(tr("Open &sample clip"), this, [this] {
    const QString sample = sample_clip_path();
    if (sample.isEmpty())
      report_error(tr("No sample clip"),
                   tr("The sample clip (resources/samples/vtest_clip.mp4) is not installed."));
    else
      open_clip(sample);
  });
  s_->recent_menu = file->addMenu(tr("&Recent files"));
  rebuild_recent_menu();
  file->addSeparator();
  file->addAction(
      tr("Open &project..."), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_O), this, [this] {
        if (!confirm_discard()) return;
        const QString path =
            QFileDialog::getOpenFileName(this, tr("Open project"), {}, tr(kProjectFilter));
        if (!path.isEmpty()) open_project(path);
      });
  file->addAction(tr("&Save project"), QKeySequence::Save, this, [this] {
    QString path = QString::fromStdString(s_->doc.path());
    if (path.isEmpty())
      path = QFileDialog::getSaveFileName(this, tr("Save project"), "untitled.dfsproj",
                                          tr(kProjectFilter));
    if (!path.isEmpty()) save_project(path);
  });
  file->addAction(tr("Save project &as..."), QKeySequence::SaveAs, this, [this] {
    const QString path = QFileDialog::getSaveFileName(
        this, tr("Save project as"), QString::fromStdString(s_->doc.path()), tr(kProjectFilter));
    if (!path.isEmpty()) save_project(path);
  });
  file->addSeparator();
  file->addAction(tr("&Export..."), QKeySequence(Qt::CTRL | Qt::Key_E), this,
                  &MainWindow::show_export_dialog);
  file->addAction(tr("Restore settings from an export..."), this, [this] {
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Exported file"), {}, tr("Exports (*.mp4 *.webm *.gif *.png *.json)"));
    if (!path.isEmpty()) restore_from_export(path);
  });
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

  // Edit
  QMenu* edit = menuBar()->addMenu(tr("&Edit"));
  s_->undo_action = edit->addAction(tr("&Undo"), QKeySequence::Undo, this, &MainWindow::undo);
  s_->redo_action = edit->addAction(tr("&Redo"), QKeySequence::Redo, this, &MainWindow::redo);
  edit->addSeparator();
  edit->addAction(tr("&Pin / unpin current frame"), QKeySequence(Qt::Key_P), this,
                  [this] { toggle_pin(s_->current); });
  edit->addAction(tr("Pin selected range"), QKeySequence(Qt::SHIFT | Qt::Key_P), this, [this] {
    const int a = s_->selection_first, b = s_->selection_last;
    if (a > b) {
      report_error(tr("No selection"), tr("Drag on the filmstrip to select frames first."));
      return;
    }
    edit_project(tr("Pin %1-%2").arg(a).arg(b), [a, b](project::Project& p) {
      project::set_pinned_range(p.timeline, a, b, true);
    });
  });
  edit->addAction(tr("Unpin selected range"), this, [this] {
    const int a = s_->selection_first, b = s_->selection_last;
    if (a > b) return;
    edit_project(tr("Unpin %1-%2").arg(a).arg(b), [a, b](project::Project& p) {
      project::set_pinned_range(p.timeline, a, b, false);
    });
  });
  edit->addAction(tr("Pin &all source frames"), this, [this] {
    edit_project(tr("Pin all source frames"),
                 [](project::Project& p) { project::pin_all_source(p.timeline); });
  });
  edit->addAction(tr("&Clear pins"), this, [this] {
    edit_project(tr("Clear pins"), [](project::Project& p) { project::clear_pins(p.timeline); });
  });
  edit->addSeparator();
  edit->addAction(tr("Set noise of selection..."), QKeySequence(Qt::Key_N), this, [this] {
    const int length = s_->doc.project().timeline.length();
    const int a = s_->selection_first <= s_->selection_last ? s_->selection_first : 0;
    const int b = s_->selection_first <= s_->selection_last ? s_->selection_last : length - 1;
    if (length == 0) return;
    bool ok = false;
    const double level = QInputDialog::getDouble(
        this, tr("Noise level"),
        tr("Start level for frames %1-%2 (0 = keep, 1 = from noise):").arg(a).arg(b), 1.0, 0.0, 1.0,
        2, &ok);
    if (ok)
      edit_project(tr("Noise %1 on %2-%3").arg(level).arg(a).arg(b),
                   [a, b, level](project::Project& p) {
                     project::set_noise_range(p.timeline, a, b, level);
                   });
  });
  edit->addAction(tr("Select all"), QKeySequence::SelectAll, this,
                  [this] { set_selection(0, s_->doc.project().timeline.length() - 1); });
  edit->addAction(tr("Clear selection"), this, [this] { set_selection(0, -1); });
  edit->addAction(tr("Set export &in point"), QKeySequence(Qt::Key_I), this, [this] {
    const int in = s_->current;
    edit_project(tr("In point %1").arg(in), [in](project::Project& p) {
      p.export_settings.in = in;
      p.export_settings.out = std::max(p.export_settings.out, in);
    });
  });
  edit->addAction(tr("Set export &out point"), QKeySequence(Qt::Key_O), this, [this] {
    const int out = s_->current;
    edit_project(tr("Out point %1").arg(out), [out](project::Project& p) {
      p.export_settings.out = out;
      p.export_settings.in = std::min(p.export_settings.in, out);
    });
  });

  // Generate
  QMenu* gen = menuBar()->addMenu(tr("&Generate"));
  QAction* go = gen->addAction(tr("&Generate"), this, &MainWindow::start_generation);
  go->setShortcuts(
      {QKeySequence(Qt::CTRL | Qt::Key_Return), QKeySequence(Qt::CTRL | Qt::Key_Enter)});
  go->setShortcutContext(Qt::WindowShortcut);
  gen->addAction(tr("&Stop"), QKeySequence(Qt::Key_Escape), this, &MainWindow::stop_generation);
  gen->addAction(tr("Discard generated frames"), this, [this] {
    s_->generated.clear();
    s_->previews.clear();
    s_->timeline->clear_results();
    s_->doc.set_results({});
    refresh_all();
  });

  // View
  QMenu* view = menuBar()->addMenu(tr("&View"));
  auto* modes = new QActionGroup(this);
  const std::pair<QString, ViewerWidget::Mode> kModes[] = {
      {tr("Result"), ViewerWidget::Mode::Result},
      {tr("Original"), ViewerWidget::Mode::Original},
      {tr("Side by side"), ViewerWidget::Mode::SideBySide},
      {tr("A/B wipe"), ViewerWidget::Mode::Wipe}};
  int key = Qt::Key_1;
  for (const auto& [label, mode] : kModes) {
    QAction* a = view->addAction(label);
    a->setCheckable(true);
    a->setShortcut(QKeySequence(key++));
    a->setChecked(mode == ViewerWidget::Mode::Result);
    modes->addAction(a);
    const ViewerWidget::Mode m = mode;
    connect(a, &QAction::triggered, this, [this, m] { s_->viewer->set_mode(m); });
    s_->view_modes.push_back(a);
  }
  QAction* smooth = view->addAction(tr("Smooth scaling of generated frames"));
  smooth->setCheckable(true);
  smooth->setChecked(true);
  connect(smooth, &QAction::toggled, this, [this](bool on) { s_->viewer->set_smooth(on); });
  view->addSeparator();
  for (QDockWidget* dock : findChildren<QDockWidget*>()) view->addAction(dock->toggleViewAction());

  // Playback (shortcuts live on the window so they work whichever panel has focus).
  QMenu* playback = menuBar()->addMenu(tr("&Playback"));
  playback->addAction(tr("Play / pause"), QKeySequence(Qt::Key_Space), this,
                      [this] { is_playing() ? pause() : play(1); });
  playback->addAction(tr("Play backwards (J)"), QKeySequence(Qt::Key_J), this, [this] {
    s_->play_speed = s_->play_direction == -1 ? std::min(8, s_->play_speed * 2) : 1;
    play(-1);
  });
  playback->addAction(tr("Pause (K)"), QKeySequence(Qt::Key_K), this, &MainWindow::pause);
  playback->addAction(tr("Play forwards (L)"), QKeySequence(Qt::Key_L), this, [this] {
    s_->play_speed = s_->play_direction == 1 ? std::min(8, s_->play_speed * 2) : 1;
    play(1);
  });
  playback->addAction(tr("Previous frame"), QKeySequence(Qt::Key_Left), this, [this] {
    pause();
    seek(s_->current - 1);
  });
  playback->addAction(tr("Next frame"), QKeySequence(Qt::Key_Right), this, [this] {
    pause();
    seek(s_->current + 1);
  });
  playback->addAction(tr("First frame"), QKeySequence(Qt::Key_Home), this, [this] { seek(0); });
  playback->addAction(tr("Last frame"), QKeySequence(Qt::Key_End), this,
                      [this] { seek(s_->doc.project().timeline.length() - 1); });

  // Model
  QMenu* model = menuBar()->addMenu(tr("&Model"));
  model->addAction(tr("&Open model..."), this, [this] {
    const QString path =
        QFileDialog::getOpenFileName(this, tr("Open model"), {}, tr("Models (*.safetensors)"));
    if (!path.isEmpty()) load_model(path);
  });
  model->addAction(tr("Load the &demo model"), this, [this] { load_model(QString()); });

  // Help
  QMenu* help = menuBar()->addMenu(tr("&Help"));
  help->addAction(tr("&Keyboard shortcuts"), this, [this] {
    QMessageBox::information(
        this, tr("Keyboard shortcuts"),
        tr("<table>"
           "<tr><td><b>Ctrl+Enter</b></td><td>generate</td></tr><tr><td><b>Esc</b></td><td>stop "
           "(keeps finished frames)</td></tr>"
           "<tr><td><b>Space</b></td><td>play / pause</td></tr><tr><td><b>J K "
           "L</b></td><td>backwards / pause / forwards (again = faster)</td></tr>"
           "<tr><td><b>Left / Right</b></td><td>previous / next frame</td></tr><tr><td><b>Home / "
           "End</b></td><td>first / last frame</td></tr>"
           "<tr><td><b>P</b>, <b>Shift+P</b></td><td>pin current frame, pin "
           "selection</td></tr><tr><td><b>N</b></td><td>noise level of the selection</td></tr>"
           "<tr><td><b>I / O</b></td><td>export in / out "
           "points</td></tr><tr><td><b>1-4</b></td><td>result, original, side by side, A/B "
           "wipe</td></tr>"
           "<tr><td><b>Ctrl+Z / Ctrl+Shift+Z</b></td><td>undo / redo</td></tr></table>"));
  });
  help->addAction(tr("&About"), this, [this] {
    const auto rt = diffusion::runtime_info();
    QMessageBox::about(
        this, tr("About Diffusion Forcing Studio"),
        tr("<h3>Diffusion Forcing Studio %1</h3><p>Generate, extend and edit video with Diffusion "
           "Forcing "
           "(Chen et al. 2024) and history guidance (Song et al. 2025).</p><p>LibTorch %2, %3, %4 "
           "threads.</p>")
            .arg(QString::fromStdString(rt.version), QString::fromStdString(rt.torch_version),
                 QString::fromStdString(rt.blas))
            .arg(rt.threads));
  });
}

void MainWindow::connect_worker() {
  s_->worker = new GenerationWorker;
  s_->worker->moveToThread(&s_->worker_thread);
  connect(&s_->worker_thread, &QThread::finished, s_->worker, &QObject::deleteLater);
  s_->worker_thread.setObjectName("dfs-generation");
  s_->worker_thread.start();

  connect(
      s_->worker, &GenerationWorker::model_loaded, this,
      [this](const diffusion::ModelInfo& info, const QString& path, const QString& note) {
        s_->model_loading = false;
        s_->model_info = info;
        s_->model_note = note;
        // A project made for a bigger model: shrink its window to fit this one.
        const auto& r = s_->doc.project().generation.rollout;
        if (info.max_frames > 0 && r.context + r.horizon > info.max_frames) {
          const int max_frames = info.max_frames;
          try {
            s_->doc.edit("Fit the window to the model", [max_frames](project::Project& p) {
              auto& rr = p.generation.rollout;
              rr.context = std::min(rr.context, max_frames / 2);
              rr.horizon = std::max(1, max_frames - rr.context);
            });
          } catch (const std::exception&) {
          }
        }
        if (!path.isEmpty()) {
          const std::string model_path = path.toStdString();
          try {
            s_->doc.edit("Model", [model_path](project::Project& p) { p.model_path = model_path; });
          } catch (const std::exception&) {
          }
        }
        QString html = tr("<b>%1</b><br>%2 x %3 pixels, %4 frames per window<br>%5 parameters, "
                          "%6-prediction, %7 noise, %8 attention<br>device: <b>%9</b>")
                           .arg(QString::fromStdString(info.name))
                           .arg(info.width)
                           .arg(info.height)
                           .arg(info.max_frames)
                           .arg(QLocale().toString(static_cast<qlonglong>(info.parameter_count)))
                           .arg(QString::fromStdString(info.objective),
                                QString::fromStdString(info.noise_schedule),
                                info.causal ? tr("causal") : tr("bidirectional"),
                                QString::fromStdString(info.device));
        if (info.latent_channels > 0)
          html += tr("<br>latent model: the transformer works on %1 x %2 x %3 latents of its "
                     "autoencoder; pinned frames stay your original pixels")
                      .arg(info.latent_width)
                      .arg(info.latent_height)
                      .arg(info.latent_channels);
        if (!note.isEmpty()) html += "<p style='color:#f2a93b'>" + note.toHtmlEscaped() + "</p>";
        if (!info.provenance_json.empty() && info.provenance_json != "{}")
          html += tr("<p><b>Provenance</b></p><pre>%1</pre>")
                      .arg(QString::fromStdString(info.provenance_json).toHtmlEscaped());
        s_->model_text->setHtml(html);
        refresh_all();
        emit model_changed(true);
      });
  connect(s_->worker, &GenerationWorker::model_failed, this, [this](const QString& message) {
    s_->model_loading = false;
    report_error(tr("The model could not be loaded"), message);
    emit model_changed(false);
  });
  connect(s_->worker, &GenerationWorker::progress, this,
          [this](const project::GenerationProgress& p) {
            if (!s_->generating) return;
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
            if (!s_->display_flush.isActive()) s_->display_flush.start();
            emit generation_progressed(p.step, p.total_steps);
          });
  connect(s_->worker, &GenerationWorker::frame_final, this,
          [this](int position, const Frame& frame, bool generated) {
            if (!generated) return;
            s_->generated[position] = frame;
            s_->previews.erase(position);
            // Frames can arrive in bursts (a whole window at once): show them together, once.
            s_->pending_results.insert(position);
            if (!s_->display_flush.isActive()) s_->display_flush.start();
          });
  s_->display_flush.setSingleShot(true);
  s_->display_flush.setInterval(kDisplayIntervalMs);
  connect(&s_->display_flush, &QTimer::timeout, this, &MainWindow::flush_results);
  connect(s_->worker, &GenerationWorker::finished, this, [this](const GenerationSummary& summary) {
    flush_results();
    s_->generating = false;
    s_->previews.clear();
    s_->timeline->clear_previews();
    s_->heat->clear_progress();
    s_->controls->set_running(false);
    s_->last_fps = summary.frames_per_second;
    project::Results results;
    const int length = s_->doc.project().timeline.length();
    results.generated.assign(static_cast<size_t>(length), false);
    for (const auto& entry : s_->generated)
      if (entry.first < length) results.generated[static_cast<size_t>(entry.first)] = true;
    results.seed = summary.seed;
    results.seconds = summary.seconds;
    s_->doc.set_results(results);
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
    flush_results();
    s_->generating = false;
    s_->previews.clear();
    s_->timeline->clear_previews();
    s_->heat->clear_progress();
    s_->controls->set_running(false);
    s_->controls->set_progress(0, 1, tr("Failed: %1").arg(message));
    refresh_all();
    report_error(tr("Generation failed"), message);
    emit generation_failed(message);
  });
}

// [SECTION] Refresh ---------------------------------------------------------------------------

void MainWindow::flush_results() {
  s_->display_flush.stop();
  bool current = false;
  for (int position : s_->pending_previews) {
    auto it = s_->previews.find(position);
    if (it != s_->previews.end()) s_->timeline->set_preview_image(position, to_qimage(it->second));
    current = current || position == s_->current;
  }
  s_->pending_previews.clear();
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
}

void MainWindow::refresh_all() {
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
  s_->status_note->setText(
      s_->model_note.isEmpty() ? QString() : tr("Untrained demo model: results are noise-like"));
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

// [SECTION] Files -----------------------------------------------------------------------------

QString MainWindow::sample_clip_path() const {
  const QString exe_dir = QCoreApplication::applicationDirPath();
  const QStringList candidates = {
      exe_dir + "/../share/dfstudio/samples/vtest_clip.mp4",
      exe_dir + "/../../resources/samples/vtest_clip.mp4",  // build/app/dfstudio in a checkout
  };
  for (const QString& c : candidates)
    if (QFileInfo::exists(c)) return QFileInfo(c).canonicalFilePath();
  return {};
}

void MainWindow::open_clip_dialog() {
  const QString path = QFileDialog::getOpenFileName(this, tr("Open clip"), {}, tr(kClipFilter));
  if (!path.isEmpty()) open_clip(path);
}

bool MainWindow::attach_clip_media(const QString& path) {
  s_->thumbnails.reset();  // cancels and joins the previous job
  s_->decoder.reset();
  s_->decoded_index = -1;
  s_->clip_path = path;
  if (path.isEmpty()) return true;
  try {
    media::DecoderOptions options;
    options.cache_frames = 64;
    s_->decoder = media::open_decoder(path.toStdString(), options);
  } catch (const std::exception& e) {
    report_error(tr("Cannot open the clip"), QString::fromUtf8(e.what()));
    return false;
  }
  const int frames = static_cast<int>(s_->decoder->info().frame_count);
  const int count = std::min(frames, kThumbnailCount);
  s_->timeline->reset_thumbnails(count);
  const int ticket = ++s_->thumbnail_ticket;
  media::ThumbnailRequest request;
  request.path = path.toStdString();
  request.count = count;
  request.width = kThumbnailWidth;
  request.height = kThumbnailHeight;
  QPointer<MainWindow> self(this);
  // The callback runs on the job's thread: hand the picture to the GUI thread.
  s_->thumbnails = std::make_unique<media::ThumbnailJob>(
      request, [self, ticket](int ordinal, std::int64_t, const Frame& frame) {
        QImage image = to_qimage(frame);
        if (!self) return;
        QMetaObject::invokeMethod(
            self,
            [self, ticket, ordinal, image] {
              if (self && self->s_->thumbnail_ticket == ticket)
                self->s_->timeline->set_thumbnail(ordinal, image);
            },
            Qt::QueuedConnection);
      });
  return true;
}

bool MainWindow::open_clip(const QString& path) {
  if (s_->generating) {
    report_error(tr("Busy"), tr("Stop the running generation before opening another clip."));
    return false;
  }
  media::ProbeInfo info;
  try {
    info = media::probe(path.toStdString());
  } catch (const std::exception& e) {
    report_error(tr("Cannot open the clip"), QString::fromUtf8(e.what()));
    return false;
  }
  if (info.frame_count <= 0) {
    report_error(tr("Cannot open the clip"), tr("'%1' has no video frames.").arg(path));
    return false;
  }
  if (!attach_clip_media(path)) return false;
  project::ClipRef clip;
  clip.path = path.toStdString();
  clip.width = info.display_width > 0 ? info.display_width : info.width;
  clip.height = info.display_height > 0 ? info.display_height : info.height;
  clip.fps = info.fps;
  clip.frame_count = static_cast<int>(info.frame_count);
  clip.duration_s = info.duration;
  clip.codec = info.codec;
  try {
    s_->doc.edit(tr("Open %1").arg(QFileInfo(path).fileName()).toStdString(),
                 [&clip](project::Project& p) {
                   clip.fit = p.clip.fit;
                   p.clip = clip;
                   p.timeline = project::extend_layout(clip.frame_count, kDefaultNewFrames);
                   p.results = {};
                 });
  } catch (const std::exception& e) {
    report_error(tr("Cannot open the clip"), QString::fromUtf8(e.what()));
    return false;
  }
  s_->generated.clear();
  s_->previews.clear();
  s_->timeline->clear_results();
  s_->doc.set_results({});
  set_selection(0, -1);
  add_recent(path);
  s_->current = std::max(0, clip.frame_count - 1);
  refresh_all();
  statusBar()->showMessage(
      tr("Opened %1: %2 frames, %3x%4, %5 fps%6")
          .arg(QFileInfo(path).fileName())
          .arg(clip.frame_count)
          .arg(clip.width)
          .arg(clip.height)
          .arg(clip.fps, 0, 'f', 2)
          .arg(s_->decoder && s_->decoder->report().damaged() ? tr(" (damaged stream)")
                                                              : QString()),
      8000);
  emit clip_opened(path);
  return true;
}

bool MainWindow::open_project(const QString& path) {
  if (s_->generating) {
    report_error(tr("Busy"), tr("Stop the running generation before opening a project."));
    return false;
  }
  try {
    project::Document doc = project::Document::load(path.toStdString());
    s_->doc = std::move(doc);
  } catch (const std::exception& e) {
    report_error(tr("Cannot open the project"), QString::fromUtf8(e.what()));
    return false;
  }
  s_->generated.clear();
  s_->previews.clear();
  s_->timeline->clear_results();
  s_->current = 0;
  if (!s_->doc.project().clip.path.empty()) {
    const QString clip = QString::fromStdString(s_->doc.resolve(s_->doc.project().clip.path));
    if (attach_clip_media(clip) && s_->doc.project().clip.frame_count <= 0) {
      // A hand-written or older project without the clip's probe summary: fill it in.
      const media::ProbeInfo info = s_->decoder->info();
      try {
        s_->doc.edit("Clip information", [&info](project::Project& pr) {
          pr.clip.width = info.display_width > 0 ? info.display_width : info.width;
          pr.clip.height = info.display_height > 0 ? info.display_height : info.height;
          pr.clip.fps = info.fps;
          pr.clip.frame_count = static_cast<int>(info.frame_count);
          pr.clip.duration_s = info.duration;
          pr.clip.codec = info.codec;
        });
        s_->doc.clear_history();
      } catch (const std::exception& e) {
        report_error(tr("The project does not match its clip"), QString::fromUtf8(e.what()));
      }
    }
  } else {
    attach_clip_media({});
  }
  const project::Project& p = s_->doc.project();
  // Generated frames cached next to the project come back too.
  if (!p.results.cache_dir.empty()) {
    for (int i = 0; i < p.timeline.length(); ++i) {
      if (!p.results.has(i)) continue;
      const std::string file = s_->doc.resolve(p.results.cached_frame_path(i));
      try {
        s_->generated[i] = media::read_image(file);
        s_->timeline->set_result_image(i, to_qimage(s_->generated[i]));
      } catch (const std::exception&) {
        // A missing cached frame just is not shown; the project itself is fine.
      }
    }
  }
  add_recent(path);
  s_->current = 0;
  refresh_all();
  if (s_->model_info && !p.model_path.empty() && QString::fromStdString(p.model_path) != QString())
    load_model(QString::fromStdString(s_->doc.resolve(p.model_path)));
  return true;
}

bool MainWindow::save_project(const QString& path) {
  try {
    // Generated frames go into "<name>_frames/" beside the project, so it reopens complete.
    if (!s_->generated.empty()) {
      const QFileInfo info(path);
      const QString dir_name = info.completeBaseName() + "_frames";
      QDir(info.absolutePath()).mkpath(dir_name);
      project::Results results = s_->doc.project().results;
      results.cache_dir = dir_name.toStdString();
      results.generated.assign(static_cast<size_t>(s_->doc.project().timeline.length()), false);
      for (const auto& [position, frame] : s_->generated) {
        if (position >= static_cast<int>(results.generated.size())) continue;
        results.generated[static_cast<size_t>(position)] = true;
        media::write_png((info.absolutePath() + "/" +
                          QString::fromStdString(results.cached_frame_path(position)))
                             .toStdString(),
                         frame);
      }
      s_->doc.set_results(results);
    }
    s_->doc.save_as(path.toStdString());
  } catch (const std::exception& e) {
    report_error(tr("Cannot save the project"), QString::fromUtf8(e.what()));
    return false;
  }
  add_recent(path);
  refresh_all();
  statusBar()->showMessage(tr("Saved %1").arg(path), 5000);
  return true;
}

bool MainWindow::restore_from_export(const QString& path) {
  const std::string file = path.toStdString();
  try {
    std::string clip_before = s_->doc.project().clip.path;
    s_->doc.edit(tr("Restore settings from %1").arg(QFileInfo(path).fileName()).toStdString(),
                 [&file](project::Project& p) { project::restore_from_exported_file(p, file); });
    const std::string clip_after = s_->doc.project().clip.path;
    if (clip_after != clip_before) {
      const QString resolved = QString::fromStdString(s_->doc.resolve(clip_after));
      if (QFileInfo::exists(resolved))
        attach_clip_media(resolved);
      else
        statusBar()->showMessage(
            tr("The export's source clip %1 is not here; settings restored without it.")
                .arg(resolved),
            8000);
    }
  } catch (const std::exception& e) {
    report_error(tr("Cannot restore settings"), QString::fromUtf8(e.what()));
    return false;
  }
  refresh_all();
  statusBar()->showMessage(
      tr("Restored the generation settings from %1").arg(QFileInfo(path).fileName()), 8000);
  return true;
}

void MainWindow::dragEnterEvent(QDragEnterEvent* event) {
  if (event->mimeData()->hasUrls()) event->acceptProposedAction();
}

void MainWindow::dropEvent(QDropEvent* event) {
  const QList<QUrl> urls = event->mimeData()->urls();
  if (urls.isEmpty() || !urls.first().isLocalFile()) return;
  const QString path = urls.first().toLocalFile();
  const QString suffix = QFileInfo(path).suffix().toLower();
  event->acceptProposedAction();
  if (suffix == "safetensors") {
    load_model(path);
  } else if (suffix == "dfsproj" ||
             (suffix == "json" && !path.endsWith(".mp4.json") && !path.endsWith(".webm.json"))) {
    if (confirm_discard()) open_project(path);
  } else if (media::read_generation_metadata(path.toStdString()).has_value()) {
    // One of our exports: restore how it was made.
    restore_from_export(path);
  } else if (is_video_extension(suffix) || suffix.isEmpty() || true) {
    open_clip(path);
  }
}

void MainWindow::add_recent(const QString& path) {
  QSettings settings;
  QStringList recent = settings.value("recent_files").toStringList();
  const QString absolute = QFileInfo(path).absoluteFilePath();
  recent.removeAll(absolute);
  recent.prepend(absolute);
  while (recent.size() > kMaxRecent) recent.removeLast();
  settings.setValue("recent_files", recent);
  rebuild_recent_menu();
}

void MainWindow::rebuild_recent_menu() {
  s_->recent_menu->clear();
  const QStringList recent = QSettings().value("recent_files").toStringList();
  for (const QString& path : recent) {
    s_->recent_menu->addAction(QFileInfo(path).fileName() + "   " + QFileInfo(path).absolutePath(),
                               this, [this, path] {
                                 const QString suffix = QFileInfo(path).suffix().toLower();
                                 if (suffix == "dfsproj" || suffix == "json")
                                   open_project(path);
                                 else
                                   open_clip(path);
                               });
  }
  if (recent.isEmpty()) s_->recent_menu->addAction(tr("(none)"))->setEnabled(false);
}

void MainWindow::autosave() {
  if (!s_->doc.dirty() || s_->doc.project().clip.empty()) return;
  QString target = QString::fromStdString(s_->doc.path());
  if (target.isEmpty()) {
    const QString dir = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation);
    QDir().mkpath(dir);
    target = dir + "/untitled.dfsproj";
  }
  try {
    project::write_file_atomically((target + ".autosave").toStdString(),
                                   project::to_json(s_->doc.project()));
  } catch (const std::exception& e) {
    statusBar()->showMessage(tr("Autosave failed: %1").arg(QString::fromUtf8(e.what())), 5000);
  }
}

bool MainWindow::confirm_discard() {
  if (!s_->doc.dirty() || s_->options.quiet_errors) return true;
  const auto answer = QMessageBox::question(
      this, tr("Unsaved changes"), tr("The project has unsaved changes. Discard them?"),
      QMessageBox::Discard | QMessageBox::Cancel, QMessageBox::Cancel);
  return answer == QMessageBox::Discard;
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (!confirm_discard()) {
    event->ignore();
    return;
  }
  if (s_->worker != nullptr) s_->worker->request_cancel();
  event->accept();
}

// [SECTION] Model -----------------------------------------------------------------------------

void MainWindow::load_model(const QString& path) {
  if (s_->generating) {
    report_error(tr("Busy"), tr("Stop the running generation before loading another model."));
    return;
  }
  // The current model stays usable until the new one has loaded: a file that fails to load
  // costs nothing.
  s_->model_loading = true;
  statusBar()->showMessage(path.isEmpty() ? tr("Loading the demo model...")
                                          : tr("Loading %1...").arg(path));
  const QString exe = QCoreApplication::applicationFilePath();
  GenerationWorker* worker = s_->worker;
  QMetaObject::invokeMethod(
      worker, [worker, path, exe] { worker->load_model(path, exe); }, Qt::QueuedConnection);
}

void MainWindow::use_model(const diffusion::Model& model, const QString& note) {
  GenerationWorker* worker = s_->worker;
  diffusion::Model copy = model;
  QMetaObject::invokeMethod(
      worker, [worker, copy, note] { worker->adopt_model(copy, note); }, Qt::QueuedConnection);
}

bool MainWindow::model_ready() const {
  return s_->model_info.has_value();
}
const diffusion::ModelInfo* MainWindow::model_info() const {
  return s_->model_info ? &*s_->model_info : nullptr;
}

// [SECTION] Editing ---------------------------------------------------------------------------

bool MainWindow::edit_project(const QString& label,
                              const std::function<void(project::Project&)>& change) {
  if (s_->generating) {
    report_error(tr("Busy"), tr("Settings are locked while generating; press Stop first."));
    return false;
  }
  try {
    s_->doc.end_merge();
    const bool changed = s_->doc.edit(label.toStdString(), change);
    refresh_all();
    return changed;
  } catch (const std::exception& e) {
    report_error(tr("Cannot do that"), QString::fromUtf8(e.what()));
    refresh_all();
    return false;
  }
}

void MainWindow::toggle_pin(int position) {
  const project::Timeline& t = s_->doc.project().timeline;
  if (position < 0 || position >= t.length()) return;
  const bool pin = !t.pinned(position);
  if (pin && !t.is_source(position) && !s_->generated.count(position)) {
    report_error(tr("Nothing to pin"),
                 tr("Frame %1 has no picture yet: generate it first, then pin it.").arg(position));
    return;
  }
  edit_project(
      pin ? tr("Pin frame %1").arg(position) : tr("Unpin frame %1").arg(position),
      [position, pin](project::Project& p) { project::set_pinned(p.timeline, position, pin); });
}

void MainWindow::set_selection(int first, int last) {
  s_->selection_first = first;
  s_->selection_last = last;
  s_->timeline->set_selection(first, last);
  s_->noise->set_selection(first, last);
  s_->controls->set_selection(first, last);
}

bool MainWindow::undo() {
  if (s_->generating || !s_->doc.undo()) return false;
  refresh_all();
  return true;
}

bool MainWindow::redo() {
  if (s_->generating || !s_->doc.redo()) return false;
  refresh_all();
  return true;
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

// [SECTION] Generation ------------------------------------------------------------------------

bool MainWindow::start_generation() {
  if (s_->generating) return false;
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
  request.previous = s_->generated;
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
  s_->generating = true;
  s_->controls->set_running(true);
  s_->controls->set_progress(0, 1, tr("Starting..."));
  refresh_flags();
  s_->undo_action->setEnabled(false);
  s_->redo_action->setEnabled(false);
  GenerationWorker* worker = s_->worker;
  const project::Project run = s_->run_project;
  QMetaObject::invokeMethod(
      worker, [worker, run, request] { worker->generate(run, request); }, Qt::QueuedConnection);
  return true;
}

void MainWindow::stop_generation() {
  if (!s_->generating) return;
  s_->worker->request_cancel();
  s_->controls->set_progress(s_->controls->progress_bar()->value(),
                             s_->controls->progress_bar()->maximum(),
                             tr("Stopping after the current step..."));
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

// [SECTION] Playback --------------------------------------------------------------------------

void MainWindow::seek(int position) {
  const int length = s_->doc.project().timeline.length();
  if (length == 0) return;
  s_->current = std::clamp(position, 0, length - 1);
  s_->timeline->set_current(s_->current);
  s_->noise->set_current_frame(s_->current);
  refresh_viewer();
}

int MainWindow::current_position() const {
  return s_->current;
}

void MainWindow::play(int direction) {
  const double fps = s_->doc.project().clip.fps > 0 ? s_->doc.project().clip.fps : 8.0;
  s_->play_direction = direction;
  s_->play_timer.start(std::max(1, static_cast<int>(std::lround(1000.0 / (fps * s_->play_speed)))));
}

void MainWindow::pause() {
  s_->play_timer.stop();
  s_->play_direction = 0;
  s_->play_speed = 1;
}

bool MainWindow::is_playing() const {
  return s_->play_timer.isActive();
}

void MainWindow::set_view_mode(int mode) {
  if (mode < 0 || mode >= static_cast<int>(s_->view_modes.size())) return;
  s_->view_modes[static_cast<size_t>(mode)]->trigger();
}

void MainWindow::step_playback() {
  const int length = s_->doc.project().timeline.length();
  if (length == 0) {
    pause();
    return;
  }
  int next = s_->current + s_->play_direction;
  if (next >= length) next = 0;  // loop
  if (next < 0) next = length - 1;
  seek(next);
}

// [SECTION] Export ----------------------------------------------------------------------------

void MainWindow::show_export_dialog() {
  const project::Project& p = s_->doc.project();
  if (p.timeline.length() == 0 || !s_->model_info) {
    report_error(tr("Nothing to export"), tr("Open a clip (and wait for the model) first."));
    return;
  }
  project::ExportSettings initial = p.export_settings;
  // First export of this project: a 256-pixel-wide model's frames go out at their own size.
  if (initial.path.empty() && s_->model_info->width >= 256) initial.scale = 1;
  if (initial.path.empty()) {
    // Beside the clip when that folder is writable (sample clips often live in read-only
    // system folders), else in the user's Videos folder.
    const QFileInfo clip(QString::fromStdString(p.clip.path));
    QString folder = p.clip.path.empty() ? QString() : clip.absolutePath();
    if (folder.isEmpty() || !QFileInfo(folder).isWritable())
      folder = QStandardPaths::writableLocation(QStandardPaths::MoviesLocation);
    if (folder.isEmpty()) folder = QDir::homePath();
    const QString name =
        p.clip.path.empty() ? QStringLiteral("dfstudio_export") : clip.completeBaseName() + "_dfs";
    const QString base = folder + "/" + name;
    initial.path = (base + ".mp4").toStdString();
  }
  ExportDialog dialog(initial, p.timeline.length(), s_->current, s_->model_info->width,
                      s_->model_info->height, p.clip.fps, this);
  if (dialog.exec() != QDialog::Accepted) return;
  start_export(dialog.settings());
}

bool MainWindow::start_export(const project::ExportSettings& settings) {
  if (s_->exporting || s_->generating) {
    report_error(tr("Busy"), tr("Wait for the running generation or export to finish."));
    return false;
  }
  if (!s_->model_info) {
    report_error(tr("No model"), tr("The model is not loaded yet."));
    return false;
  }
  try {
    s_->doc.edit("Export settings",
                 [&settings](project::Project& p) { p.export_settings = settings; });
  } catch (const std::exception& e) {
    report_error(tr("Invalid export settings"), QString::fromUtf8(e.what()));
    return false;
  }
  const project::Project project = s_->doc.project();
  const diffusion::ModelInfo info = *s_->model_info;
  const std::map<int, Frame> generated = s_->generated;
  const std::string clip =
      project.clip.path.empty() ? std::string() : s_->doc.resolve(project.clip.path);
  auto done = std::make_shared<std::atomic<int>>(0);
  auto cancel = std::make_shared<std::atomic<bool>>(false);
  s_->export_done = done;
  s_->export_cancel = cancel;
  s_->exporting = true;
  const int length = project.timeline.length();
  if (!s_->options.quiet_errors) {
    s_->export_dialog =
        new QProgressDialog(tr("Exporting %1...").arg(QString::fromStdString(settings.path)),
                            tr("Cancel"), 0, length, this);
    s_->export_dialog->setWindowModality(Qt::WindowModal);
    s_->export_dialog->setMinimumDuration(300);
    s_->export_dialog->setAttribute(Qt::WA_DeleteOnClose);
    connect(s_->export_dialog, &QProgressDialog::canceled, this, [cancel] { cancel->store(true); });
  }
  s_->export_poll.setInterval(100);
  s_->export_poll.disconnect();
  connect(&s_->export_poll, &QTimer::timeout, this, [this, done] {
    if (s_->export_dialog) s_->export_dialog->setValue(done->load());
  });
  s_->export_poll.start();

  QPointer<MainWindow> self(this);
  std::thread([self, project, info, generated, clip, done, cancel] {
    QString error;
    QString output;
    bool ok = true;
    try {
      const project::ExportSettings& es = project.export_settings;
      project::EncoderSink sink(es, project::generation_metadata_json(project, &info));
      project::SinkFormat format;
      format.width = info.width;
      format.height = info.height;
      format.fps = project.clip.fps > 0 ? project.clip.fps : 8.0;
      format.frames = project.timeline.length();
      const project::Timeline& t = project.timeline;
      int first = 0, last = t.length() - 1;
      if (es.format == project::ExportFormat::PngFrame)
        first = last = es.in;
      else if (es.range == project::ExportRange::InOut) {
        first = es.in;
        last = es.out;
      }
      std::unique_ptr<media::Decoder> decoder;
      sink.begin(format);
      bool cancelled = false;
      for (int p = first; p <= last; ++p) {
        if (cancel->load()) {
          cancelled = true;
          break;
        }
        auto g = generated.find(p);
        if (g != generated.end()) {
          sink.write(
              p, g->second,
              t.pinned(p) ? project::FrameOrigin::Previous : project::FrameOrigin::Generated);
        } else if (t.is_source(p) && es.range != project::ExportRange::Generated) {
          if (!decoder) decoder = media::open_decoder(clip);
          const Frame source = decoder->frame_at(t.clip_frame(p)).image;
          sink.write(p, project::fit_to_model(source, info.width, info.height, project.clip.fit),
                     project::FrameOrigin::Source);
        }
        done->store(p - first + 1);
      }
      sink.finish(cancelled);
      output = QString::fromStdString(sink.output_path());
      if (cancelled) {
        ok = false;
        error = QObject::tr("Export cancelled.");
      } else if (sink.frames_written() == 0) {
        ok = false;
        error = QObject::tr(
            "Nothing was exported: the chosen range holds no frames (generate first?).");
      }
    } catch (const std::exception& e) {
      ok = false;
      error = QString::fromUtf8(e.what());
    }
    if (!self) return;
    QMetaObject::invokeMethod(
        self,
        [self, ok, error, output] {
          if (!self) return;
          MainWindow* w = self;
          w->s_->exporting = false;
          w->s_->export_poll.stop();
          if (w->s_->export_dialog) {
            w->s_->export_dialog->close();
            w->s_->export_dialog = nullptr;
          }
          if (!ok) {
            w->report_error(QObject::tr("Export failed"), error);
            emit w->export_finished(false, error);
            return;
          }
          w->statusBar()->showMessage(QObject::tr("Exported %1").arg(output), 10000);
          if (!w->s_->options.quiet_errors) {
            auto* box = new QMessageBox(QMessageBox::Information, QObject::tr("Export finished"),
                                        QObject::tr("Wrote %1").arg(output), QMessageBox::Ok, w);
            QPushButton* open = box->addButton(QObject::tr("Open"), QMessageBox::ActionRole);
            QObject::connect(open, &QPushButton::clicked, box,
                             [output] { QDesktopServices::openUrl(QUrl::fromLocalFile(output)); });
            box->setAttribute(Qt::WA_DeleteOnClose);
            box->open();
          }
          emit w->export_finished(true, output);
        },
        Qt::QueuedConnection);
  }).detach();
  return true;
}

bool MainWindow::is_exporting() const {
  return s_->exporting;
}

}  // namespace dfs::ui
