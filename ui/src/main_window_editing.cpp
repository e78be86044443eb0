// main_window_editing.cpp — MainWindow's edits of the document: each is one undo step, locked
// while a generation runs; pins, the selection (shared by filmstrip, noise curve and controls),
// undo and redo.
#include "dfs/ui/main_window.h"

#include <QAction>
#include <exception>

#include "controls_panel.h"
#include "main_window_state.h"
#include "noise_curve_panel.h"
#include "timeline_widget.h"

namespace dfs::ui {

bool MainWindow::edit_project(const QString& label,
                              const std::function<void(project::Project&)>& change) {
  if (s_->generating) {
    report_error(tr("Busy"), tr("Settings are locked while generating; press Stop first."));
    return false;
  }
  try {
    s_->doc.end_merge();
    const bool changed = s_->doc.edit(label.toStdString(), change);
    refresh_all();
    return changed;
  } catch (const std::exception& e) {
    report_error(tr("Cannot do that"), QString::fromUtf8(e.what()));
    refresh_all();
    return false;
  }
}

void MainWindow::toggle_pin(int position) {
  const project::Timeline& t = s_->doc.project().timeline;
  if (position < 0 || position >= t.length()) return;
  const bool pin = !t.pinned(position);
  if (pin && !t.is_source(position) && !s_->generated.count(position)) {
    report_error(tr("Nothing to pin"),
                 tr("Frame %1 has no picture yet: generate it first, then pin it.").arg(position));
    return;
  }
  edit_project(
      pin ? tr("Pin frame %1").arg(position) : tr("Unpin frame %1").arg(position),
      [position, pin](project::Project& p) { project::set_pinned(p.timeline, position, pin); });
}

void MainWindow::set_selection(int first, int last) {
  s_->selection_first = first;
  s_->selection_last = last;
  s_->timeline->set_selection(first, last);
  s_->noise->set_selection(first, last);
  s_->controls->set_selection(first, last);
  // The range actions (Edit menu and filmstrip context menu) say which frames they act on.
  const bool any = first <= last;
  s_->pin_range_action->setText(any ? tr("Pin frames %1-%2").arg(first).arg(last)
                                    : tr("Pin selected range"));
  s_->unpin_range_action->setText(any ? tr("Unpin frames %1-%2").arg(first).arg(last)
                                      : tr("Unpin selected range"));
}

bool MainWindow::undo() {
  if (s_->generating || !s_->doc.undo()) return false;
  refresh_all();
  follow_document_model();  // an undone "Use model x" brings the previous model back
  return true;
}

bool MainWindow::redo() {
  if (s_->generating || !s_->doc.redo()) return false;
  refresh_all();
  follow_document_model();
  return true;
}

}  // namespace dfs::ui
