// heat_map_panel.cpp — see heat_map_panel.h.
#include "heat_map_panel.h"

#include <QTimer>
#include <algorithm>
#include <cstdio>

#include <imgui.h>

#include "colors.h"

namespace dfs::ui {
namespace {

ImU32 to_u32(colors::Rgb c, float alpha = 1.0f) {
  return ImGui::ColorConvertFloat4ToU32(ImVec4(c.r, c.g, c.b, alpha));
}

struct Preset {
  diffusion::ScheduleShape shape;
  const char* label;
  const char* tooltip;
};

constexpr Preset kPresets[] = {
    {diffusion::ScheduleShape::FullSequence, "Full sequence",
     "Every generated frame is denoised together, same level at every step."},
    {diffusion::ScheduleShape::Autoregressive, "Autoregressive",
     "One frame is finished before the next one starts (pyramid with u = steps)."},
    {diffusion::ScheduleShape::Pyramid, "Pyramid",
     "Frame t lags frame t-1 by 'uncertainty' steps: near frames are surer than far ones."},
    {diffusion::ScheduleShape::Trapezoid, "Trapezoid",
     "Both ends of the window finish first, the middle last (good for filling gaps)."},
    {diffusion::ScheduleShape::AsyncBlocks, "Async blocks",
     "Blocks of frames; each block lags the previous by 'ar step' steps (SkyReels-V2)."},
};

}  // namespace

HeatMapPanel::HeatMapPanel(QWidget* parent) : ImGuiWidget(parent) {
  setToolTip({});
  setAccessibleName("Scheduling matrix heat map");
}

namespace {

bool same_plans(const std::vector<diffusion::WindowPlan>& a,
                const std::vector<diffusion::WindowPlan>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto &x = a[i], &y = b[i];
    if (x.first != y.first || x.frames != y.frames || x.known != y.known ||
        x.matrix.rows != y.matrix.rows || x.matrix.frames != y.matrix.frames ||
        x.matrix.steps != y.matrix.steps || x.matrix.cells != y.matrix.cells)
      return false;
  }
  return true;
}

}  // namespace

// Each setter renders the panel again only when what it shows changed: a render is the
// window's costliest paint on software OpenGL (5-10 ms, several times that beside a busy
// program), and refresh_all() sets everything after every edit and at a run's end.
void HeatMapPanel::set_plans(std::vector<diffusion::WindowPlan> plans) {
  if (problem_.isEmpty() && same_plans(plans, plans_)) return;
  plans_ = std::move(plans);
  problem_.clear();
  if (shown_window_ >= static_cast<int>(plans_.size())) shown_window_ = 0;
  content_changed();
}

void HeatMapPanel::set_problem(const QString& problem) {
  if (problem == problem_) return;
  problem_ = problem;
  content_changed();
}

void HeatMapPanel::set_shape(diffusion::ScheduleShape shape) {
  if (shape == shape_) return;
  shape_ = shape;
  content_changed();
}

void HeatMapPanel::set_progress(int window, int row) {
  if (window == running_window_ && row == running_row_) return;
  running_window_ = window;
  running_row_ = row;
  if (window >= 0 && window < static_cast<int>(plans_.size())) shown_window_ = window;
  content_changed();
}

void HeatMapPanel::clear_progress() {
  if (running_window_ == -1 && running_row_ == -1) return;
  running_window_ = -1;
  running_row_ = -1;
  content_changed();
}

void HeatMapPanel::show_window(int window) {
  if (window >= 0 && window < static_cast<int>(plans_.size())) shown_window_ = window;
  content_changed();
}

void HeatMapPanel::draw_ui() {
  // [SECTION] Preset bar
  for (const Preset& preset : kPresets) {
    const bool active = preset.shape == shape_;
    if (active)
      ImGui::PushStyleColor(ImGuiCol_Button, ImGui::GetStyleColorVec4(ImGuiCol_ButtonActive));
    if (ImGui::SmallButton(preset.label)) {
      const diffusion::ScheduleShape picked = preset.shape;
      // Emit after this ImGui frame: a slot may call set_plans() while we are drawing.
      QTimer::singleShot(0, this, [this, picked] { emit shape_picked(picked); });
    }
    if (active) ImGui::PopStyleColor();
    if (ImGui::IsItemHovered()) ImGui::SetTooltip("%s", preset.tooltip);
    ImGui::SameLine();
  }
  ImGui::NewLine();

  if (!problem_.isEmpty()) {
    ImGui::PushStyleColor(ImGuiCol_Text, IM_COL32(255, 120, 100, 255));
    ImGui::TextWrapped("%s", problem_.toUtf8().constData());
    ImGui::PopStyleColor();
    return;
  }
  if (plans_.empty()) {
    ImGui::TextDisabled(
        "Nothing to generate: extend the clip, or unpin frames / raise their noise.");
    return;
  }

  // [SECTION] Window selector
  const int windows = static_cast<int>(plans_.size());
  if (windows > 1) {
    int shown = shown_window_ + 1;
    ImGui::SetNextItemWidth(std::min(240.0f, ImGui::GetContentRegionAvail().x * 0.5f));
    if (ImGui::SliderInt("##window", &shown, 1, windows, "window %d")) shown_window_ = shown - 1;
    ImGui::SameLine();
    ImGui::Text("of %d", windows);
    ImGui::SameLine();
  }
  const diffusion::WindowPlan& plan = plans_[static_cast<size_t>(shown_window_)];
  const diffusion::SchedulingMatrix& matrix = plan.matrix;
  const int generated = static_cast<int>(std::count(plan.known.begin(), plan.known.end(), false));
  ImGui::Text("frames %d-%d", plan.first, plan.frames.empty() ? plan.first : plan.frames.back());
  ImGui::Text("%d generated, %d context, %d rows, S = %d", generated,
              static_cast<int>(plan.frames.size()) - generated, matrix.rows, matrix.steps);
  if (running_window_ >= 0)
    ImGui::TextColored(ImVec4(1, 1, 1, 1), "running: window %d, row %d", running_window_ + 1,
                       running_row_);
  else
    ImGui::TextDisabled("hover a row: what that step updates | drag a column: start level");

  if (matrix.rows <= 0 || matrix.frames <= 0 || matrix.steps <= 0) return;

  // [SECTION] Grid
  ImDrawList* draw = ImGui::GetWindowDrawList();
  const float label_w = 28.0f;
  const float header_h = ImGui::GetTextLineHeight() + 2.0f;
  const float legend_h = 14.0f;
  const ImVec2 origin = ImGui::GetCursorScreenPos();
  const ImVec2 avail = ImGui::GetContentRegionAvail();
  const float grid_w = std::max(10.0f, avail.x - label_w);
  const float grid_h = std::max(10.0f, avail.y - header_h - legend_h - 6.0f);
  const float cell_w = grid_w / static_cast<float>(matrix.frames);
  const float cell_h = grid_h / static_cast<float>(matrix.rows);
  const ImVec2 grid0(origin.x + label_w, origin.y + header_h);

  ImGui::InvisibleButton("##grid", ImVec2(label_w + grid_w, header_h + grid_h));
  int hover_row = -1;
  int hover_col = -1;
  if (ImGui::IsItemHovered()) {
    const ImVec2 mouse = ImGui::GetIO().MousePos;
    const int r = static_cast<int>((mouse.y - grid0.y) / cell_h);
    const int c = static_cast<int>((mouse.x - grid0.x) / cell_w);
    if (mouse.y >= grid0.y && r >= 0 && r < matrix.rows) hover_row = r;
    if (mouse.x >= grid0.x && c >= 0 && c < matrix.frames) hover_col = c;
  }
  // Painting: dragging in a generated column sets that frame's start level (row 0 of the
  // matrix = the per-frame noise curve), higher = more noise. Not while generating.
  if (ImGui::IsItemActive() && running_window_ < 0) {
    const ImVec2 mouse = ImGui::GetIO().MousePos;
    const int c = static_cast<int>(std::floor((mouse.x - grid0.x) / cell_w));
    if (c >= 0 && c < matrix.frames && c < static_cast<int>(plan.known.size()) &&
        !plan.known[static_cast<size_t>(c)] && c < static_cast<int>(plan.frames.size())) {
      const double level =
          std::clamp(1.0 - static_cast<double>((mouse.y - grid0.y) / grid_h), 0.0, 1.0);
      const int position = plan.frames[static_cast<size_t>(c)];
      if (position != painted_position_ || level != painted_level_) {
        painted_position_ = position;
        painted_level_ = level;
        painting_ = true;
        QTimer::singleShot(0, this,
                           [this, position, level] { emit start_level_painted(position, level); });
      }
    }
  } else if (painting_) {
    painting_ = false;
    painted_position_ = -1;
    QTimer::singleShot(0, this, [this] { emit painting_finished(); });
  }

  const ImU32 hatch = IM_COL32(255, 255, 255, 40);
  for (int col = 0; col < matrix.frames; ++col) {
    const float x0 = grid0.x + cell_w * static_cast<float>(col);
    const bool known =
        col < static_cast<int>(plan.known.size()) && plan.known[static_cast<size_t>(col)];
    for (int row = 0; row < matrix.rows; ++row) {
      const float y0 = grid0.y + cell_h * static_cast<float>(row);
      const double level = static_cast<double>(matrix.at(row, col)) / matrix.steps;
      const bool done = running_window_ == shown_window_ && row < running_row_;
      ImU32 fill = to_u32(colors::level_color(level), done ? 0.45f : 1.0f);
      draw->AddRectFilled(ImVec2(x0, y0), ImVec2(x0 + cell_w, y0 + cell_h), fill);
    }
    if (known) {
      // Hatching marks conditioning columns: these frames are inputs, never updated.
      const float top = grid0.y;
      const float bottom = grid0.y + grid_h;
      draw->PushClipRect(ImVec2(x0, top), ImVec2(x0 + cell_w, bottom), true);
      for (float y = top - cell_w; y < bottom; y += 6.0f)
        draw->AddLine(ImVec2(x0, y + cell_w), ImVec2(x0 + cell_w, y), hatch);
      draw->PopClipRect();
    }
    // Column header: the timeline frame index, thinned out to what fits.
    const int every = std::max(1, static_cast<int>(std::ceil(30.0f / cell_w)));
    if (col % every == 0 && col < static_cast<int>(plan.frames.size())) {
      char text[16];
      std::snprintf(text, sizeof text, "%d", plan.frames[static_cast<size_t>(col)]);
      const ImU32 color = known ? to_u32(colors::unpack(colors::kPinned))
                                : to_u32(colors::unpack(colors::kGenerated));
      draw->AddText(ImVec2(x0 + 1, origin.y), color, text);
    }
  }
  // Grid lines when cells are big enough to read.
  if (cell_w >= 6.0f)
    for (int col = 1; col < matrix.frames; ++col) {
      const float x = grid0.x + cell_w * static_cast<float>(col);
      draw->AddLine(ImVec2(x, grid0.y), ImVec2(x, grid0.y + grid_h), IM_COL32(0, 0, 0, 90));
    }
  // Row labels.
  const int row_every =
      std::max(1, static_cast<int>(std::ceil(ImGui::GetTextLineHeight() / cell_h)));
  for (int row = 0; row < matrix.rows; row += row_every) {
    char text[16];
    std::snprintf(text, sizeof text, "%d", row);
    draw->AddText(ImVec2(origin.x, grid0.y + cell_h * static_cast<float>(row)),
                  IM_COL32(170, 170, 170, 255), text);
  }

  // The cells a step touches: entries that drop from row m to m+1.
  auto outline_step = [&](int row, ImU32 color, float thickness) {
    if (row < 0 || row + 1 >= matrix.rows) return;
    for (int col = 0; col < matrix.frames; ++col) {
      if (matrix.at(row + 1, col) >= matrix.at(row, col)) continue;
      const float x0 = grid0.x + cell_w * static_cast<float>(col);
      const float y0 = grid0.y + cell_h * static_cast<float>(row + 1);
      draw->AddRect(ImVec2(x0 + 1, y0 + 1), ImVec2(x0 + cell_w - 1, y0 + cell_h - 1), color, 0, 0,
                    thickness);
    }
  };
  if (running_window_ == shown_window_ && running_row_ >= 0) {
    const float y0 = grid0.y + cell_h * static_cast<float>(std::min(running_row_, matrix.rows - 1));
    draw->AddRect(ImVec2(grid0.x - 3, y0), ImVec2(grid0.x + grid_w + 1, y0 + cell_h),
                  IM_COL32(255, 255, 255, 255), 0, 0, 2.5f);
    outline_step(running_row_, IM_COL32(255, 80, 80, 255), 2.0f);
  }
  if (hover_row >= 0) {
    outline_step(hover_row, IM_COL32(255, 255, 255, 220), 1.5f);
    const int col = hover_col;
    if (col >= 0) {
      const int entry = matrix.at(hover_row, col);
      const bool known =
          col < static_cast<int>(plan.known.size()) && plan.known[static_cast<size_t>(col)];
      ImGui::BeginTooltip();
      ImGui::Text(
          "row %d, frame %d%s", hover_row,
          col < static_cast<int>(plan.frames.size()) ? plan.frames[static_cast<size_t>(col)] : col,
          known ? " (context)" : "");
      ImGui::Text("entry %d of %d  =  level %.2f", entry, matrix.steps,
                  static_cast<double>(entry) / matrix.steps);
      if (hover_row + 1 < matrix.rows && matrix.at(hover_row + 1, col) < entry)
        ImGui::Text("step %d -> %d updates this frame", hover_row, hover_row + 1);
      ImGui::EndTooltip();
    }
  }

  // [SECTION] Legend
  const float ly = grid0.y + grid_h + 4.0f;
  const float lw = std::min(200.0f, grid_w * 0.5f);
  constexpr int kLegendStops = 24;
  for (int i = 0; i < kLegendStops; ++i) {
    const float x0 = grid0.x + lw * static_cast<float>(i) / kLegendStops;
    const float x1 = grid0.x + lw * static_cast<float>(i + 1) / kLegendStops;
    draw->AddRectFilled(ImVec2(x0, ly), ImVec2(x1, ly + legend_h - 4),
                        to_u32(colors::level_color(static_cast<double>(i) / (kLegendStops - 1))));
  }
  draw->AddText(ImVec2(grid0.x + lw + 6, ly - 3), IM_COL32(200, 200, 200, 255),
                "0 clean .. 1 noise; hatched = context");
}

}  // namespace dfs::ui
