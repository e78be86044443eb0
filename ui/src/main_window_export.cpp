// main_window_export.cpp — MainWindow's export: the dialog with sensible first settings, and
// the export itself on its own thread (generated frames where they exist, else the clip's
// frames fitted to the model), with a progress dialog that can cancel it.
#include "dfs/ui/main_window.h"

#include <QDesktopServices>
#include <QDialog>
#include <QDir>
#include <QFileInfo>
#include <QMessageBox>
#include <QPointer>
#include <QProgressDialog>
#include <QPushButton>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTimer>
#include <QUrl>
#include <atomic>
#include <exception>
#include <memory>
#include <string>
#include <thread>

#include "dfs/media/decoder.h"
#include "dfs/project/generation.h"
#include "export_dialog.h"
#include "main_window_state.h"

namespace dfs::ui {
namespace {

// What an export thread reports back to the window.
struct ExportOutcome {
  bool ok = true;
  QString error;   // why it failed or was cancelled (when !ok)
  QString output;  // the file or folder written
};

// Runs on the export thread, never touches the window: writes `project`'s export range through
// an EncoderSink, the generated frames where they exist and the clip's frames (fitted to the
// model) elsewhere. `done` counts the positions handled; `cancel` stops it between frames.
ExportOutcome write_export(const project::Project& project, const diffusion::ModelInfo& info,
                           const std::map<int, Frame>& generated, const std::string& clip,
                           std::atomic<int>& done, const std::atomic<bool>& cancel) {
  ExportOutcome outcome;
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
      if (cancel.load()) {
        cancelled = true;
        break;
      }
      auto g = generated.find(p);
      if (g != generated.end()) {
        sink.write(p, g->second,
                   t.pinned(p) ? project::FrameOrigin::Previous : project::FrameOrigin::Generated);
      } else if (t.is_source(p) && es.range != project::ExportRange::Generated) {
        if (!decoder) decoder = media::open_decoder(clip);
        const Frame source = decoder->frame_at(t.clip_frame(p)).image;
        sink.write(p, project::fit_to_model(source, info.width, info.height, project.clip.fit),
                   project::FrameOrigin::Source);
      }
      done.store(p - first + 1);
    }
    sink.finish(cancelled);
    outcome.output = QString::fromStdString(sink.output_path());
    if (cancelled) {
      outcome.ok = false;
      outcome.error = QObject::tr("Export cancelled.");
    } else if (sink.frames_written() == 0) {
      outcome.ok = false;
      outcome.error =
          QObject::tr("Nothing was exported: the chosen range holds no frames (generate first?).");
    }
  } catch (const std::exception& e) {
    outcome.ok = false;
    outcome.error = QString::fromUtf8(e.what());
  }
  return outcome;
}

}  // namespace

void MainWindow::show_export_dialog() {
  const project::Project& p = s_->doc.project();
  if (p.timeline.length() == 0 || !s_->model_info) {
    report_error(tr("Nothing to export"), tr("Open a clip (and wait for the model) first."));
    return;
  }
  const project::ExportSettings initial = export_dialog_defaults();  // main_window_preferences.cpp
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
    const ExportOutcome outcome = write_export(project, info, generated, clip, *done, *cancel);
    if (!self) return;
    QMetaObject::invokeMethod(
        self,
        [self, ok = outcome.ok, error = outcome.error, output = outcome.output] {
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
