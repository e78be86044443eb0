// Issue 11's "fix on the way", on the real window: the window-fit rule on model load is the
// project layer's (the CLI's), a model note is shown as itself, an export cancelled or cut short
// by closing the window leaves nothing under the final name, and the window opens inside the
// screen and comes back where it was closed.
#include <QDir>
#include <QGuiApplication>
#include <QLabel>
#include <QScreen>
#include <QSettings>
#include <QSignalSpy>
#include <QStatusBar>
#include <QTemporaryDir>
#include <catch2/catch.hpp>

#include "dfs/diffusion/api.h"
#include "dfs/project/document.h"
#include "dfs/project/generation.h"
#include "dfs/ui/imgui_widget.h"
#include "dfs/ui/main_window.h"
#include "studio_test_support.h"

using dfs::ui::MainWindow;
using dfs::ui::test::app;
using dfs::ui::test::test_options;
using dfs::ui::test::wait_until;

namespace {

QStringList status_texts(MainWindow& w) {
  QStringList texts;
  for (const QLabel* label : w.statusBar()->findChildren<QLabel*>()) texts << label->text();
  return texts;
}

// Files in `dir` whose name says they are an unfinished export.
QStringList partial_files(const QString& dir) {
  QStringList out;
  for (const QString& name : QDir(dir).entryList(QDir::Files | QDir::Hidden))
    if (name.contains(".partial")) out << name;
  return out;
}

// Every frame of vtest.avi exported as a scaled-up MP4: seconds of decoding, long enough to be
// cut short.
dfs::project::ExportSettings long_export(const QString& path) {
  dfs::project::ExportSettings es;
  es.format = dfs::project::ExportFormat::Mp4;
  es.path = path.toStdString();
  es.range = dfs::project::ExportRange::All;
  es.scale = 4;
  return es;
}

}  // namespace

TEST_CASE("Studio: on model load the window fits by the project layer's rule, as the CLI does",
          "[gui]") {
  app();
  MainWindow w(test_options());
  w.show();
  REQUIRE(w.edit_project("Window 6/4", [](dfs::project::Project& p) {
    p.generation.rollout.context = 6;
    p.generation.rollout.horizon = 4;
  }));
  const dfs::project::GenerationSettings before = w.document().project().generation;
  w.use_model(dfs::diffusion::Model::random("tiny", 3), "test model");
  REQUIRE(wait_until([&] { return w.model_ready(); }, 60000));
  REQUIRE(w.model_info()->max_frames == 8);
  dfs::project::GenerationSettings cli = before;  // what `dforce extend` does with it
  REQUIRE(dfs::project::fit_window_to_model(cli, *w.model_info()));
  const auto& r = w.document().project().generation.rollout;
  CHECK(r.context == cli.rollout.context);
  CHECK(r.horizon == cli.rollout.horizon);
  CHECK(r.context == 6);  // the horizon shrinks first
  CHECK(r.horizon == 2);
  CHECK(w.document().undo_label() == "Fit the window to the model");
}

TEST_CASE("Studio: a model's note is shown as itself, not as 'untrained'", "[gui]") {
  app();
  MainWindow w(test_options());
  w.show();
  w.use_model(dfs::diffusion::Model::random("tiny", 3),
              "Fine-tuned on garden.mp4 for 2 minutes. Held-out loss 0.031");
  REQUIRE(wait_until([&] { return w.model_ready(); }, 60000));
  const QStringList texts = status_texts(w);
  CHECK(texts.contains("Fine-tuned on garden.mp4 for 2 minutes"));
  for (const QString& t : texts) CHECK_FALSE(t.contains("Untrained"));
}

TEST_CASE("Studio: a cancelled export leaves no file under the final name", "[gui]") {
  auto w = dfs::ui::test::studio_with_vtest(11);
  REQUIRE(w);
  QTemporaryDir dir;
  REQUIRE(dir.isValid());
  const QString path = dir.filePath("cancelled.mp4");
  QSignalSpy finished(w.get(), &MainWindow::export_finished);
  REQUIRE(w->start_export(long_export(path)));
  wait_until([] { return false; }, 150);
  w->cancel_export();
  REQUIRE(wait_until([&] { return finished.count() == 1; }, 60000));
  CHECK_FALSE(finished.at(0).at(0).toBool());
  CHECK(finished.at(0).at(1).toString().contains("cancelled"));
  CHECK_FALSE(QFile::exists(path));
  CHECK_FALSE(QFile::exists(path + ".json"));
  CHECK(partial_files(dir.path()).isEmpty());
  CHECK_FALSE(w->is_exporting());
}

TEST_CASE("Studio: closing the window during an export neither crashes nor leaves a half file",
          "[gui]") {
  QTemporaryDir dir;
  REQUIRE(dir.isValid());
  const QString path = dir.filePath("closed.mp4");
  {
    auto w = dfs::ui::test::studio_with_vtest(12);
    REQUIRE(w);
    REQUIRE(w->start_export(long_export(path)));
    wait_until([] { return false; }, 150);
    REQUIRE(w->is_exporting());
    w->close();  // cancels the export; the destructor waits for it
  }
  CHECK_FALSE(QFile::exists(path));
  CHECK(partial_files(dir.path()).isEmpty());
}

TEST_CASE("Studio: the window opens inside the screen and comes back where it was closed",
          "[gui]") {
  app();
  QSettings().remove("window");
  auto options = test_options();
  options.restore_layout = true;
  const QRect available = QGuiApplication::primaryScreen()->availableGeometry();
  QSize closed_size;
  {
    MainWindow w(options);
    w.show();
    CHECK(w.width() <= available.width());
    CHECK(w.height() <= available.height());
    w.resize(std::min(1000, available.width() - 40), std::min(700, available.height() - 40));
    closed_size = w.size();
    w.close();
  }
  {
    MainWindow w(options);
    w.show();
    CHECK(w.size() == closed_size);
  }
  QSettings().remove("window");
}

TEST_CASE("Studio: every panel fits a 1366 x 768 laptop screen", "[gui]") {
  auto window = dfs::ui::test::studio_with_vtest(5);
  REQUIRE(window);
  MainWindow& w = *window;
  // A 1366 x 768 screen less a desktop's top bar and window title (about 60 pixels).
  const QSize laptop(1366, 708);
  INFO("minimum size " << w.minimumSizeHint().width() << "x" << w.minimumSizeHint().height());
  CHECK(w.minimumSizeHint().width() <= laptop.width());
  CHECK(w.minimumSizeHint().height() <= laptop.height());
  w.resize(laptop);
  wait_until([] { return false; }, 100);
  CHECK(w.size() == laptop);
  CHECK(w.statusBar()->geometry().bottom() < laptop.height());
  for (const QWidget* panel : {static_cast<QWidget*>(w.heat_map_widget()),
                               static_cast<QWidget*>(w.noise_curve_widget())}) {
    const QRect r(panel->mapTo(&w, QPoint(0, 0)), panel->size());
    INFO(panel->metaObject()->className() << " at " << r.x() << "," << r.y() << " " << r.width()
                                          << "x" << r.height());
    CHECK(r.right() < laptop.width());
    CHECK(r.bottom() < laptop.height());
    CHECK(r.height() > 60);
  }
}
