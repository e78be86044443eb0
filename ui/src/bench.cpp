// bench.cpp — see dfs/ui/bench.h.
#include "dfs/ui/bench.h"

#include <QElapsedTimer>
#include <QEventLoop>
#include <QStringList>
#include <QTimer>
#include <algorithm>
#include <ctime>
#include <vector>

#include "dfs/ui/imgui_widget.h"
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

double ms_since(const QElapsedTimer& t) {
  return static_cast<double>(t.nsecsElapsed()) * 1e-6;
}

}  // namespace

UiBenchResult run_ui_benchmark(MainWindow& window, int timeout_ms) {
  UiBenchResult result;
  QEventLoop loop;
  QElapsedTimer clock;
  QElapsedTimer since_tick;
  QElapsedTimer since_end;  // from generation_finished
  double total_gap_ms = 0;
  bool finished = false;
  bool cancelled = false;
  QString failure;
  double cpu_at_tick = 0;

  // The two OpenGL panels render when painted after a change (software GL: the window's
  // costliest paint); a render since the tick before is named with the stall.
  struct Panel {
    const char* name;
    ImGuiWidget* widget;
    int frames = 0;
  };
  Panel panels[] = {{"heat map", window.heat_map_widget()},
                    {"noise curve", window.noise_curve_widget()}};
  for (Panel& p : panels) p.frames = p.widget ? p.widget->frames_rendered() : 0;

  // DFS_BENCH_TRACE=1 logs gaps over 50 ms; a larger number is the threshold in ms.
  const bool trace = qEnvironmentVariableIsSet("DFS_BENCH_TRACE");
  const int trace_ms = std::max(qEnvironmentVariableIntValue("DFS_BENCH_TRACE"), 2) == 2
                           ? 50
                           : qEnvironmentVariableIntValue("DFS_BENCH_TRACE");

  int previews_before = 0;
  QTimer ticker;
  ticker.setTimerType(Qt::PreciseTimer);
  ticker.setInterval(kBenchTickMs);
  QObject::connect(&ticker, &QTimer::timeout, [&] {
    const double gap = ms_since(since_tick);
    since_tick.restart();
    const double cpu = thread_cpu_seconds();
    const double cpu_gap_ms = (cpu - cpu_at_tick) * 1e3;
    cpu_at_tick = cpu;
    double work_ms = 0;
    const QString work = window.take_longest_work(&work_ms);
    QStringList rendered;
    for (Panel& p : panels) {
      if (!p.widget || p.widget->frames_rendered() == p.frames) continue;
      p.frames = p.widget->frames_rendered();
      rendered << QString("%1 panel %2 ms").arg(p.name).arg(p.widget->last_render_ms(), 0, 'f', 1);
    }
    ++result.ticks;
    total_gap_ms += gap;
    const double stall = gap - kBenchTickMs;
    const char* phase = finished                      ? "end of the run (results, take)"
                        : result.first_preview_ms < 0 ? "start (Generate to the first preview)"
                                                      : "generating";
    if (stall > result.max_stall_ms) {
      result.max_stall_ms = stall;
      result.max_stall_at_s = ms_since(clock) * 1e-3;
      result.max_stall_what =
          QString(
              "%1; longest window work since the tick before: %2; OpenGL panels rendered: %3; "
              "the GUI thread was on the CPU %4 ms of the %5 ms")
              .arg(phase,
                   work.isEmpty() ? QStringLiteral("none")
                                  : QString("%1 (%2 ms)").arg(work).arg(work_ms, 0, 'f', 1),
                   rendered.isEmpty() ? QStringLiteral("none") : rendered.join(", "))
              .arg(cpu_gap_ms, 0, 'f', 1)
              .arg(gap, 0, 'f', 1);
    }
    if (finished) result.end_stall_ms = std::max(result.end_stall_ms, stall);
    if (result.first_preview_ms < 0 && window.preview_updates() > previews_before)
      result.first_preview_ms = ms_since(clock);
    if (trace && gap > trace_ms)
      qInfo("stall %.1f ms at t=%.3f s (%s; work %s %.1f ms; panels %s; GUI CPU %.1f ms)", gap,
            clock.nsecsElapsed() * 1e-9, phase, qPrintable(work), work_ms,
            qPrintable(rendered.join(", ")), cpu_gap_ms);
    // The run's end is measured too: its results, the take being written and listed, and a
    // moment after that.
    if (finished && !window.is_writing_take() && since_end.elapsed() >= kBenchSettleMs) loop.quit();
  });
  QTimer guard;
  guard.setSingleShot(true);
  QObject::connect(&guard, &QTimer::timeout, &loop, &QEventLoop::quit);
  auto c1 =
      QObject::connect(&window, &MainWindow::generation_finished, &loop, [&](bool was_cancelled) {
        finished = true;
        cancelled = was_cancelled;
        result.seconds = ms_since(clock) * 1e-3;
        since_end.start();
      });
  auto c2 =
      QObject::connect(&window, &MainWindow::generation_failed, &loop, [&](const QString& message) {
        failure = message;
        loop.quit();
      });
  auto c3 = QObject::connect(&window, &MainWindow::take_recorded, &loop, [&](bool ok) {
    if (!finished || result.take_ms >= 0) return;  // a take of an earlier run
    result.take_ms = ms_since(since_end);
    result.take_ok = ok;
  });

  previews_before = window.preview_updates();
  window.take_longest_work(nullptr);  // forget what came before
  const double cpu_before = thread_cpu_seconds();
  cpu_at_tick = cpu_before;
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
  QObject::disconnect(c3);

  if (!finished) result.seconds = ms_since(clock) * 1e-3;
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
    else if (window.is_writing_take())
      result.error = QStringLiteral("timed out writing the take");
  }
  result.ok = result.error.isEmpty();

  // What one full repaint of the window costs (paint + flush; with GL panels the flush is an
  // OpenGL composition of the whole window): the floor under any stall caused by a repaint.
  std::vector<double> repaints;
  for (int i = 0; i < 7; ++i) {
    QElapsedTimer t;
    t.start();
    window.repaint();
    repaints.push_back(ms_since(t));
  }
  std::sort(repaints.begin(), repaints.end());
  result.repaint_ms = repaints[repaints.size() / 2];
  return result;
}

QString to_string(const UiBenchResult& r) {
  return QString(
             "ok=%1 max_stall_ms=%2 mean_tick_ms=%3 ticks=%4 preview_updates=%5 "
             "preview_updates_per_s=%6 "
             "seconds=%7 gui_cpu_s=%8 frames_generated=%9 repaint_ms=%10 first_preview_ms=%11 "
             "end_stall_ms=%12 take_ms=%13%14")
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
      .arg(r.end_stall_ms, 0, 'f', 1)
      .arg(r.take_ms, 0, 'f', 0)
      .arg(r.error.isEmpty() ? QString() : " error=\"" + r.error + "\"");
}

QString to_summary(const UiBenchResult& r) {
  QString take = r.take_ms < 0 ? QStringLiteral("no take was written")
                               : QString("the take was %1 %2 ms after the run ended")
                                     .arg(r.take_ok ? "written and listed" : "not kept (error)")
                                     .arg(r.take_ms, 0, 'f', 0);
  return QString(
             "first preview %1 ms after Generate; longest GUI stall %2 ms at %3 s (%4)\n"
             "  end of the run: longest stall %5 ms, %6; %7 preview updates/s; generation %8 s")
      .arg(r.first_preview_ms, 0, 'f', 0)
      .arg(r.max_stall_ms, 0, 'f', 1)
      .arg(r.max_stall_at_s, 0, 'f', 2)
      .arg(r.max_stall_what)
      .arg(r.end_stall_ms, 0, 'f', 1)
      .arg(take)
      .arg(r.preview_updates_per_s, 0, 'f', 1)
      .arg(r.seconds, 0, 'f', 2);
}

QJsonObject to_json(const UiBenchResult& r) {
  QJsonObject o;
  o["ok"] = r.ok;
  if (!r.error.isEmpty()) o["error"] = r.error;
  o["first_preview_ms"] = r.first_preview_ms;
  o["max_stall_ms"] = r.max_stall_ms;
  o["max_stall_at_s"] = r.max_stall_at_s;
  o["max_stall_what"] = r.max_stall_what;
  o["end_stall_ms"] = r.end_stall_ms;
  o["take_ms"] = r.take_ms;
  o["take_ok"] = r.take_ok;
  o["mean_tick_ms"] = r.mean_tick_ms;
  o["ticks"] = r.ticks;
  o["preview_updates"] = r.preview_updates;
  o["preview_updates_per_s"] = r.preview_updates_per_s;
  o["seconds"] = r.seconds;
  o["gui_cpu_seconds"] = r.gui_cpu_seconds;
  o["frames_generated"] = r.frames_generated;
  o["repaint_ms"] = r.repaint_ms;
  return o;
}

}  // namespace dfs::ui
