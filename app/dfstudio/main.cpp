// dfstudio — the Diffusion Forcing Studio desktop application. Thin: parse, wire, run.
//
//   dfstudio [--model PATH] [--clip PATH | --project PATH | FILE] [--frames N] [--steps S]
//   [--generate] dfstudio --bench-ui [--clip PATH] [--model PATH | --random-model PRESET] [--frames
//   N] [--steps S] [--contended]
//
// --bench-ui generates once with the window on screen and prints the longest event-loop stall
// and the preview updates per second (dfs/ui/bench.h), then exits (0 if the run finished).
// With --contended it generates twice, idle and then beside a busy-loop process on one core
// (dfs/diffusion/busy_neighbour.h), and prints both and the slowdown.
#include <QApplication>
#include <QCommandLineParser>
#include <QEventLoop>
#include <QFileInfo>
#include <QThread>
#include <QTimer>
#include <algorithm>
#include <csignal>
#include <cstdio>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/busy_neighbour.h"
#include "dfs/ui/bench.h"
#include "dfs/ui/main_window.h"
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
  const QCommandLineOption autosave_opt(
      "autosave-seconds", "Autosave a changed project every S seconds (default 120; 0 = off).",
      "S");
  const QCommandLineOption learn_opt(  // [SECTION] Learning
      "learn", "Start Model > Learn this clip on the opened clip for this many minutes.",
      "MINUTES");
  parser.addOptions({view_opt, model_opt, clip_opt, project_opt, random_opt, frames_opt, steps_opt,
                     generate_opt, bench_opt, contended_opt, autosave_opt});
  parser.addOption(learn_opt);
  parser.addPositionalArgument("file", "A clip or a project to open (as from a file manager).",
                               "[file]");
  parser.process(app);

  // Leave one core to the GUI (and the X server): on a 2-core machine a generation that takes
  // every core makes the window stutter. $DFS_THREADS still wins.
  if (qEnvironmentVariableIsSet("DFS_THREADS"))
    dfs::diffusion::configure_threads();
  else
    dfs::diffusion::configure_threads(std::max(1, QThread::idealThreadCount() - 1));

  dfs::ui::StudioOptions options;
  options.model_path = parser.value(model_opt);
  options.load_model = !parser.isSet(random_opt);
  const bool bench = parser.isSet(bench_opt);
  options.quiet_errors = bench;
  options.autosave = !bench;
  if (parser.isSet(autosave_opt)) {
    bool ok = false;
    const double seconds = parser.value(autosave_opt).toDouble(&ok);
    if (!ok || !(seconds >= 0) || seconds > 86400) {
      std::fprintf(stderr, "dfstudio: --autosave-seconds must be a number of seconds, 0..86400\n");
      return 2;
    }
    options.autosave = options.autosave && seconds > 0;
    options.autosave_ms = static_cast<int>(seconds * 1000);
  }

  dfs::ui::MainWindow window(options);
  window.show();
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
  if (clip.isEmpty() && bench) clip = window.sample_clip_path();
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
      const dfs::ui::UiBenchResult result = dfs::ui::run_ui_benchmark(window);
      std::printf("dfstudio --bench-ui: %s\n", dfs::ui::to_string(result).toUtf8().constData());
      if (!result.ok || !parser.isSet(contended_opt)) return result.ok ? 0 : 1;
      dfs::diffusion::BusyNeighbour busy;
      const dfs::ui::UiBenchResult loaded = dfs::ui::run_ui_benchmark(window);
      std::printf("dfstudio --bench-ui (contended: beside %s): %s\n", busy.describe().c_str(),
                  dfs::ui::to_string(loaded).toUtf8().constData());
      if (loaded.ok)
        std::printf("dfstudio --bench-ui: contended slowdown %.2fx (generation %.2f s -> %.2f s)\n",
                    loaded.seconds / std::max(1e-9, result.seconds), result.seconds,
                    loaded.seconds);
      return loaded.ok ? 0 : 1;
    }
    if (parser.isSet(generate_opt)) window.start_generation();
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
