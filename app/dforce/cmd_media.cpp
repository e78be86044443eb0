// cmd_media.cpp — `dforce probe`, `dforce frames`, `dforce export`, `dforce bench-decode`:
// dfs_media from the command line, so the Studio's clip handling is scriptable.
//
//   dforce probe clip.mp4 [--json]
//   dforce frames clip.mp4 --from 10 --to 40 --size 64x48 [--fit letterbox|crop|stretch] -o dir/
//   dforce export frames_dir/ -o out.mp4 [--fps 8] [--format mp4|mkv|webm|gif|png-seq]
//                 [--crf 20] [--preset medium] [--metadata settings.json]
//   dforce export project.dfsproj -o out.mp4     (the Studio's File > Export, same code)
//   dforce bench-decode [clip] [--size 64x48] [--repeat 3]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "commands.h"
#include "dfs/media/media.h"
#include "dfs/project/export.h"
#include "dfs/project/generation.h"

namespace dforce {
namespace {

namespace fs = std::filesystem;
namespace dm = dfs::media;

// "64x48" → {64, 48}; throws a message naming the option.
std::pair<int, int> parse_size(const std::string& text) {
  const auto x = text.find_first_of("xX");
  int w = 0, h = 0;
  try {
    if (x == std::string::npos) throw std::invalid_argument("no x");
    size_t used_w = 0, used_h = 0;
    w = std::stoi(text.substr(0, x), &used_w);
    h = std::stoi(text.substr(x + 1), &used_h);
    if (used_w != x || used_h != text.size() - x - 1) throw std::invalid_argument("junk");
  } catch (const std::exception&) {
    throw std::runtime_error("--size must look like WIDTHxHEIGHT, e.g. 64x48 (got '" + text + "')");
  }
  if (w <= 0 || h <= 0 || w > 16384 || h > 16384)
    throw std::runtime_error("--size must be between 1x1 and 16384x16384 (got '" + text + "')");
  return {w, h};
}

// [SECTION] probe ---------------------------------------------------------------------------

nlohmann::json probe_json(const dm::ProbeInfo& p) {
  return {{"path", p.path},
          {"container", p.container},
          {"container_long", p.container_long},
          {"codec", p.codec},
          {"pixel_format", p.pixel_format},
          {"width", p.width},
          {"height", p.height},
          {"display_width", p.display_width},
          {"display_height", p.display_height},
          {"display_aspect", p.display_aspect},
          {"rotation", p.rotation},
          {"fps", p.fps},
          {"variable_fps", p.variable_fps},
          {"duration", p.duration},
          {"frame_count", p.frame_count},
          {"frame_count_exact", p.frame_count_exact},
          {"bit_rate", p.bit_rate},
          {"has_audio", p.has_audio}};
}

void run_probe(const std::string& clip, bool json) {
  const dm::ProbeInfo p = dm::probe(clip);
  const auto metadata = dm::read_generation_metadata(clip);
  if (json) {
    nlohmann::json j = probe_json(p);
    if (metadata) j["generation"] = nlohmann::json::parse(*metadata);
    std::printf("%s\n", j.dump(2).c_str());
    return;
  }
  std::printf("%s\n", p.path.c_str());
  std::printf("  container : %s (%s)\n", p.container_long.c_str(), p.container.c_str());
  std::printf("  codec     : %s, %s\n", p.codec.c_str(), p.pixel_format.c_str());
  std::printf("  size      : %dx%d", p.width, p.height);
  if (p.display_width != p.width || p.display_height != p.height)
    std::printf(" (shown as %dx%d)", p.display_width, p.display_height);
  std::printf(", aspect %.4f\n", p.display_aspect);
  if (p.rotation) std::printf("  rotation  : %d degrees clockwise\n", p.rotation);
  std::printf("  rate      : %.3f fps%s\n", p.fps, p.variable_fps ? " (variable)" : "");
  std::printf("  duration  : %.3f s\n", p.duration);
  std::printf("  frames    : %lld%s\n", static_cast<long long>(p.frame_count),
              p.frame_count_exact ? "" : " (estimated)");
  if (p.bit_rate) std::printf("  bit rate  : %.0f kb/s\n", p.bit_rate / 1000.0);
  std::printf("  audio     : %s\n", p.has_audio ? "yes (ignored)" : "no");
  if (metadata) std::printf("  generation: %s\n", metadata->c_str());
}

// [SECTION] frames --------------------------------------------------------------------------

struct FramesOptions {
  std::string clip;
  long long from = 0;
  long long to = -1;  // inclusive; -1 = last
  std::string size;
  std::string fit = "letterbox";
  std::string output;
};

void run_frames(const FramesOptions& o) {
  dm::DecoderOptions options;
  if (!o.size.empty()) std::tie(options.width, options.height) = parse_size(o.size);
  options.fit = dm::parse_fit_mode(o.fit.c_str());
  options.cache_frames = 0;
  auto decoder = dm::open_decoder(o.clip, options);
  const auto count = decoder->info().frame_count;
  const long long last = o.to < 0 ? count - 1 : std::min<long long>(o.to, count - 1);
  if (o.from < 0 || o.from > last)
    throw std::runtime_error("--from " + std::to_string(o.from) + " is outside the clip's " +
                             std::to_string(count) + " frames");
  std::error_code ec;
  fs::create_directories(o.output, ec);
  if (!fs::is_directory(o.output))
    throw std::runtime_error("cannot create the folder '" + o.output + "'");
  decoder->seek(o.from);
  long long written = 0;
  while (auto f = decoder->read()) {
    if (f->index > last) break;
    if (f->index < o.from) continue;
    char name[40];
    std::snprintf(name, sizeof(name), "frame_%06lld.png", static_cast<long long>(f->index));
    dm::write_png((fs::path(o.output) / name).string(), f->image);
    ++written;
  }
  const auto report = decoder->report();
  std::printf("wrote %lld frames (%d x %d) to %s\n", written, decoder->output_width(),
              decoder->output_height(), o.output.c_str());
  if (report.damaged()) {
    std::fprintf(stderr, "warning: the clip is damaged: %lld packets failed, %lld frames missing\n",
                 static_cast<long long>(report.packets_failed),
                 static_cast<long long>(report.frames_missing));
    for (const auto& m : report.messages) std::fprintf(stderr, "  %s\n", m.c_str());
  }
}

// [SECTION] export --------------------------------------------------------------------------

struct ExportOptions {
  std::string input;
  std::string output;
  double fps = 8;
  std::string format = "auto";
  int crf = -1;
  std::string preset = "medium";
  std::string metadata;
  bool scale_to_even = false;
  bool fps_given = false;
};

std::vector<fs::path> image_files(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    if (fs::is_regular_file(dir, ec)) return {fs::path(dir)};
    throw std::runtime_error("'" + dir + "' is neither a folder of frames nor an image");
  }
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (entry.is_regular_file() &&
        (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp"))
      files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());  // frame_000001 < frame_000002: zero-padded names
  if (files.empty()) throw std::runtime_error("no .png/.jpg/.bmp frames in '" + dir + "'");
  return files;
}

// A saved project: its clip's frames and the generated frames saved beside it, through the
// project's export settings (-o replaces the output and its format), as the Studio exports.
void run_project_export(const ExportOptions& o) {
  namespace dp = dfs::project;
  dp::Document doc = dp::Document::load(o.input);
  dp::Project p = doc.project();
  // -o is required: the project's own export path is often a file the user already has (the
  // output of the `dforce extend` that saved the project), never overwritten unasked.
  p.export_settings.path = fs::absolute(o.output).string();
  p.export_settings.format = dp::export_format_from_path(o.output);
  if (o.format != "auto") p.export_settings.format = dm::parse_export_format(o.format);
  if (o.fps_given) p.export_settings.fps = o.fps;
  dp::validate(p);
  std::string warning;
  const auto model =
      dp::load_model_or_demo(p.model_path.empty() ? "" : doc.resolve(p.model_path), "", &warning);
  if (!warning.empty()) std::fprintf(stderr, "dforce: warning: %s\n", warning.c_str());
  int missing = 0;
  const auto generated = dp::load_saved_results(doc, &missing);
  int listed = 0;
  for (int i = 0; i < p.timeline.length(); ++i) listed += p.results.has(i) ? 1 : 0;
  if (listed > static_cast<int>(generated.size()))
    std::fprintf(stderr,
                 "dforce: warning: the project lists %d generated frames but %d are saved with "
                 "it (%s); the export has the clip's frames there%s\n",
                 listed, static_cast<int>(generated.size()),
                 p.results.cache_dir.empty() ? "it has no frames folder"
                                             : (std::to_string(missing) + " files missing").c_str(),
                 p.timeline.length() > p.clip.frame_count ? " and skips the new ones" : "");
  const std::string clip = p.clip.path.empty() ? std::string() : doc.resolve(p.clip.path);
  g_stop.store(false);
  SigintGuard guard;
  const auto outcome = dp::export_project(p, model.info(), generated, clip, nullptr, &g_stop);
  if (outcome.cancelled) throw std::runtime_error("export interrupted: no file was written");
  std::printf("exported %d frames (%zu generated) to %s\n", outcome.frames_written,
              generated.size(), outcome.output.c_str());
}

bool is_project_file(const std::string& path) {
  std::error_code ec;
  const std::string ext = fs::path(path).extension().string();
  return fs::is_regular_file(path, ec) && (ext == ".dfsproj" || ext == ".dfsproject");
}

void run_export(const ExportOptions& o) {
  if (is_project_file(o.input)) return run_project_export(o);
  dm::EncodeSettings settings;
  settings.format = dm::parse_export_format(o.format);
  settings.fps = o.fps;
  settings.crf = o.crf;
  settings.preset = o.preset;
  settings.even_size = o.scale_to_even ? dm::EvenSize::kScale : dm::EvenSize::kPad;
  if (!o.metadata.empty()) {
    std::ifstream in(o.metadata, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read --metadata file '" + o.metadata + "'");
    std::ostringstream text;
    text << in.rdbuf();
    settings.metadata_json = text.str();
  }
  const auto files = image_files(o.input);
  dm::Encoder encoder;
  encoder.open(o.output, settings);
  for (const auto& file : files) encoder.write(dm::read_image(file.string()));
  encoder.close();
  std::printf("exported %lld frames at %.3f fps to %s\n",
              static_cast<long long>(encoder.frames_written()), o.fps, o.output.c_str());
}

// [SECTION] bench-decode --------------------------------------------------------------------

struct BenchOptions {
  std::string clip = "/usr/share/doc/opencv-doc/examples/data/vtest.avi";
  std::string size = "64x48";
  int repeat = 3;
  int threads = 0;
};

bool ffmpeg_on_path() {
  return std::system("ffmpeg -hide_banner -version > /dev/null 2>&1") == 0;
}

// CPU seconds (user + system) used so far by this process (`who` = RUSAGE_SELF) or by its
// waited-for children (RUSAGE_CHILDREN). CPU time is reported beside wall time because on a
// shared machine the wall clock mostly measures the neighbours' load.
double cpu_seconds(int who) {
  rusage usage{};
  getrusage(who, &usage);
  return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
         1e-6 * (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
}

struct Timing {
  double wall = 1e30;  // best of the runs, seconds
  double cpu = 1e30;   // best of the runs, seconds
};

void run_bench(const BenchOptions& o) {
  const auto [w, h] = parse_size(o.size);
  const dm::ProbeInfo info = dm::probe(o.clip);
  std::printf("clip: %s (%s %dx%d, %lld frames)\n", o.clip.c_str(), info.codec.c_str(), info.width,
              info.height, static_cast<long long>(info.frame_count));
  using clock = std::chrono::steady_clock;
  const int runs = std::max(1, o.repeat);
  Timing ours;
  long long frames = 0;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = clock::now();
    const double c0 = cpu_seconds(RUSAGE_SELF);
    dm::DecoderOptions options;
    options.width = w;
    options.height = h;
    options.fit = dm::FitMode::Stretch;  // what `-vf scale=W:H` does
    options.cache_frames = 0;
    options.threads = o.threads;
    auto decoder = dm::open_decoder(o.clip, options);
    frames = 0;
    while (decoder->read()) ++frames;
    ours.wall = std::min(ours.wall, std::chrono::duration<double>(clock::now() - t0).count());
    ours.cpu = std::min(ours.cpu, cpu_seconds(RUSAGE_SELF) - c0);
  }
  std::printf(
      "dfs_media decode+resize to %dx%d  : %lld frames, wall %.3f s = %5.0f frames/s, cpu %.3f s = "
      "%5.0f frames/s\n",
      w, h, frames, ours.wall, frames / ours.wall, ours.cpu, frames / ours.cpu);
  if (!ffmpeg_on_path()) {
    std::printf("ffmpeg program not on PATH: no comparison\n");
    return;
  }
  Timing cli;
  const std::string cmd = "ffmpeg -nostdin -hide_banner -v error -threads " +
                          std::to_string(o.threads) + " -i \"" + o.clip +
                          "\" -vf scale=" + std::to_string(w) + ":" + std::to_string(h) +
                          " -f null - > /dev/null 2>&1";
  for (int r = 0; r < runs; ++r) {
    const auto t0 = clock::now();
    const double c0 = cpu_seconds(RUSAGE_CHILDREN);
    if (std::system(cmd.c_str()) != 0)
      throw std::runtime_error("the ffmpeg program failed on this clip");
    cli.wall = std::min(cli.wall, std::chrono::duration<double>(clock::now() - t0).count());
    cli.cpu = std::min(cli.cpu, cpu_seconds(RUSAGE_CHILDREN) - c0);
  }
  std::printf(
      "ffmpeg -vf scale=%d:%d -f null -: %lld frames, wall %.3f s = %5.0f frames/s, cpu %.3f s = "
      "%5.0f frames/s\n",
      w, h, frames, cli.wall, frames / cli.wall, cli.cpu, frames / cli.cpu);
  std::printf(
      "time ratio dfs_media / ffmpeg (target <= 1.20): wall %.2f, cpu %.2f  (best of %d runs "
      "each)\n",
      ours.wall / cli.wall, ours.cpu / cli.cpu, runs);
}

}  // namespace

void register_media_commands(CLI::App& app) {
  {
    auto* sub = app.add_subcommand(
        "probe", "Describe a clip: container, codec, size, rotation, rate, frames");
    auto clip = std::make_shared<std::string>();
    auto json = std::make_shared<bool>(false);
    sub->add_option("clip", *clip, "Video, GIF or image file")->required();
    sub->add_flag("--json", *json,
                  "Print JSON (with the generation settings if the file has them)");
    sub->callback([clip, json] { run_probe(*clip, *json); });
  }
  {
    auto* sub = app.add_subcommand("frames", "Write frames of a clip as PNGs, optionally resized");
    auto o = std::make_shared<FramesOptions>();
    sub->add_option("clip", o->clip, "Video file")->required();
    sub->add_option("--from", o->from, "First frame index (0-based)")
        ->check(CLI::NonNegativeNumber);
    sub->add_option("--to", o->to, "Last frame index, inclusive (default: the last frame)");
    sub->add_option("--size", o->size, "Output size WIDTHxHEIGHT, e.g. 64x48 (default: native)");
    sub->add_option("--fit", o->fit, "letterbox (pad), crop or stretch")
        ->check(CLI::IsMember({"letterbox", "pad", "crop", "fill", "stretch"}));
    sub->add_option("-o,--output", o->output, "Folder for frame_<index>.png files")->required();
    sub->callback([o] { run_frames(*o); });
  }
  {
    auto* sub = app.add_subcommand(
        "export",
        "Encode a folder of frames (PNG/JPEG/BMP, sorted by name), or a saved Studio project "
        "(.dfsproj: its clip and generated frames, as File > Export does), to video, GIF or PNGs");
    auto o = std::make_shared<ExportOptions>();
    sub->add_option("input", o->input, "Folder of frames, one image, or a .dfsproj project")
        ->required();
    sub->add_option("-o,--output", o->output, "Output: .mp4, .mkv, .webm, .gif, .png or folder/")
        ->required();
    auto* fps = sub->add_option("--fps", o->fps, "Frames per second")->check(CLI::PositiveNumber);
    sub->add_option("--format", o->format,
                    "auto (from the extension), mp4, mkv, webm, gif, png, png-seq");
    sub->add_option("--crf", o->crf,
                    "Quality, lower is better (H.264 0-51, default 20; VP9 0-63, default 32)")
        ->check(CLI::Range(0, 63));
    sub->add_option("--preset", o->preset, "x264 preset: ultrafast .. veryslow");
    sub->add_option("--metadata", o->metadata,
                    "JSON file embedded in the output (and a .json sidecar)");
    sub->add_flag("--scale-to-even", o->scale_to_even,
                  "Scale odd sizes down to even instead of padding");
    sub->callback([o, fps] {
      o->fps_given = fps->count() > 0;
      run_export(*o);
    });
  }
  {
    auto* sub = app.add_subcommand(
        "bench-decode", "Decode + resize frames/s, beside the ffmpeg program doing the same");
    auto o = std::make_shared<BenchOptions>();
    sub->add_option("clip", o->clip, "Clip to decode (default: opencv-doc's vtest.avi)");
    sub->add_option("--size", o->size, "Resize target WIDTHxHEIGHT");
    sub->add_option("--repeat", o->repeat, "Runs per side; the best is reported")
        ->check(CLI::Range(1, 100));
    sub->add_option("--decode-threads", o->threads,
                    "Decoder threads for both sides (0 = automatic)")
        ->check(CLI::NonNegativeNumber);
    sub->callback([o] { run_bench(*o); });
  }
}

}  // namespace dforce
