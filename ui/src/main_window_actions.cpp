// main_window_actions.cpp — MainWindow's menus, QActions and keyboard shortcuts, and the
// filmstrip's context menu. An action a context menu offers too is built once here and added to
// both menus (see the shared actions in main_window_state.h).
#include "dfs/ui/main_window.h"

#include <QAction>
#include <QActionGroup>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QKeySequence>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <algorithm>
#include <utility>

#include "main_window_state.h"
#include "preferences_menus.h"
#include "viewer_widget.h"

namespace dfs::ui {
namespace {

constexpr const char* kProjectFilter = "Studio projects (*.dfsproj *.json)";

}  // namespace

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
  // [SECTION] Recovery (main_window_recovery.cpp)
  file->addSeparator();
  file->addAction(tr("&Locate moved clip..."), this, [this] {
    const QString current = missing_clip().isEmpty()
                                ? QString::fromStdString(s_->doc.resolve(s_->doc.project().clip.path))
                                : missing_clip();
    const QString path = QFileDialog::getOpenFileName(
        this, tr("Where is %1?").arg(QFileInfo(current).fileName()), QFileInfo(current).path());
    if (!path.isEmpty()) relocate_clip(path);
  });
  file->addAction(tr("Recover &unsaved work..."), this, &MainWindow::check_recovery);
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

  // Edit
  QMenu* edit = menuBar()->addMenu(tr("&Edit"));
  s_->undo_action = edit->addAction(tr("&Undo"), QKeySequence::Undo, this, &MainWindow::undo);
  s_->redo_action = edit->addAction(tr("&Redo"), QKeySequence::Redo, this, &MainWindow::redo);
  edit->addSeparator();
  edit->addAction(tr("&Pin / unpin current frame"), QKeySequence(Qt::Key_P), this,
                  [this] { toggle_pin(s_->current); });
  // The pin actions the filmstrip's context menu offers too (show_timeline_menu). The range
  // actions' text names the selected frames once there are some (set_selection).
  s_->pin_range_action = new QAction(tr("Pin selected range"), this);
  s_->pin_range_action->setShortcut(QKeySequence(Qt::SHIFT | Qt::Key_P));
  connect(s_->pin_range_action, &QAction::triggered, this, [this] {
    const int a = s_->selection_first, b = s_->selection_last;
    if (a > b) {
      report_error(tr("No selection"), tr("Drag on the filmstrip to select frames first."));
      return;
    }
    edit_project(tr("Pin %1-%2").arg(a).arg(b), [a, b](project::Project& p) {
      project::set_pinned_range(p.timeline, a, b, true);
    });
  });
  s_->unpin_range_action = new QAction(tr("Unpin selected range"), this);
  connect(s_->unpin_range_action, &QAction::triggered, this, [this] {
    const int a = s_->selection_first, b = s_->selection_last;
    if (a > b) return;
    edit_project(tr("Unpin %1-%2").arg(a).arg(b), [a, b](project::Project& p) {
      project::set_pinned_range(p.timeline, a, b, false);
    });
  });
  s_->pin_all_source_action = new QAction(tr("Pin &all source frames"), this);
  connect(s_->pin_all_source_action, &QAction::triggered, this, [this] {
    edit_project(tr("Pin all source frames"),
                 [](project::Project& p) { project::pin_all_source(p.timeline); });
  });
  s_->clear_pins_action = new QAction(tr("&Clear pins"), this);
  connect(s_->clear_pins_action, &QAction::triggered, this, [this] {
    edit_project(tr("Clear pins"), [](project::Project& p) { project::clear_pins(p.timeline); });
  });
  edit->addAction(s_->pin_range_action);
  edit->addAction(s_->unpin_range_action);
  edit->addAction(s_->pin_all_source_action);
  edit->addAction(s_->clear_pins_action);
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
    s_->clear_generated();
    s_->doc.set_results({});
    refresh_all();
  });

  // [SECTION] Preferences, schedule presets, noise-curve clipboard (main_window_preferences.cpp)
  add_preferences_menus(*this, edit, gen);

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

  build_takes_menu();  // [SECTION] Takes: its menu, and leaving a comparison by view mode

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
  // [SECTION] Learning (main_window_learn.cpp)
  model->addSeparator();
  model->addAction(tr("&Learn this clip..."), this, [this] { show_learn_dialog(); });

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

// The filmstrip's right-click menu. Pinning the clicked frame is this menu's own action (it
// names the frame under the mouse, not the current one); the rest are the Edit menu's actions.
void MainWindow::show_timeline_menu(int position, const QPoint& global_pos) {
  QMenu menu(this);
  const bool pinned = s_->doc.project().timeline.pinned(position);
  menu.addAction(pinned ? tr("Unpin frame %1").arg(position) : tr("Pin frame %1").arg(position),
                 this, [this, position] { toggle_pin(position); });
  if (s_->selection_first <= s_->selection_last) {
    menu.addAction(s_->pin_range_action);
    menu.addAction(s_->unpin_range_action);
  }
  menu.addSeparator();
  menu.addAction(s_->pin_all_source_action);
  menu.addAction(s_->clear_pins_action);
  menu.exec(global_pos);
}

}  // namespace dfs::ui
