// bench.cpp — see dfs/ui/bench.h.
#include "dfs/ui/bench.h"

#include <QElapsedTimer>
#include <QEventLoop>
#include <QTimer>
#include <algorithm>
#include <ctime>
#include <vector>

#include "dfs/ui/main_window.h"

namespace dfs::ui {
namespace {

// CPU seconds this thread has used (POSIX per-thread clock): separates our own GUI work from
// time the scheduler gave to other processes.
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

}  // namespace

UiBenchResult run_ui_benchmark(MainWindow& window, int timeout_ms) {
  UiBenchResult result;
  QEventLoop loop;
  QElapsedTimer clock;
  QElapsedTimer since_tick;
  double total_gap_ms = 0;
  bool finished = false;
  bool cancelled = false;
  QString failure;

  int previews_before = 0;
  QTimer ticker;
  ticker.setTimerType(Qt::PreciseTimer);
  ticker.setInterval(kBenchTickMs);
  QObject::connect(&ticker, &QTimer::timeout, [&] {
    const double gap = static_cast<double>(since_tick.nsecsElapsed()) * 1e-6;
    since_tick.restart();
    ++result.ticks;
    total_gap_ms += gap;
    result.max_stall_ms = std::max(result.max_stall_ms, gap - kBenchTickMs);
    if (result.first_preview_ms < 0 && window.preview_updates() > previews_before)
      result.first_preview_ms = static_cast<double>(clock.nsecsElapsed()) * 1e-6;
    if (gap > 50 && qEnvironmentVariableIsSet("DFS_BENCH_TRACE"))
      qInfo("stall %.1f ms at t=%.3f s (generating=%d)", gap, clock.nsecsElapsed() * 1e-9,
            window.is_generating());
  });
  QTimer guard;
  guard.setSingleShot(true);
  QObject::connect(&guard, &QTimer::timeout, &loop, &QEventLoop::quit);
  auto c1 =
      QObject::connect(&window, &MainWindow::generation_finished, &loop, [&](bool was_cancelled) {
        finished = true;
        cancelled = was_cancelled;
        loop.quit();
      });
  auto c2 =
      QObject::connect(&window, &MainWindow::generation_failed, &loop, [&](const QString& message) {
        failure = message;
        loop.quit();
      });

  previews_before = window.preview_updates();
  const double cpu_before = thread_cpu_seconds();
  clock.start();
  since_tick.start();
  ticker.start();
  guard.start(timeout_ms);
  if (!window.start_generation()) {
    result.error = window.last_error().isEmpty() ? QStringLiteral("the generation did not start")
                                                 : window.last_error();
  } else {
    loop.exec();
  }
  ticker.stop();
  QObject::disconnect(c1);
  QObject::disconnect(c2);

  result.seconds = static_cast<double>(clock.nsecsElapsed()) * 1e-9;
  result.gui_cpu_seconds = thread_cpu_seconds() - cpu_before;
  result.mean_tick_ms = result.ticks > 0 ? total_gap_ms / result.ticks : 0;
  result.preview_updates = window.preview_updates() - previews_before;
  result.preview_updates_per_s = result.seconds > 0 ? result.preview_updates / result.seconds : 0;
  // A generation replaces the previous one's frames, so what the window holds now is this run's.
  result.frames_generated = static_cast<int>(window.generated_frames().size());
  if (result.error.isEmpty()) {
    if (!failure.isEmpty())
      result.error = failure;
    else if (!finished)
      result.error = QStringLiteral("timed out");
    else if (cancelled)
      result.error = QStringLiteral("cancelled");
  }
  result.ok = result.error.isEmpty();

  // What one full repaint of the window costs (paint + flush; with GL panels the flush is an
  // OpenGL composition of the whole window): the floor under any stall caused by a repaint.
  std::vector<double> repaints;
  for (int i = 0; i < 7; ++i) {
    QElapsedTimer t;
    t.start();
    window.repaint();
    repaints.push_back(static_cast<double>(t.nsecsElapsed()) * 1e-6);
  }
  std::sort(repaints.begin(), repaints.end());
  result.repaint_ms = repaints[repaints.size() / 2];
  return result;
}

QString to_string(const UiBenchResult& r) {
  return QString(
             "ok=%1 max_stall_ms=%2 mean_tick_ms=%3 ticks=%4 preview_updates=%5 "
             "preview_updates_per_s=%6 "
             "seconds=%7 gui_cpu_s=%8 frames_generated=%9 repaint_ms=%10 first_preview_ms=%11%12")
      .arg(r.ok ? "true" : "false")
      .arg(r.max_stall_ms, 0, 'f', 1)
      .arg(r.mean_tick_ms, 0, 'f', 2)
      .arg(r.ticks)
      .arg(r.preview_updates)
      .arg(r.preview_updates_per_s, 0, 'f', 1)
      .arg(r.seconds, 0, 'f', 2)
      .arg(r.gui_cpu_seconds, 0, 'f', 2)
      .arg(r.frames_generated)
      .arg(r.repaint_ms, 0, 'f', 1)
      .arg(r.first_preview_ms, 0, 'f', 0)
      .arg(r.error.isEmpty() ? QString() : " error=\"" + r.error + "\"");
}

}  // namespace dfs::ui
