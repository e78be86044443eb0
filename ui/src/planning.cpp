// planning.cpp — see planning.h.
#include "planning.h"

#include <QObject>
#include <QStringList>
#include <algorithm>

namespace dfs::ui {

PlanResult plan_windows(const project::Project& project, const diffusion::ModelInfo& model,
                        const std::map<int, Frame>& results) {
  PlanResult out;
  const project::Timeline& t = project.timeline;
  const int length = t.length();
  if (length == 0) {
    out.problem = QObject::tr("The timeline is empty: open a clip.");
    return out;
  }
  if (model.width <= 0 || model.max_frames <= 0) {
    out.problem = QObject::tr("No model loaded yet.");
    return out;
  }
  // The job's rule: pinned, or level 0 over existing content, is kept; the rest is generated.
  std::vector<bool> has(static_cast<size_t>(length)), kept(static_cast<size_t>(length));
  int first_generated = -1;
  for (int p = 0; p < length; ++p) {
    has[static_cast<size_t>(p)] = t.is_source(p) || results.count(p) != 0;
    kept[static_cast<size_t>(p)] =
        t.pinned(p) || (has[static_cast<size_t>(p)] && t.noise[static_cast<size_t>(p)] == 0.0);
    if (!kept[static_cast<size_t>(p)]) {
      ++out.frames_to_generate;
      if (first_generated < 0) first_generated = p;
    }
  }
  if (first_generated < 0) {
    out.problem = QObject::tr("Nothing to generate: every frame is pinned or kept at level 0. "
                              "Extend the clip, unpin frames or raise their noise.");
    return out;
  }
  const int start = std::max(0, first_generated - project.generation.rollout.context);
  // Planning looks at which frames are known, not at pixels: one shared placeholder picture.
  const Frame placeholder(model.width, model.height);
  std::vector<diffusion::TimelineFrame> planning(static_cast<size_t>(length - start));
  for (int p = start; p < length; ++p) {
    auto& f = planning[static_cast<size_t>(p - start)];
    if (has[static_cast<size_t>(p)]) f.content = placeholder;
    f.pinned = kept[static_cast<size_t>(p)];
    f.start_level = (f.pinned || !has[static_cast<size_t>(p)]) ? 1.0 : t.noise[static_cast<size_t>(p)];
  }
  try {
    out.windows = diffusion::plan_rollout(model, planning, project.generation.rollout);
  } catch (const std::exception& e) {
    out.problem = QString::fromUtf8(e.what());
    return out;
  }
  for (auto& w : out.windows) {
    w.first += start;
    for (int& f : w.frames) f += start;
  }
  return out;
}

QString describe_window_pins(const diffusion::WindowPlan& window, const project::Timeline& timeline) {
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
  QString text = pins.empty() ? QObject::tr("no pins") : QObject::tr("pins %1 (%2 frames)").arg(ranges(pins)).arg(pins.size());
  if (!context.empty()) text += QObject::tr("; kept context %1").arg(ranges(context));
  return text;
}

}  // namespace dfs::ui
