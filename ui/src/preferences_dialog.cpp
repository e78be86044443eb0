// preferences_dialog.cpp — see preferences_dialog.h.
#include "preferences_dialog.h"

#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFormLayout>
#include <QLabel>
#include <QPushButton>
#include <utility>

#include "dfs/limits.h"
#include "widget_row.h"

namespace dfs::ui {

PreferencesDialog::PreferencesDialog(const Preferences& initial, QWidget* parent)
    : QDialog(parent) {
  setWindowTitle(tr("Preferences"));
  auto* form = new QFormLayout(this);

  threads_->setRange(0, Preferences::kMaxThreads);
  threads_->setSpecialValueText(tr("Automatic (%1)").arg(resolve_threads(0)));
  threads_->setValue(initial.threads);
  threads_->setToolTip(tr("Threads a generation uses. Automatic leaves one core to the window."));
  form->addRow(tr("Generation threads"), threads_);

  for (const QString& d : available_devices())
    device_->addItem(d == "auto"  ? tr("Automatic (CUDA when available)")
                     : d == "cpu" ? tr("CPU")
                                  : tr("CUDA"),
                     d);
  device_->setCurrentIndex(std::max(0, device_->findData(initial.device)));
  device_->setToolTip(tr("Takes effect when a model is next loaded."));
  form->addRow(tr("Device"), device_);

  export_folder_->setText(initial.export_folder);
  export_folder_->setPlaceholderText(tr("Beside the clip"));
  auto* browse_button = new QPushButton(tr("Browse..."));
  connect(browse_button, &QPushButton::clicked, this, &PreferencesDialog::browse);
  form->addRow(tr("Export folder"), widget_row({{export_folder_, 1}, browse_button}));

  const std::pair<dfs::ExportFormat, const char*> formats[] = {
      {dfs::ExportFormat::Mp4, "MP4 (H.264)"},
      {dfs::ExportFormat::Mkv, "Matroska (H.264)"},
      {dfs::ExportFormat::WebM, "WebM (VP9)"},
      {dfs::ExportFormat::Gif, "Animated GIF"},
      {dfs::ExportFormat::PngSequence, "PNG sequence (folder)"}};
  for (const auto& [format, label] : formats)
    export_format_->addItem(tr(label), static_cast<int>(format));
  export_format_->setCurrentIndex(
      std::max(0, export_format_->findData(static_cast<int>(initial.export_format))));
  form->addRow(tr("Export format"), export_format_);

  autosave_->setRange(0, Preferences::kMaxAutosaveSeconds);
  autosave_->setSpecialValueText(tr("Off"));
  autosave_->setSuffix(tr(" s"));
  autosave_->setValue(initial.autosave_seconds);
  autosave_->setToolTip(
      tr("0 = off; otherwise at least %1 s.").arg(Preferences::kMinAutosaveSeconds));
  form->addRow(tr("Autosave every"), autosave_);

  for (QDoubleSpinBox* box : {stab_user_, stab_generated_}) {
    box->setDecimals(3);
    box->setSingleStep(0.01);
    box->setRange(limits::kStabilization.widget_min(0.001),
                  limits::kStabilization.widget_max(0.001));
  }
  stab_user_->setValue(initial.stabilization_user);
  stab_generated_->setValue(initial.stabilization_generated);
  const QString stab_tip =
      tr("Noise level at which known frames are fed to the model in new "
         "projects (0 = clean; a little noise hides their differences from "
         "the model's own frames).");
  stab_user_->setToolTip(stab_tip);
  stab_generated_->setToolTip(stab_tip);
  form->addRow(tr("Stabilisation, pinned frames"), stab_user_);
  form->addRow(tr("Stabilisation, generated frames"), stab_generated_);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  connect(buttons, &QDialogButtonBox::accepted, this, &QDialog::accept);
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  form->addRow(buttons);

  // Names for scripted use (tests, accessibility tools).
  const std::pair<QWidget*, const char*> names[] = {{threads_, "threads"},
                                                    {device_, "device"},
                                                    {export_folder_, "export_folder"},
                                                    {export_format_, "export_format"},
                                                    {autosave_, "autosave_seconds"},
                                                    {stab_user_, "stabilization_user"},
                                                    {stab_generated_, "stabilization_generated"}};
  for (const auto& [widget, name] : names) widget->setObjectName(name);
}

Preferences PreferencesDialog::values() const {
  Preferences p;
  p.threads = threads_->value();
  p.device = device_->currentData().toString();
  p.export_folder = export_folder_->text().trimmed();
  p.export_format = static_cast<dfs::ExportFormat>(export_format_->currentData().toInt());
  p.autosave_seconds = autosave_->value();
  // 1..4 s would be refused: the spin box's smallest useful value is the minimum.
  if (p.autosave_seconds > 0)
    p.autosave_seconds = std::max(p.autosave_seconds, Preferences::kMinAutosaveSeconds);
  p.stabilization_user = stab_user_->value();
  p.stabilization_generated = stab_generated_->value();
  return p;
}

void PreferencesDialog::browse() {
  const QString dir =
      QFileDialog::getExistingDirectory(this, tr("Default export folder"), export_folder_->text());
  if (!dir.isEmpty()) export_folder_->setText(dir);
}

}  // namespace dfs::ui
