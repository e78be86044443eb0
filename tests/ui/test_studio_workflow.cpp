// The Studio's end-to-end workflow on a real window (issue 6, "Tests and evidence"): open
// vtest.avi, pin the first 8 frames, set a noise range, generate 8 frames with few steps, stop
// a second run midway and keep what finished, export MP4 and decode it back with dfs_media.
#include <QCheckBox>
#include <QDir>
#include <QDragEnterEvent>
#include <QDropEvent>
#include <QElapsedTimer>
#include <QFile>
#include <QMimeData>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QUrl>
#include <catch2/catch.hpp>

#include "dfs/diffusion/api.h"
#include "dfs/media/decoder.h"
#include "dfs/media/metadata.h"
#include "dfs/media/probe.h"
#include "dfs/project/document.h"
#include "dfs/ui/bench.h"
#include "dfs/ui/main_window.h"
#include "studio_test_support.h"

using dfs::ui::MainWindow;
using dfs::ui::StudioOptions;
using dfs::ui::test::app;
using dfs::ui::test::test_options;
using dfs::ui::test::wait_until;

namespace {

// A window with the tiny random model (32x24, 8 frames per window) and vtest.avi open.
std::unique_ptr<MainWindow> open_studio() {
  auto window = dfs::ui::test::studio_with_vtest(7);
  REQUIRE(window);
  return window;
}

// Writes `bytes` to a new file at `path` (a file that only pretends to be a clip or a model).
bool write_file(const QString& path, const QByteArray& bytes) {
  QFile file(path);
  if (!file.open(QIODevice::WriteOnly)) return false;
  file.write(bytes);
  return true;
}

// Sets up a run that extends the first 8 clip frames by `new_frames` with `steps` sampling
// steps (one undo step named `label`).
bool set_run(MainWindow& w, const char* label, int new_frames, int steps) {
  return w.edit_project(label, [new_frames, steps](dfs::project::Project& p) {
    p.timeline = dfs::project::extend_layout(8, new_frames);
    p.generation.rollout.sampler.schedule.steps = steps;
  });
}

}  // namespace

TEST_CASE("Studio workflow: pin, noise range, generate, stop midway keeps frames, export MP4",
          "[gui]") {
  auto window = open_studio();
  MainWindow& w = *window;
  REQUIRE(w.document().project().clip.frame_count == 795);
  INFO("last error: " << w.last_error().toStdString());

  // Work on the first 16 clip frames, no new frames yet.
  REQUIRE(w.edit_project("First 16 frames", [](dfs::project::Project& p) {
    p.timeline = dfs::project::regenerate_layout(16, 8, 15, 0.5);
    p.generation.rollout.sampler.schedule.steps = 3;
    p.generation.rollout.context = 4;
    p.generation.rollout.horizon = 4;
  }));
  REQUIRE(w.edit_project("Clear pins",
                         [](dfs::project::Project& p) { dfs::project::clear_pins(p.timeline); }));
  // Pin the first 8 frames: frame 0 with the P key (as a person would), the rest by toggling.
  w.seek(0);
  // Shortcuts fire only in the active window (Xvfb has no window manager to activate it).
  QApplication::setActiveWindow(&w);
  REQUIRE(QApplication::activeWindow() == &w);
  QTest::keyClick(&w, Qt::Key_P);
  REQUIRE(wait_until([&] { return w.document().project().timeline.pinned(0); }, 2000));
  for (int i = 1; i < 8; ++i) w.toggle_pin(i);
  // The noise range: frames 8-15 regenerated from scratch.
  REQUIRE(w.edit_project("Noise 8-15", [](dfs::project::Project& p) {
    dfs::project::set_noise_range(p.timeline, 8, 15, 1.0);
  }));
  const auto& timeline = w.document().project().timeline;
  CHECK(timeline.pins == std::set<int>{0, 1, 2, 3, 4, 5, 6, 7});

  SECTION("generate 8 frames, then stop a longer second run midway, then export") {
    QSignalSpy progressed(&w, &MainWindow::generation_progressed);
    QSignalSpy finished(&w, &MainWindow::generation_finished);
    REQUIRE(w.start_generation());
    CHECK(w.is_generating());
    REQUIRE(wait_until([&] { return finished.count() == 1; }, 120000));
    CHECK(finished.at(0).at(0).toBool() == false);  // not cancelled
    CHECK(progressed.count() > 0);
    const auto& generated = w.generated_frames();
    REQUIRE(generated.size() == 8);
    CHECK(generated.begin()->first == 8);
    CHECK(generated.rbegin()->first == 15);
    for (const auto& [position, frame] : generated) {
      CHECK(frame.width == 32);
      CHECK(frame.height == 24);
    }
    CHECK(w.document().project().results.has(8));
    CHECK_FALSE(w.document().project().results.has(7));

    // Second run: keep the 8 results (pin them) and extend by 24 frames; stop halfway.
    REQUIRE(w.edit_project("Second run", [](dfs::project::Project& p) {
      dfs::project::set_pinned_range(p.timeline, 8, 15, true);
      dfs::project::set_new_frames(p.timeline, 24);
      p.generation.rollout.sampler.schedule.steps = 6;
    }));
    bool stop_sent = false;
    QObject::connect(&w, &MainWindow::generation_progressed, &w, [&](int step, int total) {
      if (!stop_sent && total > 0 && step * 2 >= total) {
        stop_sent = true;
        w.stop_generation();
      }
    });
    REQUIRE(w.start_generation());
    REQUIRE(wait_until([&] { return finished.count() == 2; }, 120000));
    CHECK(stop_sent);
    CHECK(finished.at(1).at(0).toBool() == true);  // cancelled
    CHECK_FALSE(w.is_generating());
    // What finished is kept: the first run's 8 frames, plus a prefix of the new frames.
    int kept_new = 0;
    for (int p = 16; p < 40; ++p) kept_new += static_cast<int>(w.generated_frames().count(p));
    CHECK(kept_new > 0);
    CHECK(kept_new < 24);
    for (int p = 16; p < 16 + kept_new; ++p) CHECK(w.generated_frames().count(p) == 1);  // a prefix
    for (int p = 8; p < 16; ++p) CHECK(w.generated_frames().count(p) == 1);

    // Export MP4 (x2 scale) and read it back with the media library.
    QTemporaryDir dir;
    REQUIRE(dir.isValid());
    dfs::project::ExportSettings es;
    es.format = dfs::project::ExportFormat::Mp4;
    es.path = dir.filePath("studio_export.mp4").toStdString();
    es.range = dfs::project::ExportRange::All;
    es.scale = 2;
    es.fps = 10;
    QSignalSpy exported(&w, &MainWindow::export_finished);
    REQUIRE(w.start_export(es));
    REQUIRE(wait_until([&] { return exported.count() == 1; }, 120000));
    INFO(exported.at(0).at(1).toString().toStdString());
    REQUIRE(exported.at(0).at(0).toBool());
    const auto info = dfs::media::probe(es.path);
    CHECK(info.frame_count == 16 + kept_new);  // 16 clip frames + the kept generated frames
    CHECK(info.width == 64);
    CHECK(info.height == 48);
    auto decoder = dfs::media::open_decoder(es.path);
    int decoded = 0;
    while (decoder->read()) ++decoded;
    CHECK(decoded == 16 + kept_new);
    const auto metadata = dfs::media::read_generation_metadata(es.path);
    REQUIRE(metadata.has_value());
    CHECK(metadata->find("dfstudio-generation") != std::string::npos);
    CHECK(metadata->find("\"steps\"") != std::string::npos);

    // Dropping the export on the window restores its settings (steps 6, 24 new frames).
    REQUIRE(w.edit_project("Change steps", [](dfs::project::Project& p) {
      p.generation.rollout.sampler.schedule.steps = 2;
    }));
    QMimeData mime;
    mime.setUrls({QUrl::fromLocalFile(QString::fromStdString(es.path))});
    QDragEnterEvent enter(QPoint(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&w, &enter);
    CHECK(enter.isAccepted());
    QDropEvent drop(QPointF(10, 10), Qt::CopyAction, &mime, Qt::LeftButton, Qt::NoModifier);
    QApplication::sendEvent(&w, &drop);
    CHECK(w.document().project().generation.rollout.sampler.schedule.steps == 6);
    CHECK(w.document().project().timeline.new_frames == 24);
  }
}

TEST_CASE("Studio: a broken clip or a missing file is reported and the window keeps working",
          "[gui]") {
  app();
  MainWindow w(test_options());
  w.show();
  QSignalSpy errors(&w, &MainWindow::error_reported);
  CHECK_FALSE(w.open_clip("/nonexistent/clip.mp4"));
  CHECK(errors.count() == 1);
  CHECK(w.last_error().contains("clip.mp4"));
  QTemporaryDir dir;
  const QString text = dir.filePath("not_a_video.mp4");
  REQUIRE(write_file(text, "this is not a video"));
  CHECK_FALSE(w.open_clip(text));
  CHECK(errors.count() == 2);
  // Still usable: the real clip opens afterwards.
  CHECK(w.open_clip(dfs::ui::test::vtest_path()));
  CHECK(w.document().project().timeline.length() > 0);
}

TEST_CASE("Studio: a model file that fails to load is reported and the current model stays",
          "[gui]") {
  app();
  MainWindow w(test_options());
  w.show();
  w.use_model(dfs::diffusion::Model::random("tiny", 3), "test model");
  REQUIRE(wait_until([&] { return w.model_ready(); }, 60000));
  QTemporaryDir dir;
  const QString bad = dir.filePath("broken.safetensors");
  REQUIRE(write_file(bad, "\xff\xff\xff\xff\xff\xff\xff\x7f{not json"));
  QSignalSpy changed(&w, &MainWindow::model_changed);
  w.load_model(bad);
  REQUIRE(wait_until([&] { return changed.count() == 1; }, 60000));
  CHECK(changed.at(0).at(0).toBool() == false);
  CHECK(w.last_error().contains("broken.safetensors"));
  REQUIRE(w.model_ready());
  CHECK(w.model_info()->name == "tiny");
  // And it still generates.
  REQUIRE(w.open_clip(dfs::ui::test::vtest_path()));
  REQUIRE(set_run(w, "Small run", 4, 2));
  QSignalSpy finished(&w, &MainWindow::generation_finished);
  REQUIRE(w.start_generation());
  REQUIRE(wait_until([&] { return finished.count() == 1; }, 120000));
  CHECK(w.generated_frames().size() == 4);
}

TEST_CASE("Studio: a saved project reopens with its pins, settings and generated frames", "[gui]") {
  auto window = open_studio();
  MainWindow& w = *window;
  REQUIRE(w.edit_project("Small run", [](dfs::project::Project& p) {
    p.timeline = dfs::project::extend_layout(8, 4);
    p.generation.rollout.sampler.schedule.steps = 2;
    p.generation.rollout.seed = 1234;
  }));
  QSignalSpy finished(&w, &MainWindow::generation_finished);
  REQUIRE(w.start_generation());
  REQUIRE(wait_until([&] { return finished.count() == 1; }, 120000));
  REQUIRE(w.generated_frames().size() == 4);
  QTemporaryDir dir;
  const QString path = dir.filePath("run.dfsproj");
  REQUIRE(w.save_project(path));
  CHECK_FALSE(w.document().dirty());

  MainWindow reopened(test_options());
  reopened.show();
  REQUIRE(reopened.open_project(path));
  const auto& p = reopened.document().project();
  CHECK(p.timeline.length() == 12);
  CHECK(p.timeline.pins.size() == 8);
  CHECK(p.generation.rollout.seed == 1234);
  CHECK(p.clip.frame_count == 795);
  REQUIRE(reopened.generated_frames().size() == 4);
  for (const auto& [position, frame] : reopened.generated_frames())
    CHECK(frame == w.generated_frames().at(position));  // PNG cache: bit-exact
}

TEST_CASE("Studio: undo and redo restore pins", "[gui]") {
  app();
  MainWindow w(test_options());
  w.show();
  REQUIRE(w.open_clip(dfs::ui::test::vtest_path()));
  REQUIRE(w.edit_project("Clear pins",
                         [](dfs::project::Project& p) { dfs::project::clear_pins(p.timeline); }));
  w.toggle_pin(3);
  CHECK(w.document().project().timeline.pinned(3));
  REQUIRE(w.undo());
  CHECK_FALSE(w.document().project().timeline.pinned(3));
  REQUIRE(w.redo());
  CHECK(w.document().project().timeline.pinned(3));
}

TEST_CASE("Studio: the detail checkbox edits the project with an undo step, and follows the model",
          "[gui]") {
  app();
  MainWindow w(test_options());
  w.show();
  REQUIRE(w.open_clip(dfs::ui::test::vtest_path()));
  auto* box = w.findChild<QCheckBox*>("detail_transfer");
  REQUIRE(box != nullptr);
  CHECK(box->isChecked());
  CHECK(w.document().project().generation.rollout.detail_transfer);
  // The model reaches the window from the generation thread: wait for it.
  w.use_model(dfs::diffusion::Model::random("tiny", 1), "pixel model");
  CHECK(wait_until([&] { return !box->isEnabled(); }, 10000));  // no autoencoder: nothing to do
  w.use_model(dfs::diffusion::Model::random("latent-tiny", 1), "latent model");
  REQUIRE(wait_until([&] { return box->isEnabled(); }, 10000));
  box->click();
  CHECK_FALSE(w.document().project().generation.rollout.detail_transfer);
  REQUIRE(w.undo());
  CHECK(w.document().project().generation.rollout.detail_transfer);
  CHECK(box->isChecked());
}

TEST_CASE("Studio playback: Space plays at the clip's frame rate, K pauses, Home/End, arrows step",
          "[gui]") {
  app();
  MainWindow w(test_options());
  w.show();
  REQUIRE(w.open_clip(dfs::ui::test::vtest_path()));  // 10 fps
  QApplication::setActiveWindow(&w);
  REQUIRE(QApplication::activeWindow() == &w);
  QTest::keyClick(&w, Qt::Key_Home);
  CHECK(w.current_position() == 0);
  QTest::keyClick(&w, Qt::Key_Right);
  QTest::keyClick(&w, Qt::Key_Right);
  CHECK(w.current_position() == 2);
  QTest::keyClick(&w, Qt::Key_Left);
  CHECK(w.current_position() == 1);
  // Space plays at the clip's rate (10 fps): 5 frames take at least 0.4 s (a loaded
  // machine may be slower, never faster).
  const int start = w.current_position();
  QElapsedTimer clock;
  clock.start();
  QTest::keyClick(&w, Qt::Key_Space);
  CHECK(w.is_playing());
  REQUIRE(wait_until([&] { return w.current_position() >= start + 5; }, 10000));
  const qint64 elapsed_ms = clock.elapsed();
  QTest::keyClick(&w, Qt::Key_K);
  CHECK_FALSE(w.is_playing());
  INFO("5 frames took " << elapsed_ms << " ms");
  CHECK(elapsed_ms >= 400);
  const int paused_at = w.current_position();
  QTest::qWait(300);
  CHECK(w.current_position() == paused_at);
  QTest::keyClick(&w, Qt::Key_End);
  CHECK(w.current_position() == w.document().project().timeline.length() - 1);
}

TEST_CASE("Studio responsiveness: event-loop stalls and preview rate while generating",
          "[gui][slow]") {
  auto window = open_studio();
  MainWindow& w = *window;
  REQUIRE(w.edit_project("Bench settings", [](dfs::project::Project& p) {
    p.timeline = dfs::project::extend_layout(16, 16);
    p.generation.rollout.sampler.schedule.steps = 6;
  }));
  const dfs::ui::UiBenchResult result = dfs::ui::run_ui_benchmark(w, 300000);
  WARN("UI responsiveness during generation: " << dfs::ui::to_string(result).toStdString());
  REQUIRE(result.ok);
  CHECK(result.ticks > 0);
  CHECK(result.preview_updates > 0);
  CHECK(result.frames_generated == 16);
}

TEST_CASE("Studio: a Stop pressed before the queued run starts is honoured", "[gui]") {
  // The run is queued to the worker thread; a Stop in the same turn of the GUI's event loop
  // usually lands before the worker picks it up. It used to be erased when the run began.
  auto window = open_studio();
  MainWindow& w = *window;
  REQUIRE(set_run(w, "Long run", 16, 20));
  QSignalSpy finished(&w, &MainWindow::generation_finished);
  REQUIRE(w.start_generation());
  w.stop_generation();
  REQUIRE(wait_until([&] { return finished.count() == 1; }, 120000));
  CHECK(finished.at(0).at(0).toBool() == true);  // cancelled
  CHECK(w.generated_frames().size() < 16);
  // The next run is not cancelled by the old Stop.
  REQUIRE(set_run(w, "Short run", 2, 2));
  REQUIRE(w.start_generation());
  REQUIRE(wait_until([&] { return finished.count() == 2; }, 120000));
  CHECK(finished.at(1).at(0).toBool() == false);
  CHECK(w.generated_frames().size() == 2);
}

TEST_CASE("Studio: loading a model file is an undo step that names the file", "[gui]") {
  app();
  MainWindow w(test_options());
  w.show();
  w.use_model(dfs::diffusion::Model::random("tiny", 3), "test model");
  REQUIRE(wait_until([&] { return w.model_ready(); }, 60000));
  QSignalSpy changed(&w, &MainWindow::model_changed);
  w.load_model(QStringLiteral(DFS_SOURCE_DIR "/models/demo-64x48.safetensors"));
  REQUIRE(wait_until([&] { return changed.count() == 1; }, 60000));
  REQUIRE(changed.at(0).at(0).toBool());
  CHECK(w.document().undo_label() == "Use model demo-64x48.safetensors");
}
