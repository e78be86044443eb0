// dfs/ui/bench.h — measuring the Studio's responsiveness while it generates.
//
// A 5 ms QTimer runs on the GUI thread from Generate until the run is over *and* its end has
// been dealt with (the results shown, the take written and listed, then 300 ms more for what
// follows); the longest gap between two of its ticks (minus the 5 ms period) is the longest
// event-loop stall a person could feel. For that stall the result says what was going on: the
// phase (start, generating, end of run), the longest piece of window work since the tick before
// (MainWindow::take_longest_work) and how much of the gap the GUI thread spent on the CPU (much
// less than the gap: it was waiting for a core, not working). Preview updates per second count
// the live x0 previews the window actually showed.
// GUI thread only; runs a local event loop until the run ends or `timeout_ms` passes.
// With DFS_BENCH_TRACE set, every gap over 50 ms (or over DFS_BENCH_TRACE ms, when that is a
// number above 2) is logged with its time and what was going on (to find the culprit).
#pragma once

#include <QJsonObject>
#include <QString>

namespace dfs::ui {

class MainWindow;

struct UiBenchResult {
  bool ok = false;            // the generation ran to the end
  QString error;              // why not, when !ok
  double max_stall_ms = 0;    // longest tick gap beyond the timer period, milliseconds
  QString max_stall_what;     // what was going on then (phase, window work, GUI CPU in the gap)
  double max_stall_at_s = 0;  // when, seconds after Generate
  double end_stall_ms = 0;    // longest stall after the run finished (results, take, repaint)
  double mean_tick_ms = 0;    // average tick gap
  int ticks = 0;              // timer ticks observed
  double preview_updates_per_s = 0;
  int preview_updates = 0;
  double seconds = 0;          // generation wall time seen by the GUI (Generate to finished)
  double gui_cpu_seconds = 0;  // CPU time the GUI thread used meanwhile (its own work)
  int frames_generated = 0;
  double repaint_ms = 0;  // median synchronous repaint of the whole window, after the run
  // From start_generation() to the first live preview on screen (-1: none came). Seen by the
  // 5 ms ticker, so up to one period late.
  double first_preview_ms = -1;
  // From the run's end (generation_finished) to its take being written and listed (-1: none).
  double take_ms = -1;
  bool take_ok = false;
};

inline constexpr int kBenchTickMs = 5;
inline constexpr int kBenchSettleMs = 300;  // measured on after the take is listed

// Starts a generation with the window's current settings and measures until it finishes.
UiBenchResult run_ui_benchmark(MainWindow& window, int timeout_ms = 600000);

// "max_stall_ms=12.3 mean_tick_ms=5.1 preview_updates_per_s=9.8 ..." for logs and reports.
QString to_string(const UiBenchResult& result);
// Two lines a person reads: first preview, longest stall and what ran, the end of the run.
QString to_summary(const UiBenchResult& result);
// Every field, for `dfstudio --bench-ui --json`.
QJsonObject to_json(const UiBenchResult& result);

}  // namespace dfs::ui
