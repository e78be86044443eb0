// main_window_files.cpp — MainWindow's files: opening a clip (and the shipped sample clip),
// opening and saving projects, restoring settings from an export, drag and drop, the recent
// files menu, and the unsaved-changes question when closing (autosave and recovery:
// main_window_recovery.cpp).
#include "dfs/ui/main_window.h"

#include <QCloseEvent>
#include <QCoreApplication>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QFileDialog>
#include <QFileInfo>
#include <QMenu>
#include <QMessageBox>
#include <QMimeData>
#include <QPointer>
#include <QSettings>
#include <QStandardPaths>
#include <QStatusBar>
#include <QUrl>
#include <algorithm>
#include <cstdint>
#include <exception>
#include <string>

#include "dfs/media/decoder.h"
#include "dfs/media/encoder.h"
#include "dfs/media/metadata.h"
#include "dfs/media/probe.h"
#include "dfs/media/thumbnails.h"
#include "dfs/project/generation.h"
#include "generation_worker.h"
#include "main_window_state.h"
#include "timeline_widget.h"

namespace dfs::ui {
namespace {

constexpr int kThumbnailCount = 240;  // stills per clip for the filmstrip (any length)
constexpr int kThumbnailWidth = 96;
constexpr int kThumbnailHeight = 72;
constexpr int kDefaultNewFrames = 16;  // "extend by" when a clip is opened
constexpr int kMaxRecent = 8;
constexpr const char* kClipFilter =
    "Video clips (*.mp4 *.mov *.m4v *.mkv *.webm *.avi *.gif);;All files (*)";

}  // namespace

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
  commit_written_takes(true);  // a take still being written belongs to the clip shown until now
  if (!attach_clip_media(path)) return false;
  project::ClipRef clip;
  clip.path = path.toStdString();
  project::set_clip_probe(clip, info);
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
  s_->clear_generated();
  s_->doc.set_results({});
  s_->doc.set_takes({s_->doc.project().takes.folder, 0});  // the takes stay, none is shown
  stop_comparing();
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
  project::Document doc;
  try {
    doc = project::Document::load(path.toStdString());
  } catch (const std::exception& e) {
    report_error(tr("Cannot open the project"), QString::fromUtf8(e.what()));
    return false;
  }
  install_document(std::move(doc));  // main_window_recovery.cpp
  const project::Project& p = s_->doc.project();
  add_recent(path);
  // A clip that moved: ask where it went (quiet: report it; relocate_clip() re-points it).
  if (!s_->missing_clip.isEmpty()) ask_for_missing_clip();
  if (s_->model_info && !p.model_path.empty() && QString::fromStdString(p.model_path) != QString())
    load_model(QString::fromStdString(s_->doc.resolve(p.model_path)));
  offer_pending_learning();  // [SECTION] Learning: an interrupted run of this project
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
    if (!carry_takes_to(path)) return false;  // takes go to "<name>_takes/" beside it
    s_->doc.save_as(path.toStdString());
  } catch (const std::exception& e) {
    report_error(tr("Cannot save the project"), QString::fromUtf8(e.what()));
    return false;
  }
  forget_own_session();  // the work is in the project file now: no autosave, no record
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
  } else {
    // Anything else is offered to FFmpeg as a clip: it reads far more containers than any
    // list of extensions, and open_clip() says clearly when a file is not a video.
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

bool MainWindow::confirm_discard() {
  if (!s_->doc.dirty() || s_->options.quiet_errors) return true;
  const auto answer = QMessageBox::question(
      this, tr("Unsaved changes"), tr("The project has unsaved changes. Discard them?"),
      QMessageBox::Discard | QMessageBox::Cancel, QMessageBox::Cancel);
  return answer == QMessageBox::Discard;
}

void MainWindow::closeEvent(QCloseEvent* event) {
  if (s_->exporting && !s_->options.quiet_errors &&
      QMessageBox::question(this, tr("Export running"),
                            tr("An export is still running. Cancel it and close?"),
                            QMessageBox::Yes | QMessageBox::No, QMessageBox::No) != QMessageBox::Yes) {
    event->ignore();
    return;
  }
  commit_written_takes(true);  // a take still being written is listed (and asked about) first
  if (!confirm_discard()) {
    event->ignore();
    return;
  }
  save_layout();
  if (s_->worker != nullptr) s_->worker->request_cancel();
  cancel_export();       // ~MainWindow waits for it; its partial file is removed
  forget_own_session();  // a clean close: nothing to recover next time
  event->accept();
}

}  // namespace dfs::ui
