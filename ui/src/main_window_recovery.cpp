// main_window_recovery.cpp — never lose work (issue 11): autosave after every N edits and every
// few seconds, atomically, beside the project (never over it); the session record that lets the
// next start offer a crashed session back (recovery.h); Recover / Discard / Later; and a
// project whose clip moved.
#include <QCoreApplication>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QFileInfo>
#include <QFutureWatcher>
#include <QStatusBar>
#include <QtConcurrent/QtConcurrentRun>
#include <algorithm>
#include <exception>
#include <string>

#include "dfs/media/decoder.h"
#include "dfs/media/encoder.h"
#include "dfs/media/probe.h"
#include "dfs/project/export.h"
#include "dfs/project/generation.h"
#include "dfs/ui/main_window.h"
#include "generation_worker.h"
#include "main_window_state.h"
#include "recovery.h"
#include "recovery_dialog.h"
#include "timeline_widget.h"

namespace dfs::ui {
namespace {

int generated_count(const project::Project& p) {
  return static_cast<int>(std::count(p.results.generated.begin(), p.results.generated.end(), true));
}

QString absolute_or_empty(const std::string& path) {
  return path.empty() ? QString() : QFileInfo(QString::fromStdString(path)).absoluteFilePath();
}

}  // namespace

// Everything a freshly loaded document needs in the window: its clip (or the note that the clip
// is missing), the generated frames cached beside it, the widgets.
void MainWindow::install_document(project::Document doc) {
  commit_written_takes(true);  // into the store and document they were made for
  s_->doc = std::move(doc);
  s_->clear_generated();
  s_->current = 0;
  s_->missing_clip.clear();
  if (!s_->doc.project().clip.path.empty()) {
    const QString clip = QString::fromStdString(s_->doc.resolve(s_->doc.project().clip.path));
    if (!QFileInfo::exists(clip)) {
      attach_clip_media({});
      s_->missing_clip = clip;
    } else if (attach_clip_media(clip) && s_->doc.project().clip.frame_count <= 0) {
      // A hand-written or older project without the clip's probe summary: fill it in.
      const media::ProbeInfo info = s_->decoder->info();
      try {
        s_->doc.edit("Clip information",
                     [&info](project::Project& pr) { project::set_clip_probe(pr.clip, info); });
        s_->doc.clear_history();
      } catch (const std::exception& e) {
        report_error(tr("The project does not match its clip"), QString::fromUtf8(e.what()));
      }
    }
  } else {
    attach_clip_media({});
  }
  const project::Project& p = s_->doc.project();
  // Generated frames saved beside the project come back too (a missing one just is not shown).
  s_->generated = project::load_saved_results(s_->doc);
  for (const auto& [position, frame] : s_->generated)
    s_->timeline->set_result_image(position, to_qimage(frame));
  attach_project_takes();  // main_window_takes.cpp
  s_->last_results = p.results;
  ++s_->results_revision;  // another document's frames: never taken for the last ones autosaved
  s_->opened_results_revision = s_->results_revision;
  refresh_all();
}

// Called after every change the window shows (refresh_all): counts edits, autosaves every N.
void MainWindow::note_document_change() {
  const project::Document& doc = s_->doc;
  if (!(doc.project().results == s_->last_results)) {
    s_->last_results = doc.project().results;
    ++s_->results_revision;
  }
  if (!doc.dirty()) {
    s_->clean_revision = s_->autosaved_revision = doc.revision();
    s_->carried_edits = 0;
    if (!s_->autosave_file.isEmpty()) forget_own_session();  // saved, or another file opened
    return;
  }
  if (s_->options.autosave && s_->options.autosave_edits > 0 &&
      edits_since_autosave() >= s_->options.autosave_edits)
    autosave_soon();
}

int MainWindow::edits_since_autosave() const {
  return static_cast<int>(s_->doc.revision() - s_->autosaved_revision);
}

QString MainWindow::autosave_path() const {
  return s_->autosave_file;
}

void MainWindow::set_autosave_interval(int ms) {
  s_->options.autosave_ms = ms;
  if (ms <= 0) {
    s_->autosave_timer.stop();
    return;
  }
  s_->autosave_timer.setInterval(std::max(10, ms));
  if (s_->options.autosave) s_->autosave_timer.start();
}

// The timer's autosave: only when something changed since the last one.
void MainWindow::autosave() {
  if (s_->doc.dirty() && s_->doc.revision() != s_->autosaved_revision) autosave_soon();
}

// Where this session autosaves: "<project>.autosave", unless another Studio's session (running,
// or crashed and not yet recovered) holds that name; then one of our own, so neither overwrites
// the other. Throws what reading the records throws.
void MainWindow::choose_autosave_target() {
  const QString doc_path = absolute_or_empty(s_->doc.path());
  if (!s_->autosave_file.isEmpty() && s_->autosave_for == doc_path) return;
  QString target =
      doc_path.isEmpty() ? recovery::own_untitled_autosave_path() : doc_path + ".autosave";
  if (!doc_path.isEmpty())
    for (const recovery::Entry& e : recovery::read_records())
      if (!e.own && QFileInfo(e.session.autosave_path) == QFileInfo(target))
        target = doc_path + QStringLiteral(".%1.autosave").arg(QCoreApplication::applicationPid());
  if (!s_->autosave_file.isEmpty()) forget_own_session();  // the document it was for is gone
  s_->autosave_file = target;
  s_->autosave_for = doc_path;
}

// The automatic autosaves (every N edits, the timer). A new set of generated frames is written
// as PNGs first, on the take writer's thread (16 frames of 256 x 256 take ~60 ms: written here,
// they stalled the window at the end of a run); the document naming them is autosaved when they
// are on disk. Anything else is autosaved at once (autosave_now).
void MainWindow::autosave_soon() {
  if (s_->autosave_frames.pending) return;  // it ends with an autosave of the document then
  const project::Project& p = s_->doc.project();
  if (!s_->doc.dirty() || p.clip.empty()) return;  // nothing to keep
  const bool frames_as_opened =
      !p.results.cache_dir.empty() && s_->results_revision == s_->opened_results_revision;
  const bool new_frames = p.results.any() && !s_->generated.empty() && !frames_as_opened &&
                          s_->frames_revision != s_->results_revision;
  if (!new_frames) {
    autosave_now();
    return;
  }
  ScopedWork work(s_->work, "hand autosave frames to the writer");
  try {
    choose_autosave_target();
  } catch (const std::exception& e) {
    statusBar()->showMessage(tr("Autosave failed: %1").arg(QString::fromUtf8(e.what())), 8000);
    return;
  }
  const std::uint64_t revision = s_->results_revision;
  const QString dir =
      recovery::frames_dir_for(s_->autosave_file) +
      QStringLiteral("/%1-%2").arg(QCoreApplication::applicationPid()).arg(revision);
  project::Results naming = p.results;
  naming.cache_dir = dir.toStdString();
  std::map<int, Frame> frames;
  for (const auto& [position, frame] : s_->generated)
    if (naming.has(position)) frames.emplace(position, frame);
  s_->autosave_frames.pending = true;
  s_->autosave_frames.revision = revision;
  s_->autosave_frames.dir = dir;
  s_->autosave_frames.written =
      QtConcurrent::run(&s_->take_writer, [dir, naming, frames = std::move(frames)]() -> QString {
        lower_this_thread_priority();
        QDir(dir).removeRecursively();
        QDir().mkpath(dir);
        try {
          for (const auto& [position, frame] : frames)
            media::write_png(naming.cached_frame_path(position), frame);
          return {};
        } catch (const std::exception& e) {
          return QString::fromUtf8(e.what());
        }
      });
  auto* watcher = new QFutureWatcher<QString>(this);
  connect(watcher, &QFutureWatcher<QString>::finished, this, [this, watcher] {
    watcher->deleteLater();
    if (!s_->autosave_frames.pending) return;  // wait_for_autosave_frames took it in already
    wait_for_autosave_frames();
    // The document naming them (or, when the results changed meanwhile, the new ones' PNGs).
    if (s_->doc.dirty() && s_->doc.revision() != s_->autosaved_revision) autosave_soon();
  });
  watcher->setFuture(s_->autosave_frames.written);
}

void MainWindow::wait_for_autosave_frames() {
  State::AutosaveFrames& a = s_->autosave_frames;
  if (!a.pending) return;
  a.written.waitForFinished();
  a.pending = false;
  const QString error = a.written.result();
  if (!error.isEmpty()) {
    statusBar()->showMessage(tr("Autosave failed: %1").arg(error), 8000);
    return;  // the next autosave tries again
  }
  // Still this session's results and folder: autosave_now names them and writes only the
  // document.
  if (a.revision == s_->results_revision && QDir(a.dir).exists()) s_->frames_revision = a.revision;
}

bool MainWindow::autosave_now() {
  ScopedWork work(s_->work, "autosave");
  wait_for_autosave_frames();  // never two writers in one frames folder
  if (!s_->doc.dirty() || s_->doc.project().clip.empty()) return true;  // nothing to keep
  const QString doc_path = absolute_or_empty(s_->doc.path());
  const qint64 pid = QCoreApplication::applicationPid();
  try {
    choose_autosave_target();
    project::Project copy = s_->doc.project();
    if (doc_path.isEmpty()) {  // an untitled autosave lives elsewhere: make its paths absolute
      copy.clip.path = s_->doc.resolve(copy.clip.path);
      if (!copy.model_path.empty()) copy.model_path = s_->doc.resolve(copy.model_path);
    }
    // Generated frames, as PNGs in a folder per set of results (written once per set; the
    // autosave names the folder only once it is complete).
    const QString frames_root = recovery::frames_dir_for(s_->autosave_file);
    QString frames_dir;
    // Frames that came with the opened file are on disk already where its results say.
    const bool frames_as_opened = !copy.results.cache_dir.empty() &&
                                  s_->results_revision == s_->opened_results_revision;
    if (copy.results.any() && !s_->generated.empty() && !frames_as_opened) {
      frames_dir = frames_root + QStringLiteral("/%1-%2").arg(pid).arg(s_->results_revision);
      copy.results.cache_dir = frames_dir.toStdString();
      if (s_->frames_revision != s_->results_revision || !QDir(frames_dir).exists()) {
        QDir(frames_dir).removeRecursively();
        QDir().mkpath(frames_dir);
        for (const auto& [position, frame] : s_->generated)
          if (copy.results.has(position))
            media::write_png(copy.results.cached_frame_path(position), frame);
        s_->frames_revision = s_->results_revision;
      }
    } else if (doc_path.isEmpty() && !copy.results.cache_dir.empty()) {
      copy.results.cache_dir = s_->doc.resolve(copy.results.cache_dir);
    }
    project::write_file_atomically(s_->autosave_file.toStdString(), project::to_json(copy));
    // Older frame folders are no longer named by the autosave.
    for (const QString& name : QDir(frames_root).entryList(QDir::Dirs | QDir::NoDotAndDotDot))
      if (frames_root + "/" + name != frames_dir) QDir(frames_root + "/" + name).removeRecursively();
    RecoverySession record;
    record.record_path = recovery::own_record_path();
    record.project_path = doc_path;
    record.autosave_path = s_->autosave_file;
    record.saved_utc = QDateTime::currentDateTimeUtc();
    record.edits = static_cast<int>(s_->doc.revision() - s_->clean_revision) + s_->carried_edits;
    record.clip_name = QFileInfo(QString::fromStdString(copy.clip.path)).fileName();
    record.frames = copy.timeline.length();
    record.generated = generated_count(copy);
    record.pid = pid;
    recovery::write_record(record);
  } catch (const std::exception& e) {
    statusBar()->showMessage(tr("Autosave failed: %1").arg(QString::fromUtf8(e.what())), 8000);
    return false;
  }
  s_->autosaved_revision = s_->doc.revision();
  return true;
}

void MainWindow::forget_own_session() {
  wait_for_autosave_frames();  // else they would land in a folder nothing names any more
  RecoverySession own;
  own.record_path = recovery::own_record_path();
  own.autosave_path = s_->autosave_file;
  recovery::remove_session_files(own);
  s_->autosave_file.clear();
  s_->autosave_for.clear();
}

QList<MainWindow::RecoverySession> MainWindow::recoverable_sessions() const {
  QList<RecoverySession> out;
  for (const recovery::Entry& e : recovery::read_records())
    if (!e.alive && QFileInfo::exists(e.session.autosave_path)) out.push_back(e.session);
  return out;
}

bool MainWindow::recover_session(int index) {
  const QList<RecoverySession> sessions = recoverable_sessions();
  if (index < 0 || index >= sessions.size()) {
    report_error(tr("Cannot recover"), tr("There is no recoverable session %1.").arg(index));
    return false;
  }
  if (s_->generating) {
    report_error(tr("Busy"), tr("Stop the running generation before recovering a session."));
    return false;
  }
  const RecoverySession session = sessions[index];
  project::Document doc;
  try {
    doc = project::Document::load(session.autosave_path.toStdString());
  } catch (const std::exception& e) {
    report_error(tr("Cannot recover"), QString::fromUtf8(e.what()));
    return false;
  }
  // The recovered work stands for its project (Save writes there) but the file there stays as
  // it is until the user saves.
  doc.adopt_path(session.project_path.toStdString());
  forget_own_session();  // whatever this window autosaved belonged to the document it replaces
  // The autosave now belongs to this session: our record names it before the crashed Studio's
  // record goes, so that a crash right now still leaves it recoverable.
  s_->autosave_file = session.autosave_path;
  s_->autosave_for = absolute_or_empty(doc.path());
  s_->carried_edits = session.edits;
  s_->clean_revision = doc.revision();
  install_document(std::move(doc));
  if (autosave_now()) QFile::remove(session.record_path);  // else it stays offered as it was
  if (!s_->missing_clip.isEmpty()) ask_for_missing_clip();
  statusBar()->showMessage(
      tr("Recovered %1 (%2 unsaved edits, autosaved %3). The project file is unchanged until "
         "you save.")
          .arg(session.project_path.isEmpty() ? tr("an untitled project")
                                              : QFileInfo(session.project_path).fileName())
          .arg(session.edits)
          .arg(session.saved_utc.toLocalTime().toString("yyyy-MM-dd hh:mm:ss")),
      15000);
  return true;
}

bool MainWindow::discard_session(int index) {
  const QList<RecoverySession> sessions = recoverable_sessions();
  if (index < 0 || index >= sessions.size()) {
    report_error(tr("Cannot discard"), tr("There is no recoverable session %1.").arg(index));
    return false;
  }
  recovery::remove_session_files(sessions[index]);
  return true;
}

void MainWindow::check_recovery() {
  // Records of dead Studios whose autosave is gone can offer nothing: sweep them.
  for (const recovery::Entry& e : recovery::read_records())
    if (!e.alive && !QFileInfo::exists(e.session.autosave_path))
      recovery::remove_session_files(e.session, /*keep_autosave=*/true);
  const QList<RecoverySession> sessions = recoverable_sessions();
  if (sessions.isEmpty()) {
    statusBar()->showMessage(tr("No unsaved work to recover."), 5000);
    return;
  }
  if (s_->options.quiet_errors) {
    statusBar()->showMessage(tr("%1 unsaved session(s) can be recovered.").arg(sessions.size()),
                             10000);
    return;
  }
  RecoveryDialog dialog(sessions, this);
  if (dialog.exec() != QDialog::Accepted) return;  // Later: everything stays for next time
  for (const RecoverySession& s : dialog.discarded()) recovery::remove_session_files(s);
  if (dialog.recover_record().isEmpty() || !confirm_discard()) return;
  const QList<RecoverySession> now = recoverable_sessions();
  for (int i = 0; i < now.size(); ++i)
    if (now[i].record_path == dialog.recover_record()) {
      recover_session(i);
      return;
    }
}

QString MainWindow::missing_clip() const {
  return s_->missing_clip;
}

void MainWindow::ask_for_missing_clip() {
  const QString name = QFileInfo(s_->missing_clip).fileName();
  if (s_->options.quiet_errors) {
    report_error(tr("The clip has moved"),
                 tr("Where is %1? The project expects it at %2, but it is not there. Use File > "
                    "Locate moved clip... to point the project at it.")
                     .arg(name, s_->missing_clip));
    return;
  }
  const QString start = QFileInfo(QString::fromStdString(s_->doc.path())).absolutePath();
  const QString path = QFileDialog::getOpenFileName(
      this, tr("Where is %1?").arg(name), start,
      tr("%1 (%1);;Video clips (*.mp4 *.mov *.m4v *.mkv *.webm *.avi *.gif);;All files (*)")
          .arg(name));
  if (!path.isEmpty()) relocate_clip(path);
}

bool MainWindow::relocate_clip(const QString& new_path) {
  if (s_->generating) {
    report_error(tr("Busy"), tr("Stop the running generation before moving the clip."));
    return false;
  }
  const project::ClipRef old = s_->doc.project().clip;
  if (old.empty()) {
    report_error(tr("No clip"), tr("The project has no clip to locate; open one instead."));
    return false;
  }
  media::ProbeInfo info;
  try {
    info = media::probe(new_path.toStdString());
  } catch (const std::exception& e) {
    report_error(tr("Cannot open the clip"), QString::fromUtf8(e.what()));
    return false;
  }
  project::ClipRef clip = old;
  clip.path = QFileInfo(new_path).absoluteFilePath().toStdString();
  project::set_clip_probe(clip, info);
  clip.fit = old.fit;
  QStringList differences;
  if (old.frame_count > 0 && clip.frame_count != old.frame_count)
    differences << tr("%1 frames instead of %2").arg(clip.frame_count).arg(old.frame_count);
  if (old.width > 0 && (clip.width != old.width || clip.height != old.height))
    differences << tr("%1x%2 instead of %3x%4")
                       .arg(clip.width)
                       .arg(clip.height)
                       .arg(old.width)
                       .arg(old.height);
  const QString name = QFileInfo(new_path).fileName();
  try {
    s_->doc.edit(tr("Locate clip %1").arg(name).toStdString(),
                 [&clip](project::Project& p) { p.clip = clip; });
  } catch (const std::exception& e) {
    report_error(tr("This clip does not fit the project"),
                 tr("%1 (%2): %3")
                     .arg(name, differences.join(", "), QString::fromUtf8(e.what())));
    return false;
  }
  attach_clip_media(QString::fromStdString(clip.path));
  s_->missing_clip.clear();
  refresh_all();
  if (!differences.isEmpty())
    report_error(tr("The clip looks different"),
                 tr("%1 is not the clip the project was made with: %2. The project now uses it; "
                    "undo to go back.")
                     .arg(name, differences.join(", ")));
  else
    statusBar()->showMessage(tr("The project now uses %1.").arg(new_path), 8000);
  return true;
}

}  // namespace dfs::ui
