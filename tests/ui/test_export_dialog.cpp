// File > Export through the real dialog (issue 6, step 8): a person picks the format, the
// range, the scale and filter and the frame rate with the dialog's own widgets; the file that
// comes out decodes with the media library to exactly what they chose.
#include <QAction>
#include <QComboBox>
#include <QDialog>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileInfo>
#include <QImage>
#include <QLabel>
#include <QLineEdit>
#include <QMenuBar>
#include <QPushButton>
#include <QSignalSpy>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <catch2/catch.hpp>

#include "dfs/diffusion/api.h"
#include "dfs/media/decoder.h"
#include "dfs/media/probe.h"
#include "dfs/project/document.h"
#include "dfs/ui/main_window.h"
#include "studio_test_support.h"

using dfs::ui::MainWindow;
using dfs::ui::test::app;
using dfs::ui::test::find_action;
using dfs::ui::test::wait_until;

namespace {

// Picks `text` in the dialog's combo box named `name`.
void choose(QDialog& d, const char* name, const QString& text) {
  auto* box = d.findChild<QComboBox*>(name);
  REQUIRE(box != nullptr);
  const int index = box->findText(text);
  INFO("option " << text.toStdString());
  REQUIRE(index >= 0);
  box->setCurrentIndex(index);
}

// What every export picks first: the format and where the file goes.
void choose_output(QDialog& d, const QString& format, const QString& path) {
  choose(d, "export_format", format);
  d.findChild<QLineEdit*>("export_path")->setText(path);
}

// Generates 8 frames after 16 pinned clip frames with the tiny model.
std::unique_ptr<MainWindow> studio_with_generation() {
  auto w = dfs::ui::test::studio_with_vtest(3);
  REQUIRE(w);
  REQUIRE(w->edit_project("Extend", [](dfs::project::Project& p) {
    p.timeline = dfs::project::extend_layout(16, 8);
    p.generation.rollout.sampler.schedule.steps = 3;
  }));
  QSignalSpy finished(w.get(), &MainWindow::generation_finished);
  REQUIRE(w->start_generation());
  REQUIRE(wait_until([&] { return finished.count() == 1; }, 120000));
  REQUIRE(w->generated_frames().size() == 8);
  return w;
}

// Opens File > Export, lets `fill` set the dialog's widgets once it is up, presses Export.
void export_with_dialog(MainWindow& w, const std::function<void(QDialog&)>& fill) {
  QAction* action = find_action(w, "Export...");
  REQUIRE(action != nullptr);
  bool filled = false;
  QTimer::singleShot(200, [&] {
    auto* dialog = qobject_cast<QDialog*>(QApplication::activeModalWidget());
    if (dialog == nullptr) return;  // leaves `filled` false: the test fails below
    fill(*dialog);
    filled = true;
    QTest::mouseClick(dialog->findChild<QPushButton*>("export_ok"), Qt::LeftButton);
  });
  action->trigger();  // runs the modal dialog until the timer above accepts it
  REQUIRE(filled);
}

}  // namespace

TEST_CASE("Export dialog: GIF of the generated frames only, x2, at a chosen frame rate", "[gui]") {
  auto w = studio_with_generation();
  QTemporaryDir dir;
  REQUIRE(dir.isValid());
  const QString path = dir.filePath("generated.gif");
  QString note;
  QSignalSpy exported(w.get(), &MainWindow::export_finished);
  export_with_dialog(*w, [&](QDialog& d) {
    choose_output(d, "Animated GIF", path);
    choose(d, "export_range", "Generated frames only");
    choose(d, "export_scale", "x2");
    choose(d, "export_filter", "Nearest (exact pixels)");
    d.findChild<QDoubleSpinBox*>("export_fps")->setValue(5.0);
    note = d.findChild<QLabel*>("export_note")->text();
  });
  CHECK(note.contains("64 x 48"));  // the dialog tells the output size before exporting
  REQUIRE(wait_until([&] { return exported.count() == 1; }, 120000));
  INFO(exported.at(0).at(1).toString().toStdString());
  REQUIRE(exported.at(0).at(0).toBool());

  const auto info = dfs::media::probe(path.toStdString());
  CHECK(info.width == 64);
  CHECK(info.height == 48);
  CHECK(info.fps == Approx(5.0).epsilon(0.05));
  auto decoder = dfs::media::open_decoder(path.toStdString());
  int decoded = 0;
  while (decoder->read()) ++decoded;
  CHECK(decoded == 8);  // the generated frames only
  // The settings the person chose are remembered in the project for the next export.
  const auto& saved = w->document().project().export_settings;
  CHECK(saved.format == dfs::project::ExportFormat::Gif);
  CHECK(saved.range == dfs::project::ExportRange::Generated);
  CHECK(saved.scale == 2);
  CHECK_FALSE(saved.smooth);
}

TEST_CASE("Export dialog: PNG of the current frame, and a path that cannot be written", "[gui]") {
  auto w = studio_with_generation();
  QTemporaryDir dir;
  REQUIRE(dir.isValid());
  const QString png = dir.filePath("frame.png");
  w->seek(20);  // a generated frame (16-23)
  QSignalSpy exported(w.get(), &MainWindow::export_finished);
  export_with_dialog(*w, [&](QDialog& d) {
    choose_output(d, "Current frame as PNG", png);
    choose(d, "export_scale", "x4");
    choose(d, "export_filter", "Nearest (exact pixels)");
    CHECK_FALSE(d.findChild<QComboBox*>("export_range")->isEnabled());  // one frame: no range
  });
  REQUIRE(wait_until([&] { return exported.count() == 1; }, 60000));
  REQUIRE(exported.at(0).at(0).toBool());
  const QImage image = QImage(png).convertToFormat(QImage::Format_RGB32);
  CHECK(image.width() == 128);
  CHECK(image.height() == 96);
  // Nearest x4: every 4x4 block is one model pixel, and the picture is the current frame.
  bool blocky = true;
  for (int y = 0; y < image.height(); ++y)
    for (int x = 0; x < image.width(); ++x)
      blocky = blocky && image.pixel(x, y) == image.pixel(x - x % 4, y - y % 4);
  CHECK(blocky);
  REQUIRE(w->current_position() == 20);
  REQUIRE(w->generated_frames().count(20) == 1);
  const dfs::Frame& source = w->generated_frames().at(20);
  REQUIRE(source.width == 32);
  bool same = true;
  for (int y = 0; y < 24; ++y)
    for (int x = 0; x < 32; ++x) {
      const QRgb p = image.pixel(x * 4, y * 4);
      const auto* rgb = &source.rgb[(static_cast<size_t>(y) * 32 + x) * 3];
      same = same && qRed(p) == rgb[0] && qGreen(p) == rgb[1] && qBlue(p) == rgb[2];
    }
  CHECK(same);

  // A folder that does not exist: the export fails with a message, the window keeps its work.
  const size_t generated = w->generated_frames().size();
  export_with_dialog(*w, [&](QDialog& d) {
    choose_output(d, "MP4 (H.264)", dir.filePath("no/such/folder/out.mp4"));
  });
  REQUIRE(wait_until([&] { return exported.count() == 2; }, 60000));
  CHECK_FALSE(exported.at(1).at(0).toBool());
  const QString message = exported.at(1).at(1).toString();
  INFO(message.toStdString());
  CHECK_FALSE(message.isEmpty());
  CHECK(w->generated_frames().size() == generated);
  CHECK_FALSE(QFileInfo::exists(dir.filePath("no/such/folder/out.mp4")));
}
