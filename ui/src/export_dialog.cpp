// export_dialog.cpp — see export_dialog.h.
#include "export_dialog.h"

#include "dfs/limits.h"

#include <QDialogButtonBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QPushButton>
#include <utility>

#include "widget_row.h"

namespace dfs::ui {
namespace {

struct FormatInfo {
  project::ExportFormat format;
  const char* label;
  const char* extension;  // "" = a folder
};
constexpr FormatInfo kFormats[] = {
    {project::ExportFormat::Mp4, "MP4 (H.264)", ".mp4"},
    {project::ExportFormat::WebM, "WebM (VP9)", ".webm"},
    {project::ExportFormat::Gif, "Animated GIF", ".gif"},
    {project::ExportFormat::PngSequence, "PNG sequence (folder)", ""},
    {project::ExportFormat::PngFrame, "Current frame as PNG", ".png"},
};

}  // namespace

ExportDialog::ExportDialog(const project::ExportSettings& initial, int length, int current,
                           int model_w, int model_h, double clip_fps, QWidget* parent)
    : QDialog(parent), length_(length), current_(current), model_w_(model_w), model_h_(model_h) {
  setWindowTitle(tr("Export"));
  auto* form = new QFormLayout(this);

  for (const FormatInfo& f : kFormats) format_->addItem(tr(f.label), static_cast<int>(f.format));
  format_->setCurrentIndex(format_->findData(static_cast<int>(initial.format)));
  format_->setToolTip(
      tr("The generation settings are embedded in MP4/WebM and written beside every "
         "export as a .json file, so dropping the export on the Studio restores them."));
  form->addRow(tr("Format"), format_);

  path_->setText(QString::fromStdString(initial.path));
  auto* browse_button = new QPushButton(tr("Browse..."));
  form->addRow(tr("Save to"), widget_row({{path_, 1}, browse_button}));

  range_->addItem(tr("All frames"), static_cast<int>(project::ExportRange::All));
  range_->addItem(tr("Generated frames only"), static_cast<int>(project::ExportRange::Generated));
  range_->addItem(tr("In to out"), static_cast<int>(project::ExportRange::InOut));
  range_->setCurrentIndex(range_->findData(static_cast<int>(initial.range)));
  form->addRow(tr("Range"), range_);
  in_->setRange(0, std::max(0, length - 1));
  out_->setRange(0, std::max(0, length - 1));
  in_->setValue(std::clamp(initial.in, 0, std::max(0, length - 1)));
  out_->setValue(initial.out > 0 ? std::clamp(initial.out, 0, std::max(0, length - 1))
                                 : std::max(0, length - 1));
  form->addRow(tr("In / out"), widget_row({in_, new QLabel(tr("to")), out_}));

  for (int s : {1, 2, 4}) scale_->addItem(QString("x%1").arg(s), s);
  scale_->setCurrentIndex(scale_->findData(initial.scale));
  filter_->addItems({tr("Smooth"), tr("Nearest (exact pixels)")});
  filter_->setCurrentIndex(initial.smooth ? 0 : 1);
  form->addRow(tr("Scale"), widget_row({scale_, {filter_, 1}}));

  fps_->setRange(dfs::limits::kExportFps.widget_min(0.001), dfs::limits::kExportFps.widget_max());
  fps_->setDecimals(3);
  fps_->setValue(initial.fps > 0 ? initial.fps : (clip_fps > 0 ? clip_fps : 8.0));
  form->addRow(tr("Frame rate"), fps_);
  quality_->setRange(0, 100);
  quality_->setValue(initial.quality);
  quality_->setToolTip(tr("0 = smallest file, 100 = best picture (maps to the codec's CRF)."));
  form->addRow(tr("Quality"), quality_);
  note_->setWordWrap(true);
  form->addRow(note_);

  // Names for scripted use (tests, accessibility tools).
  const std::pair<QWidget*, const char*> names[] = {
      {format_, "export_format"}, {path_, "export_path"}, {range_, "export_range"},
      {in_, "export_in"},         {out_, "export_out"},   {scale_, "export_scale"},
      {filter_, "export_filter"}, {fps_, "export_fps"},   {quality_, "export_quality"},
      {note_, "export_note"}};
  for (const auto& [widget, name] : names) widget->setObjectName(name);

  auto* buttons = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel);
  buttons->button(QDialogButtonBox::Ok)->setText(tr("Export"));
  buttons->button(QDialogButtonBox::Ok)->setObjectName("export_ok");
  form->addRow(buttons);
  connect(buttons, &QDialogButtonBox::accepted, this, [this] {
    if (path_->text().trimmed().isEmpty()) browse();
    if (!path_->text().trimmed().isEmpty()) accept();
  });
  connect(buttons, &QDialogButtonBox::rejected, this, &QDialog::reject);
  connect(browse_button, &QPushButton::clicked, this, &ExportDialog::browse);
  connect(format_, qOverload<int>(&QComboBox::currentIndexChanged), this,
          &ExportDialog::format_changed);
  for (QComboBox* c : {range_, scale_})
    connect(c, qOverload<int>(&QComboBox::currentIndexChanged), this, &ExportDialog::update_note);
  connect(in_, qOverload<int>(&QSpinBox::valueChanged), this, &ExportDialog::update_note);
  connect(out_, qOverload<int>(&QSpinBox::valueChanged), this, &ExportDialog::update_note);
  format_changed();
}

void ExportDialog::format_changed() {
  const auto format = static_cast<project::ExportFormat>(format_->currentData().toInt());
  const bool single = format == project::ExportFormat::PngFrame;
  range_->setEnabled(!single);
  fps_->setEnabled(!single && format != project::ExportFormat::PngSequence);
  quality_->setEnabled(format == project::ExportFormat::Mp4 ||
                       format == project::ExportFormat::WebM);
  // Swap the extension so the path matches the format.
  QString path = path_->text();
  if (!path.isEmpty()) {
    const QFileInfo info(path);
    const QString base = info.path() + "/" + info.completeBaseName();
    for (const FormatInfo& f : kFormats)
      if (f.format == format) path = f.extension[0] ? base + f.extension : base + "_frames";
    path_->setText(path);
  }
  update_note();
}

void ExportDialog::browse() {
  const auto format = static_cast<project::ExportFormat>(format_->currentData().toInt());
  QString chosen;
  if (format == project::ExportFormat::PngSequence) {
    chosen =
        QFileDialog::getExistingDirectory(this, tr("Folder for the PNG sequence"), path_->text());
  } else {
    QString filter;
    for (const FormatInfo& f : kFormats)
      if (f.format == format) filter = QString("%1 (*%2)").arg(tr(f.label), f.extension);
    chosen = QFileDialog::getSaveFileName(this, tr("Export to"), path_->text(), filter);
  }
  if (!chosen.isEmpty()) path_->setText(chosen);
}

void ExportDialog::update_note() {
  const int scale = scale_->currentData().toInt();
  const auto format = static_cast<project::ExportFormat>(format_->currentData().toInt());
  QString frames;
  if (format == project::ExportFormat::PngFrame)
    frames = tr("frame %1").arg(current_);
  else if (range_->currentData().toInt() == static_cast<int>(project::ExportRange::InOut))
    frames = tr("%1 frames").arg(std::max(0, out_->value() - in_->value() + 1));
  else if (range_->currentData().toInt() == static_cast<int>(project::ExportRange::All))
    frames = tr("%1 frames").arg(length_);
  else
    frames = tr("the generated frames");
  in_->setEnabled(range_->currentData().toInt() == static_cast<int>(project::ExportRange::InOut));
  out_->setEnabled(in_->isEnabled());
  note_->setText(
      tr("Output: %1 x %2 pixels, %3.").arg(model_w_ * scale).arg(model_h_ * scale).arg(frames));
}

project::ExportSettings ExportDialog::settings() const {
  project::ExportSettings s;
  s.format = static_cast<project::ExportFormat>(format_->currentData().toInt());
  s.path = path_->text().trimmed().toStdString();
  s.range = static_cast<project::ExportRange>(range_->currentData().toInt());
  s.in = in_->value();
  s.out = out_->value();
  if (s.format == project::ExportFormat::PngFrame) {
    s.in = current_;
    s.out = current_;
  }
  s.scale = scale_->currentData().toInt();
  s.smooth = filter_->currentIndex() == 0;
  s.fps = fps_->value();
  s.quality = quality_->value();
  return s;
}

}  // namespace dfs::ui
