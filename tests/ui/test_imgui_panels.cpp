// The Dear ImGui panels render for real (Xvfb + Mesa): the heat map's framebuffer changes when
// the schedule changes, and the noise curve's when the levels change.
#include <QImage>
#include <QTest>
#include <algorithm>
#include <catch2/catch.hpp>

#include "dfs/diffusion/api.h"
#include "dfs/project/document.h"
#include "dfs/ui/imgui_widget.h"
#include "dfs/ui/main_window.h"
#include "studio_test_support.h"

using dfs::ui::MainWindow;
using dfs::ui::test::app;
using dfs::ui::test::wait_until;

namespace {

int differing_pixels(const QImage& a, const QImage& b) {
  if (a.size() != b.size()) return a.width() * a.height();
  int n = 0;
  for (int y = 0; y < a.height(); ++y)
    for (int x = 0; x < a.width(); ++x) n += a.pixel(x, y) != b.pixel(x, y);
  return n;
}

int distinct_colours(const QImage& image) {
  QSet<QRgb> colours;
  for (int y = 0; y < image.height(); y += 2)
    for (int x = 0; x < image.width(); x += 2) colours.insert(image.pixel(x, y));
  return static_cast<int>(colours.size());
}

std::unique_ptr<MainWindow> studio_with_clip() {
  auto w = dfs::ui::test::studio_with_vtest(1);
  REQUIRE(w);
  REQUIRE(w->edit_project("Window", [](dfs::project::Project& p) {
    p.timeline = dfs::project::extend_layout(16, 8);
    p.generation.rollout.sampler.schedule.shape = dfs::diffusion::ScheduleShape::Pyramid;
    p.generation.rollout.sampler.schedule.steps = 8;
    p.generation.rollout.sampler.schedule.uncertainty = 2;
  }));
  QTest::qWait(100);
  return w;
}

}  // namespace

TEST_CASE("Heat map renders under Xvfb and its pixels change with the schedule shape", "[gui]") {
  auto w = studio_with_clip();
  dfs::ui::ImGuiWidget* heat = w->heat_map_widget();
  REQUIRE(heat != nullptr);
  REQUIRE(heat->isVisible());
  const QImage pyramid = heat->grab_framebuffer();
  INFO("OpenGL: " << heat->gl_error().toStdString());
  REQUIRE(heat->gl_ready());
  REQUIRE_FALSE(pyramid.isNull());
  CHECK(distinct_colours(pyramid) > 8);  // a real picture, not a cleared buffer

  REQUIRE(w->edit_project("Full sequence", [](dfs::project::Project& p) {
    p.generation.rollout.sampler.schedule.shape = dfs::diffusion::ScheduleShape::FullSequence;
  }));
  QTest::qWait(50);
  const QImage full = heat->grab_framebuffer();
  const int changed = differing_pixels(pyramid, full);
  INFO("pixels changed: " << changed << " of " << full.width() * full.height());
  CHECK(changed > full.width() * full.height() / 50);

  // Same settings again: the same picture (the change above came from the schedule).
  REQUIRE(w->edit_project("Pyramid", [](dfs::project::Project& p) {
    p.generation.rollout.sampler.schedule.shape = dfs::diffusion::ScheduleShape::Pyramid;
  }));
  QTest::qWait(50);
  CHECK(differing_pixels(pyramid, heat->grab_framebuffer()) < full.width() * full.height() / 500);
}

TEST_CASE("Heat map: what the panel shows follows a change made long after its last frame",
          "[gui]") {
  // A panel renders on demand; a data change must make the next paint render again, not
  // repaint the last image (the Studio opened with --generate and a slow model kept showing
  // "Loading the model..." next to a finished generation).
  auto w = studio_with_clip();
  dfs::ui::ImGuiWidget* heat = w->heat_map_widget();
  REQUIRE(heat != nullptr);
  REQUIRE(heat->gl_ready());
  QTest::qWait(1500);  // every settle frame is long done: the panel sleeps
  const QImage before = heat->grab().toImage();
  REQUIRE(w->edit_project("Full sequence", [](dfs::project::Project& p) {
    p.generation.rollout.sampler.schedule.shape = dfs::diffusion::ScheduleShape::FullSequence;
  }));
  QTest::qWait(100);
  const QImage after = heat->grab().toImage();
  CHECK(differing_pixels(before, after) > after.width() * after.height() / 50);
}

TEST_CASE("Noise curve renders and its pixels change when levels change", "[gui]") {
  auto w = studio_with_clip();
  dfs::ui::ImGuiWidget* curve = w->noise_curve_widget();
  REQUIRE(curve != nullptr);
  const QImage before = curve->grab_framebuffer();
  REQUIRE_FALSE(before.isNull());
  REQUIRE(w->edit_project("Keep structure", [](dfs::project::Project& p) {
    dfs::project::set_noise_range(p.timeline, 16, 23, 0.5);
  }));
  QTest::qWait(50);
  const QImage after = curve->grab_framebuffer();
  CHECK(differing_pixels(before, after) > 50);
}

TEST_CASE("Heat map: dragging in a generated column paints its start level, one undo step",
          "[gui]") {
  auto w = studio_with_clip();
  // Regenerate clip frames 8-15 from noise; frames 4-7 are the first window's context.
  REQUIRE(w->edit_project("Regenerate 8-15", [](dfs::project::Project& p) {
    p.timeline = dfs::project::regenerate_layout(16, 8, 15, 1.0);
  }));
  dfs::ui::ImGuiWidget* heat = w->heat_map_widget();
  QTest::qWait(100);
  // The window's 8 columns share the grid's width; the right half holds frames 8-11.
  const QPoint target(heat->width() * 7 / 8, heat->height() * 3 / 4);
  QTest::mouseMove(heat, target);
  QTest::qWait(60);
  QTest::mousePress(heat, Qt::LeftButton, Qt::NoModifier, target);
  REQUIRE(wait_until(
      [&] {
        const auto& noise = w->document().project().timeline.noise;
        return noise[10] < 1.0 || noise[11] < 1.0;
      },
      3000));
  QTest::mouseRelease(heat, Qt::LeftButton, Qt::NoModifier, target);
  QTest::qWait(100);
  const auto& noise = w->document().project().timeline.noise;
  const double painted = std::min(noise[10], noise[11]);
  INFO("painted level " << painted);
  CHECK(painted > 0.05);
  CHECK(painted < 0.6);  // the lower part of the column = a low start level
  CHECK(noise[8] == 1.0);
  REQUIRE(w->undo());
  CHECK(w->document().project().timeline.noise[10] == 1.0);
  CHECK(w->document().project().timeline.noise[11] == 1.0);
}

TEST_CASE("Noise curve: a drag paints levels of unpinned frames and commits one undo step",
          "[gui]") {
  auto w = studio_with_clip();  // 16 pinned clip frames + 8 new frames at level 1
  dfs::ui::ImGuiWidget* curve = w->noise_curve_widget();
  const int y = curve->height() * 3 / 5;  // below the middle of the plot: a level under 0.5
  const QPoint from(curve->width() * 72 / 100, y);
  const QPoint to(curve->width() * 92 / 100, y);
  QTest::mouseMove(curve, from);
  QTest::qWait(60);
  QTest::mousePress(curve, Qt::LeftButton, Qt::NoModifier, from);
  QTest::qWait(60);
  for (int i = 1; i <= 5; ++i) {
    QTest::mouseMove(curve, from + (to - from) * i / 5);
    QTest::qWait(40);
  }
  QTest::mouseRelease(curve, Qt::LeftButton, Qt::NoModifier, to);
  REQUIRE(wait_until(
      [&] {
        const auto& noise = w->document().project().timeline.noise;
        return std::count_if(noise.begin() + 16, noise.end(), [](double v) { return v < 1.0; }) >=
               3;
      },
      3000));
  const auto& noise = w->document().project().timeline.noise;
  for (int i = 0; i < 16; ++i) CHECK(noise[static_cast<size_t>(i)] == 0.0);  // pinned: untouched
  for (int i = 16; i < 24; ++i)
    if (noise[static_cast<size_t>(i)] < 1.0) CHECK(noise[static_cast<size_t>(i)] < 0.6);
  REQUIRE(w->undo());  // the whole drag is one step
  const auto& restored = w->document().project().timeline.noise;
  for (int i = 16; i < 24; ++i) CHECK(restored[static_cast<size_t>(i)] == 1.0);
}
