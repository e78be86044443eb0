// main_window_model.cpp — MainWindow's model: loading one on the worker thread (the current
// model stays in use until the new one is ready), handing over a built one, and what the window
// does once a model is loaded (fit the project's window to it, describe it in the Model panel).
#include "dfs/ui/main_window.h"

#include <QCoreApplication>
#include <QFileInfo>
#include <QLocale>
#include <QStatusBar>
#include <QTextBrowser>
#include <algorithm>
#include <exception>
#include <string>

#include "dfs/project/learn.h"
#include "generation_worker.h"

#include "main_window_state.h"

namespace dfs::ui {

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

// The worker's model_loaded: the window adopts the model's description and the project adapts.
void MainWindow::on_model_loaded(const diffusion::ModelInfo& info, const QString& path,
                                 const QString& note) {
  s_->model_loading = false;
  s_->model_info = info;
  s_->model_note = note;
  // A project made for a bigger model: shrink its window to fit this one, by the project
  // layer's rule (the horizon shrinks first), the same as `dforce extend`/`generate`.
  {
    project::GenerationSettings fitted = s_->doc.project().generation;
    if (project::fit_window_to_model(fitted, info)) {
      try {
        s_->doc.edit(tr("Fit the window to the model").toStdString(),
                     [fitted](project::Project& p) { p.generation = fitted; });
      } catch (const std::exception& e) {
        statusBar()->showMessage(QString::fromUtf8(e.what()), 5000);
      }
    }
  }
  // The document names the model as one undo step, labelled by what it does ("Use model x",
  // "Use learned model x"); a load that follows the document after undo/redo adds none.
  const bool follow = s_->next_model_no_edit;
  const QString label_override = s_->next_model_label;
  s_->next_model_no_edit = false;
  s_->next_model_label.clear();
  if (!path.isEmpty() && !follow) {
    const std::string model_path = path.toStdString();
    try {
      const std::string label =
          (label_override.isEmpty() ? tr("Use model %1").arg(QFileInfo(path).fileName())
                                    : label_override)
              .toStdString();
      s_->doc.edit(label, [model_path](project::Project& p) { p.model_path = model_path; });
    } catch (const std::exception&) {
    }
  }
  s_->model_doc_path = s_->doc.project().model_path;
  QString html =
      tr("<b>%1</b><br>%2 x %3 pixels, %4 frames per window<br>%5 parameters, "
         "%6-prediction, %7 noise, %8 attention<br>device: <b>%9</b>")
          .arg(QString::fromStdString(info.name))
          .arg(info.width)
          .arg(info.height)
          .arg(info.max_frames)
          .arg(QLocale().toString(static_cast<qlonglong>(info.parameter_count)))
          .arg(QString::fromStdString(info.objective), QString::fromStdString(info.noise_schedule),
               info.causal ? tr("causal") : tr("bidirectional"),
               QString::fromStdString(info.device));
  if (info.latent_channels > 0)
    html += tr("<br>latent model: the transformer works on %1 x %2 x %3 latents of its "
               "autoencoder; pinned frames stay your original pixels")
                .arg(info.latent_width)
                .arg(info.latent_height)
                .arg(info.latent_channels);
  if (!note.isEmpty()) html += "<p style='color:#f2a93b'>" + note.toHtmlEscaped() + "</p>";
  if (const std::string trained = project::describe_training(info.provenance_json);
      !trained.empty())
    html += "<p><b>" + QString::fromStdString(trained).toHtmlEscaped() + "</b></p>";
  if (!info.provenance_json.empty() && info.provenance_json != "{}")
    html += tr("<p><b>Provenance</b></p><pre>%1</pre>")
                .arg(QString::fromStdString(info.provenance_json).toHtmlEscaped());
  s_->model_text->setHtml(html);
  refresh_all();
  emit model_changed(true);
}

// After undo/redo: the document may name another model than the one loaded; load that one,
// without a new undo step ("" = the shipped demo model).
void MainWindow::follow_document_model() {
  const std::string want = s_->doc.project().model_path;
  if (want == s_->model_doc_path || s_->model_loading || s_->generating) return;
  s_->next_model_no_edit = true;
  load_model(want.empty() ? QString() : QString::fromStdString(s_->doc.resolve(want)));
}

}  // namespace dfs::ui
