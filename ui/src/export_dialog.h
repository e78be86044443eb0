// export_dialog.h — File > Export: format, output path, range, scale, filter, fps, quality.
//
// Only collects dfs::project::ExportSettings; MainWindow runs the export on a background
// thread with a progress dialog. GUI thread only.
#pragma once

#include <QDialog>

#include "dfs/project/document.h"

class QComboBox;
class QDoubleSpinBox;
class QLineEdit;
class QSlider;
class QSpinBox;
class QLabel;

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
  QComboBox* format_ = nullptr;
  QLineEdit* path_ = nullptr;
  QComboBox* range_ = nullptr;
  QSpinBox* in_ = nullptr;
  QSpinBox* out_ = nullptr;
  QComboBox* scale_ = nullptr;
  QComboBox* filter_ = nullptr;
  QDoubleSpinBox* fps_ = nullptr;
  QSlider* quality_ = nullptr;
  QLabel* note_ = nullptr;
};

}  // namespace dfs::ui
