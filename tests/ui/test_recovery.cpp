// Never lose work (issue 11), in-process on a real window under Xvfb: autosave after N edits
// beside the project and never over it, the session record, Recover / Discard / Later on a
// session planted as a dead Studio's (through the real dialog for Later and Recover), and a
// project whose clip moved. The kill -9 tests with real processes are in
// tests/reliability/recover_after_kill.sh.
#include <QCoreApplication>
#include <QCryptographicHash>
#include <QDir>
#include <QFile>
#include <QFileDialog>
#include <QJsonDocument>
#include <QLineEdit>
#include <QJsonObject>
#include <QProcess>
#include <QPushButton>
#include <QSignalSpy>
#include <QStandardPaths>
#include <QTemporaryDir>
#include <QTimer>
#include <catch2/catch.hpp>
#include <cmath>
#include <map>
#include <string>

#include "dfs/project/document.h"
#include "dfs/ui/main_window.h"
#include "studio_test_support.h"

using dfs::ui::MainWindow;
using dfs::ui::StudioOptions;
using dfs::ui::test::app;
using dfs::ui::test::wait_until;

namespace {

// Each test gets its own app data folder (QStandardPaths reads XDG_DATA_HOME on every call).
struct AppData {
  QTemporaryDir dir;
  QByteArray before = qgetenv("XDG_DATA_HOME");
  bool was_set = qEnvironmentVariableIsSet("XDG_DATA_HOME");
  AppData() { qputenv("XDG_DATA_HOME", dir.path().toUtf8()); }
  ~AppData() {
    if (was_set) qputenv("XDG_DATA_HOME", before);
    else qunsetenv("XDG_DATA_HOME");
  }
  QString recovery() const {
    return QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + "/recovery";
  }
  QStringList records() const { return QDir(recovery()).entryList({"session-*.json"}); }
};

QByteArray file_bytes(const QString& path) {
  QFile f(path);
  return f.open(QIODevice::ReadOnly) ? f.readAll() : QByteArray();
}

StudioOptions autosaving(int edits) {
  StudioOptions o = dfs::ui::test::test_options();
  o.autosave = true;
  o.autosave_edits = edits;
  o.autosave_ms = 600000;  // the timer stays out of the way: edits drive these tests
  return o;
}

std::unique_ptr<MainWindow> window_with_vtest(const StudioOptions& options) {
  app();
  auto w = std::make_unique<MainWindow>(options);
  w->show();
  w->use_model(dfs::diffusion::Model::random("tiny", 3), "test model");
  REQUIRE(wait_until([&] { return w->model_ready(); }, 60000));
  REQUIRE(w->open_clip(dfs::ui::test::vtest_path()));
  return w;
}

bool set_seed(MainWindow& w, int seed) {
  return w.edit_project(QString("Seed %1").arg(seed), [seed](dfs::project::Project& p) {
    p.generation.rollout.seed = static_cast<std::uint64_t>(seed);
  });
}

// A PID that no process has any more (a child that has exited).
qint64 dead_pid() {
  QProcess p;
  p.start("true", {});
  REQUIRE(p.waitForStarted());
  const qint64 pid = p.processId();
  REQUIRE(p.waitForFinished());
  return pid;
}

// Plays a Studio that crashed: saves `project`, makes `edits` more edits, autosaves, and turns
// its record into a dead PID's (the window goes away without a clean close, as in a kill).
// Returns the document JSON the crash would lose.
std::string plant_crashed_session(const AppData& data, const QString& project, int edits) {
  auto w = window_with_vtest(autosaving(1000));
  REQUIRE(w->save_project(project));
  for (int i = 1; i <= edits; ++i) REQUIRE(set_seed(*w, 5000 + i));
  REQUIRE(w->autosave_now());
  const std::string expected = dfs::project::to_json(w->document().project());
  const QString own = data.recovery() + QString("/session-%1.json").arg(QCoreApplication::applicationPid());
  QJsonObject record = QJsonDocument::fromJson(file_bytes(own)).object();
  REQUIRE(record.value("pid").toInteger() == QCoreApplication::applicationPid());
  const qint64 pid = dead_pid();
  record["pid"] = pid;
  QFile::remove(own);
  QFile out(data.recovery() + QString("/session-%1.json").arg(pid));
  REQUIRE(out.open(QIODevice::WriteOnly));
  out.write(QJsonDocument(record).toJson());
  out.close();
  w.reset();  // no closeEvent: like a kill, the autosave and the record stay
  return expected;
}

// Clicks the button named `name` of the recovery dialog once it is up (polls: a slow machine
// may take a while to show it).
void answer_dialog_with(const QString& name) {
  auto* poll = new QTimer;
  poll->setInterval(50);
  QObject::connect(poll, &QTimer::timeout, [poll, name] {
    QWidget* dialog = QApplication::activeModalWidget();
    if (dialog == nullptr || dialog->objectName() != "recovery_dialog") return;
    // For the closing note: DFS_SCREENSHOT_DIR=... keeps a picture of the dialog.
    if (const QString shots = qEnvironmentVariable("DFS_SCREENSHOT_DIR"); !shots.isEmpty())
      dialog->grab().save(shots + "/recovery_dialog_before_" + name + ".png");
    if (auto* button = dialog->findChild<QPushButton*>(name)) button->click();
    poll->stop();
    poll->deleteLater();
  });
  poll->start();
}

}  // namespace

TEST_CASE("Recovery: autosave after every N edits, beside the project and never over it",
          "[gui][recovery]") {
  AppData data;
  QTemporaryDir dir;
  const QString project = dir.filePath("shot.dfsproj");
  auto w = window_with_vtest(autosaving(3));
  REQUIRE(w->save_project(project));
  const QByteArray saved = file_bytes(project);
  REQUIRE(w->autosave_path().isEmpty());

  REQUIRE(set_seed(*w, 11));
  REQUIRE(set_seed(*w, 12));
  CHECK(w->edits_since_autosave() == 2);
  CHECK_FALSE(QFile::exists(project + ".autosave"));
  REQUIRE(set_seed(*w, 13));  // the third edit autosaves
  CHECK(w->edits_since_autosave() == 0);
  REQUIRE(w->autosave_path() == project + ".autosave");
  CHECK(file_bytes(project) == saved);  // the project file itself is never autosaved over
  const auto autosaved = dfs::project::Document::load(w->autosave_path().toStdString());
  CHECK(autosaved.project() == w->document().project());
  // The record: which project, which autosave, edits, this PID, when.
  REQUIRE(data.records().size() == 1);
  const QJsonObject record = QJsonDocument::fromJson(
      file_bytes(data.recovery() + "/" + data.records().front())).object();
  CHECK(record.value("pid").toInteger() == QCoreApplication::applicationPid());
  CHECK(record.value("project_path").toString() == QFileInfo(project).absoluteFilePath());
  CHECK(record.value("autosave_path").toString() == project + ".autosave");
  CHECK(record.value("edits").toInt() == 3);
  CHECK(record.value("clip").toString() == "vtest.avi");
  const QDateTime when = QDateTime::fromString(record.value("saved_utc").toString(), Qt::ISODateWithMs);
  CHECK(std::abs(when.secsTo(QDateTime::currentDateTimeUtc())) < 60);
  // A running Studio's session (this one) is never offered.
  CHECK(w->recoverable_sessions().isEmpty());
  REQUIRE(set_seed(*w, 14));
  CHECK(w->edits_since_autosave() == 1);

  // Saving makes the autosave and the record go.
  REQUIRE(w->save_project(project));
  CHECK_FALSE(QFile::exists(project + ".autosave"));
  CHECK(data.records().isEmpty());
  // So does a clean close.
  REQUIRE(set_seed(*w, 15));
  REQUIRE(w->autosave_now());
  CHECK(QFile::exists(project + ".autosave"));
  w->close();
  CHECK_FALSE(QFile::exists(project + ".autosave"));
  CHECK(data.records().isEmpty());
}

TEST_CASE("Recovery: Later keeps a dead Studio's session, Recover opens it unsaved, the project "
          "file untouched until Save", "[gui][recovery]") {
  AppData data;
  QTemporaryDir dir;
  const QString project = dir.filePath("shot.dfsproj");
  const std::string expected = plant_crashed_session(data, project, 4);
  const QByteArray on_disk = file_bytes(project);

  StudioOptions asking = autosaving(10);
  asking.quiet_errors = false;  // the real dialog
  auto w = window_with_vtest(asking);
  REQUIRE(w->save_project(dir.filePath("other.dfsproj")));  // nothing unsaved to ask about
  const auto sessions = w->recoverable_sessions();
  REQUIRE(sessions.size() == 1);
  CHECK(sessions[0].project_path == QFileInfo(project).absoluteFilePath());
  CHECK(sessions[0].autosave_path == project + ".autosave");
  CHECK(sessions[0].edits == 4);
  CHECK(sessions[0].clip_name == "vtest.avi");
  CHECK(sessions[0].frames == w->document().project().timeline.length());

  // Later: everything stays for the next start.
  answer_dialog_with("later");
  w->check_recovery();
  CHECK(w->recoverable_sessions().size() == 1);
  CHECK(QFile::exists(project + ".autosave"));
  CHECK(file_bytes(project) == on_disk);

  // Recover, through the dialog.
  answer_dialog_with("recover");
  w->check_recovery();
  CHECK(dfs::project::to_json(w->document().project()) == expected);
  if (const QString shots = qEnvironmentVariable("DFS_SCREENSHOT_DIR"); !shots.isEmpty())
    w->grab().save(shots + "/recovered_window.png");
  CHECK(w->document().dirty());
  CHECK(QFileInfo(QString::fromStdString(w->document().path())) == QFileInfo(project));
  CHECK(file_bytes(project) == on_disk);  // untouched until the user saves
  CHECK(w->recoverable_sessions().isEmpty());
  // The session is this window's now: a crash right now would still leave it recoverable.
  REQUIRE(data.records().size() == 1);
  CHECK(data.records().front() == QString("session-%1.json").arg(QCoreApplication::applicationPid()));
  CHECK(w->autosave_path() == project + ".autosave");

  // Save writes the recovered work to the original path; autosave and record go.
  REQUIRE(w->save_project(QString::fromStdString(w->document().path())));
  CHECK(dfs::project::Document::load(project.toStdString()).project() == w->document().project());
  CHECK_FALSE(QFile::exists(project + ".autosave"));
  CHECK(data.records().isEmpty());
}

TEST_CASE("Recovery: Discard deletes the autosave and the record, and the project stays",
          "[gui][recovery]") {
  AppData data;
  QTemporaryDir dir;
  const QString project = dir.filePath("shot.dfsproj");
  plant_crashed_session(data, project, 2);
  const QByteArray on_disk = file_bytes(project);
  auto w = window_with_vtest(autosaving(10));
  REQUIRE(w->recoverable_sessions().size() == 1);
  CHECK_FALSE(w->discard_session(1));  // no such session: an error, nothing deleted
  CHECK(QFile::exists(project + ".autosave"));
  REQUIRE(w->discard_session(0));
  CHECK(w->recoverable_sessions().isEmpty());
  CHECK_FALSE(QFile::exists(project + ".autosave"));
  CHECK(data.records().isEmpty());
  CHECK(file_bytes(project) == on_disk);
}

TEST_CASE("Recovery: a crashed session's autosave is not overwritten by the next Studio on the "
          "same project", "[gui][recovery]") {
  AppData data;
  QTemporaryDir dir;
  const QString project = dir.filePath("shot.dfsproj");
  const std::string crashed = plant_crashed_session(data, project, 3);
  auto w = window_with_vtest(autosaving(1));
  REQUIRE(w->open_project(project));
  REQUIRE(set_seed(*w, 777));
  // Later was answered: the crashed work stays where it is, ours goes to a name of our own.
  CHECK(w->autosave_path() ==
        project + QString(".%1.autosave").arg(QCoreApplication::applicationPid()));
  CHECK(dfs::project::to_json(
            dfs::project::Document::load((project + ".autosave").toStdString()).project()) ==
        crashed);
  REQUIRE(w->recoverable_sessions().size() == 1);
  w->close();  // our own autosave goes, the crashed one stays
  CHECK_FALSE(QFile::exists(w->autosave_path()));
  CHECK(QFile::exists(project + ".autosave"));
}

TEST_CASE("Recovery: a project whose clip moved asks where it is, relocate_clip is one undo step",
          "[gui][recovery]") {
  AppData data;
  QTemporaryDir dir;
  const QString clip = dir.filePath("take1.avi");
  REQUIRE(QFile::copy(dfs::ui::test::vtest_path(), clip));
  auto w = window_with_vtest(dfs::ui::test::test_options());
  REQUIRE(w->open_clip(clip));
  const QString project = dir.filePath("shot.dfsproj");
  REQUIRE(w->save_project(project));
  const QString moved = dir.filePath("moved/take1.avi");
  REQUIRE(QDir(dir.path()).mkpath("moved"));
  REQUIRE(QFile::rename(clip, moved));

  REQUIRE(w->open_project(project));  // the project opens; the clip is reported missing
  CHECK(w->last_error().contains("Where is take1.avi?"));
  CHECK(QFileInfo(w->missing_clip()) == QFileInfo(clip));
  const auto before = w->document().project();

  // A clip that does not fit the timeline (75 frames, not 795) is refused; nothing changes.
  const QString other = QString(DFS_SOURCE_DIR) + "/resources/samples/vtest_clip.mp4";
  CHECK_FALSE(w->relocate_clip(other));
  CHECK(w->document().project() == before);
  CHECK_FALSE(w->missing_clip().isEmpty());

  REQUIRE(w->relocate_clip(moved));
  CHECK(w->missing_clip().isEmpty());
  CHECK(QFileInfo(QString::fromStdString(w->document().project().clip.path)) == QFileInfo(moved));
  CHECK(w->document().project().clip.frame_count == 795);
  CHECK(w->document().project().timeline == before.timeline);
  CHECK(w->document().undo_label() == "Locate clip take1.avi");
  REQUIRE(w->undo());
  CHECK(w->document().project().clip == before.clip);
  // Saved, it reopens without asking.
  REQUIRE(w->redo());
  REQUIRE(w->save_project(project));
  REQUIRE(w->open_project(project));
  CHECK(w->missing_clip().isEmpty());
}

TEST_CASE("Recovery: a generation counts as an edit, its frames are autosaved and recovered",
          "[gui][recovery]") {
  AppData data;
  QTemporaryDir dir;
  const QString project = dir.filePath("gen.dfsproj");
  std::map<int, dfs::Frame> made;
  std::string expected;
  {
    auto w = window_with_vtest(autosaving(1000));
    REQUIRE(w->edit_project("Small run", [](dfs::project::Project& p) {
      p.timeline = dfs::project::extend_layout(8, 4);
      p.generation.rollout.sampler.schedule.steps = 2;
    }));
    REQUIRE(w->save_project(project));
    QSignalSpy finished(w.get(), &MainWindow::generation_finished);
    REQUIRE(w->start_generation());
    REQUIRE(wait_until([&] { return finished.count() == 1; }, 120000));
    REQUIRE(w->generated_frames().size() == 4);
    CHECK(w->edits_since_autosave() >= 1);  // Document::set_results is an edit to keep
    REQUIRE(w->autosave_now());
    made = w->generated_frames();
    expected = dfs::project::to_json(w->document().project());
    // Turn the session into a dead Studio's, as plant_crashed_session does.
    const QString own = data.recovery() + QString("/session-%1.json").arg(QCoreApplication::applicationPid());
    QJsonObject record = QJsonDocument::fromJson(file_bytes(own)).object();
    CHECK(record.value("generated").toInt() == 4);
    const qint64 pid = dead_pid();
    record["pid"] = pid;
    QFile::remove(own);
    QFile out(data.recovery() + QString("/session-%1.json").arg(pid));
    REQUIRE(out.open(QIODevice::WriteOnly));
    out.write(QJsonDocument(record).toJson());
  }
  auto w = window_with_vtest(autosaving(1000));
  REQUIRE(w->recoverable_sessions().size() == 1);
  CHECK(w->recoverable_sessions()[0].generated == 4);
  REQUIRE(w->recover_session(0));
  const auto& p = w->document().project();
  CHECK(p.timeline.length() == 12);
  CHECK(p.results.seed == dfs::project::project_from_json(expected).results.seed);
  REQUIRE(w->generated_frames().size() == 4);
  for (const auto& [position, frame] : w->generated_frames())
    CHECK(frame == made.at(position));  // PNGs beside the autosave: bit-exact
}

TEST_CASE("Recovery: with dialogs, a missing clip opens \"Where is <clip>?\" and the answer is used",
          "[gui][recovery]") {
  AppData data;
  QTemporaryDir dir;
  const QString clip = dir.filePath("take2.avi");
  REQUIRE(QFile::copy(dfs::ui::test::vtest_path(), clip));
  StudioOptions asking = dfs::ui::test::test_options();
  asking.quiet_errors = false;
  auto w = window_with_vtest(asking);
  REQUIRE(w->open_clip(clip));
  const QString project = dir.filePath("shot2.dfsproj");
  REQUIRE(w->save_project(project));
  const QString moved = dir.filePath("elsewhere.avi");
  REQUIRE(QFile::rename(clip, moved));
  QString title;
  QTimer poll;  // answers the file dialog once it is up, as a person would
  poll.setInterval(100);
  QObject::connect(&poll, &QTimer::timeout, [&] {
    for (QWidget* top : QApplication::topLevelWidgets()) {
      auto* dialog = qobject_cast<QFileDialog*>(top);
      if (dialog == nullptr || !dialog->isVisible()) continue;
      title = dialog->windowTitle();
      // Type the path into the file name box and press Open.
      auto* name = dialog->findChild<QLineEdit*>("fileNameEdit");
      if (name == nullptr) continue;
      name->setText(moved);
      static_cast<QDialog*>(dialog)->accept();  // public in QDialog
      poll.stop();
    }
  });
  poll.start();
  REQUIRE(w->open_project(project));
  CHECK(title == "Where is take2.avi?");
  CHECK(w->missing_clip().isEmpty());
  CHECK(QFileInfo(QString::fromStdString(w->document().project().clip.path)) == QFileInfo(moved));
  CHECK(w->document().undo_label() == "Locate clip elsewhere.avi");
}
