// main_window_playback.cpp — MainWindow's playback and viewing: seeking, playing forwards or
// backwards at the clip's frame rate (J/L again = faster), looping, and the viewer's modes.
#include "dfs/ui/main_window.h"

#include <QAction>
#include <QTimer>
#include <algorithm>
#include <cmath>

#include "main_window_state.h"
#include "noise_curve_panel.h"
#include "timeline_widget.h"

namespace dfs::ui {

void MainWindow::seek(int position) {
  const int length = s_->doc.project().timeline.length();
  if (length == 0) return;
  s_->current = std::clamp(position, 0, length - 1);
  s_->timeline->set_current(s_->current);
  s_->noise->set_current_frame(s_->current);
  refresh_viewer();
}

int MainWindow::current_position() const {
  return s_->current;
}

void MainWindow::play(int direction) {
  const double fps = s_->doc.project().clip.fps > 0 ? s_->doc.project().clip.fps : 8.0;
  s_->play_direction = direction;
  s_->play_timer.start(std::max(1, static_cast<int>(std::lround(1000.0 / (fps * s_->play_speed)))));
}

void MainWindow::pause() {
  s_->play_timer.stop();
  s_->play_direction = 0;
  s_->play_speed = 1;
}

bool MainWindow::is_playing() const {
  return s_->play_timer.isActive();
}

void MainWindow::set_view_mode(int mode) {
  if (mode < 0 || mode >= static_cast<int>(s_->view_modes.size())) return;
  s_->view_modes[static_cast<size_t>(mode)]->trigger();
}

void MainWindow::step_playback() {
  const int length = s_->doc.project().timeline.length();
  if (length == 0) {
    pause();
    return;
  }
  int next = s_->current + s_->play_direction;
  if (next >= length) next = 0;  // loop
  if (next < 0) next = length - 1;
  seek(next);
}

}  // namespace dfs::ui
