// main_window_takes.cpp — MainWindow's takes: every finished (or stopped with frames)
// generation is kept in a project::TakeStore on disk; the Takes dock lists them; a take can be
// shown, renamed, starred, deleted, compared with another (side by side / A/B wipe), exported,
// or used as pinned context for the next extension. Frames are read from disk when a take is
// shown or compared, never held for every take.
//
// Where the takes live: "<project>_takes/" beside a saved project, or, for an untitled one, a
// per-session folder under the app data folder (so autosave and recovery find it). Saving
// copies them beside the project file (moving them out of a session folder).
#include <QAction>
#include <QActionGroup>
#include <QCoreApplication>
#include <QDateTime>
#include <QDir>
#include <QDockWidget>
#include <QFileInfo>
#include <QFutureWatcher>
#include <QMenu>
#include <QMenuBar>
#include <QMessageBox>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTreeWidget>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>
#include <exception>
#include <filesystem>
#include <string>
#include <utility>

#include "dfs/ui/main_window.h"
#include "generation_worker.h"
#include "main_window_state.h"
#include "take_list.h"
#include "timeline_widget.h"
#include "viewer_widget.h"

namespace dfs::ui {
namespace {

QString qs(const std::string& s) {
  return QString::fromStdString(s);
}

QString what(const std::exception& e) {
  return QString::fromUtf8(e.what());
}

// "2026-12-06T02:14:31Z" shown in local time, to the minute.
QString shown_date(const std::string& iso) {
  QDateTime t = QDateTime::fromString(qs(iso), Qt::ISODate);
  return t.isValid() ? t.toLocalTime().toString("yyyy-MM-dd hh:mm") : qs(iso);
}

}  // namespace

MainWindow::State::SessionTakesFolder::~SessionTakesFolder() {
  if (!path.isEmpty()) QDir(path).removeRecursively();
}

// [SECTION] Dock and menu ------------------------------------------------------------------------

void MainWindow::build_takes_dock() {
  s_->take_list = new TakeList;
  auto* dock = new QDockWidget(tr("Takes"), this);
  dock->setObjectName("takes");
  dock->setWidget(s_->take_list);
  addDockWidget(Qt::LeftDockWidgetArea, dock);
  // A tab beside the Model panel: the first layout stays as it was.
  if (auto* model = findChild<QDockWidget*>("model")) {
    tabifyDockWidget(model, dock);
    model->raise();
  }
  auto id_to_index = [this](int id) { return s_->takes ? s_->takes->index_of(id) : -1; };
  TakeList* list = s_->take_list;
  connect(list, &TakeList::switch_requested, this,
          [this, id_to_index](int id) { switch_take(id_to_index(id)); });
  connect(list, &TakeList::rename_requested, this, [this, id_to_index](int id, const QString& n) {
    if (!rename_take(id_to_index(id), n)) refresh_takes();  // put the old name back
  });
  connect(list, &TakeList::star_requested, this,
          [this, id_to_index](int id, bool on) { star_take(id_to_index(id), on); });
  connect(list, &TakeList::delete_requested, this,
          [this, id_to_index](int id) { delete_take(id_to_index(id)); });
  connect(list, &TakeList::compare_requested, this,
          [this, id_to_index](int a, int b) { compare_takes(id_to_index(a), id_to_index(b), 2); });
  connect(list, &TakeList::stop_compare_requested, this, &MainWindow::stop_comparing);
  connect(list, &TakeList::context_requested, this,
          [this, id_to_index](int id) { use_take_as_context(id_to_index(id)); });
  connect(list, &TakeList::export_requested, this, [this, id_to_index](int id) {
    // Show the take, then the ordinary export dialog exports what is shown.
    if (switch_take(id_to_index(id))) show_export_dialog();
  });
}

void MainWindow::build_takes_menu() {
  // Result / Original show one picture: a comparison of two takes ends there.
  for (size_t i = 0; i < s_->view_modes.size() && i < 2; ++i)
    connect(s_->view_modes[i], &QAction::triggered, this, &MainWindow::stop_comparing);
  QMenu* menu = menuBar()->addMenu(tr("&Takes"));
  auto selected = [this] {
    std::vector<int> out;
    for (int id : s_->take_list->selected_ids())
      if (s_->takes && s_->takes->index_of(id) >= 0) out.push_back(s_->takes->index_of(id));
    return out;
  };
  menu->addAction(tr("&Show selected take"), this, [this, selected] {
    const auto ids = selected();
    if (ids.size() == 1) switch_take(ids[0]);
  });
  menu->addAction(tr("&Compare the two selected takes"), this, [this, selected] {
    const auto ids = selected();
    if (ids.size() == 2)
      compare_takes(ids[0], ids[1], 2);
    else
      report_error(tr("Compare takes"), tr("Select two takes in the Takes list."));
  });
  menu->addAction(tr("Stop comparing"), this, &MainWindow::stop_comparing);
  menu->addAction(tr("Use selected take as &context"), this, [this, selected] {
    const auto ids = selected();
    if (ids.size() == 1) use_take_as_context(ids[0]);
  });
  menu->addAction(tr("Star / unstar selected take"), this, [this, selected] {
    for (int i : selected()) star_take(i, !take_starred(i));
  });
  menu->addAction(tr("&Delete selected takes"), this, [this, selected] {
    auto ids = selected();
    std::sort(ids.rbegin(), ids.rend());  // later indexes first: earlier ones stay valid
    for (int i : ids) delete_take(i);
  });
}

// [SECTION] Keeping takes
// --------------------------------------------------------------------------

void MainWindow::record_take(std::uint64_t seed, double seconds, bool cancelled, int frames_made) {
  if (frames_made <= 0 || s_->generated.empty()) return;  // a run stopped before any frame
  // The index a take's writer writes names the takes listed when it was handed over: one at a
  // time (two runs ending within the ~60 ms of a write happen only with tiny test models).
  commit_written_takes(true);
  if (!s_->takes) {
    QString folder;
    const project::Project& p = s_->doc.project();
    if (!p.takes.folder.empty()) {
      folder = qs(s_->doc.resolve(p.takes.folder));
    } else if (!s_->doc.path().empty()) {
      const QFileInfo file(qs(s_->doc.path()));
      folder = file.absolutePath() + "/" + file.completeBaseName() + "_takes";
    } else {
      if (s_->takes_session.path.isEmpty()) {
        // Unique per window: time, process and a counter (two windows may start in one second).
        static int windows = 0;
        s_->takes_session.path =
            QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + "/takes/session-" +
            QDateTime::currentDateTimeUtc().toString("yyyyMMdd-hhmmss") + "-" +
            QString::number(QCoreApplication::applicationPid()) + "-" + QString::number(++windows);
      }
      folder = s_->takes_session.path;
    }
    try {
      s_->takes =
          std::make_unique<project::TakeStore>(project::TakeStore::open(folder.toStdString()));
    } catch (const std::exception& e) {
      report_error(tr("This generation was not kept as a take"), what(e));
      return;
    }
  }
  const project::Project& p = s_->doc.project();
  project::TakeInfo info;
  info.seed = seed;
  info.seconds = seconds;
  info.cancelled = cancelled;
  info.model_path = s_->run_project.model_path;
  info.model_name = s_->model_info ? s_->model_info->name : std::string();
  info.settings = s_->run_project.generation;
  info.settings.rollout.seed = seed;
  info.length = p.timeline.length();
  std::map<int, Frame> frames;
  for (const auto& [position, frame] : s_->generated)
    if (position < info.length) frames.emplace(position, frame);
  try {
    info = s_->takes->reserve(info, frames);
  } catch (const std::exception& e) {
    report_error(tr("This generation was not kept as a take"), what(e));
    return;
  }
  // 16 PNGs of 256 x 256 take ~60 ms to encode: on the writer thread, not here.
  ScopedWork work(s_->work, "hand a take to the writer");
  // Frames first, the index (with fsync) last, as TakeStore::add does; both off this thread.
  const std::string folder = s_->takes->folder();
  const std::string dir = s_->takes->take_dir(info.id);
  const std::string index = s_->takes->index_with(info);
  const std::function<void()> observer = s_->take_write_observer;
  State::PendingTake pending;
  pending.info = info;
  pending.written = QtConcurrent::run(
      &s_->take_writer, [folder, dir, index, frames = std::move(frames), observer]() -> QString {
        lower_this_thread_priority();
        if (observer) observer();
        try {
          project::TakeStore::write_frames(dir, frames);
          try {
            project::TakeStore::write_index_text(folder, index);
          } catch (...) {
            std::error_code ec;
            std::filesystem::remove_all(dir, ec);  // no index names it: leave no orphan
            throw;
          }
          return {};
        } catch (const std::exception& e) {
          return what(e);
        }
      });
  auto* watcher = new QFutureWatcher<QString>(this);
  connect(watcher, &QFutureWatcher<QString>::finished, this, [this, watcher] {
    watcher->deleteLater();
    commit_written_takes(false);
  });
  watcher->setFuture(pending.written);
  s_->pending_takes.push_back(std::move(pending));
  statusBar()->showMessage(tr("Keeping %1...").arg(qs(info.name)), 5000);
}

void MainWindow::commit_written_takes(bool wait, bool quiet) {
  if (s_->pending_takes.empty()) return;
  ScopedWork work(s_->work, wait ? "wait for takes being written" : "list a written take");
  bool any = false;
  while (!s_->pending_takes.empty()) {
    State::PendingTake& front = s_->pending_takes.front();
    if (!front.written.isFinished()) {
      if (!wait) break;
      front.written.waitForFinished();
    }
    const project::TakeInfo info = front.info;
    QString error = front.written.result();
    s_->pending_takes.pop_front();
    any = true;
    if (error.isEmpty() && s_->takes) {
      try {
        const project::TakeInfo& take = s_->takes->adopt(info);  // on disk already
        // The folder as the project records it: relative when it sits beside the project file.
        std::string folder = s_->takes->folder();
        if (!s_->doc.path().empty() &&
            QFileInfo(qs(folder)).absolutePath() == QFileInfo(qs(s_->doc.path())).absolutePath())
          folder = QFileInfo(qs(folder)).fileName().toStdString();
        s_->doc.set_takes({folder, take.id});
        if (!quiet) statusBar()->showMessage(tr("Kept as %1").arg(qs(take.name)), 5000);
      } catch (const std::exception& e) {
        error = what(e);
      }
    } else if (error.isEmpty()) {
      error = tr("its takes folder is no longer open");
    }
    if (quiet) {  // the window is going: no dialog, but not silently
      if (!error.isEmpty())
        qWarning("dfstudio: this generation was not kept as a take: %s", qPrintable(error));
      continue;
    }
    if (!error.isEmpty()) report_error(tr("This generation was not kept as a take"), error);
    emit take_recorded(error.isEmpty());
  }
  if (any && !quiet) {
    refresh_takes();
    refresh_all();  // the title's unsaved mark, autosave's count of edits
  }
}

bool MainWindow::is_writing_take() const {
  return !s_->pending_takes.empty();
}

void MainWindow::set_take_write_observer(std::function<void()> observer) {
  s_->take_write_observer = std::move(observer);
}

void MainWindow::attach_project_takes() {
  s_->takes.reset();
  s_->compare_a = s_->compare_b = 0;
  s_->compare_a_frames.clear();
  s_->compare_b_frames.clear();
  const std::string folder = s_->doc.project().takes.folder;
  if (!folder.empty()) {
    try {
      s_->takes =
          std::make_unique<project::TakeStore>(project::TakeStore::open(s_->doc.resolve(folder)));
    } catch (const std::exception& e) {
      report_error(tr("The project's takes could not be read"),
                   what(e) + tr("\nThe project itself opened; its takes are not listed."));
    }
  }
  refresh_takes();
}

bool MainWindow::carry_takes_to(const QString& path) {
  commit_written_takes(true);  // a take still being written goes along
  if (!s_->takes) {
    // No takes yet, or unreadable ones: left where they are, still found from the new place.
    const std::string folder = s_->doc.project().takes.folder;
    if (!folder.empty() && !QFileInfo(qs(folder)).isAbsolute())
      s_->doc.set_takes({QFileInfo(qs(s_->doc.resolve(folder))).absoluteFilePath().toStdString(),
                         s_->doc.project().takes.current});
    return true;
  }
  const QFileInfo file(path);
  const QString here = QFileInfo(qs(s_->takes->folder())).absoluteFilePath();
  QString target = file.absolutePath() + "/" + file.completeBaseName() + "_takes";
  if (QFileInfo(target).absoluteFilePath() != here) {
    // Never write into a folder holding something else: "<name>_takes_2", "_3", ...
    for (int n = 2; QDir(target).exists() && !QDir(target).isEmpty(); ++n)
      target = file.absolutePath() + "/" + file.completeBaseName() + "_takes_" + QString::number(n);
    try {
      auto moved = std::make_unique<project::TakeStore>(s_->takes->copy_to(target.toStdString()));
      if (!s_->takes_session.path.isEmpty() &&
          here == QFileInfo(s_->takes_session.path).absoluteFilePath()) {
        QDir(here).removeRecursively();  // a session folder moves; another project's is copied
        s_->takes_session.path.clear();
      }
      s_->takes = std::move(moved);
    } catch (const std::exception& e) {
      report_error(tr("Cannot save the project"),
                   tr("Its takes could not be copied: %1").arg(what(e)));
      return false;
    }
  }
  s_->doc.set_takes({QFileInfo(target).fileName().toStdString(), s_->doc.project().takes.current});
  return true;
}

void MainWindow::refresh_takes() {
  std::vector<TakeList::Row> rows;
  if (s_->takes) {
    const int current = s_->doc.project().takes.current;
    for (const project::TakeInfo& t : s_->takes->takes()) {
      TakeList::Row r;
      r.id = t.id;
      r.name = qs(t.name);
      r.starred = t.starred;
      r.date = shown_date(t.created);
      r.seed = t.seed;
      r.model = t.model_name.empty() ? tr("demo") : qs(t.model_name);
      if (!t.model_path.empty()) r.model += " (" + QFileInfo(qs(t.model_path)).fileName() + ")";
      r.steps = t.settings.rollout.sampler.schedule.steps;
      r.frames = static_cast<int>(t.positions.size());
      r.current = t.id == current;
      rows.push_back(r);
    }
  }
  s_->take_list->set_rows(rows);
  QString compare;
  if (s_->compare_a && s_->takes && s_->takes->find(s_->compare_a) &&
      s_->takes->find(s_->compare_b))
    compare = tr("Comparing A: %1 with B: %2")
                  .arg(qs(s_->takes->find(s_->compare_a)->name),
                       qs(s_->takes->find(s_->compare_b)->name));
  s_->take_list->set_compare_text(compare);
}

// [SECTION] Public methods
// -------------------------------------------------------------------------

int MainWindow::take_id_at(int index) {
  if (!s_->takes || index < 0 || index >= s_->takes->size()) {
    report_error(tr("No such take"), tr("There is no take %1 (the project has %2).")
                                         .arg(index + 1)
                                         .arg(s_->takes ? s_->takes->size() : 0));
    return 0;
  }
  return s_->takes->takes()[static_cast<size_t>(index)].id;
}

int MainWindow::take_count() const {
  return s_->takes ? s_->takes->size() : 0;
}

QStringList MainWindow::take_names() const {
  QStringList names;
  if (s_->takes)
    for (const auto& t : s_->takes->takes()) names << qs(t.name);
  return names;
}

int MainWindow::current_take() const {
  return s_->takes ? s_->takes->index_of(s_->doc.project().takes.current) : -1;
}

bool MainWindow::take_starred(int index) const {
  return s_->takes && index >= 0 && index < s_->takes->size() &&
         s_->takes->takes()[static_cast<size_t>(index)].starred;
}

QString MainWindow::takes_folder() const {
  return s_->takes ? QFileInfo(qs(s_->takes->folder())).absoluteFilePath() : QString();
}

bool MainWindow::switch_take(int index) {
  if (s_->generating) {
    report_error(tr("Busy"), tr("Stop the running generation before switching takes."));
    return false;
  }
  commit_written_takes(true);  // a take still being written would become current after this
  const int id = take_id_at(index);
  if (id == 0) return false;
  std::map<int, Frame> frames;
  try {
    frames = s_->takes->load_frames(id);
  } catch (const std::exception& e) {
    report_error(tr("Cannot show the take"), what(e));
    return false;
  }
  const project::TakeInfo& take = *s_->takes->find(id);
  const int length = s_->doc.project().timeline.length();
  s_->clear_generated();
  project::Results results = s_->doc.project().results;
  results.generated.assign(static_cast<size_t>(length), false);
  int outside = 0;
  for (auto& [position, frame] : frames) {
    if (position >= length) {
      ++outside;
      continue;
    }
    s_->timeline->set_result_image(position, to_qimage(frame));
    results.generated[static_cast<size_t>(position)] = true;
    s_->generated[position] = std::move(frame);
  }
  results.seed = take.seed;
  results.seconds = take.seconds;
  s_->doc.set_results(results);
  s_->doc.set_takes({s_->doc.project().takes.folder, id});
  refresh_takes();
  refresh_all();
  statusBar()->showMessage(
      outside == 0 ? tr("Showing %1").arg(qs(take.name))
                   : tr("Showing %1 (%2 of its frames lie past the end of the timeline)")
                         .arg(qs(take.name))
                         .arg(outside),
      6000);
  return true;
}

bool MainWindow::rename_take(int index, const QString& name) {
  commit_written_takes(true);  // their writer writes the index: one writer at a time
  const int id = take_id_at(index);
  if (id == 0) return false;
  try {
    s_->takes->rename(id, name.trimmed().toStdString());
  } catch (const std::exception& e) {
    report_error(tr("Cannot rename the take"), what(e));
    return false;
  }
  refresh_takes();
  return true;
}

bool MainWindow::star_take(int index, bool starred) {
  commit_written_takes(true);  // their writer writes the index: one writer at a time
  const int id = take_id_at(index);
  if (id == 0) return false;
  try {
    s_->takes->set_starred(id, starred);
  } catch (const std::exception& e) {
    report_error(tr("Cannot star the take"), what(e));
    refresh_takes();
    return false;
  }
  refresh_takes();
  return true;
}

bool MainWindow::delete_take(int index) {
  commit_written_takes(true);  // their writer writes the index: one writer at a time
  const int id = take_id_at(index);
  if (id == 0) return false;
  const QString name = qs(s_->takes->find(id)->name);
  if (!s_->options.quiet_errors &&
      QMessageBox::question(this, tr("Delete take"),
                            tr("Delete %1 and its frame files? This cannot be undone.").arg(name),
                            QMessageBox::Yes | QMessageBox::Cancel,
                            QMessageBox::Cancel) != QMessageBox::Yes)
    return false;
  try {
    s_->takes->remove(id);
  } catch (const std::exception& e) {
    report_error(tr("Cannot delete the take"), what(e));
    return false;
  }
  // The frames shown stay shown (they are in memory); they are just no longer a kept take.
  if (s_->doc.project().takes.current == id) s_->doc.set_takes({s_->doc.project().takes.folder, 0});
  if (s_->compare_a == id || s_->compare_b == id) stop_comparing();
  refresh_takes();
  refresh_all();
  statusBar()->showMessage(tr("Deleted %1").arg(name), 5000);
  return true;
}

bool MainWindow::compare_takes(int a, int b, int view_mode) {
  if (view_mode != 2 && view_mode != 3) {
    report_error(tr("Compare takes"), tr("Compare side by side (2) or with the A/B wipe (3)."));
    return false;
  }
  const int id_a = take_id_at(a);
  const int id_b = id_a ? take_id_at(b) : 0;
  if (id_a == 0 || id_b == 0) return false;
  try {
    s_->compare_a_frames = s_->takes->load_frames(id_a);
    s_->compare_b_frames = s_->takes->load_frames(id_b);
  } catch (const std::exception& e) {
    s_->compare_a_frames.clear();
    s_->compare_b_frames.clear();
    report_error(tr("Cannot compare the takes"), what(e));
    return false;
  }
  set_view_mode(view_mode);
  if (auto* dock = findChild<QDockWidget*>("takes")) dock->raise();  // which takes are compared
  s_->compare_a = id_a;
  s_->compare_b = id_b;
  // Land on a frame both takes have, so the comparison shows something at once.
  if (!s_->compare_a_frames.count(s_->current) || !s_->compare_b_frames.count(s_->current))
    for (const auto& entry : s_->compare_a_frames)
      if (s_->compare_b_frames.count(entry.first)) {
        s_->current = entry.first;
        break;
      }
  refresh_takes();
  refresh_all();
  return true;
}

void MainWindow::stop_comparing() {
  if (s_->compare_a == 0 && s_->compare_b == 0) return;
  s_->compare_a = s_->compare_b = 0;
  s_->compare_a_frames.clear();
  s_->compare_b_frames.clear();
  refresh_takes();
  refresh_viewer();
}

void MainWindow::apply_take_compare(int position, QImage& a, QImage& b) {
  if (s_->compare_a == 0 || !s_->takes) {
    s_->viewer->set_side_labels({}, {});
    return;
  }
  auto image = [position](const std::map<int, Frame>& frames) {
    auto it = frames.find(position);
    return it == frames.end() ? QImage() : to_qimage(it->second);
  };
  a = image(s_->compare_a_frames);
  b = image(s_->compare_b_frames);
  const project::TakeInfo* ta = s_->takes->find(s_->compare_a);
  const project::TakeInfo* tb = s_->takes->find(s_->compare_b);
  s_->viewer->set_side_labels(ta ? qs(ta->name) : tr("A"), tb ? qs(tb->name) : tr("B"));
}

bool MainWindow::export_take(int index, const project::ExportSettings& settings) {
  if (index != current_take() && !switch_take(index)) return false;
  if (current_take() != index) return false;
  return start_export(settings);  // the one export path, with this take's frames shown
}

bool MainWindow::use_take_as_context(int index) {
  if (!switch_take(index)) return false;
  const project::TakeInfo& take = *s_->takes->find(s_->doc.project().takes.current);
  std::vector<int> positions;
  for (const auto& entry : s_->generated) positions.push_back(entry.first);
  const QString label = tr("Use %1 as context").arg(qs(take.name));
  const bool ok = edit_project(label, [positions](project::Project& p) {
    for (int position : positions) project::set_pinned(p.timeline, position, true);
    // Extend by as many new frames again: the next run continues after the take.
    project::set_new_frames(p.timeline, p.timeline.new_frames + std::max(1, p.timeline.new_frames));
  });
  if (ok) {
    statusBar()->showMessage(
        tr("%1's %2 frames are pinned context; the next generation continues after them.")
            .arg(qs(take.name))
            .arg(positions.size()),
        8000);
  }
  return ok;
}

QImage MainWindow::viewer_image(int side) const {
  return side == 0 ? s_->viewer->original_image() : s_->viewer->result_image();
}

}  // namespace dfs::ui
