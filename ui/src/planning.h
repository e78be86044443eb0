// planning.h — the rollout windows of the current document, for the heat map and the
// "which pins this window uses" label, computed on the GUI thread without the model.
//
// Calls dfs::project::plan_generation (the job's own planning, no weights needed), so what the
// heat map shows is what a run will do; errors become a sentence to show. Pure; thread-safe.
#pragma once

#include <QString>
#include <map>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/frame.h"
#include "dfs/project/document.h"

namespace dfs::ui {

struct PlanResult {
  std::vector<diffusion::WindowPlan> windows;  // timeline positions
  QString problem;                             // why nothing can be planned ("" = fine)
  int frames_to_generate = 0;
};

// `results`: earlier generated frames by position (they count as content).
PlanResult plan_windows(const project::Project& project, const diffusion::ModelInfo& model,
                        const std::map<int, Frame>& results);

// "pins 4-7, 12 (5 frames)" — the pinned known frames of `window`, as compact ranges.
QString describe_window_pins(const diffusion::WindowPlan& window,
                             const project::Timeline& timeline);

}  // namespace dfs::ui
