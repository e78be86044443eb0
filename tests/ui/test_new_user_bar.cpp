// Issue 11's bar, tried as a new user would, on the real window with the shipped demo model:
// open the sample clip, learn it for 2 minutes, generate two takes, compare them, star one and
// export it. Hidden from CTest (about 4 minutes on a 2-core machine); run it by hand:
//   DFS_TEST_SCREENSHOTS=shots xvfb-run -a -s "-screen 0 1600x1000x24" build/tests/test_ui "[bar]"
// The screenshots of each step go in the closing note.
#include <QDialog>
#include <QFile>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <catch2/catch.hpp>
#include <cstdlib>

#include "dfs/media/probe.h"
#include "dfs/project/document.h"
#include "dfs/ui/main_window.h"
#include "studio_test_support.h"

using dfs::ui::MainWindow;
using dfs::ui::test::app;
using dfs::ui::test::test_options;
using dfs::ui::test::wait_until;

namespace {

QString repo(const char* path) {
  return QString("%1/%2").arg(DFS_SOURCE_DIR, path);
}

void shot(QWidget& w, const char* name) {
  const char* folder = std::getenv("DFS_TEST_SCREENSHOTS");
  if (folder == nullptr || *folder == 0) return;
  wait_until([] { return false; }, 300);
  w.grab().save(QString("%1/%2.png").arg(folder, name));
}

}  // namespace

TEST_CASE("A new user: open a clip, learn it, two takes, compare, export the starred one",
          "[.bar]") {
  app();
  QTemporaryDir dir;
  REQUIRE(dir.isValid());
  const QString clip = dir.filePath("vtest_clip.mp4");
  REQUIRE(QFile::copy(repo("resources/samples/vtest_clip.mp4"), clip));
  auto options = test_options();
  options.model_path = repo("models/demo.safetensors");
  options.load_model = true;
  MainWindow w(options);
  w.resize(1500, 950);
  w.show();
  REQUIRE(wait_until([&] { return w.model_ready(); }, 120000));
  REQUIRE(w.open_clip(clip));
  REQUIRE(w.save_project(dir.filePath("garden.dfsproj")));
  shot(w, "bar_1_clip_open");

  // Learn it for 2 minutes.
  QSignalSpy learned(&w, &MainWindow::learning_finished);
  REQUIRE(w.start_learning(2.0));
  REQUIRE(wait_until([&] { return !learned.isEmpty(); }, 8 * 60000));
  INFO(learned.at(0).at(1).toString().toStdString());
  REQUIRE(learned.at(0).at(0).toBool());
  CHECK(w.learning_loss_after() < w.learning_loss_before());
  REQUIRE(w.learn_dialog() != nullptr);
  shot(*w.learn_dialog(), "bar_2_learn_dialog");
  REQUIRE(wait_until([&] { return w.model_ready(); }, 60000));
  CHECK(QString::fromStdString(w.document().project().model_path).endsWith(".learned.safetensors"));
  shot(w, "bar_3_learned_model");

  // Two takes of 8 new frames, two seeds.
  for (std::uint64_t seed : {11u, 22u}) {
    REQUIRE(w.edit_project("Seed", [seed](dfs::project::Project& p) {
      p.timeline = dfs::project::extend_layout(12, 8);
      p.timeline.source_first = p.clip.frame_count - 12;
      p.generation.rollout.seed = seed;
      p.generation.seed_locked = true;
    }));
    QSignalSpy finished(&w, &MainWindow::generation_finished);
    REQUIRE(w.start_generation());
    REQUIRE(wait_until([&] { return !finished.isEmpty(); }, 300000));
  }
  REQUIRE(dfs::ui::test::wait_for_takes(w));
  REQUIRE(w.take_count() == 2);
  w.seek(15);
  REQUIRE(w.compare_takes(0, 1, 2));
  shot(w, "bar_4_compare_side_by_side");
  REQUIRE(w.compare_takes(0, 1, 3));
  shot(w, "bar_5_compare_wipe");
  w.stop_comparing();

  // Star the second take and export it.
  REQUIRE(w.star_take(1, true));
  int starred = -1;
  for (int i = 0; i < w.take_count(); ++i)
    if (w.take_starred(i)) starred = i;
  REQUIRE(starred == 1);
  dfs::project::ExportSettings es;
  es.format = dfs::project::ExportFormat::Mp4;
  es.path = dir.filePath("starred.mp4").toStdString();
  es.scale = 1;
  QSignalSpy exported(&w, &MainWindow::export_finished);
  REQUIRE(w.export_take(starred, es));
  REQUIRE(wait_until([&] { return !exported.isEmpty(); }, 120000));
  INFO(exported.at(0).at(1).toString().toStdString());
  REQUIRE(exported.at(0).at(0).toBool());
  CHECK(dfs::media::probe(es.path).frame_count == 20);
  shot(w, "bar_6_exported_starred_take");
}
