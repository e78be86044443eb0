// planning.cpp — see planning.h.
#include "planning.h"

#include <QObject>
#include <QStringList>
#include <algorithm>
#include <set>

#include "dfs/project/generation.h"

namespace dfs::ui {

PlanResult plan_windows(const project::Project& project, const diffusion::ModelInfo& model,
                        const std::map<int, Frame>& results) {
  PlanResult out;
  if (project.timeline.length() == 0) {
    out.problem = QObject::tr("The timeline is empty: open a clip.");
    return out;
  }
  if (model.width <= 0 || model.max_frames <= 0) {
    out.problem = QObject::tr("No model loaded yet.");
    return out;
  }
  std::set<int> previous;
  for (const auto& entry : results) previous.insert(entry.first);
  try {
    // The job's own planning: what the heat map shows is what a run will do.
    project::GenerationPlan plan = project::plan_generation(project, model, previous);
    out.windows = std::move(plan.windows);
    out.frames_to_generate = plan.frames_to_generate;
  } catch (const std::exception& e) {
    out.problem = QString::fromUtf8(e.what());
  }
  return out;
}

QString describe_window_pins(const diffusion::WindowPlan& window,
                             const project::Timeline& timeline) {
  std::vector<int> pins;
  std::vector<int> context;
  for (size_t i = 0; i < window.frames.size(); ++i) {
    if (!window.known[i]) continue;
    (timeline.pinned(window.frames[i]) ? pins : context).push_back(window.frames[i]);
  }
  auto ranges = [](const std::vector<int>& v) {
    QStringList parts;
    for (size_t i = 0; i < v.size();) {
      size_t j = i;
      while (j + 1 < v.size() && v[j + 1] == v[j] + 1) ++j;
      parts << (i == j ? QString::number(v[i]) : QString("%1-%2").arg(v[i]).arg(v[j]));
      i = j + 1;
    }
    return parts.join(", ");
  };
  QString text = pins.empty()
                     ? QObject::tr("no pins")
                     : QObject::tr("pins %1 (%2 frames)").arg(ranges(pins)).arg(pins.size());
  if (!context.empty()) text += QObject::tr("; kept context %1").arg(ranges(context));
  return text;
}

}  // namespace dfs::ui
