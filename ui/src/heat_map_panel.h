// heat_map_panel.h — the scheduling-matrix heat map (a Dear ImGui panel, see imgui_widget.h).
//
// Shows the matrix M[m, t] of one rollout window: rows = sampling steps m (top = row 0, the
// start levels), columns = the window's frames, colour = level M[m,t] / S (viridis: dark =
// clean, yellow = pure noise). Known context frames (pinned or generated earlier) are drawn
// hatched. Hovering a row outlines the cells that step touches (the frames whose entry drops
// from row m to m+1: they get one sampler update). During generation the running row is
// highlighted and the panel follows the running window. Preset buttons pick a matrix shape.
// Dragging up/down in a generated column paints that frame's start level (row 0).
// GUI thread only.
#pragma once

#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/ui/imgui_widget.h"

namespace dfs::ui {

class HeatMapPanel : public ImGuiWidget {
  Q_OBJECT

 public:
  explicit HeatMapPanel(QWidget* parent = nullptr);

  // The planned windows of the current settings (dfs::diffusion::plan_rollout). Keeps the
  // shown window index when it is still valid.
  void set_plans(std::vector<diffusion::WindowPlan> plans);
  // An error to show instead of a matrix (settings that cannot be planned), "" = none.
  void set_problem(const QString& problem);
  // Which preset button is drawn as active.
  void set_shape(diffusion::ScheduleShape shape);
  // During generation: the running window and matrix row. clear_progress() ends it.
  void set_progress(int window, int row);
  void clear_progress();

  int shown_window() const { return shown_window_; }
  void show_window(int window);
  const std::vector<diffusion::WindowPlan>& plans() const { return plans_; }

 signals:
  void shape_picked(dfs::diffusion::ScheduleShape shape);  // a preset button was clicked
  void start_level_painted(int position, double level);    // drag in a generated column
  void painting_finished();                                // the drag ended (one undo step)

 protected:
  void draw_ui() override;

 private:
  std::vector<diffusion::WindowPlan> plans_;
  QString problem_;
  diffusion::ScheduleShape shape_ = diffusion::ScheduleShape::Pyramid;
  int shown_window_ = 0;
  int running_window_ = -1;  // -1: not generating
  int running_row_ = -1;
  bool painting_ = false;
  int painted_position_ = -1;
  double painted_level_ = -1;
};

}  // namespace dfs::ui
