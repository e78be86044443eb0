// dfstudio — the Diffusion Forcing Studio desktop application. Thin: parse, wire, run.
//
//   dfstudio [--model PATH] [--clip PATH | --project PATH | FILE] [--frames N] [--steps S]
//   [--generate] dfstudio --bench-ui [--clip PATH] [--model PATH | --random-model PRESET] [--frames
//   N] [--steps S] [--contended] [--json]
//   dfstudio FILE --quit-after S    open FILE, quit after S seconds (install checks)
//
// --bench-ui generates once with the window on screen and prints how long after Generate the
// first preview was on screen, the longest event-loop stall over the whole run including its
// end (results, take written) and what was going on then, and the preview updates per second
// (dfs/ui/bench.h), then exits (0 if the run finished). With --contended it generates twice,
// idle and then beside a busy-loop process on one core (dfs/diffusion/busy_neighbour.h), and
// prints both and the slowdown. --json prints all of it as one JSON object instead.
//
// Recovery (issue 11): on a normal start the Studio offers the sessions that a crash or a
// `kill -9` left (MainWindow::check_recovery). --recover-to PATH recovers the newest one without
// asking, writes its document as JSON to PATH and exits (the kill tests' restart). The hidden
// --test-edits N [--test-edit-ms MS] [--test-edit-log DIR] makes N numbered edits after the
// start (edit K sets the seed to 100000 + K), printing "edit K" after each (and writing the
// document after edit K to DIR/edit-K.json just before making it), so that a test can kill it
// mid-edit and know what each autosave must hold.
#include <QApplication>
#include <QCommandLineParser>
#include <QEventLoop>
#include <QDir>
#include <QFileInfo>
#include <QJsonDocument>
#include <QJsonObject>
#include <QSettings>
#include <QThread>
#include <QTimer>
#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/busy_neighbour.h"
#include "dfs/project/document.h"
#include "dfs/ui/bench.h"
#include "dfs/ui/main_window.h"
#include "dfs/ui/preferences.h"
#include "dfs/version.h"

namespace {

// Waits (running the event loop) until the window has a model, or `ms` pass.
bool wait_for_model(dfs::ui::MainWindow& window, int ms) {
  if (window.model_ready()) return true;
  QEventLoop loop;
  QObject::connect(&window, &dfs::ui::MainWindow::model_changed, &loop, &QEventLoop::quit);
  QTimer::singleShot(ms, &loop, &QEventLoop::quit);
  loop.exec();
  return window.model_ready();
}

}  // namespace

int main(int argc, char** argv) {
  // Past a file-size limit a write fails with EFBIG (reported like a full disk), not SIGXFSZ.
  std::signal(SIGXFSZ, SIG_IGN);
  // --help and --version must work without a display (a terminal over ssh, a packaging check).
  for (int i = 1; i < argc; ++i) {
    const QByteArray arg(argv[i]);
    if ((arg == "--help" || arg == "-h" || arg == "--help-all" || arg == "--version" ||
         arg == "-v") &&
        !qEnvironmentVariableIsSet("QT_QPA_PLATFORM"))
      qputenv("QT_QPA_PLATFORM", "offscreen");
  }
  QApplication app(argc, argv);
  QApplication::setOrganizationName("dfstudio");
  QApplication::setApplicationName("Diffusion Forcing Studio");
  QApplication::setApplicationVersion(QString::fromUtf8(dfs::kVersion));

  QCommandLineParser parser;
  parser.setApplicationDescription("Generate, extend and edit video with Diffusion Forcing.");
  parser.addHelpOption();
  parser.addVersionOption();
  const QCommandLineOption model_opt(
      "model", "Model file (.safetensors); default: the shipped demo model.", "PATH");
  const QCommandLineOption clip_opt("clip", "Clip to open at start.", "PATH");
  const QCommandLineOption project_opt("project", "Project (.dfsproj) to open at start.", "PATH");
  const QCommandLineOption random_opt(
      "random-model", "Use a randomly initialised model preset (demo, tiny).", "PRESET");
  const QCommandLineOption frames_opt("frames", "Frames to extend the clip by.", "N");
  const QCommandLineOption steps_opt("steps", "Sampling steps.", "S");
  const QCommandLineOption view_opt("view", "Viewer mode: result, original, side, wipe.", "MODE");
  const QCommandLineOption generate_opt("generate",
                                        "Start generating once the clip and model are ready.");
  const QCommandLineOption bench_opt(
      "bench-ui", "Measure event-loop stalls and preview rate during one generation, print, exit.");
  const QCommandLineOption contended_opt(
      "contended", "With --bench-ui: run it again beside a busy-loop process on one core.");
  const QCommandLineOption json_opt("json",
                                    "With --bench-ui: print the results as one JSON object.");
  const QCommandLineOption autosave_opt("autosave-seconds",
                                        "Autosave a changed project every S seconds for this run "
                                        "(default: the preference, 30; 0 = off).",
                                        "S");
  const QCommandLineOption quit_opt(
      "quit-after",
      "Quit S seconds after start, printing what is open; exit status 1 if anything failed "
      "(errors are printed instead of shown). For scripted checks of an install.",
      "S");
  const QCommandLineOption learn_opt(  // [SECTION] Learning
      "learn", "Start Model > Learn this clip on the opened clip for this many minutes.",
      "MINUTES");
  // [SECTION] Recovery options
  const QCommandLineOption autosave_edits_opt(
      "autosave-edits", "Also autosave after every N edits (default 10; 0 = only on the timer).",
      "N");
  const QCommandLineOption recover_to_opt(
      "recover-to",
      "Recover the newest session a crash left, without asking; write its document (JSON) to "
      "PATH and exit (0 recovered, 3 nothing to recover). The project file is not touched.",
      "PATH");
  QCommandLineOption test_edits_opt("test-edits", "Testing: make N numbered edits.", "N");
  QCommandLineOption test_edit_ms_opt("test-edit-ms", "Testing: pause between edits.", "MS");
  QCommandLineOption test_edit_log_opt("test-edit-log", "Testing: document after each edit.",
                                       "DIR");
  for (QCommandLineOption* o : {&test_edits_opt, &test_edit_ms_opt, &test_edit_log_opt})
    o->setFlags(QCommandLineOption::HiddenFromHelp);
  parser.addOptions({view_opt, model_opt, clip_opt, project_opt, random_opt, frames_opt, steps_opt,
                     generate_opt, bench_opt, contended_opt, json_opt, autosave_opt, quit_opt,
                     autosave_edits_opt, recover_to_opt, test_edits_opt, test_edit_ms_opt,
                     test_edit_log_opt});
  parser.addOption(learn_opt);
  parser.addPositionalArgument("file", "A clip or a project to open (as from a file manager).",
                               "[file]");
  parser.process(app);

  // Preferences (Edit > Preferences...): a stored value that is unreadable or out of range
  // falls back to its default, and says so on stderr.
  dfs::ui::Preferences prefs;
  {
    QSettings settings;
    const QStringList problems = prefs.load(settings);
    for (const QString& p : problems)
      std::fprintf(stderr, "dfstudio: %s\n", p.toUtf8().constData());
  }
  // Leave one core to the GUI (and the X server): on a 2-core machine a generation that takes
  // every core makes the window stutter (resolve_threads). $DFS_THREADS wins over the preference.
  if (qEnvironmentVariableIsSet("DFS_THREADS")) prefs.threads = 0;
  dfs::diffusion::configure_threads(dfs::ui::resolve_threads(prefs.threads));

  dfs::ui::StudioOptions options;
  options.model_path = parser.value(model_opt);
  options.load_model = !parser.isSet(random_opt);
  const bool bench = parser.isSet(bench_opt);
  double quit_after = -1;
  if (parser.isSet(quit_opt)) {
    bool ok = false;
    quit_after = parser.value(quit_opt).toDouble(&ok);
    if (!ok || !(quit_after >= 0) || quit_after > 86400) {
      std::fprintf(stderr, "dfstudio: --quit-after must be a number of seconds, 0..86400\n");
      return 2;
    }
  }
  options.quiet_errors = bench || quit_after >= 0;
  // --bench-ui autosaves after every edit (unless told otherwise), so that the end of each run
  // includes an autosave of its new frames, the worst case a person meets (by default every
  // 10th edit, and the 30 s timer); it closes the window at the end, which removes that
  // session's autosave and recovery record. It opens at the default layout, and leaves the
  // stored one alone.
  options.autosave = true;
  if (bench) {
    options.autosave_edits = 1;
    options.restore_layout = false;
  }
  if (parser.isSet(autosave_opt)) {
    bool ok = false;
    const double seconds = parser.value(autosave_opt).toDouble(&ok);
    if (!ok || !(seconds >= 0) || seconds > 86400) {
      std::fprintf(stderr, "dfstudio: --autosave-seconds must be a number of seconds, 0..86400\n");
      return 2;
    }
    options.autosave = options.autosave && seconds > 0;
    options.autosave_ms = static_cast<int>(seconds * 1000);
  } else {
    options.autosave = options.autosave && prefs.autosave_seconds > 0;
    options.autosave_ms = std::max(1, prefs.autosave_seconds) * 1000;
  }
  if (parser.isSet(autosave_edits_opt)) {
    bool ok = false;
    options.autosave_edits = parser.value(autosave_edits_opt).toInt(&ok);
    if (!ok || options.autosave_edits < 0) {
      std::fprintf(stderr, "dfstudio: --autosave-edits must be a whole number >= 0\n");
      return 2;
    }
  }
  const bool recover_to = parser.isSet(recover_to_opt);
  if (recover_to) {
    options.quiet_errors = true;
    options.load_model = false;
  }

  dfs::ui::MainWindow window(options);
  // --autosave-seconds (tests, scripts) wins over the stored interval for this run: applying an
  // unchanged interval leaves the timer as the options set it.
  if (parser.isSet(autosave_opt)) prefs.autosave_seconds = window.preferences().autosave_seconds;
  window.apply_preferences(prefs);
  window.show();
  if (recover_to) {
    const auto sessions = window.recoverable_sessions();
    if (sessions.isEmpty()) {
      std::fprintf(stderr, "dfstudio: nothing to recover\n");
      return 3;
    }
    const auto& s = sessions.front();
    if (!window.recover_session(0)) {
      std::fprintf(stderr, "dfstudio: %s\n", window.last_error().toUtf8().constData());
      return 1;
    }
    try {
      dfs::project::write_file_atomically(parser.value(recover_to_opt).toStdString(),
                                          dfs::project::to_json(window.document().project()));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "dfstudio: %s\n", e.what());
      return 1;
    }
    std::printf("dfstudio: recovered %s (pid %lld, %d edits, autosaved %s) as %s, %s\n",
                s.autosave_path.toUtf8().constData(), static_cast<long long>(s.pid), s.edits,
                s.saved_utc.toString(Qt::ISODateWithMs).toUtf8().constData(),
                window.document().path().empty() ? "untitled" : window.document().path().c_str(),
                window.document().dirty() ? "unsaved" : "saved");
    return 0;
  }
  if (parser.isSet(random_opt)) {
    try {
      window.use_model(dfs::diffusion::Model::random(parser.value(random_opt).toStdString(), 0),
                       QString("Randomly initialised '%1' model (--random-model).")
                           .arg(parser.value(random_opt)));
    } catch (const std::exception& e) {
      std::fprintf(stderr, "dfstudio: %s\n", e.what());
      return 1;
    }
  }

  QString clip = parser.value(clip_opt);
  QString project = parser.value(project_opt);
  if (!parser.positionalArguments().isEmpty()) {
    const QString file = parser.positionalArguments().first();
    const QString suffix = QFileInfo(file).suffix().toLower();
    (suffix == "dfsproj" || suffix == "json" ? project : clip) = file;
  }
  if (clip.isEmpty() && project.isEmpty() && bench) clip = window.sample_clip_path();
  if (quit_after >= 0) {
    QObject::connect(&window, &dfs::ui::MainWindow::error_reported, [](const QString& message) {
      std::fprintf(stderr, "dfstudio: %s\n", message.toUtf8().constData());
    });
    QTimer::singleShot(static_cast<int>(quit_after * 1000), &app, [&window] {
      const dfs::project::Document& doc = window.document();
      std::printf("dfstudio --quit-after: project '%s', clip '%s', %d timeline frames, model %s\n",
                  doc.path().c_str(), doc.project().clip.path.c_str(),
                  doc.project().timeline.length(),
                  window.model_ready() ? window.model_info()->name.c_str() : "(not loaded)");
      std::fflush(stdout);
      QApplication::exit(window.last_error().isEmpty() ? 0 : 1);
    });
  }
  if (!project.isEmpty() && !window.open_project(project) && bench) {
    std::fprintf(stderr, "dfstudio: %s\n", window.last_error().toUtf8().constData());
    return 1;
  }
  const bool scripted =
      bench || parser.isSet(generate_opt) || parser.isSet(frames_opt) || parser.isSet(steps_opt);
  if (!clip.isEmpty()) {
    if (!window.open_clip(clip) && bench) {
      std::fprintf(stderr, "dfstudio: %s\n", window.last_error().toUtf8().constData());
      return 1;
    }
  }
  if (scripted) {
    if (!wait_for_model(window, 120000)) {
      std::fprintf(stderr, "dfstudio: no model: %s\n", window.last_error().toUtf8().constData());
      if (bench) return 1;
    }
    const int frames = parser.isSet(frames_opt) ? parser.value(frames_opt).toInt() : -1;
    const int steps = parser.isSet(steps_opt) ? parser.value(steps_opt).toInt() : -1;
    window.edit_project("Command-line settings", [frames, steps](dfs::project::Project& p) {
      if (frames >= 0) dfs::project::set_new_frames(p.timeline, frames);
      if (steps > 0) p.generation.rollout.sampler.schedule.steps = steps;
    });
    if (bench) {
      // Each run is reported as it ends: a summary a person reads and the key=value line
      // scripts grep; --json prints one JSON object at the end instead.
      const bool json = parser.isSet(json_opt);
      QJsonObject report;
      auto print = [json](const char* label, const dfs::ui::UiBenchResult& r) {
        if (json) return;
        std::printf("dfstudio --bench-ui%s: %s\n", label,
                    dfs::ui::to_summary(r).toUtf8().constData());
        std::printf("dfstudio --bench-ui%s: %s\n", label,
                    dfs::ui::to_string(r).toUtf8().constData());
        std::fflush(stdout);
      };
      const dfs::ui::UiBenchResult result = dfs::ui::run_ui_benchmark(window);
      print("", result);
      report["idle"] = dfs::ui::to_json(result);
      bool ok = result.ok;
      if (result.ok && parser.isSet(contended_opt)) {
        dfs::diffusion::BusyNeighbour busy;
        const dfs::ui::UiBenchResult loaded = dfs::ui::run_ui_benchmark(window);
        const QString label = QString(" (contended: beside %1)").arg(busy.describe().c_str());
        print(label.toUtf8().constData(), loaded);
        report["contended"] = dfs::ui::to_json(loaded);
        report["neighbour"] = QString::fromStdString(busy.describe());
        ok = loaded.ok;
        if (loaded.ok) {
          const double slowdown = loaded.seconds / std::max(1e-9, result.seconds);
          report["contended_slowdown"] = slowdown;
          if (!json)
            std::printf(
                "dfstudio --bench-ui: contended slowdown %.2fx (generation %.2f s -> %.2f s)\n",
                slowdown, result.seconds, loaded.seconds);
        }
      }
      if (json) {
        report["model"] =
            window.model_info() ? QString::fromStdString(window.model_info()->name) : QString();
        report["threads"] = window.threads_in_force();
        report["autosave_edits"] = options.autosave ? options.autosave_edits : 0;
        std::printf("%s", QJsonDocument(report).toJson(QJsonDocument::Indented).constData());
      }
      window.close();  // a clean close: the bench's autosave and recovery record go
      return ok ? 0 : 1;
    }
    if (parser.isSet(generate_opt)) window.start_generation();
  }
  if (parser.isSet(test_edits_opt)) {
    const int n = parser.value(test_edits_opt).toInt();
    const int pause = parser.isSet(test_edit_ms_opt) ? parser.value(test_edit_ms_opt).toInt() : 20;
    const QString log = parser.value(test_edit_log_opt);
    if (!log.isEmpty()) QDir().mkpath(log);
    auto* timer = new QTimer(&window);
    timer->setInterval(std::max(0, pause));
    QObject::connect(timer, &QTimer::timeout, &window, [&window, timer, n, log, count = 0]() mutable {
      const int k = ++count;
      const auto change = [k](dfs::project::Project& p) {
        p.generation.rollout.seed = 100000 + static_cast<std::uint64_t>(k);
        p.export_settings.quality = k % 101;
      };
      // The document after edit K is logged before the edit (and so before its autosave):
      // whatever autosave a kill leaves, the test has the document it must equal.
      if (!log.isEmpty()) {
        dfs::project::Document after(window.document().project());
        after.edit("expected", change);
        dfs::project::write_file_atomically(
            QString("%1/edit-%2.json").arg(log).arg(k).toStdString(),
            dfs::project::to_json(after.project()));
      }
      window.edit_project(QString("Test edit %1").arg(k), change);
      std::printf("edit %d%s\n", k, window.edits_since_autosave() == 0 ? " autosaved" : "");
      std::fflush(stdout);
      if (k >= n) timer->stop();
    });
    timer->start();
  } else if (!scripted && !bench && !parser.isSet(learn_opt)) {
    // Offer what a crash left (a dialog), once the window is up.
    QTimer::singleShot(0, &window, [&window] { window.check_recovery(); });
  }
  if (parser.isSet(learn_opt)) {  // [SECTION] Learning
    bool ok = false;
    const double minutes = parser.value(learn_opt).toDouble(&ok);
    if (!ok || !(minutes > 0)) {
      std::fprintf(stderr, "dfstudio: --learn takes a number of minutes > 0\n");
      return 1;
    }
    if (!wait_for_model(window, 120000) || !window.start_learning(minutes))
      std::fprintf(stderr, "dfstudio: cannot learn: %s\n",
                   window.last_error().toUtf8().constData());
  }
  if (parser.isSet(view_opt)) {
    const QStringList modes = {"result", "original", "side", "wipe"};
    const int mode = static_cast<int>(modes.indexOf(parser.value(view_opt)));
    if (mode < 0) {
      std::fprintf(stderr, "dfstudio: --view takes result, original, side or wipe\n");
      return 1;
    }
    window.set_view_mode(mode);
  }
  return app.exec();
}
