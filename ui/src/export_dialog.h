// export_dialog.h — File > Export: format, output path, range, scale, filter, fps, quality.
//
// Only collects dfs::project::ExportSettings; MainWindow runs the export on a background
// thread with a progress dialog. GUI thread only.
#pragma once

#include <QComboBox>
#include <QDialog>
#include <QDoubleSpinBox>
#include <QLabel>
#include <QLineEdit>
#include <QSlider>
#include <QSpinBox>

#include "dfs/project/document.h"

namespace dfs::ui {

class ExportDialog : public QDialog {
  Q_OBJECT

 public:
  // `length`: timeline positions; `current`: the playhead (PNG of the current frame);
  // `model_w/h`: model resolution (for the output-size note).
  ExportDialog(const project::ExportSettings& initial, int length, int current, int model_w,
               int model_h, double clip_fps, QWidget* parent = nullptr);

  project::ExportSettings settings() const;

 private:
  void browse();
  void update_note();
  void format_changed();

  int length_;
  int current_;
  int model_w_;
  int model_h_;
  // The form's fields live as long as the dialog; the constructor fills and lays them out (the
  // layout parents them).
  QComboBox* const format_ = new QComboBox;
  QLineEdit* const path_ = new QLineEdit;
  QComboBox* const range_ = new QComboBox;
  QSpinBox* const in_ = new QSpinBox;
  QSpinBox* const out_ = new QSpinBox;
  QComboBox* const scale_ = new QComboBox;
  QComboBox* const filter_ = new QComboBox;
  QDoubleSpinBox* const fps_ = new QDoubleSpinBox;
  QSlider* const quality_ = new QSlider(Qt::Horizontal);
  QLabel* const note_ = new QLabel;
};

}  // namespace dfs::ui
