// studio_test_support.h — shared helpers of the Studio's GUI tests: one QApplication per test
// process, waiting on the event loop, the footage the tests open.
#pragma once

#include <QApplication>
#include <QElapsedTimer>
#include <QString>
#include <functional>
#include <memory>

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

// Runs the event loop until `done()` or `timeout_ms` passes; returns done().
inline bool wait_until(const std::function<bool()>& done, int timeout_ms) {
  QElapsedTimer clock;
  clock.start();
  while (!done() && clock.elapsed() < timeout_ms)
    QApplication::processEvents(QEventLoop::AllEvents, 20);
  return done();
}

// Real footage from Debian's opencv-doc package (768x576, 795 frames, 10 fps).
inline QString vtest_path() {
  return QStringLiteral("/usr/share/doc/opencv-doc/examples/data/vtest.avi");
}

}  // namespace dfs::ui::test
