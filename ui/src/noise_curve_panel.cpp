// noise_curve_panel.cpp — see noise_curve_panel.h.
#include "noise_curve_panel.h"

#include <QTimer>
#include <algorithm>
#include <cmath>
#include <cstdio>

#include <imgui.h>

#include "colors.h"

namespace dfs::ui {
namespace {

ImU32 to_u32(colors::Rgb c, float alpha = 1.0f) {
  return ImGui::ColorConvertFloat4ToU32(ImVec4(c.r, c.g, c.b, alpha));
}
ImU32 to_u32(std::uint32_t rgb, float alpha = 1.0f) {
  return to_u32(colors::unpack(rgb), alpha);
}

constexpr float kRulerHeight = 22.0f;
constexpr float kPlotPad = 8.0f;      // room above level 1 and below level 0 for the points
constexpr double kRampStart = 0.2;    // a ramp starts here: the first frame keeps most structure
constexpr double kMinViewFrames = 8;  // zooming in stops at this many frames across

}  // namespace

NoiseCurvePanel::NoiseCurvePanel(QWidget* parent) : ImGuiWidget(parent) {
  setAccessibleName("Per-frame noise curve");
}

void NoiseCurvePanel::set_levels(const std::vector<double>& levels) {
  if (drag_ == Drag::Paint) return;  // our own live edit is echoing back
  if (levels == levels_) return;  // (a render costs 5-10 ms on software OpenGL)
  levels_ = levels;
  content_changed();
}

void NoiseCurvePanel::set_frame_flags(const std::vector<std::uint8_t>& flags) {
  if (flags == flags_) return;
  flags_ = flags;
  content_changed();
}

void NoiseCurvePanel::set_current_frame(int frame) {
  if (frame == current_frame_) return;
  current_frame_ = frame;
  content_changed();
}

void NoiseCurvePanel::set_selection(int first, int last) {
  selection_ = {first, last};
  content_changed();
}

bool NoiseCurvePanel::pinned(int frame) const {
  return frame >= 0 && frame < static_cast<int>(flags_.size()) &&
         (flags_[static_cast<size_t>(frame)] & kFramePinned) != 0;
}

int NoiseCurvePanel::range_first() const {
  return selection_.empty() ? 0 : std::max(0, selection_.first);
}

int NoiseCurvePanel::range_last() const {
  const int last = static_cast<int>(levels_.size()) - 1;
  return selection_.empty() ? last : std::min(last, selection_.last);
}

void NoiseCurvePanel::commit(const QString& what) {
  const std::vector<double> levels = levels_;
  QTimer::singleShot(0, this, [this, levels, what] { emit levels_committed(levels, what); });
  request_redraw();
}

void NoiseCurvePanel::apply_new_frames_at_one() {
  for (size_t i = 0; i < levels_.size(); ++i) {
    const std::uint8_t f = i < flags_.size() ? flags_[i] : 0;
    if (!(f & kFrameHasSource) && !(f & kFramePinned)) levels_[i] = 1.0;
  }
  commit("Noise preset: new frames at 1");
}

void NoiseCurvePanel::apply_ramp() {
  const int a = range_first();
  const int b = range_last();
  if (b < a) return;
  for (int i = a; i <= b; ++i) {
    if (pinned(i)) continue;
    const double t = b > a ? static_cast<double>(i - a) / (b - a) : 1.0;
    levels_[static_cast<size_t>(i)] = kRampStart + (1.0 - kRampStart) * t;
  }
  commit("Noise preset: ramp");
}

void NoiseCurvePanel::apply_level_to_range(double level) {
  const int a = range_first();
  const int b = range_last();
  level = std::clamp(level, 0.0, 1.0);
  for (int i = a; i <= b; ++i)
    if (!pinned(i)) levels_[static_cast<size_t>(i)] = level;
  char what[64];
  std::snprintf(what, sizeof what, "Set noise %.2f on frames %d-%d", level, a, b);
  commit(QString::fromUtf8(what));
}

void NoiseCurvePanel::draw_ui() {
  const int count = static_cast<int>(levels_.size());

  // [SECTION] Bar: range, level, presets
  {
    int range[2] = {selection_.empty() ? 0 : selection_.first,
                    selection_.empty() ? std::max(0, count - 1) : selection_.last};
    ImGui::SetNextItemWidth(150);
    if (ImGui::DragInt2("##range", range, 0.25f, 0, std::max(0, count - 1))) {
      selection_ = FrameSpan::between(range[0], range[1]);
      const int a = selection_.first;
      const int b = selection_.last;
      QTimer::singleShot(0, this, [this, a, b] { emit selection_changed(a, b); });
    }
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip(
          "Selected frames (first, last). Ctrl+drag in the curve or drag on the "
          "ruler to select. Nothing selected = the whole timeline.");
    ImGui::SameLine();
    ImGui::SetNextItemWidth(110);
    ImGui::SliderFloat("##level", &range_level_, 0.0f, 1.0f, "level %.2f");
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip(
          "Start level for the range: 0 keeps the frame, 1 regenerates it from "
          "pure noise, between = regenerate loosely keeping structure.");
    ImGui::SameLine();
    if (ImGui::SmallButton("Set range")) apply_level_to_range(range_level_);
    ImGui::SameLine();
    ImGui::TextDisabled("|");
    ImGui::SameLine();
    if (ImGui::SmallButton("New frames = 1")) apply_new_frames_at_one();
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("Every frame past the end of the clip starts from pure noise.");
    ImGui::SameLine();
    if (ImGui::SmallButton("Ramp")) apply_ramp();
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("Range rises from %.1f to 1: early frames keep more of the source.",
                        kRampStart);
    ImGui::SameLine();
    if (ImGui::SmallButton("Keep structure 0.5")) apply_level_to_range(0.5);
    if (ImGui::IsItemHovered())
      ImGui::SetTooltip("Range at 0.5: regenerated loosely around the source (SDEdit-like).");
    ImGui::SameLine();
    if (ImGui::SmallButton("Fit")) {
      view_first_ = 0;
      view_count_ = 0;
    }
  }

  if (count == 0) {
    ImGui::TextDisabled("Open a clip to edit per-frame noise.");
    return;
  }

  // [SECTION] Geometry
  if (view_count_ <= 0 || view_count_ > count) {
    view_first_ = 0;
    view_count_ = count;
  }
  view_first_ = std::clamp(view_first_, 0.0, std::max(0.0, count - view_count_));
  ImDrawList* draw = ImGui::GetWindowDrawList();
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float label_w = 26.0f;
  const ImVec2 plot0(origin.x + label_w, origin.y + kPlotPad);
  const float plot_w = std::max(10.0f, avail.x - label_w - 4.0f);
  const float plot_h = std::max(10.0f, avail.y - kRulerHeight - 2 * kPlotPad);
  const float ruler_y = plot0.y + plot_h + kPlotPad;
  const float px_per_frame = plot_w / static_cast<float>(view_count_);
  auto x_of = [&](double frame) {
    return plot0.x + static_cast<float>((frame + 0.5 - view_first_) / view_count_) * plot_w;
  };
  auto y_of = [&](double level) { return plot0.y + static_cast<float>(1.0 - level) * plot_h; };
  auto frame_at = [&](float x) {
    const double f = view_first_ + (x - plot0.x) / plot_w * view_count_;
    return std::clamp(static_cast<int>(std::floor(f)), 0, count - 1);
  };
  auto level_at = [&](float y) {
    return std::clamp(1.0 - static_cast<double>((y - plot0.y) / plot_h), 0.0, 1.0);
  };

  ImGui::InvisibleButton("##plot", ImVec2(avail.x, avail.y),
                         ImGuiButtonFlags_MouseButtonLeft | ImGuiButtonFlags_MouseButtonMiddle);
  const bool hovered = ImGui::IsItemHovered();
  const ImGuiIO& io = ImGui::GetIO();
  const ImVec2 mouse = io.MousePos;

  // [SECTION] Input
  if (hovered && io.MouseWheel != 0.0f) {
    const double anchor = view_first_ + (mouse.x - plot0.x) / plot_w * view_count_;
    const double factor = std::pow(0.8, static_cast<double>(io.MouseWheel));
    const double next = std::clamp(view_count_ * factor, std::min<double>(kMinViewFrames, count),
                                   static_cast<double>(count));
    view_first_ = anchor - (anchor - view_first_) * next / view_count_;
    view_count_ = next;
  }
  if (hovered && ImGui::IsMouseClicked(ImGuiMouseButton_Left)) {
    const bool on_ruler = mouse.y >= ruler_y;
    drag_ = (io.KeyCtrl || on_ruler) ? Drag::Select : Drag::Paint;
    drag_anchor_ = frame_at(mouse.x);
    last_paint_frame_ = -1;
    painted_ = false;
  }
  if (hovered && ImGui::IsMouseClicked(ImGuiMouseButton_Middle)) drag_ = Drag::Pan;

  if (drag_ == Drag::Paint && io.MouseDown[ImGuiMouseButton_Left]) {
    const int f = frame_at(mouse.x);
    const double level = level_at(mouse.y);
    const FrameSpan crossed = FrameSpan::between(last_paint_frame_ < 0 ? f : last_paint_frame_, f);
    for (int i = crossed.first; i <= crossed.last; ++i) {
      if (pinned(i)) continue;
      double& value = levels_[static_cast<size_t>(i)];
      if (value != level) {
        value = level;
        painted_ = true;
      }
    }
    last_paint_frame_ = f;
    if (painted_) {
      const std::vector<double> levels = levels_;
      QTimer::singleShot(0, this, [this, levels] { emit levels_changed(levels); });
    }
  } else if (drag_ == Drag::Select && io.MouseDown[ImGuiMouseButton_Left]) {
    const int f = frame_at(mouse.x);
    selection_ = FrameSpan::between(drag_anchor_, f);
  } else if (drag_ == Drag::Pan && io.MouseDown[ImGuiMouseButton_Middle]) {
    view_first_ -= static_cast<double>(io.MouseDelta.x) / plot_w * view_count_;
  } else if (drag_ != Drag::None) {
    // The gesture ended.
    if (drag_ == Drag::Paint && painted_) {
      drag_ = Drag::None;
      commit("Paint noise levels");
    } else if (drag_ == Drag::Select) {
      const int f = frame_at(mouse.x);
      if (f == drag_anchor_ && mouse.y >= ruler_y) {
        selection_ = {};  // a click on the ruler seeks and clears the selection
        QTimer::singleShot(0, this, [this, f] { emit frame_clicked(f); });
      }
      const int a = selection_.first;
      const int b = selection_.last;
      QTimer::singleShot(0, this, [this, a, b] { emit selection_changed(a, b); });
    }
    drag_ = Drag::None;
  }

  // [SECTION] Plot
  const int first = std::max(0, static_cast<int>(std::floor(view_first_)));
  const int last = std::min(count - 1, static_cast<int>(std::ceil(view_first_ + view_count_)));
  draw->PushClipRect(ImVec2(plot0.x, origin.y), ImVec2(plot0.x + plot_w, ruler_y + kRulerHeight),
                     true);
  // Background: frames with source lighter than frames past the end of the clip.
  for (int i = first; i <= last; ++i) {
    const std::uint8_t f = i < static_cast<int>(flags_.size()) ? flags_[static_cast<size_t>(i)] : 0;
    const ImU32 bg = (f & kFrameHasSource) ? IM_COL32(42, 44, 50, 255) : IM_COL32(28, 28, 32, 255);
    draw->AddRectFilled(ImVec2(x_of(i - 0.5), plot0.y - kPlotPad), ImVec2(x_of(i + 0.5), ruler_y),
                        bg);
  }
  if (!selection_.empty())
    draw->AddRectFilled(ImVec2(x_of(selection_.first - 0.5), plot0.y - kPlotPad),
                        ImVec2(x_of(selection_.last + 0.5), ruler_y + kRulerHeight),
                        to_u32(colors::kSelection, 0.22f));
  for (int q = 0; q <= 4; ++q) {
    const float y = y_of(q / 4.0);
    draw->AddLine(ImVec2(plot0.x, y), ImVec2(plot0.x + plot_w, y),
                  q == 2 ? IM_COL32(255, 255, 255, 50) : IM_COL32(255, 255, 255, 22));
  }
  // The curve, then the points when they are far enough apart to grab.
  for (int i = first; i < last; ++i) {
    const double a = pinned(i) ? 0.0 : levels_[static_cast<size_t>(i)];
    const double b = pinned(i + 1) ? 0.0 : levels_[static_cast<size_t>(i + 1)];
    draw->AddLine(ImVec2(x_of(i), y_of(a)), ImVec2(x_of(i + 1), y_of(b)),
                  IM_COL32(220, 220, 220, 200), 1.5f);
  }
  const float radius = std::clamp(px_per_frame * 0.35f, 1.5f, 4.5f);
  for (int i = first; i <= last; ++i) {
    const bool pin = pinned(i);
    const double level = pin ? 0.0 : levels_[static_cast<size_t>(i)];
    const ImU32 color = pin ? to_u32(colors::kPinned) : to_u32(colors::level_color(level));
    draw->AddCircleFilled(ImVec2(x_of(i), y_of(level)), radius, color);
  }
  const float cx = x_of(current_frame_);
  draw->AddLine(ImVec2(cx, plot0.y - kPlotPad), ImVec2(cx, ruler_y + kRulerHeight),
                to_u32(colors::kCurrent, 0.8f), 1.5f);

  // [SECTION] Ruler: pins, generated frames, frame numbers
  draw->AddRectFilled(ImVec2(plot0.x, ruler_y), ImVec2(plot0.x + plot_w, ruler_y + kRulerHeight),
                      IM_COL32(20, 20, 22, 255));
  for (int i = first; i <= last; ++i) {
    const std::uint8_t f = i < static_cast<int>(flags_.size()) ? flags_[static_cast<size_t>(i)] : 0;
    const float x0 = x_of(i - 0.5);
    const float x1 = std::max(x0 + 1.0f, x_of(i + 0.5) - (px_per_frame > 3 ? 1.0f : 0.0f));
    if (f & kFramePinned)
      draw->AddRectFilled(ImVec2(x0, ruler_y), ImVec2(x1, ruler_y + 5), to_u32(colors::kPinned));
    if (f & kFrameGenerated)
      draw->AddRectFilled(ImVec2(x0, ruler_y + 5), ImVec2(x1, ruler_y + 9),
                          to_u32(colors::kGenerated));
  }
  const int every = std::max(1, static_cast<int>(std::ceil(40.0f / px_per_frame)));
  const int nice[] = {1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000};
  int step = nice[std::size(nice) - 1];
  for (int n : nice)
    if (n >= every) {
      step = n;
      break;
    }
  for (int i = (first / step) * step; i <= last; i += step) {
    char text[16];
    std::snprintf(text, sizeof text, "%d", i);
    draw->AddLine(ImVec2(x_of(i), ruler_y + 9), ImVec2(x_of(i), ruler_y + 12),
                  IM_COL32(160, 160, 160, 255));
    draw->AddText(ImVec2(x_of(i) + 2, ruler_y + 8), IM_COL32(160, 160, 160, 255), text);
  }
  draw->PopClipRect();

  // Level labels.
  for (int q = 0; q <= 4; q += 2) {
    char text[8];
    std::snprintf(text, sizeof text, "%.1f", q / 4.0);
    draw->AddText(ImVec2(origin.x, y_of(q / 4.0) - 6), IM_COL32(150, 150, 150, 255), text);
  }

  if (hovered && drag_ == Drag::None && mouse.x >= plot0.x) {
    const int f = frame_at(mouse.x);
    const std::uint8_t flags =
        f < static_cast<int>(flags_.size()) ? flags_[static_cast<size_t>(f)] : 0;
    ImGui::BeginTooltip();
    ImGui::Text("frame %d: level %.2f", f, pinned(f) ? 0.0 : levels_[static_cast<size_t>(f)]);
    if (flags & kFramePinned)
      ImGui::TextColored(ImVec4(0.95f, 0.66f, 0.23f, 1), "pinned (kept exactly)");
    if (flags & kFrameGenerated) ImGui::TextColored(ImVec4(0.24f, 0.78f, 0.64f, 1), "generated");
    if (!(flags & kFrameHasSource)) ImGui::TextDisabled("past the end of the clip");
    ImGui::EndTooltip();
  }
}

}  // namespace dfs::ui
