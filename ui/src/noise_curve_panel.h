// noise_curve_panel.h — the per-frame noise curve over the timeline (Dear ImGui).
//
// One point per timeline frame: its start level, 0 (keep the frame) at the bottom to 1
// (regenerate from pure noise) at the top. Pinned frames sit at 0 in amber and cannot be
// dragged (unpin them first); generated frames are marked teal on the ruler.
//
// Mouse: left-drag in the plot paints levels (every frame the cursor crosses takes the
// cursor's height); Ctrl+drag or dragging on the ruler selects a range; a click on the ruler
// moves the playhead; the wheel zooms around the cursor, middle-drag pans. The bar above
// sets the selected range to a level and applies presets. Edits are reported live
// (levels_changed, for the heat map) and once per gesture (levels_committed, one undo step).
// GUI thread only.
#pragma once

#include <QString>
#include <cstdint>
#include <vector>

#include "dfs/ui/imgui_widget.h"
#include "frame_span.h"

namespace dfs::ui {

// What a timeline position holds, for drawing (bit flags).
enum FrameFlag : std::uint8_t {
  kFrameHasSource = 1,  // the clip has a frame here
  kFramePinned = 2,     // conditioning frame
  kFrameGenerated = 4,  // a final generated frame exists here
};

class NoiseCurvePanel : public ImGuiWidget {
  Q_OBJECT

 public:
  explicit NoiseCurvePanel(QWidget* parent = nullptr);

  void set_levels(const std::vector<double>& levels);            // one per timeline frame
  void set_frame_flags(const std::vector<std::uint8_t>& flags);  // FrameFlag bits per frame
  void set_current_frame(int frame);
  void set_selection(int first, int last);  // inclusive; first > last = none
  const std::vector<double>& levels() const { return levels_; }
  int selection_first() const { return selection_.first; }
  int selection_last() const { return selection_.last; }

  // Presets, also reachable from the bar. All skip pinned frames. They act on the
  // selection, or on the whole timeline if nothing is selected, and commit.
  void apply_new_frames_at_one();           // frames without source -> 1
  void apply_ramp();                        // 0.2 at the range start rising to 1 at its end
  void apply_level_to_range(double level);  // e.g. 0.5 = keep structure

 signals:
  void levels_changed(const std::vector<double>& levels);  // live, during a drag
  void levels_committed(const std::vector<double>& levels, const QString& what);
  void selection_changed(int first, int last);
  void frame_clicked(int frame);

 protected:
  void draw_ui() override;

 private:
  void commit(const QString& what);
  bool pinned(int frame) const;
  int range_first() const;
  int range_last() const;

  std::vector<double> levels_;
  std::vector<std::uint8_t> flags_;
  int current_frame_ = 0;
  FrameSpan selection_;
  float range_level_ = 0.5f;
  // View: frames [view_first_, view_first_ + view_count_) fill the plot width.
  double view_first_ = 0;
  double view_count_ = 0;  // 0 = fit everything
  // Gesture state.
  enum class Drag { None, Paint, Select, Pan } drag_ = Drag::None;
  int drag_anchor_ = -1;
  int last_paint_frame_ = -1;
  bool painted_ = false;
};

}  // namespace dfs::ui
