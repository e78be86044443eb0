// main_window_files.cpp — MainWindow's files: opening a clip (and the shipped sample clip),
// opening and saving projects, restoring settings from an export, drag and drop, the recent
// files menu, autosave, and the unsaved-changes question when closing.
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
  s_->clear_generated();
  s_->current = 0;
  if (!s_->doc.project().clip.path.empty()) {
    const QString clip = QString::fromStdString(s_->doc.resolve(s_->doc.project().clip.path));
    if (attach_clip_media(clip) && s_->doc.project().clip.frame_count <= 0) {
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

}  // namespace dfs::ui
