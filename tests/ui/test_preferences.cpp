// Preferences, schedule presets and the noise curve's copy and paste, driven through the real
// window (issue 11): values survive a QSettings file, bad stored values fall back with a message,
// applied values reach the worker's threads, the autosave timer, the export dialog and new
// projects; a preset saved and loaded restores the schedule, a broken one changes nothing; a
// pasted noise curve equals the copied one in one undo step.
#include <QAction>
#include <QApplication>
#include <QClipboard>
#include <QComboBox>
#include <QDialog>
#include <QDialogButtonBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFile>
#include <QLineEdit>
#include <QMenu>
#include <QPushButton>
#include <QSettings>
#include <QSpinBox>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTimer>
#include <catch2/catch.hpp>

#include "dfs/project/schedule_preset.h"
#include "dfs/ui/main_window.h"
#include "dfs/ui/preferences.h"
#include "studio_test_support.h"

using dfs::ui::MainWindow;
using dfs::ui::Preferences;
using dfs::ui::test::app;
using dfs::ui::test::find_action;
using dfs::ui::test::wait_until;

namespace {

Preferences non_default_preferences(const QString& folder) {
  Preferences p;
  p.threads = 1;
  p.device = "cpu";
  p.export_folder = folder;
  p.export_format = dfs::ExportFormat::Gif;
  p.autosave_seconds = 45;
  p.stabilization_user = 0.1;
  p.stabilization_generated = 0.2;
  return p;
}

// Keeps QStandardPaths (the presets folder) out of the user's home for one test.
struct StandardPathsTestMode {
  StandardPathsTestMode() { QStandardPaths::setTestModeEnabled(true); }
  ~StandardPathsTestMode() { QStandardPaths::setTestModeEnabled(false); }
};

// LibTorch's thread count also sets the default of threads started later: put it back so the
// tests that run after these in one process generate with the usual count.
struct RestoreThreads {
  MainWindow& window;
  ~RestoreThreads() {
    Preferences p = window.preferences();
    p.threads = 0;
    window.apply_preferences(p);
    wait_until([this] { return window.threads_in_force() == dfs::ui::resolve_threads(0); }, 10000);
  }
};

// With $DFS_SCREENSHOT_DIR set, saves `widget` there as <name>.png (for the issue's notes).
void screenshot(QWidget* widget, const QString& name) {
  const QString dir = qEnvironmentVariable("DFS_SCREENSHOT_DIR");
  if (!dir.isEmpty() && widget != nullptr) widget->grab().save(dir + "/" + name + ".png");
}

}  // namespace

TEST_CASE("preferences survive a QSettings ini file, and bad stored values fall back", "[prefs]") {
  app();
  QTemporaryDir dir;
  REQUIRE(dir.isValid());
  const QString ini = dir.filePath("prefs.ini");
  const Preferences saved = non_default_preferences(dir.path());
  REQUIRE(saved.problems().isEmpty());
  REQUIRE_FALSE(saved == Preferences{});
  {
    QSettings settings(ini, QSettings::IniFormat);
    saved.save(settings);
  }
  Preferences loaded;
  {
    QSettings settings(ini, QSettings::IniFormat);
    const QStringList messages = loaded.load(settings);
    CHECK(messages.isEmpty());
  }
  CHECK(loaded == saved);

  // Out of range or unreadable: each falls back to its default alone, with a message naming it.
  {
    QSettings settings(ini, QSettings::IniFormat);
    settings.beginGroup("preferences");
    settings.setValue("threads", -3);
    settings.setValue("device", "tpu");
    settings.setValue("export_format", "avi");
    settings.setValue("autosave_seconds", 2);
    settings.setValue("stabilization_user", "abc");
    settings.setValue("stabilization_generated", 1.5);
    settings.endGroup();
  }
  Preferences fallen;
  QStringList messages;
  {
    QSettings settings(ini, QSettings::IniFormat);
    messages = fallen.load(settings);
  }
  const Preferences defaults;
  CHECK(fallen.threads == defaults.threads);
  CHECK(fallen.device == defaults.device);
  CHECK(fallen.export_format == defaults.export_format);
  CHECK(fallen.autosave_seconds == defaults.autosave_seconds);
  CHECK(fallen.stabilization_user == defaults.stabilization_user);
  CHECK(fallen.stabilization_generated == defaults.stabilization_generated);
  CHECK(fallen.export_folder == saved.export_folder);  // a good value is kept
  CHECK(messages.size() == 6);
  const QString all = messages.join("\n");
  INFO(all.toStdString());
  for (const char* word : {"Threads", "tpu", "avi", "Autosave", "abc", "generated frames"})
    CHECK(all.contains(word));
}

TEST_CASE("applied preferences reach the worker, autosave, the export dialog and new projects",
          "[prefs]") {
  app();
  QTemporaryDir dir;
  REQUIRE(dir.isValid());
  auto options = dfs::ui::test::test_options();
  options.autosave = true;  // the timer must be there to be set
  MainWindow w(options);
  w.show();
  RestoreThreads restore{w};
  const Preferences prefs = non_default_preferences(dir.path());
  w.apply_preferences(prefs);
  CHECK(w.preferences() == prefs);
  // The worker thread reports the LibTorch thread count in force there.
  CHECK(wait_until([&] { return w.threads_in_force() == 1; }, 10000));
  CHECK(w.autosave_interval_ms() == 45000);
  // A fresh window is a new project: it takes the stabilisation defaults, and opening a clip
  // keeps them.
  const auto& sampler = w.document().project().generation.rollout.sampler;
  CHECK(sampler.stabilization_user == 0.1);
  CHECK(sampler.stabilization_generated == 0.2);
  w.use_model(dfs::diffusion::Model::random("tiny", 1), "test model");
  REQUIRE(wait_until([&] { return w.model_ready(); }, 60000));
  REQUIRE(w.open_clip(dfs::ui::test::vtest_path()));
  CHECK(w.document().project().generation.rollout.sampler.stabilization_user == 0.1);
  const auto offer = w.export_dialog_defaults();
  CHECK(offer.format == dfs::ExportFormat::Gif);
  CHECK(QString::fromStdString(offer.path) == dir.filePath("vtest_dfs.gif"));

  // Out of range: refused with a message, nothing changes.
  Preferences bad = prefs;
  bad.threads = -1;
  bad.autosave_seconds = 2;
  w.apply_preferences(bad);
  CHECK(w.preferences() == prefs);
  CHECK(w.last_error().contains("Threads"));
  CHECK(w.last_error().contains("Autosave"));
  CHECK(w.autosave_interval_ms() == 45000);

  // Autosave off.
  Preferences off = prefs;
  off.autosave_seconds = 0;
  w.apply_preferences(off);
  CHECK(w.autosave_interval_ms() == 0);
}

TEST_CASE("Edit > Preferences... applies and stores what the dialog's widgets say", "[prefs]") {
  app();
  QTemporaryDir dir;
  REQUIRE(dir.isValid());
  MainWindow w(dfs::ui::test::test_options());
  w.show();
  RestoreThreads restore{w};
  QAction* action = find_action(w, "Preferences...");
  REQUIRE(action != nullptr);
  CHECK(action->shortcut() == QKeySequence(QKeySequence::Preferences));
  bool seen = false;
  QTimer::singleShot(0, [&] {
    auto* dialog = qobject_cast<QDialog*>(QApplication::activeModalWidget());
    if (dialog == nullptr) return;
    seen = true;
    dialog->findChild<QSpinBox*>("threads")->setValue(1);
    dialog->findChild<QLineEdit*>("export_folder")->setText(dir.path());
    auto* format = dialog->findChild<QComboBox*>("export_format");
    format->setCurrentIndex(format->findData(static_cast<int>(dfs::ExportFormat::WebM)));
    dialog->findChild<QSpinBox*>("autosave_seconds")->setValue(90);
    dialog->findChild<QDoubleSpinBox*>("stabilization_user")->setValue(0.05);
    screenshot(dialog, "preferences_dialog");
    dialog->accept();
  });
  action->trigger();
  REQUIRE(seen);
  const Preferences got = w.preferences();
  CHECK(got.threads == 1);
  CHECK(got.export_folder == dir.path());
  CHECK(got.export_format == dfs::ExportFormat::WebM);
  CHECK(got.autosave_seconds == 90);
  CHECK(got.stabilization_user == Approx(0.05));
  // Stored: a fresh load from the application's settings reads the same.
  QSettings settings;
  Preferences stored;
  CHECK(stored.load(settings).isEmpty());
  CHECK(stored == got);
  settings.remove("preferences");
}

TEST_CASE("a schedule preset round trip through the window, and a broken preset changes nothing",
          "[presets]") {
  StandardPathsTestMode test_mode;
  auto w = dfs::ui::test::studio_with_vtest(3);
  REQUIRE(w);
  QDir(w->presets_dir()).removeRecursively();
  const int length = w->document().project().timeline.length();
  REQUIRE(length > 4);
  REQUIRE(w->edit_project("setup", [length](dfs::project::Project& p) {
    auto& s = p.generation.rollout.sampler.schedule;
    s.shape = dfs::diffusion::ScheduleShape::Trapezoid;
    s.steps = 23;
    s.uncertainty = 3.5;
    dfs::project::set_noise(p.timeline, length - 1, 0.6);
  }));
  const dfs::project::Project saved = w->document().project();
  REQUIRE(w->save_schedule_preset("Gentle trapezoid"));
  CHECK(w->schedule_presets() == QStringList{"Gentle trapezoid"});
  CHECK(QFile::exists(w->presets_dir() + "/Gentle_trapezoid.json"));

  REQUIRE(w->edit_project("change", [length](dfs::project::Project& p) {
    p.generation.rollout.sampler.schedule = {};
    dfs::project::set_noise(p.timeline, length - 1, 1.0);
  }));
  REQUIRE_FALSE(w->document().project() == saved);
  REQUIRE(w->load_schedule_preset("Gentle trapezoid"));
  CHECK(w->document().project().generation.rollout.sampler.schedule ==
        saved.generation.rollout.sampler.schedule);
  CHECK(w->document().project().timeline.noise == saved.timeline.noise);
  CHECK(w->document().undo_label() == "Schedule preset 'Gentle trapezoid'");

  // The menu lists it.
  QAction* presets_menu = find_action(*w, "Schedule presets");
  REQUIRE(presets_menu != nullptr);
  REQUIRE(presets_menu->menu() != nullptr);
  emit presets_menu->menu()->aboutToShow();
  CHECK(find_action(*w, "Gentle trapezoid") != nullptr);
  screenshot(presets_menu->menu(), "schedule_presets_menu");

  // A broken file: a clear error naming it, the project unchanged, no undo step.
  const QString broken = w->presets_dir() + "/broken.json";
  {
    QFile f(broken);
    REQUIRE(f.open(QIODevice::WriteOnly));
    f.write(R"({"format": "dfstudio-schedule-preset", "format_version": 1, "name": "broken",
               "schedule": {"shape": "pyramid", "steps": 0, "uncertainty": 1}})");
  }
  const dfs::project::Project before = w->document().project();
  const std::string undo_before = w->document().undo_label();
  CHECK_FALSE(w->load_schedule_preset("broken"));
  CHECK(w->last_error().contains("broken.json"));
  CHECK(w->last_error().contains("schedule.steps"));
  CHECK(w->document().project() == before);
  CHECK(w->document().undo_label() == undo_before);

  // A preset file copied in under another file name is listed and loaded by the name inside.
  const QString dir = w->presets_dir();
  REQUIRE(QFile::copy(dir + "/Gentle_trapezoid.json", dir + "/copy.json"));
  REQUIRE(QFile::remove(dir + "/Gentle_trapezoid.json"));
  CHECK(w->schedule_presets().contains("Gentle trapezoid"));
  CHECK(w->load_schedule_preset("Gentle trapezoid"));
  CHECK(w->delete_schedule_preset("Gentle trapezoid"));
  CHECK_FALSE(QFile::exists(dir + "/copy.json"));
  REQUIRE(w->save_schedule_preset("Gentle trapezoid"));
  CHECK(w->delete_schedule_preset("Gentle trapezoid"));
  CHECK_FALSE(w->schedule_presets().contains("Gentle trapezoid"));
  QDir(w->presets_dir()).removeRecursively();
}

TEST_CASE("a copied noise curve pastes onto another range in one undo step", "[presets]") {
  auto w = dfs::ui::test::studio_with_vtest(4);
  REQUIRE(w);
  const int length = w->document().project().timeline.length();
  REQUIRE(length >= 12);
  const int a = length - 8;  // source: 4 new frames with a ramp
  REQUIRE(w->edit_project("ramp", [a](dfs::project::Project& p) {
    dfs::project::paste_noise_range(p.timeline, a, a + 3, {1.0, 0.7, 0.4, 0.1});
  }));
  w->set_selection(a, a + 3);
  REQUIRE(w->copy_noise_curve());
  CHECK(QApplication::clipboard()->text() == "[1.0,0.7,0.4,0.1]");

  // Same length: equal levels.
  w->set_selection(a + 4, a + 7);
  const auto undo_before = w->document().undo_label();
  REQUIRE(w->paste_noise_curve());
  const auto& t = w->document().project().timeline;
  CHECK(dfs::project::noise_range(t, a + 4, a + 7) == dfs::project::noise_range(t, a, a + 3));
  CHECK(w->document().undo_label() ==
        "Paste noise curve on " + std::to_string(a + 4) + "-" + std::to_string(a + 7));
  REQUIRE(w->undo());  // one step takes all of it back
  CHECK(w->document().undo_label() == undo_before);
  CHECK(dfs::project::noise_range(w->document().project().timeline, a + 4, a + 7) ==
        std::vector<double>(4, 1.0));

  // Another length: resampled linearly, ends kept.
  w->set_selection(a, a + 6);
  REQUIRE(w->paste_noise_curve());
  const auto got = dfs::project::noise_range(w->document().project().timeline, a, a + 6);
  CHECK(got.front() == Approx(1.0));
  CHECK(got[3] == Approx(0.55));
  CHECK(got.back() == Approx(0.1));

  // Another window (another project) pastes the same text: the clipboard carries it.
  w->set_selection(a, a + 3);
  REQUIRE(w->copy_noise_curve());
  const auto copied = dfs::project::noise_range(w->document().project().timeline, a, a + 3);
  auto other = dfs::ui::test::studio_with_vtest(5);
  REQUIRE(other);
  const int b = other->document().project().timeline.length() - 4;
  other->set_selection(b, b + 3);
  REQUIRE(other->paste_noise_curve());
  CHECK(dfs::project::noise_range(other->document().project().timeline, b, b + 3) == copied);

  // Not a curve: a clear error, nothing changes.
  const auto before = w->document().project();
  QApplication::clipboard()->setText("hello");
  CHECK_FALSE(w->paste_noise_curve());
  CHECK(w->last_error().contains("noise curve"));
  CHECK(w->document().project() == before);
}
