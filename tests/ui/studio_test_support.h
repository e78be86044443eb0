// studio_test_support.h — shared helpers of the Studio's GUI tests: one QApplication per test
// process, waiting on the event loop, the footage the tests open.
#pragma once

#include <QAction>
#include <QApplication>
#include <QElapsedTimer>
#include <QEventLoop>
#include <QString>
#include <QTimer>
#include <cstdint>
#include <functional>
#include <memory>

#include "dfs/diffusion/api.h"
#include "dfs/ui/main_window.h"

namespace dfs::ui::test {

// The QApplication every GUI test needs (created on first use, lives until exit).
inline QApplication& app() {
  static int argc = 1;
  static char name[] = "test_ui";
  static char* argv[] = {name, nullptr};
  static auto* instance = [] {
    QApplication::setOrganizationName("dfstudio-tests");  // keeps recent files etc. apart
    QApplication::setApplicationName("test_ui");
    return new QApplication(argc, argv);
  }();
  return *instance;
}

// Runs the event loop until `done()` or `timeout_ms` passes; returns done(). The GUI thread
// sleeps in the event loop between checks (20 ms at most) instead of spinning, so the worker
// and a low-priority learning thread get the CPU, as they would with a person at the window.
inline bool wait_until(const std::function<bool()>& done, int timeout_ms) {
  QElapsedTimer clock;
  clock.start();
  while (!done() && clock.elapsed() < timeout_ms) {
    QEventLoop loop;
    QTimer::singleShot(20, &loop, &QEventLoop::quit);
    loop.exec();
  }
  return done();
}

// Waits until the takes of finished runs are written and listed (a take is written off the GUI
// thread after generation_finished; MainWindow::is_writing_take).
inline bool wait_for_takes(const MainWindow& w, int timeout_ms = 60000) {
  return wait_until([&] { return !w.is_writing_take(); }, timeout_ms);
}

// The window's action whose text (without '&' mnemonics) is `text`, or null: the menus as a
// person reads them.
inline QAction* find_action(QWidget& window, const QString& text) {
  for (QAction* a : window.findChildren<QAction*>())
    if (a->text().remove('&') == text) return a;
  return nullptr;
}

// Real footage from Debian's opencv-doc package (768x576, 795 frames, 10 fps).
inline QString vtest_path() {
  return QStringLiteral("/usr/share/doc/opencv-doc/examples/data/vtest.avi");
}

// Options for test windows: no model loaded from disk (tests hand one over), errors recorded
// instead of shown in dialogs, no autosave, the default window layout.
inline StudioOptions test_options() {
  StudioOptions options;
  options.load_model = false;
  options.quiet_errors = true;
  options.autosave = false;
  options.restore_layout = false;  // every test starts from the same layout
  return options;
}

// A shown window with a random "tiny" model (32x24, 8 frames per window) ready and vtest.avi
// open. Null when the model or the clip did not come up (the caller REQUIREs it).
inline std::unique_ptr<MainWindow> studio_with_vtest(std::uint64_t model_seed) {
  app();
  auto w = std::make_unique<MainWindow>(test_options());
  w->show();
  w->use_model(diffusion::Model::random("tiny", model_seed), "test model");
  if (!wait_until([&] { return w->model_ready(); }, 60000)) return nullptr;
  if (!w->open_clip(vtest_path())) return nullptr;
  return w;
}

}  // namespace dfs::ui::test
