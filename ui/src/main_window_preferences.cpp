// main_window_preferences.cpp — MainWindow's preferences (applied to the worker's threads and
// device, the autosave timer, the export dialog's first offer and new projects' stabilisation),
// schedule presets (JSON files in <app data>/presets, read and written by dfs_project), and the
// noise curve's copy and paste through the clipboard. Also the menu entries for all three
// (add_preferences_menus, called from build_menus).
#include <QApplication>
#include <QClipboard>
#include <QDesktopServices>
#include <QDialogButtonBox>
#include <QDir>
#include <QFileInfo>
#include <QInputDialog>
#include <QListWidget>
#include <QMenu>
#include <QPointer>
#include <QPushButton>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QUrl>
#include <QVBoxLayout>
#include <exception>

#include "dfs/project/schedule_preset.h"
#include "dfs/ui/main_window.h"
#include "generation_worker.h"
#include "main_window_state.h"
#include "preferences_dialog.h"
#include "preferences_menus.h"

namespace dfs::ui {

// [SECTION] Preferences
// ----------------------------------------------------------------------------

Preferences MainWindow::preferences() const {
  return s_->preferences;
}

void MainWindow::apply_preferences(const Preferences& prefs) {
  const QStringList problems = prefs.problems();
  if (!problems.isEmpty()) {
    report_error(tr("Invalid preferences"), problems.join("\n"));
    return;
  }
  const bool autosave_changed = prefs.autosave_seconds != s_->preferences.autosave_seconds;
  s_->preferences = prefs;

  // Threads and device belong to the worker thread: LibTorch's thread count is per thread
  // (OpenMP), and the worker is the thread that generates. Queued, so a running generation
  // finishes with the count it started with.
  const int threads = resolve_threads(prefs.threads);
  const QString device = prefs.device;
  GenerationWorker* worker = s_->worker;
  QPointer<MainWindow> self(this);
  QMetaObject::invokeMethod(
      worker,
      [worker, threads, device, self] {
        worker->set_device(device);
        const int in_force = diffusion::configure_threads(threads);
        QMetaObject::invokeMethod(
            self,
            [self, in_force] {
              if (self) self->s_->threads_in_force = in_force;
            },
            Qt::QueuedConnection);
      },
      Qt::QueuedConnection);

  // An unchanged interval leaves the timer alone: StudioOptions (dfstudio --autosave-seconds, a
  // test's window without autosave) set it at construction, and that stays for the run.
  if (autosave_changed) set_autosave_interval(prefs.autosave_seconds * 1000);  // 0 = off

  // Stabilisation defaults are for new projects: an untouched, unsaved window takes them now
  // (opening a clip keeps the project's generation settings); an open project keeps its own.
  if (s_->doc.path().empty() && s_->doc.project().clip.empty() && !s_->doc.can_undo() &&
      !s_->generating) {
    project::Project p = s_->doc.project();
    p.generation.rollout.sampler.stabilization_user = prefs.stabilization_user;
    p.generation.rollout.sampler.stabilization_generated = prefs.stabilization_generated;
    s_->doc = project::Document(p);
    refresh_all();
  }
}

bool MainWindow::edit_preferences() {
  PreferencesDialog dialog(s_->preferences, this);
  if (dialog.exec() != QDialog::Accepted) return false;
  const Preferences prefs = dialog.values();
  apply_preferences(prefs);
  if (!(s_->preferences == prefs)) return false;
  QSettings settings;
  prefs.save(settings);
  statusBar()->showMessage(tr("Preferences saved."), 3000);
  return true;
}

int MainWindow::threads_in_force() const {
  return s_->threads_in_force;
}

int MainWindow::autosave_interval_ms() const {
  return s_->autosave_timer.isActive() ? s_->autosave_timer.interval() : 0;
}

project::ExportSettings MainWindow::export_dialog_defaults() const {
  const project::Project& p = s_->doc.project();
  project::ExportSettings out = p.export_settings;
  if (!out.path.empty()) return out;  // this project has exported before: offer that again
  // First export of this project: a 256-pixel-wide model's frames go out at their own size.
  if (s_->model_info && s_->model_info->width >= 256) out.scale = 1;
  out.format = s_->preferences.export_format;
  // The preferred folder; else beside the clip when that folder is writable (sample clips often
  // live in read-only system folders); else the user's Videos folder.
  const QFileInfo clip(QString::fromStdString(p.clip.path));
  QString folder = s_->preferences.export_folder;
  if (folder.isEmpty() && !p.clip.path.empty()) folder = clip.absolutePath();
  if (folder.isEmpty() || !QFileInfo(folder).isWritable())
    folder = QStandardPaths::writableLocation(QStandardPaths::MoviesLocation);
  if (folder.isEmpty()) folder = QDir::homePath();
  const QString name =
      p.clip.path.empty() ? QStringLiteral("dfstudio_export") : clip.completeBaseName() + "_dfs";
  const QString ext = export_extension(out.format);
  out.path =
      (folder + "/" + name + (ext.isEmpty() ? QStringLiteral("_frames/") : ext)).toStdString();
  return out;
}

// [SECTION] Schedule presets -------------------------------------------------------------------

QString MainWindow::presets_dir() const {
  return QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + "/presets";
}

QStringList MainWindow::schedule_presets() const {
  QStringList names;
  const QDir dir(presets_dir());
  for (const QFileInfo& f : dir.entryInfoList({"*.json"}, QDir::Files, QDir::Name)) {
    // The name inside the file is the one shown; a file that does not read is listed by its
    // file name, and loading it says what is wrong.
    try {
      names << QString::fromStdString(project::load_preset(f.filePath().toStdString()).name);
    } catch (const std::exception&) {
      names << f.completeBaseName();
    }
  }
  names.sort(Qt::CaseInsensitive);
  return names;
}

namespace {

// The file of a preset name (or the path itself when it names an existing file): the file its
// name would be saved as, else a file in `dir` whose preset has that name (a file copied in
// under another name), else the file it would be saved as.
QString preset_path(const QString& dir, const QString& name_or_path) {
  if (name_or_path.contains('/') && QFileInfo::exists(name_or_path)) return name_or_path;
  const QString saved_as =
      dir + "/" + QString::fromStdString(project::preset_file_name(name_or_path.toStdString()));
  if (QFileInfo::exists(saved_as)) return saved_as;
  for (const QFileInfo& f : QDir(dir).entryInfoList({"*.json"}, QDir::Files, QDir::Name)) {
    try {
      if (project::load_preset(f.filePath().toStdString()).name == name_or_path.toStdString())
        return f.filePath();
    } catch (const std::exception&) {
      if (f.completeBaseName() == name_or_path) return f.filePath();  // listed by its file name
    }
  }
  return saved_as;
}

}  // namespace

bool MainWindow::save_schedule_preset(const QString& name) {
  const QString trimmed = name.trimmed();
  try {
    QDir().mkpath(presets_dir());
    const auto preset = project::preset_from_project(s_->doc.project(), trimmed.toStdString());
    project::save_preset(preset_path(presets_dir(), trimmed).toStdString(), preset);
  } catch (const std::exception& e) {
    report_error(tr("Cannot save the preset"), QString::fromUtf8(e.what()));
    return false;
  }
  statusBar()->showMessage(tr("Saved schedule preset '%1'.").arg(trimmed), 3000);
  return true;
}

bool MainWindow::load_schedule_preset(const QString& name_or_path) {
  project::SchedulePreset preset;
  try {
    preset = project::load_preset(preset_path(presets_dir(), name_or_path).toStdString());
  } catch (const std::exception& e) {
    report_error(tr("Cannot load the preset"), QString::fromUtf8(e.what()));
    return false;
  }
  // True once applied, also when the project already had these settings (no undo step then).
  const bool changed =
      edit_project(tr("Schedule preset '%1'").arg(QString::fromStdString(preset.name)),
                   [&preset](project::Project& p) { project::apply_preset(p, preset); });
  if (changed) return true;
  project::Project p = s_->doc.project();
  try {
    project::apply_preset(p, preset);
  } catch (const std::exception&) {
    return false;  // edit_project reported it
  }
  return !s_->generating && p == s_->doc.project();
}

bool MainWindow::delete_schedule_preset(const QString& name) {
  const QString path = preset_path(presets_dir(), name);
  if (!QFile::remove(path)) {
    report_error(tr("Cannot delete the preset"), tr("'%1' could not be removed.").arg(path));
    return false;
  }
  return true;
}

// [SECTION] Noise curve clipboard --------------------------------------------------------------

namespace {

// The selection, or the whole timeline when nothing is selected.
std::pair<int, int> noise_target(int first, int last, int length) {
  if (first <= last) return {first, last};
  return {0, length - 1};
}

}  // namespace

bool MainWindow::copy_noise_curve() {
  const project::Timeline& t = s_->doc.project().timeline;
  if (t.length() == 0) {
    report_error(tr("No noise curve"), tr("Open a clip first."));
    return false;
  }
  const auto [a, b] = noise_target(s_->selection_first, s_->selection_last, t.length());
  try {
    const QString text =
        QString::fromStdString(project::levels_to_json(project::noise_range(t, a, b)));
    QGuiApplication::clipboard()->setText(text);
  } catch (const std::exception& e) {
    report_error(tr("Cannot copy the noise curve"), QString::fromUtf8(e.what()));
    return false;
  }
  statusBar()->showMessage(tr("Copied the noise curve of frames %1-%2.").arg(a).arg(b), 3000);
  return true;
}

bool MainWindow::paste_noise_curve() {
  const project::Timeline& t = s_->doc.project().timeline;
  if (t.length() == 0) {
    report_error(tr("No noise curve"), tr("Open a clip first."));
    return false;
  }
  std::vector<double> levels;
  try {
    levels = project::levels_from_json(QGuiApplication::clipboard()->text().toStdString());
  } catch (const std::exception& e) {
    report_error(
        tr("Cannot paste a noise curve"),
        tr("The clipboard does not hold a noise curve: %1").arg(QString::fromUtf8(e.what())));
    return false;
  }
  const auto [a, b] = noise_target(s_->selection_first, s_->selection_last, t.length());
  return edit_project(tr("Paste noise curve on %1-%2").arg(a).arg(b),
                      [&levels, a = a, b = b](project::Project& p) {
                        project::paste_noise_range(p.timeline, a, b, levels);
                      });
}

// [SECTION] Menus ---------------------------------------------------------------------------------

namespace {

void manage_presets(MainWindow& w) {
  QDialog dialog(&w);
  dialog.setWindowTitle(QObject::tr("Schedule presets"));
  auto* layout = new QVBoxLayout(&dialog);
  auto* list = new QListWidget;
  list->addItems(w.schedule_presets());
  layout->addWidget(list);
  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Close);
  QPushButton* remove = buttons->addButton(QObject::tr("Delete"), QDialogButtonBox::ActionRole);
  QPushButton* open = buttons->addButton(QObject::tr("Open folder"), QDialogButtonBox::ActionRole);
  QObject::connect(remove, &QPushButton::clicked, &dialog, [&w, list] {
    if (QListWidgetItem* item = list->currentItem();
        item != nullptr && w.delete_schedule_preset(item->text()))
      delete item;
  });
  QObject::connect(open, &QPushButton::clicked, &dialog, [&w] {
    QDir().mkpath(w.presets_dir());
    QDesktopServices::openUrl(QUrl::fromLocalFile(w.presets_dir()));
  });
  QObject::connect(buttons, &QDialogButtonBox::rejected, &dialog, &QDialog::reject);
  layout->addWidget(buttons);
  dialog.exec();
}

}  // namespace

void add_preferences_menus(MainWindow& w, QMenu* edit, QMenu* generate) {
  edit->addSeparator();
  QAction* copy =
      edit->addAction(QObject::tr("Copy noise curve"), &w, [&w] { w.copy_noise_curve(); });
  copy->setShortcut(QKeySequence(Qt::CTRL | Qt::ALT | Qt::Key_C));
  QAction* paste =
      edit->addAction(QObject::tr("Paste noise curve"), &w, [&w] { w.paste_noise_curve(); });
  paste->setShortcut(QKeySequence(Qt::CTRL | Qt::ALT | Qt::Key_V));
  edit->addSeparator();
  QAction* prefs =
      edit->addAction(QObject::tr("Pr&eferences..."), &w, [&w] { w.edit_preferences(); });
  prefs->setShortcut(QKeySequence::Preferences);
  prefs->setMenuRole(QAction::PreferencesRole);

  QMenu* presets = generate->addMenu(QObject::tr("Schedule &presets"));
  QObject::connect(presets, &QMenu::aboutToShow, &w, [&w, presets] {
    presets->clear();
    presets->addAction(QObject::tr("Save current..."), &w, [&w] {
      bool ok = false;
      const QString name =
          QInputDialog::getText(&w, QObject::tr("Save schedule preset"), QObject::tr("Name:"),
                                QLineEdit::Normal, QString(), &ok);
      if (ok && !name.trimmed().isEmpty()) w.save_schedule_preset(name);
    });
    presets->addSeparator();
    const QStringList names = w.schedule_presets();
    for (const QString& name : names)
      presets->addAction(name, &w, [&w, name] { w.load_schedule_preset(name); });
    if (names.isEmpty()) presets->addAction(QObject::tr("(no presets yet)"))->setEnabled(false);
    presets->addSeparator();
    presets->addAction(QObject::tr("Manage..."), &w, [&w] { manage_presets(w); });
  });
}

}  // namespace dfs::ui
