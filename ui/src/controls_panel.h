// controls_panel.h — the "Generate" dock: what to generate, schedule, guidance, seed, run.
//
// Every control edits the document through edit_requested (one undo step per change; a
// slider or spin-box drag merges into one step via its merge key). refresh() puts a project's
// values back into the controls without emitting anything. Every control has a tooltip that
// says what the setting does and its unit. GUI thread only.
#pragma once

#include <QString>
#include <QWidget>
#include <functional>

#include "dfs/diffusion/api.h"
#include "dfs/project/document.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;
class QStackedWidget;

namespace dfs::ui {

using ProjectEdit = std::function<void(project::Project&)>;

// Changes how many clip frames the timeline holds (first clip frame, count), keeping the new
// frames, their noise, and the pins that still exist. Pure; exposed for tests.
void resize_source(project::Timeline& timeline, int source_first, int source_count);

class ControlsPanel : public QWidget {
  Q_OBJECT

 public:
  explicit ControlsPanel(QWidget* parent = nullptr);

  void refresh(const project::Project& project, const diffusion::ModelInfo* model);
  void set_selection(int first, int last);  // prefills the range / gap fields
  void set_running(bool running);
  void set_progress(int value, int maximum, const QString& text);
  void set_window_pins(const QString& text);  // "which pins the current window uses"

  QPushButton* generate_button() const { return generate_; }
  QPushButton* stop_button() const { return stop_; }
  QProgressBar* progress_bar() const { return progress_; }

 signals:
  void edit_requested(const QString& label, const dfs::ui::ProjectEdit& change,
                      const QString& merge_key);
  void generate_clicked();
  void stop_clicked();

 private:
  void build();
  void apply_layout();
  void emit_edit(const QString& label, const ProjectEdit& change, const QString& merge_key = {});

  int clip_frames_ = 0;
  // What to generate.
  QComboBox* mode_ = nullptr;
  QStackedWidget* mode_params_ = nullptr;
  QSpinBox* extend_frames_ = nullptr;
  QSpinBox* range_first_ = nullptr;
  QSpinBox* range_last_ = nullptr;
  QDoubleSpinBox* range_level_ = nullptr;
  QSpinBox* gap_a_ = nullptr;
  QSpinBox* gap_b_ = nullptr;
  QPushButton* apply_layout_ = nullptr;
  QSpinBox* source_first_ = nullptr;
  QSpinBox* source_count_ = nullptr;
  QComboBox* fit_ = nullptr;
  // Schedule.
  QComboBox* shape_ = nullptr;
  QSpinBox* steps_ = nullptr;
  QDoubleSpinBox* uncertainty_ = nullptr;
  QSpinBox* ar_step_ = nullptr;
  QSpinBox* block_ = nullptr;
  QDoubleSpinBox* eta_ = nullptr;
  QComboBox* solver_ = nullptr;
  QCheckBox* exact_ = nullptr;
  QDoubleSpinBox* stab_user_ = nullptr;
  QDoubleSpinBox* stab_generated_ = nullptr;
  // Guidance and window.
  QComboBox* guidance_ = nullptr;
  QDoubleSpinBox* guidance_scale_ = nullptr;
  QDoubleSpinBox* fractional_ = nullptr;
  QSpinBox* horizon_ = nullptr;
  QSpinBox* context_ = nullptr;
  QLabel* window_pins_ = nullptr;
  // Seed.
  QLineEdit* seed_ = nullptr;
  QCheckBox* seed_locked_ = nullptr;
  QCheckBox* detail_transfer_ = nullptr;
  QPushButton* randomise_ = nullptr;
  // Run.
  QPushButton* generate_ = nullptr;
  QPushButton* stop_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QLabel* progress_text_ = nullptr;
};

}  // namespace dfs::ui
