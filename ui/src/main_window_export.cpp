// main_window_export.cpp — MainWindow's export: the dialog with sensible first settings, and
// the export itself as a task on Qt's thread pool (project::export_project, the path `dforce
// export <project>` takes too), with a progress dialog that can cancel it. The window waits for
// a running export when it goes away, so the task never outlives it.
#include "dfs/ui/main_window.h"

#include <QDesktopServices>
#include <QDialog>
#include <QDir>
#include <QFileInfo>
#include <QMessageBox>
#include <QProgressDialog>
#include <QPushButton>
#include <QStandardPaths>
#include <QStatusBar>
#include <QTimer>
#include <QUrl>
#include <QFutureWatcher>
#include <QtConcurrent/QtConcurrentRun>
#include <atomic>
#include <exception>
#include <memory>
#include <string>

#include "dfs/project/export.h"
#include "export_dialog.h"
#include "main_window_state.h"

namespace dfs::ui {
namespace {

// What an export task reports back to the window.
struct ExportReport {
  bool ok = true;
  bool cancelled = false;
  QString error;   // why it failed or was cancelled (when !ok)
  QString output;  // the file or folder written
};

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

  // The export runs on Qt's thread pool and touches only its copies; the window learns the
  // outcome through the watcher (GUI thread). Closing the window cancels it and waits for it
  // (~MainWindow), so it never outlives the window.
  const QFuture<ExportReport> future = QtConcurrent::run([project, info, generated, clip, done, cancel] {
    ExportReport report;
    try {
      const project::ExportOutcome outcome =
          project::export_project(project, info, generated, clip, done.get(), cancel.get());
      report.output = QString::fromStdString(outcome.output);
      if (outcome.cancelled) {
        report.ok = false;
        report.cancelled = true;
        report.error = QObject::tr("Export cancelled: no file was written.");
      }
    } catch (const std::exception& e) {
      report.ok = false;
      report.error = QString::fromUtf8(e.what());
    }
    return report;
  });
  auto* watcher = new QFutureWatcher<ExportReport>(this);
  connect(watcher, &QFutureWatcher<ExportReport>::finished, this, [this, watcher] {
    watcher->deleteLater();
    const ExportReport report = watcher->result();
    s_->exporting = false;
    s_->export_poll.stop();
    if (s_->export_dialog) {
      s_->export_dialog->close();
      s_->export_dialog = nullptr;
    }
    if (!report.ok) {
      if (report.cancelled)
        statusBar()->showMessage(report.error, 10000);
      else
        report_error(tr("Export failed"), report.error);
      emit export_finished(false, report.error);
      return;
    }
    const QString output = report.output;
    statusBar()->showMessage(tr("Exported %1").arg(output), 10000);
    if (!s_->options.quiet_errors) {
      auto* box = new QMessageBox(QMessageBox::Information, tr("Export finished"),
                                  tr("Wrote %1").arg(output), QMessageBox::Ok, this);
      QPushButton* open = box->addButton(tr("Open"), QMessageBox::ActionRole);
      connect(open, &QPushButton::clicked, box,
              [output] { QDesktopServices::openUrl(QUrl::fromLocalFile(output)); });
      box->setAttribute(Qt::WA_DeleteOnClose);
      box->open();
    }
    emit export_finished(true, output);
  });
  s_->export_future = QFuture<void>(future);
  watcher->setFuture(future);
  return true;
}

void MainWindow::cancel_export() {
  if (s_->export_cancel) s_->export_cancel->store(true);
}

bool MainWindow::is_exporting() const {
  return s_->exporting;
}

}  // namespace dfs::ui
