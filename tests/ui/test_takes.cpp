// Takes in the real Studio window (issue 11): every generation is kept as a take on disk;
// switch, compare (side by side and A/B wipe), rename and star (persist through save and
// reopen), export a take to a real file and decode it back, use a take as pinned context for
// the next extension, delete (its files go). A tiny random model and vtest.avi.
#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QThread>
#include <QTreeWidget>
#include <atomic>
#include <catch2/catch.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <map>
#include <mutex>
#include <thread>

#include "dfs/frame.h"
#include "dfs/media/decoder.h"
#include "dfs/media/probe.h"
#include "dfs/project/document.h"
#include "dfs/project/takes.h"
#include "dfs/ui/main_window.h"
#include "studio_test_support.h"

using dfs::Frame;
using dfs::ui::MainWindow;
using dfs::ui::test::wait_until;

namespace {

QImage image_of(const Frame& f) {
  return QImage(f.rgb.data(), f.width, f.height, f.stride(), QImage::Format_RGB888).copy();
}

// One run with `seed`: waits for it and returns the window's generated frames afterwards.
std::map<int, Frame> generate_with_seed(MainWindow& w, std::uint64_t seed) {
  REQUIRE(w.edit_project("Seed", [seed](dfs::project::Project& p) {
    p.generation.rollout.seed = seed;
    p.generation.seed_locked = true;
  }));
  QSignalSpy finished(&w, &MainWindow::generation_finished);
  REQUIRE(w.start_generation());
  REQUIRE(wait_until([&] { return finished.count() == 1; }, 120000));
  REQUIRE(finished.at(0).at(0).toBool() == false);
  REQUIRE(dfs::ui::test::wait_for_takes(w));
  return w.generated_frames();
}

// DFS_TEST_SCREENSHOTS=<folder>: keep pictures of the window for the closing note.
void screenshot(MainWindow& w, const char* name) {
  const char* folder = std::getenv("DFS_TEST_SCREENSHOTS");
  if (folder == nullptr || *folder == 0) return;
  QApplication::processEvents();
  w.grab().save(QString("%1/%2.png").arg(folder, name));
}

bool same_frames(const std::map<int, Frame>& a, const std::map<int, Frame>& b) {
  return a == b;
}

std::string take_frame_file(const MainWindow& w, int take_id, int position) {
  return QString("%1/take_%2/frame_%3.png")
      .arg(w.takes_folder())
      .arg(take_id, 4, 10, QChar('0'))
      .arg(position, 6, 10, QChar('0'))
      .toStdString();
}

}  // namespace

TEST_CASE(
    "Takes: two generations are two takes, switch, compare, export, rename and star "
    "persist, use as context, delete removes files",
    "[gui][takes]") {
  auto window = dfs::ui::test::studio_with_vtest(7);
  REQUIRE(window);
  MainWindow& w = *window;
  INFO("last error: " << w.last_error().toStdString());
  REQUIRE(w.edit_project("Extend 8 by 8", [](dfs::project::Project& p) {
    p.timeline = dfs::project::extend_layout(8, 8);
    p.generation.rollout.sampler.schedule.steps = 3;
    p.generation.rollout.context = 4;
    p.generation.rollout.horizon = 4;
  }));
  CHECK(w.take_count() == 0);

  // Two runs, two seeds: two takes whose frames differ.
  const std::map<int, Frame> take1 = generate_with_seed(w, 101);
  REQUIRE(take1.size() == 8);
  CHECK(w.take_count() == 1);
  const QString session_folder = w.takes_folder();
  REQUIRE_FALSE(session_folder.isEmpty());
  const std::map<int, Frame> take2 = generate_with_seed(w, 202);
  REQUIRE(take2.size() == 8);
  REQUIRE(w.take_count() == 2);
  CHECK(w.take_names() == QStringList{"Take 1", "Take 2"});
  CHECK(w.current_take() == 1);
  CHECK_FALSE(same_frames(take1, take2));
  int differing = 0;
  for (const auto& [position, frame] : take1) differing += frame != take2.at(position) ? 1 : 0;
  CHECK(differing == 8);
  // On disk, bit-exact: the take's PNG files are its frames.
  CHECK(dfs::media::read_image(take_frame_file(w, 1, 8)) == take1.at(8));
  CHECK(dfs::media::read_image(take_frame_file(w, 2, 15)) == take2.at(15));

  // Switch back to take 1: the shown frames are take 1's bytes, and the viewer shows them.
  REQUIRE(w.switch_take(0));
  CHECK(w.current_take() == 0);
  CHECK(same_frames(w.generated_frames(), take1));
  CHECK(w.document().project().results.has(8));
  w.set_view_mode(0);
  w.seek(10);
  CHECK(w.viewer_image(1) == image_of(take1.at(10)));
  CHECK_FALSE(w.switch_take(5));
  CHECK(w.last_error().contains("no take 6"));

  // Compare: take 1 on side A, take 2 on side B, side by side then the wipe.
  REQUIRE(w.compare_takes(0, 1, 2));
  CHECK(w.viewer_image(0) == image_of(take1.at(10)));
  CHECK(w.viewer_image(1) == image_of(take2.at(10)));
  w.seek(12);
  CHECK(w.viewer_image(0) == image_of(take1.at(12)));
  CHECK(w.viewer_image(1) == image_of(take2.at(12)));
  screenshot(w, "takes_side_by_side");
  REQUIRE(w.compare_takes(1, 0, 3));
  screenshot(w, "takes_wipe");
  CHECK(w.viewer_image(0) == image_of(take2.at(12)));
  CHECK(w.viewer_image(1) == image_of(take1.at(12)));
  CHECK_FALSE(w.compare_takes(0, 1, 0));  // comparing needs two sides
  // Back to Result: the comparison ends, the shown take (1) is in the viewer again.
  w.set_view_mode(0);
  CHECK(w.viewer_image(1) == image_of(take1.at(12)));
  CHECK(w.viewer_image(0).isNull());  // a new frame has no clip picture

  // Export take 2 (not the one shown) to a real MP4, decode it back; and as PNGs, bit-exact.
  QTemporaryDir dir;
  REQUIRE(dir.isValid());
  {
    dfs::project::ExportSettings es;
    es.format = dfs::project::ExportFormat::Mp4;
    es.path = dir.filePath("take2.mp4").toStdString();
    es.range = dfs::project::ExportRange::All;
    es.scale = 2;
    es.fps = 10;
    QSignalSpy exported(&w, &MainWindow::export_finished);
    REQUIRE(w.export_take(1, es));
    REQUIRE(wait_until([&] { return exported.count() == 1; }, 120000));
    INFO(exported.at(0).at(1).toString().toStdString());
    REQUIRE(exported.at(0).at(0).toBool());
    CHECK(w.current_take() == 1);
    auto decoder = dfs::media::open_decoder(es.path);
    int decoded = 0;
    while (decoder->read()) ++decoded;
    CHECK(decoded == 16);  // 8 clip frames + take 2's 8 frames
    CHECK(dfs::media::probe(es.path).width == 64);

    es.format = dfs::project::ExportFormat::PngSequence;
    es.path = dir.filePath("take1_png/").toStdString();
    es.range = dfs::project::ExportRange::Generated;
    es.scale = 1;
    QSignalSpy exported_png(&w, &MainWindow::export_finished);
    REQUIRE(w.export_take(0, es));
    REQUIRE(wait_until([&] { return exported_png.count() == 1; }, 120000));
    REQUIRE(exported_png.at(0).at(0).toBool());
    const QStringList pngs =
        QDir(dir.filePath("take1_png")).entryList({"*.png"}, QDir::Files, QDir::Name);
    REQUIRE(pngs.size() == 8);
    CHECK(dfs::media::read_image(dir.filePath("take1_png/" + pngs.first()).toStdString()) ==
          take1.at(8));
    CHECK(dfs::media::read_image(dir.filePath("take1_png/" + pngs.last()).toStdString()) ==
          take1.at(15));
  }

  // Rename and star, save, reopen in a fresh window: they persist, with the takes beside it.
  REQUIRE(w.rename_take(0, "calm"));
  REQUIRE(w.star_take(1, true));
  CHECK_FALSE(w.rename_take(0, "   "));
  CHECK(w.take_names() == QStringList{"calm", "Take 2"});
  REQUIRE(w.switch_take(0));
  const QString project_path = dir.filePath("takes_test.dfsproj");
  REQUIRE(w.save_project(project_path));
  CHECK(w.takes_folder() == QFileInfo(dir.filePath("takes_test_takes")).absoluteFilePath());
  CHECK_FALSE(QFileInfo::exists(session_folder));  // an untitled project's takes moved
  CHECK(w.document().project().takes.folder == "takes_test_takes");
  window.reset();

  dfs::ui::test::app();
  auto again = std::make_unique<MainWindow>(dfs::ui::test::test_options());
  MainWindow& v = *again;
  v.show();
  v.use_model(dfs::diffusion::Model::random("tiny", 7), "test model");
  REQUIRE(wait_until([&] { return v.model_ready(); }, 60000));
  REQUIRE(v.open_project(project_path));
  CHECK(v.take_names() == QStringList{"calm", "Take 2"});
  CHECK_FALSE(v.take_starred(0));
  CHECK(v.take_starred(1));
  CHECK(v.current_take() == 0);
  CHECK(same_frames(v.generated_frames(), take1));
  REQUIRE(v.switch_take(1));
  CHECK(same_frames(v.generated_frames(), take2));

  // The Takes dock's own list: an inline rename and the star check box reach the store.
  auto* tree = v.findChild<QTreeWidget*>("take_list");
  REQUIRE(tree);
  REQUIRE(tree->topLevelItemCount() == 2);
  CHECK(tree->topLevelItem(1)->font(0).bold());  // the take shown
  tree->topLevelItem(1)->setText(0, "bright");
  CHECK(wait_until([&] { return v.take_names().value(1) == "bright"; }, 5000));
  tree->topLevelItem(0)->setCheckState(1, Qt::Checked);
  CHECK(wait_until([&] { return v.take_starred(0); }, 5000));
  CHECK(dfs::project::TakeStore::open(v.takes_folder().toStdString()).find(2)->name == "bright");
  CHECK(v.take_starred(1));
  screenshot(v, "takes_list");

  // Use take "calm" as context: its frames are pinned, the timeline grows, and the next run
  // keeps them bit-identical and continues after them.
  REQUIRE(v.use_take_as_context(0));
  const auto& timeline = v.document().project().timeline;
  for (int p = 0; p < 16; ++p) CHECK(timeline.pinned(p));
  CHECK(timeline.new_frames == 16);
  QSignalSpy finished(&v, &MainWindow::generation_finished);
  REQUIRE(v.start_generation());
  REQUIRE(wait_until([&] { return finished.count() == 1; }, 120000));
  REQUIRE(dfs::ui::test::wait_for_takes(v));
  REQUIRE(v.take_count() == 3);
  CHECK(v.current_take() == 2);
  const std::map<int, Frame> take3 = v.generated_frames();
  REQUIRE(take3.size() == 16);
  for (int p = 8; p < 16; ++p) CHECK(take3.at(p) == take1.at(p));
  for (int p = 16; p < 24; ++p) CHECK(take3.count(p) == 1);

  // Delete take 2: its files go, the others stay.
  const std::string take2_file = take_frame_file(v, 2, 8);
  REQUIRE(QFileInfo::exists(QString::fromStdString(take2_file)));
  REQUIRE(v.delete_take(1));
  CHECK_FALSE(QFileInfo::exists(QString::fromStdString(take2_file)));
  CHECK_FALSE(QFileInfo::exists(QFileInfo(QString::fromStdString(take2_file)).absolutePath()));
  CHECK(v.take_names() == QStringList{"calm", "Take 3"});
  CHECK(tree->topLevelItemCount() == 2);
  CHECK(QFileInfo::exists(QString::fromStdString(take_frame_file(v, 1, 8))));
  CHECK(v.switch_take(1));
  CHECK(same_frames(v.generated_frames(), take3));

  // Save As copies the takes beside the new file; the first project keeps its own.
  const QString first_takes = v.takes_folder();
  REQUIRE(v.save_project(dir.filePath("copy.dfsproj")));
  CHECK(v.takes_folder() == QFileInfo(dir.filePath("copy_takes")).absoluteFilePath());
  CHECK(v.document().project().takes.folder == "copy_takes");
  CHECK(dfs::project::TakeStore::open(dir.filePath("copy_takes").toStdString()).size() == 2);
  CHECK(dfs::project::TakeStore::open(first_takes.toStdString()).size() == 2);
  CHECK(dfs::media::read_image(take_frame_file(v, 3, 20)) == take3.at(20));
}

TEST_CASE(
    "Takes: a stopped run with frames is a take, a broken takes index is reported when "
    "the project opens and nothing on disk is lost",
    "[gui][takes]") {
  auto window = dfs::ui::test::studio_with_vtest(7);
  REQUIRE(window);
  MainWindow& w = *window;
  INFO("last error: " << w.last_error().toStdString());
  REQUIRE(w.edit_project("Extend 8 by 24", [](dfs::project::Project& p) {
    p.timeline = dfs::project::extend_layout(8, 24);
    p.generation.rollout.sampler.schedule.steps = 6;
    p.generation.rollout.context = 4;
    p.generation.rollout.horizon = 4;
  }));
  // Stop halfway: what finished is kept as a take, marked as stopped.
  bool stop_sent = false;
  QObject::connect(&w, &MainWindow::generation_progressed, &w, [&](int step, int total) {
    if (!stop_sent && total > 0 && step * 2 >= total) {
      stop_sent = true;
      w.stop_generation();
    }
  });
  QSignalSpy finished(&w, &MainWindow::generation_finished);
  REQUIRE(w.start_generation());
  REQUIRE(wait_until([&] { return finished.count() == 1; }, 120000));
  REQUIRE(finished.at(0).at(0).toBool() == true);  // cancelled
  REQUIRE(dfs::ui::test::wait_for_takes(w));
  const std::map<int, Frame> kept = w.generated_frames();
  REQUIRE(!kept.empty());
  REQUIRE(kept.size() < 24);
  REQUIRE(w.take_count() == 1);
  const auto store = dfs::project::TakeStore::open(w.takes_folder().toStdString());
  CHECK(store.takes()[0].cancelled);
  CHECK(same_frames(store.load_frames(store.takes()[0].id), kept));

  QTemporaryDir dir;
  REQUIRE(dir.isValid());
  const QString project_path = dir.filePath("broken.dfsproj");
  REQUIRE(w.save_project(project_path));
  const QString index = dir.filePath("broken_takes/takes.json");
  REQUIRE(QFileInfo::exists(index));
  {
    QFile file(index);
    REQUIRE(file.open(QIODevice::WriteOnly | QIODevice::Truncate));
    file.write("{ not json");
  }
  window.reset();

  dfs::ui::test::app();
  MainWindow v(dfs::ui::test::test_options());
  v.show();
  v.use_model(dfs::diffusion::Model::random("tiny", 7), "test model");
  REQUIRE(wait_until([&] { return v.model_ready(); }, 60000));
  QSignalSpy errors(&v, &MainWindow::error_reported);
  REQUIRE(v.open_project(project_path));  // the project itself opens
  CHECK(errors.count() == 1);
  CHECK(v.last_error().contains("takes index"));
  CHECK(v.last_error().contains("not valid JSON"));
  CHECK(v.take_count() == 0);
  CHECK(same_frames(v.generated_frames(), kept));  // the shown frames came back from the cache
  // A new run is not written over the unreadable store; its files all stay.
  REQUIRE(v.document().project().timeline.noise[31] == 1.0);  // the new frames are re-made
  QSignalSpy finished2(&v, &MainWindow::generation_finished);
  REQUIRE(v.start_generation());
  REQUIRE(wait_until([&] { return finished2.count() == 1; }, 120000));
  CHECK(errors.count() == 2);  // "This generation was not kept as a take: ..."
  CHECK(v.last_error().contains("cannot read the takes index"));
  CHECK(v.take_count() == 0);
  QFile file(index);
  REQUIRE(file.open(QIODevice::ReadOnly));
  CHECK(file.readAll() == "{ not json");
  CHECK(QDir(dir.filePath("broken_takes/take_0001")).entryList({"*.png"}, QDir::Files).size() ==
        static_cast<int>(kept.size()));
}

TEST_CASE("Takes: an untitled project's session folder goes with its window", "[gui][takes]") {
  auto window = dfs::ui::test::studio_with_vtest(7);
  REQUIRE(window);
  REQUIRE(window->edit_project("Extend 8 by 4", [](dfs::project::Project& p) {
    p.timeline = dfs::project::extend_layout(8, 4);
    p.generation.rollout.sampler.schedule.steps = 2;
    p.generation.rollout.context = 4;
    p.generation.rollout.horizon = 4;
  }));
  generate_with_seed(*window, 5);
  REQUIRE(window->take_count() == 1);
  const QString session = window->takes_folder();
  REQUIRE(QFileInfo::exists(session + "/takes.json"));
  // Its path is what the project (and so an autosave) records: recovery after a crash finds it.
  CHECK(QString::fromStdString(window->document().project().takes.folder) == session);
  window.reset();  // closed without saving: the project, and its takes, were discarded
  CHECK_FALSE(QFileInfo::exists(session));
}

namespace {

// Holds the take writer back (MainWindow::set_take_write_observer) until release(): what the
// window does while a take is being written can be looked at.
struct HeldWriter {
  std::mutex mutex;
  std::condition_variable cv;
  bool released = false;
  std::atomic<QThread*> thread{nullptr};
  std::atomic<int> writes{0};
  void hold() {
    thread = QThread::currentThread();
    ++writes;
    std::unique_lock lock(mutex);
    cv.wait(lock, [this] { return released; });
  }
  void release() {
    {
      std::lock_guard lock(mutex);
      released = true;
    }
    cv.notify_all();
  }
};

void extend_8_by_4(MainWindow& w, int steps) {
  REQUIRE(w.edit_project("Extend 8 by 4", [steps](dfs::project::Project& p) {
    p.timeline = dfs::project::extend_layout(8, 4);
    p.generation.rollout.sampler.schedule.shape = dfs::diffusion::ScheduleShape::Pyramid;
    p.generation.rollout.sampler.schedule.steps = steps;
    p.generation.rollout.context = 4;
    p.generation.rollout.horizon = 4;
  }));
}

}  // namespace

TEST_CASE(
    "Takes: the first preview is shown before the first final frame, the take is written off "
    "the GUI thread and listed once it is on disk",
    "[gui][takes]") {
  auto window = dfs::ui::test::studio_with_vtest(7);
  REQUIRE(window);
  MainWindow& w = *window;
  INFO("last error: " << w.last_error().toStdString());
  // Pyramid, 60 steps: the first frame is final after 60 sampling steps, the first preview
  // (the x0 estimate of step 1) exists after one.
  extend_8_by_4(w, 60);
  HeldWriter writer;
  w.set_take_write_observer([&writer] { writer.hold(); });
  int previews = 0;
  int finals_at_first_preview = -1;
  QObject::connect(&w, &MainWindow::preview_shown, &w, [&] {
    if (previews++ == 0) finals_at_first_preview = static_cast<int>(w.generated_frames().size());
  });
  QSignalSpy finished(&w, &MainWindow::generation_finished);
  QSignalSpy recorded(&w, &MainWindow::take_recorded);
  REQUIRE(w.start_generation());
  REQUIRE(wait_until([&] { return finished.count() == 1; }, 120000));
  REQUIRE(finished.at(0).at(0).toBool() == false);
  CHECK(previews > 0);
  CHECK(finals_at_first_preview == 0);  // a live estimate came first, then final frames
  const std::map<int, Frame> made = w.generated_frames();
  REQUIRE(made.size() == 4);

  // The run is over and shown; its take is being written on another thread, held there.
  REQUIRE(wait_until([&] { return writer.writes.load() == 1; }, 10000));
  CHECK(writer.thread.load() != QThread::currentThread());
  CHECK(w.is_writing_take());
  CHECK(w.take_count() == 0);  // listed only once it is on disk
  CHECK(recorded.isEmpty());
  const QString folder = w.takes_folder();
  REQUIRE_FALSE(folder.isEmpty());
  CHECK_FALSE(QFileInfo::exists(folder + "/takes.json"));
  // Meanwhile the window works: the event loop runs, a seek shows another frame.
  w.seek(9);
  wait_until([] { return false; }, 100);
  CHECK(w.current_position() == 9);

  writer.release();
  REQUIRE(wait_until([&] { return recorded.count() == 1; }, 30000));
  CHECK(recorded.at(0).at(0).toBool());
  CHECK_FALSE(w.is_writing_take());
  REQUIRE(w.take_count() == 1);
  CHECK(w.current_take() == 0);
  CHECK(w.document().project().takes.current == 1);
  auto* tree = w.findChild<QTreeWidget*>("take_list");
  REQUIRE(tree);
  CHECK(tree->topLevelItemCount() == 1);
  const auto store = dfs::project::TakeStore::open(folder.toStdString());
  REQUIRE(store.size() == 1);
  CHECK(same_frames(store.load_frames(1), made));  // bit-exact on disk
}

TEST_CASE("Takes: closing the window while a take is being written keeps the take",
          "[gui][takes]") {
  QTemporaryDir dir;
  REQUIRE(dir.isValid());
  const QString project = dir.filePath("closing.dfsproj");
  HeldWriter writer;
  std::thread releaser;
  std::map<int, Frame> made;
  {
    auto window = dfs::ui::test::studio_with_vtest(7);
    REQUIRE(window);
    MainWindow& w = *window;
    extend_8_by_4(w, 3);
    REQUIRE(w.save_project(project));
    w.set_take_write_observer([&writer] { writer.hold(); });
    QSignalSpy finished(&w, &MainWindow::generation_finished);
    REQUIRE(w.start_generation());
    REQUIRE(wait_until([&] { return finished.count() == 1; }, 120000));
    made = w.generated_frames();
    REQUIRE(wait_until([&] { return writer.writes.load() == 1; }, 10000));
    REQUIRE(w.is_writing_take());
    // Closing waits for the write (released a little later, as a slow disk would finish it).
    releaser = std::thread([&writer] {
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      writer.release();
    });
    w.close();
    CHECK_FALSE(w.is_writing_take());
    CHECK(w.take_count() == 1);
  }
  releaser.join();
  const auto store = dfs::project::TakeStore::open(dir.filePath("closing_takes").toStdString());
  REQUIRE(store.size() == 1);
  CHECK(same_frames(store.load_frames(store.takes()[0].id), made));
}
