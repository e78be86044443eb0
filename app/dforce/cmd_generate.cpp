// cmd_generate.cpp — `dforce extend` and `dforce generate`: the Studio's generation, headless.
//
// Both build a dfs::project::Project and run a dfs::project::GenerationJob — the same path the
// Studio's worker thread runs — into an EncoderSink, so a setting means the same in both.
//
//   dforce extend clip.mp4 --frames 16 -o out.mp4 [--model m.safetensors] [settings...]
//   dforce generate --settings project_or_settings.json -o out.webm [overrides...]
//   dforce generate --from exported.mp4 -o again.mp4 [overrides...]
//
// Progress goes to stderr: one line rewritten in place on a terminal, a line per 10 % otherwise
// (logs stay readable). Ctrl-C cancels at the next sampling step and keeps what finished (the
// output file is finalised and playable).
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "commands.h"
#include "dfs/diffusion/api.h"
#include "dfs/media/probe.h"
#include "dfs/project/document.h"
#include "dfs/project/generation.h"

namespace dforce {
namespace {

namespace fs = std::filesystem;
namespace dp = dfs::project;
namespace dd = dfs::diffusion;

// [SECTION] Options shared by extend and generate ----------------------------------------------

struct GenerationOptions {
  std::string model;
  std::string device = "auto";
  std::string output;
  // Rollout settings; applied only when given (count() > 0), so a settings file keeps its own.
  int steps = 0;
  std::string schedule;
  double uncertainty = 0;
  int ar_step = 0;
  int block = 0;
  double eta = 0;
  std::string solver;
  bool exact = false;
  double stabilization = 0;
  double stabilization_generated = 0;
  std::string guidance;
  double guidance_scale = 0;
  double guidance_fraction = 0;
  int horizon = 0;
  int context = 0;
  uint64_t seed = 0;
  std::string detail;
  std::string fit;
  // Export.
  int scale = 0;
  bool nearest = false;
  double fps = 0;
  int quality = 0;
  std::string range;
  std::string save_project;
  bool quiet = false;
  // Timeline edits, applied in this order after the layout: pins, unpins, noise levels.
  std::vector<std::string> pin;
  std::vector<std::string> unpin;
  std::vector<std::string> noise;

  struct Opts {  // which options the user gave
    CLI::Option *steps, *schedule, *uncertainty, *ar_step, *block, *eta, *solver, *exact, *stab,
        *stab_gen,
        *guidance, *guidance_scale, *guidance_fraction, *horizon, *context, *seed, *detail, *fit,
        *scale, *fps, *quality, *range;
  } given{};
};

void add_generation_options(CLI::App* sub, GenerationOptions& o) {
  auto& g = o.given;
  sub->add_option(
         "-o,--output", o.output,
         "Output: .mp4 (H.264), .webm (VP9), .gif, .png (one frame) or a folder/ (PNG sequence)")
      ->required();
  sub->add_option(
      "--model", o.model,
      "Model .safetensors (default: $DFS_MODEL, then the shipped models/demo.safetensors)");
  sub->add_option("--device", o.device, "auto (CUDA if available), cpu or cuda")
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  g.steps = sub->add_option("--steps", o.steps, "Sampling steps S per frame (default 10)")
                ->check(in_limits(dfs::limits::kSteps));
  g.schedule =
      sub->add_option("--schedule", o.schedule,
                      "Scheduling-matrix shape: full_sequence, autoregressive, pyramid (default), "
                      "trapezoid, async_blocks");
  g.uncertainty = sub->add_option("--uncertainty", o.uncertainty,
                                  "Pyramid/trapezoid lag u in steps (default 1)")
                      ->check(in_limits(dfs::limits::kUncertainty));
  g.ar_step = sub->add_option("--ar-step", o.ar_step,
                              "async_blocks: lag between blocks in steps (default 2)")
                  ->check(in_limits(dfs::limits::kArStep));
  g.block = sub->add_option("--block", o.block, "async_blocks: frames per block (default 2)")
                ->check(in_limits(dfs::limits::kBlock));
  g.eta = sub->add_option("--eta", o.eta, "0 = DDIM (default), up to 1 = DDPM-like stochasticity")
              ->check(in_limits(dfs::limits::kEta));
  g.solver = sub->add_option("--solver", o.solver,
                             "Update rule: ddim (default) or dpmpp-2m (DPM-Solver++(2M): the same "
                             "quality in fewer steps; deterministic, needs --eta 0)")
                 ->check(CLI::IsMember({"ddim", "dpmpp-2m"}));
  g.exact = sub->add_flag("--exact", o.exact,
                          "The reference kernels: the same bytes as a plain LibTorch eager port "
                          "and as earlier versions (slower; default: the fast CPU kernels)");
  g.stab = sub->add_option("--stabilization", o.stabilization,
                           "Noise level at which pinned clip frames are fed (default 0.02)")
               ->check(in_limits(dfs::limits::kStabilization));
  g.stab_gen =
      sub->add_option("--stabilization-generated", o.stabilization_generated,
                      "Noise level at which earlier generated frames are fed (default 0.02)")
          ->check(in_limits(dfs::limits::kStabilization));
  g.guidance = sub->add_option("--guidance", o.guidance,
                               "History guidance: none (default), vanilla, fractional");
  g.guidance_scale =
      sub->add_option("--guidance-scale", o.guidance_scale, "History guidance scale w (default 1)")
          ->check(in_limits(dfs::limits::kGuidanceScale));
  g.guidance_fraction =
      sub->add_option("--guidance-fraction", o.guidance_fraction,
                      "Fractional guidance: history re-noised to this level (default 0.5)")
          ->check(in_limits(dfs::limits::kGuidanceFraction));
  g.horizon = sub->add_option("--horizon", o.horizon,
                              "Guidance horizon: frames generated together (default 4)")
                  ->check(in_limits(dfs::limits::kHorizon));
  g.context =
      sub->add_option("--context", o.context, "Known frames each window carries (default 4)")
          ->check(in_limits(dfs::limits::kContext));
  g.seed = sub->add_option("--seed", o.seed,
                           "Random seed (default 0); same seed + settings = same output");
  g.detail = sub->add_option("--detail-transfer", o.detail,
                             "Latent models: carry the pinned frames' fine detail into static "
                             "parts of generated frames: on (default) or off")
                 ->check(CLI::IsMember({"on", "off"}));
  g.fit = sub->add_option("--fit", o.fit,
                          "Bring the clip to the model's size: letterbox (default), crop, stretch");
  g.scale = sub->add_option("--scale", o.scale,
                            "Output scale of the model resolution: 1, 2 or 4 (default 4 for "
                            "64x48 models, 1 for 256x192)");
  sub->add_flag("--nearest", o.nearest, "Upscale with nearest neighbour (default: smooth)");
  g.fps = sub->add_option("--fps", o.fps, "Output frame rate (default: the clip's)")
              ->check(in_limits(dfs::limits::kExportFps));
  g.quality = sub->add_option("--quality", o.quality, "Export quality 0..100 (default 80)")
                  ->check(in_limits(dfs::limits::kExportQuality));
  g.range = sub->add_option("--range", o.range, "Frames to export: all (default) or generated");
  sub->add_option("--pin", o.pin, "Pin timeline frames: ranges like 0-7,12 (repeatable)");
  sub->add_option("--unpin", o.unpin, "Unpin timeline frames: ranges like 20-23 (repeatable)");
  sub->add_option("--noise", o.noise,
                  "Start noise level of timeline frames: RANGES=LEVEL, e.g. 10-14=0.5 (repeatable; "
                  "0 = keep, 1 = regenerate from scratch)");
  sub->add_option("--save-project", o.save_project,
                  "Also write the project (settings + results) as JSON, with the generated "
                  "frames as PNGs in <name>_frames/ beside it");
  sub->add_flag("-q,--quiet", o.quiet, "No progress line");
}

// "0-7,12" -> {0..7, 12}: inclusive ranges of timeline positions.
std::vector<std::pair<int, int>> parse_ranges(const std::string& text, const char* option) {
  std::vector<std::pair<int, int>> out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    if (part.empty()) continue;
    try {
      size_t used = 0;
      const int a = std::stoi(part, &used);
      int b = a;
      if (used < part.size()) {
        if (part[used] != '-') throw std::invalid_argument("");
        size_t used_b = 0;
        b = std::stoi(part.substr(used + 1), &used_b);
        if (used + 1 + used_b != part.size()) throw std::invalid_argument("");
      }
      out.emplace_back(std::min(a, b), std::max(a, b));
    } catch (const std::exception&) {
      throw std::runtime_error(std::string(option) + ": '" + part +
                               "' is not a frame or a range like 3-9");
    }
  }
  if (out.empty()) throw std::runtime_error(std::string(option) + ": no frames given");
  return out;
}

void apply_timeline_edits(const GenerationOptions& o, dp::Timeline& t) {
  for (const auto& text : o.pin)
    for (auto [a, b] : parse_ranges(text, "--pin")) dp::set_pinned_range(t, a, b, true);
  for (const auto& text : o.unpin)
    for (auto [a, b] : parse_ranges(text, "--unpin")) dp::set_pinned_range(t, a, b, false);
  for (const auto& text : o.noise) {
    const auto eq = text.rfind('=');
    if (eq == std::string::npos)
      throw std::runtime_error("--noise: '" + text + "' needs RANGES=LEVEL, e.g. 10-14=0.5");
    double level = 0;
    try {
      size_t used = 0;
      level = std::stod(text.substr(eq + 1), &used);
      if (used != text.size() - eq - 1) throw std::invalid_argument("");
    } catch (const std::exception&) {
      throw std::runtime_error("--noise: '" + text.substr(eq + 1) + "' is not a level in [0, 1]");
    }
    for (auto [a, b] : parse_ranges(text.substr(0, eq), "--noise"))
      dp::set_noise_range(t, a, b, level);
  }
}

// Applies the options the user gave on top of `p`. Returns true if context or horizon was given.
bool apply_overrides(const GenerationOptions& o, dp::Project& p) {
  const auto& g = o.given;
  auto& r = p.generation.rollout;
  auto& s = r.sampler;
  if (g.steps->count()) s.schedule.steps = o.steps;
  if (g.schedule->count()) s.schedule.shape = dd::schedule_shape_from_string(o.schedule);
  if (g.uncertainty->count()) s.schedule.uncertainty = o.uncertainty;
  if (g.ar_step->count()) s.schedule.ar_step = o.ar_step;
  if (g.block->count()) s.schedule.block = o.block;
  if (g.eta->count()) s.eta = o.eta;
  if (g.solver->count()) s.solver = dd::solver_from_string(o.solver);
  if (g.exact->count()) r.exact = o.exact;
  if (g.stab->count()) s.stabilization_user = o.stabilization;
  if (g.stab_gen->count()) s.stabilization_generated = o.stabilization_generated;
  if (g.guidance->count()) s.guidance.mode = dd::guidance_mode_from_string(o.guidance);
  if (g.guidance_scale->count()) s.guidance.scale = o.guidance_scale;
  if (g.guidance_fraction->count()) s.guidance.fractional_level = o.guidance_fraction;
  if (g.horizon->count()) r.horizon = o.horizon;
  if (g.context->count()) r.context = o.context;
  if (g.seed->count()) r.seed = o.seed;
  if (g.detail->count()) r.detail_transfer = o.detail == "on";
  if (g.fit->count()) p.clip.fit = dp::fit_mode_from_string(o.fit);
  auto& e = p.export_settings;
  e.path = o.output;
  e.format = dp::export_format_from_path(o.output);
  if (g.scale->count()) e.scale = o.scale;
  if (o.nearest) e.smooth = false;
  if (g.fps->count()) e.fps = o.fps;
  if (g.quality->count()) e.quality = o.quality;
  if (g.range->count()) {
    e.range = dp::export_range_from_string(o.range);
    if (e.range == dp::ExportRange::InOut)
      throw std::runtime_error("--range in_out is not available here; use all or generated");
  }
  apply_timeline_edits(o, p.timeline);
  return g.horizon->count() || g.context->count();
}

// Fills the clip's probe summary (keeps path and fit).
void probe_clip(dp::ClipRef& clip) {
  const dfs::media::ProbeInfo info = dfs::media::probe(clip.path);
  if (info.frame_count <= 0) throw std::runtime_error("'" + clip.path + "' has no video frames");
  dp::set_clip_probe(clip, info);
}

// A path from a settings file: as given if it exists from here, else relative to `base`.
std::string resolve_near(const std::string& path, const fs::path& base) {
  std::error_code ec;
  if (path.empty() || fs::path(path).is_absolute() || fs::exists(path, ec) || base.empty())
    return path;
  const fs::path near = (base / path).lexically_normal();
  return fs::exists(near, ec) ? near.string() : path;
}

// [SECTION] Progress line ----------------------------------------------------------------------

std::string clock_text(double seconds) {
  return dforce::format_clock(seconds, "--:--");
}

class ProgressLine {
 public:
  explicit ProgressLine(bool quiet) : quiet_(quiet), tty_(::isatty(STDERR_FILENO) != 0) {}
  ~ProgressLine() { end(); }

  void update(const dp::GenerationProgress& p) {
    if (quiet_) return;
    char line[256];
    int percent = 0;
    if (p.phase == dp::GenerationProgress::Phase::Decoding) {
      percent = p.total_steps > 0 ? 100 * p.step / p.total_steps : 0;
      std::snprintf(line, sizeof line, "decoding  frame %d/%d  elapsed %s", p.step, p.total_steps,
                    clock_text(p.elapsed_s).c_str());
    } else {
      percent = p.total_steps > 0 ? 100 * p.step / p.total_steps : 100;
      std::snprintf(
          line, sizeof line,
          "generating  step %d/%d (%3d%%)  window %d/%d  frames %d/%d  elapsed %s  ETA %s", p.step,
          p.total_steps, percent, std::min(p.window + 1, std::max(p.windows, 1)),
          std::max(p.windows, 1), p.frames_final, p.frames_to_generate,
          clock_text(p.elapsed_s).c_str(), clock_text(p.eta_s).c_str());
    }
    if (tty_) {
      // Rewrite in place at most ~20 times a second.
      const auto now = std::chrono::steady_clock::now();
      if (p.phase != dp::GenerationProgress::Phase::Done &&
          now - last_ < std::chrono::milliseconds(50))
        return;
      last_ = now;
      std::fprintf(stderr, "\r%s\033[K", line);
      open_ = true;
    } else {
      const int decile = p.phase == dp::GenerationProgress::Phase::Decoding ? -1 : percent / 10;
      if (decile == last_decile_ && p.phase != dp::GenerationProgress::Phase::Done) return;
      if (p.phase == dp::GenerationProgress::Phase::Done && last_decile_ == 10) return;
      if (p.phase == dp::GenerationProgress::Phase::Decoding && decoding_shown_) return;
      decoding_shown_ = decoding_shown_ || p.phase == dp::GenerationProgress::Phase::Decoding;
      last_decile_ = decile;
      std::fprintf(stderr, "%s\n", line);
    }
    std::fflush(stderr);
  }

  void end() {
    if (open_) std::fprintf(stderr, "\n");
    open_ = false;
  }

 private:
  bool quiet_, tty_;
  bool open_ = false;
  bool decoding_shown_ = false;
  int last_decile_ = -2;
  std::chrono::steady_clock::time_point last_{};
};

// [SECTION] Running -----------------------------------------------------------------------------

// Loads the model, runs the job into the export, prints the summary. `base` resolves relative
// paths of a settings file.
void run_generation(dp::Project project, const GenerationOptions& o, bool window_given) {
  std::string warning;
  std::string model_path = o.model.empty() ? project.model_path : o.model;
  dd::Model model = dp::load_model_or_demo(model_path, "", &warning, o.device);
  if (!warning.empty()) std::fprintf(stderr, "dforce: warning: %s\n", warning.c_str());
  const dd::ModelInfo& info = model.info();
  // Record the model actually used (empty = the random fallback).
  std::error_code ec;
  if (!warning.empty())
    project.model_path.clear();
  else if (model_path.empty() || !fs::exists(model_path, ec))
    project.model_path = dp::find_demo_model("");
  else
    project.model_path = model_path;
  // Export scale: frames of a 256-pixel-wide model are exported at their own size unless
  // --scale (or a settings file) says otherwise; 64x48 models keep their x4 default.
  if (o.scale == 0 && info.width >= 256) project.export_settings.scale = 1;
  if (!window_given && dp::fit_window_to_model(project.generation, info))
    std::fprintf(
        stderr, "dforce: note: context %d + horizon %d to fit the model's %d-frame window\n",
        project.generation.rollout.context, project.generation.rollout.horizon, info.max_frames);

  // Like `mkdir -p` for the output's folder: a missing folder is not worth an error.
  const fs::path out_parent = fs::path(project.export_settings.path).parent_path();
  if (!out_parent.empty() && !fs::exists(out_parent, ec)) {
    fs::create_directories(out_parent, ec);
    if (ec)
      throw std::runtime_error("cannot create the output folder '" + out_parent.string() +
                               "': " + ec.message());
  }

  dp::GenerationJob job(project, model);
  const std::string metadata = dp::generation_metadata_json(job.project(), &info);
  dp::EncoderSink sink(project.export_settings, metadata);
  // --save-project: the generated frames go beside the project too ("<name>_frames/", as the
  // Studio saves them), so the project reopens complete and `dforce export` has them.
  std::unique_ptr<dp::PngCacheSink> cache;
  dp::FrameSink* target = &sink;
  std::string cache_dir_name;
  if (!o.save_project.empty()) {
    const fs::path project_file = fs::absolute(o.save_project);
    cache_dir_name = project_file.stem().string() + "_frames";
    cache = std::make_unique<dp::PngCacheSink>(
        (project_file.parent_path() / cache_dir_name).string(), &sink);
    target = cache.get();
  }
  ProgressLine line(o.quiet);
  if (!o.quiet)
    std::fprintf(
        stderr,
        "dforce: model '%s' %dx%d, %d frames max, on %s; %d frames to generate in %zu window%s\n",
        info.name.c_str(), info.width, info.height, info.max_frames, info.device.c_str(),
        job.frames_to_generate(), job.windows().size(), job.windows().size() == 1 ? "" : "s");

  dp::GenerationResult result;
  {
    SigintGuard guard;
    try {
      result = job.run(
          *target, [&](const dp::GenerationProgress& p) { line.update(p); }, &g_stop);
    } catch (...) {
      line.end();
      throw;
    }
  }
  line.end();

  const auto& e = project.export_settings;
  const int out_w = info.width * e.scale, out_h = info.height * e.scale;
  const double fps = e.fps > 0 ? e.fps : (project.clip.fps > 0 ? project.clip.fps : 8.0);
  const int gen = static_cast<int>(result.generated.size());
  if (!o.save_project.empty()) {
    project.results.generated.assign(static_cast<size_t>(project.timeline.length()), false);
    for (int p : result.generated) project.results.generated[static_cast<size_t>(p)] = true;
    project.results.seed = project.generation.rollout.seed;
    project.results.seconds = result.seconds;
    project.results.cache_dir = cache_dir_name;
    dp::write_file_atomically(o.save_project, dp::to_json(project));
  }
  if (result.cancelled)
    throw std::runtime_error("cancelled (Ctrl-C); the " + std::to_string(sink.frames_written()) +
                             " frames final so far (" + std::to_string(gen) +
                             " generated) are in '" + sink.output_path() + "'");
  std::printf("dforce: wrote %s: %d frames (%d generated), %dx%d at %g fps, settings embedded\n",
              sink.output_path().c_str(), sink.frames_written(), gen, out_w, out_h, fps);
  std::printf(
      "dforce: %.1f s total (decode %.1f s, generate %.1f s = %.2f generated frames/s, %d model "
      "forwards)\n",
      result.seconds, result.decode_seconds, result.seconds - result.decode_seconds,
      result.frames_per_second(), result.model_forwards);
}

// [SECTION] Commands ------------------------------------------------------------------------------

struct ExtendOptions {
  std::string clip;
  int frames = 0;
  int source_frames = 0;
  GenerationOptions gen;
};

void run_extend(const ExtendOptions& o) {
  dp::Project p;
  // Absolute, so that the settings embedded in the export find the clip from anywhere.
  p.clip.path = fs::absolute(o.clip).lexically_normal().string();
  probe_clip(p.clip);
  const int keep =
      o.source_frames > 0 ? std::min(o.source_frames, p.clip.frame_count) : p.clip.frame_count;
  p.timeline = dp::extend_layout(keep, o.frames);
  p.timeline.source_first = p.clip.frame_count - keep;
  const bool window_given = apply_overrides(o.gen, p);
  dp::validate(p);
  run_generation(std::move(p), o.gen, window_given);
}

struct GenerateOptions {
  std::string settings;
  std::string from;
  std::string clip;
  int frames = -1;
  GenerationOptions gen;
};

std::string read_text(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec))
    throw std::runtime_error("settings file '" + path + "' does not exist");
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw std::runtime_error("cannot read '" + path + "'");
  return text.str();
}

void run_generate(const GenerateOptions& o) {
  dp::Project p;
  fs::path base;
  if (!o.settings.empty()) {
    const std::string text = read_text(o.settings);
    base = fs::absolute(o.settings).parent_path();
    try {
      dp::restore_from_metadata(p, text);  // accepts a project file or exported metadata
    } catch (const dp::Error& e) {
      throw std::runtime_error("'" + o.settings + "': " + e.what());
    }
  } else {
    dp::restore_from_exported_file(p, o.from);
    base = fs::absolute(o.from).parent_path();
  }
  if (!o.clip.empty()) p.clip.path = o.clip;
  p.clip.path = resolve_near(p.clip.path, base);
  p.model_path = resolve_near(p.model_path, base);
  if (p.timeline.source_count > 0) {
    if (p.clip.path.empty())
      throw std::runtime_error("the settings use clip frames but name no clip: pass --clip");
    std::error_code ec;
    if (!fs::exists(p.clip.path, ec))
      throw std::runtime_error("the clip '" + p.clip.path +
                               "' named by the settings does not exist: pass --clip");
    probe_clip(p.clip);
  }
  if (o.frames >= 0) dp::set_new_frames(p.timeline, o.frames);
  p.results = {};
  const bool window_given = apply_overrides(o.gen, p);
  dp::validate(p);
  run_generation(std::move(p), o.gen, window_given);
}

}  // namespace

void register_generate_commands(CLI::App& app) {
  auto extend_opts = std::make_shared<ExtendOptions>();
  CLI::App* extend = app.add_subcommand(
      "extend", "Extend a clip by N generated frames (the clip's frames are pinned) and export it");
  extend->add_option("clip", extend_opts->clip, "Video to extend")->required();
  extend->add_option("-n,--frames", extend_opts->frames, "Frames to generate after the clip")
      ->required()
      ->check(in_limits(dfs::limits::kNewFrames));
  extend
      ->add_option("--source-frames", extend_opts->source_frames,
                   "Use only the clip's last K frames (default: all; they are also in the output)")
      ->check(CLI::PositiveNumber);
  add_generation_options(extend, extend_opts->gen);
  extend->callback([extend_opts] { run_extend(*extend_opts); });

  auto gen_opts = std::make_shared<GenerateOptions>();
  CLI::App* generate = app.add_subcommand(
      "generate",
      "Run a generation from a project/settings JSON or from an exported file's embedded settings");
  auto* settings = generate->add_option(
      "--settings", gen_opts->settings,
      "Project file (.json) or generation settings (an export's .json sidecar)");
  auto* from = generate->add_option("--from", gen_opts->from,
                                    "A file exported by the Studio or dforce: reuse its settings");
  settings->excludes(from);
  from->excludes(settings);
  generate->add_option("--clip", gen_opts->clip,
                       "Source clip (overrides the one the settings name)");
  generate
      ->add_option("-n,--frames", gen_opts->frames,
                   "Frames to generate after the clip's frames (overrides)")
      ->check(in_limits(dfs::limits::kTimelineFrames));
  add_generation_options(generate, gen_opts->gen);
  generate->callback([gen_opts] {
    if (gen_opts->settings.empty() && gen_opts->from.empty())
      throw std::runtime_error("generate needs --settings FILE.json or --from EXPORTED_FILE");
    run_generate(*gen_opts);
  });
}

}  // namespace dforce
