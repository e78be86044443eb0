// preferences_dialog.h — Edit > Preferences...: threads, device, export defaults, autosave,
// stabilisation defaults. Only collects a dfs::ui::Preferences; MainWindow applies it on OK.
// GUI thread only.
#pragma once

#include <QComboBox>
#include <QDialog>
#include <QDoubleSpinBox>
#include <QLineEdit>
#include <QSpinBox>

#include "dfs/ui/preferences.h"

namespace dfs::ui {

class PreferencesDialog : public QDialog {
  Q_OBJECT

 public:
  explicit PreferencesDialog(const Preferences& initial, QWidget* parent = nullptr);

  Preferences values() const;  // what the form shows now

 private:
  void browse();

  // Owned by the dialog through its layout (the constructor lays them out).
  QSpinBox* const threads_ = new QSpinBox;
  QComboBox* const device_ = new QComboBox;
  QLineEdit* const export_folder_ = new QLineEdit;
  QComboBox* const export_format_ = new QComboBox;
  QSpinBox* const autosave_ = new QSpinBox;
  QDoubleSpinBox* const stab_user_ = new QDoubleSpinBox;
  QDoubleSpinBox* const stab_generated_ = new QDoubleSpinBox;
};

}  // namespace dfs::ui
