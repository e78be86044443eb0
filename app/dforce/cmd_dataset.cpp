// dforce dataset pack|synth|build|info — making the training data.
//
// Decoding clips (pack, build) needs dfs_media, so those exist only in the full build
// (DFS_WITH_MEDIA); synth and info also run in the core-only build on a GPU machine.
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "dfs/diffusion/api.h"
#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model_file.h"
#include "dfs/diffusion/train/ae_trainer.h"
#include "dfs/diffusion/train/dataset.h"
#include "dfs/diffusion/train/distributed.h"
#include "dfs/diffusion/train/eval.h"
#include "dfs/diffusion/train/train_job.h"
#include "dfs/diffusion/train/trainer.h"
#include "dfs/diffusion/weights.h"
#include "train_cli.h"

#ifdef DFS_WITH_MEDIA
#include "dfs/media/decoder.h"
#include "dfs/media/encoder.h"
#include "dfs/media/error.h"
#include "dfs/media/frame_ops.h"
#endif

namespace dforce {

namespace train = dfs::diffusion::train;
namespace fs = std::filesystem;

void print_dataset(const train::VideoDataset& ds, const std::string& path) {
  std::printf("%s: %dx%d, %lld frames (%lld training, %lld held out), %zu clips\n", path.c_str(),
              ds.width(), ds.height(), static_cast<long long>(ds.frame_count()),
              static_cast<long long>(ds.train_frame_count()),
              static_cast<long long>(ds.held_out_frame_count()), ds.clips.size());
  for (const auto& c : ds.clips)
    std::printf("  %-16s %5lld frames  train %5lld  held out %4lld  %s\n", c.name.c_str(),
                static_cast<long long>(c.length), static_cast<long long>(c.train_length),
                static_cast<long long>(c.held_out_length()), c.source.c_str());
}

namespace {

// [SECTION] dataset pack / synth / info ----------------------------------------------------

// Options of `dataset build` (registered in every build; it runs only with the media library).
struct BuildOptions {
  std::string opencv_data = "/usr/share/doc/opencv-doc/examples/data";
  std::string visp_data = "/usr/share/visp-images-data/ViSP-images";
  std::vector<std::string> still_dirs = {"/usr/share/wallpapers", "/usr/share/backgrounds"};
  std::vector<std::string> unseen = {"tree", "visp_mbt_cube"};
  int width = 256, height = 192;
  train::MotionSettings motion;
};

#ifdef DFS_WITH_MEDIA
bool is_image(const fs::path& p) {
  auto e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".bmp" || e == ".pgm" || e == ".ppm" ||
         e == ".webp";
}

// Decodes one clip (a video file, or a folder of images in name order) at width x height.
std::vector<dfs::Frame> decode_clip(const fs::path& input, int width, int height,
                                    dfs::media::FitMode fit, int64_t max_frames,
                                    std::string& note) {
  std::vector<dfs::Frame> frames;
  try {
    if (fs::is_directory(input)) {
      std::vector<fs::path> images;
      for (const auto& e : fs::directory_iterator(input))
        if (e.is_regular_file() && is_image(e.path())) images.push_back(e.path());
      std::sort(images.begin(), images.end());
      if (images.empty())
        throw Error("folder '" + input.string() +
                    "' holds no images (png, jpg, bmp, pgm, ppm, webp)");
      for (const auto& p : images) {
        if (max_frames > 0 && static_cast<int64_t>(frames.size()) >= max_frames) break;
        frames.push_back(
            dfs::media::resize(dfs::media::read_image(p.string()), width, height, fit));
      }
    } else {
      dfs::media::DecoderOptions options;
      options.width = width;
      options.height = height;
      options.fit = fit;
      auto decoder = dfs::media::open_decoder(input.string(), options);
      while (auto f = decoder->read()) {
        frames.push_back(std::move(f->image));
        if (max_frames > 0 && static_cast<int64_t>(frames.size()) >= max_frames) break;
      }
      const auto report = decoder->report();
      if (report.damaged())
        note = "damaged: " + std::to_string(report.packets_failed) + " packets failed, " +
               std::to_string(report.frames_missing) + " frames missing";
    }
  } catch (const dfs::media::Error& e) {
    throw Error(e.what());
  }
  if (frames.size() < 2) throw Error("'" + input.string() + "' gave fewer than 2 frames");
  return frames;
}

std::vector<fs::path> expand_inputs(const std::vector<std::string>& inputs) {
  std::vector<fs::path> out;
  for (const auto& in : inputs) {
    const fs::path p(in);
    if (!fs::exists(p)) throw Error("'" + in + "' does not exist");
    if (fs::is_directory(p)) {
      bool images = false;
      std::vector<fs::path> videos;
      for (const auto& e : fs::directory_iterator(p)) {
        if (!e.is_regular_file()) continue;
        if (is_image(e.path()))
          images = true;
        else
          videos.push_back(e.path());
      }
      if (images) {
        out.push_back(p);  // a folder of frames is one clip
      } else {
        std::sort(videos.begin(), videos.end());
        out.insert(out.end(), videos.begin(), videos.end());
      }
    } else {
      out.push_back(p);
    }
  }
  if (out.empty()) throw Error("no clips to pack");
  return out;
}

}  // namespace

train::VideoDataset pack_clips(const std::vector<std::string>& inputs, int width, int height,
                               const std::string& fit_name, double held_out, int64_t max_frames,
                               const std::string& command, bool skip_bad) {
  dfs::media::FitMode fit;
  try {
    fit = dfs::media::parse_fit_mode(fit_name.c_str());
  } catch (const std::exception&) {
    throw Error("--fit must be letterbox or crop, got '" + fit_name + "'");
  }
  train::VideoDataset ds;
  nlohmann::json sources = nlohmann::json::array();
  for (const auto& path : expand_inputs(inputs)) {
    std::string note;
    std::vector<dfs::Frame> frames;
    try {
      frames = decode_clip(path, width, height, fit, max_frames, note);
    } catch (const Error& e) {
      if (!skip_bad) throw;
      std::printf("skipping %s: %s\n", path.string().c_str(), e.what());
      continue;
    }
    std::string name = path.stem().string();
    for (int k = 2; std::any_of(ds.clips.begin(), ds.clips.end(),
                                [&](const auto& c) { return c.name == name; });
         ++k)
      name = path.stem().string() + "_" + std::to_string(k);
    // The packing path the Studio's "Learn this clip" shares (train::append_clip of Frames).
    train::append_clip(ds, name, path.filename().string(), frames, held_out);
    std::printf("  %-16s %5zu frames%s%s\n", name.c_str(), frames.size(),
                note.empty() ? "" : "  ", note.c_str());
    sources.push_back({{"name", name},
                       {"file", path.filename().string()},
                       {"frames", frames.size()},
                       {"note", note}});
  }
  if (ds.clips.empty()) throw Error("no clip could be decoded");
  ds.provenance = {{"made_by", "dforce dataset pack"},
                   {"command", command},
                   {"size", {width, height}},
                   {"fit", fit_name},
                   {"held_out_fraction", held_out},
                   {"split", "by time: last part of each clip"},
                   {"sources", sources},
                   {"date", now_utc()}};
  return ds;
}

namespace {

// [SECTION] dataset build: the broad training set from Debian's packages -----------------------

// The real footage and still photographs Debian ships (docs/DESIGN.md "Data"), at fixed paths so
// that the same packages give the same dataset. `unseen` clips are held out whole.
struct BuildSource {
  std::string name;
  std::string path;  // video file, or folder of frames
  bool unseen = false;
};

std::vector<BuildSource> build_sources(const BuildOptions& o) {
  const fs::path cv(o.opencv_data), vp(o.visp_data);
  std::vector<BuildSource> s = {
      {"vtest", (cv / "vtest.avi").string()},
      {"Megamind", (cv / "Megamind.avi").string()},
      {"tree", (cv / "tree.avi").string()},
      {"visp_mire2", (vp / "mire-2").string()},
      {"visp_cube", (vp / "cube").string()},
      {"visp_mbt_cube", (vp / "mbt" / "cube").string()},
      {"visp_castle", (vp / "mbt-depth" / "Castle-simu" / "Images").string()},
      {"visp_ellipse", (vp / "ellipse-1").string()},
      {"visp_line", (vp / "line").string()},
  };
  for (auto& src : s)
    src.unseen = std::find(o.unseen.begin(), o.unseen.end(), src.name) != o.unseen.end();
  return s;
}

// Still photographs: opencv-doc's sample pictures, ViSP's photographs, and every landscape
// picture under the wallpaper folders, in path order. Small pictures (< 200 px a side) skipped.
std::vector<fs::path> still_paths(const BuildOptions& o) {
  std::vector<fs::path> out;
  auto add_dir = [&](const fs::path& dir, bool recursive) {
    if (!fs::is_directory(dir)) return;
    std::vector<fs::path> found;
    if (recursive) {
      for (const auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file() && is_image(e.path())) found.push_back(e.path());
    } else {
      for (const auto& e : fs::directory_iterator(dir))
        if (e.is_regular_file() && is_image(e.path())) found.push_back(e.path());
    }
    std::sort(found.begin(), found.end());
    for (auto& f : found)
      if (f.string().find("screenshot") == std::string::npos) out.push_back(f);
  };
  add_dir(o.opencv_data, false);
  const fs::path vp(o.visp_data);
  for (const auto* f : {"Klimt/Klimt.ppm", "mbt-depth/castel/chateau.ppm",
                        "Solvay/Solvay_conference_1927_Version2_640x440.jpg"})
    if (fs::exists(vp / f)) out.push_back(vp / f);
  for (const auto& d : o.still_dirs) add_dir(d, true);
  return out;
}

torch::Tensor frame_to_hwc(const dfs::Frame& f) {
  auto t = torch::empty({f.height, f.width, 3}, torch::kUInt8);
  std::memcpy(t.data_ptr<uint8_t>(), f.rgb.data(), f.byte_size());
  return t;
}

train::VideoDataset build_dataset(const BuildOptions& o, const std::string& command) {
  train::VideoDataset ds;
  nlohmann::json sources = nlohmann::json::array();
  std::printf("real footage at %dx%d (crop to fill):\n", o.width, o.height);
  for (const auto& src : build_sources(o)) {
    if (!fs::exists(src.path))
      throw Error("'" + src.path +
                  "' is missing: install the data packages with "
                  "packaging/install-deps.sh --data (opencv-doc, visp-images-data)");
    std::string note;
    const auto frames =
        decode_clip(src.path, o.width, o.height, dfs::media::FitMode::Crop, 0, note);
    train::append_clip(ds, src.name, fs::path(src.path).filename().string(), frames,
                       src.unseen ? 1.0 : train::kDefaultHeldOutFraction);
    const auto& c = ds.clips.back();
    std::printf("  %-16s %5lld frames  train %4lld  held out %4lld%s%s\n", src.name.c_str(),
                static_cast<long long>(c.length), static_cast<long long>(c.train_length),
                static_cast<long long>(c.held_out_length()),
                src.unseen ? "  (unseen: whole clip)" : "",
                note.empty() ? "" : ("  " + note).c_str());
    sources.push_back({{"name", src.name},
                       {"path", src.path},
                       {"frames", c.length},
                       {"unseen", src.unseen},
                       {"note", note}});
  }
  std::vector<torch::Tensor> stills;
  nlohmann::json still_names = nlohmann::json::array();
  const int max_side = 4 * std::max(o.width, o.height);
  for (const auto& p : still_paths(o)) {
    dfs::Frame f;
    try {
      f = dfs::media::read_image(p.string());
    } catch (const dfs::media::Error& e) {
      std::printf("  skipping still %s: %s\n", p.string().c_str(), e.what());
      continue;
    }
    if (f.width < 200 || f.height < 200 || f.height > f.width * 1.1) continue;
    const double r = std::min(1.0, static_cast<double>(max_side) / std::max(f.width, f.height));
    if (r < 1.0)
      f = dfs::media::resize(f, std::max(1, static_cast<int>(std::lround(f.width * r))),
                             std::max(1, static_cast<int>(std::lround(f.height * r))),
                             dfs::media::FitMode::Stretch);
    stills.push_back(frame_to_hwc(f));
    still_names.push_back(p.string());
  }
  if (stills.empty())
    throw Error("no still photographs found: install them with packaging/install-deps.sh --data");
  auto m = o.motion;
  m.width = o.width;
  m.height = o.height;
  std::printf("synthetic motion: %d clips of %d frames over %zu still photographs\n", m.clips,
              m.frames, stills.size());
  train::append_motion_clips(ds, stills, m);
  ds.provenance = {{"made_by", "dforce dataset build"},
                   {"command", command},
                   {"size", {o.width, o.height}},
                   {"fit", "crop"},
                   {"held_out_fraction", train::kDefaultHeldOutFraction},
                   {"split",
                    "by time: last part of each real clip; unseen clips held out whole; "
                    "synthetic clips train only"},
                   {"unseen", o.unseen},
                   {"sources", sources},
                   {"stills", still_names},
                   {"motion",
                    {{"clips", m.clips},
                     {"frames", m.frames},
                     {"seed", m.seed},
                     {"max_pan", m.max_pan},
                     {"max_zoom", m.max_zoom},
                     {"max_rotation", m.max_rotation},
                     {"p_static", m.p_static},
                     {"p_layers", m.p_layers},
                     {"max_layer_speed", m.max_layer_speed},
                     {"p_lighting", m.p_lighting}}}};
  return ds;
}
#endif

}  // namespace

void register_dataset_commands(CLI::App& app) {
  auto* ds = app.add_subcommand("dataset", "Make and inspect packed training datasets");
  ds->require_subcommand(1);

  {
    auto* pack =
        ds->add_subcommand("pack", "Decode clips (files or folders) into one dataset file");
    auto inputs = std::make_shared<std::vector<std::string>>();
    auto size = std::make_shared<std::string>("64x48");
    auto fit = std::make_shared<std::string>("letterbox");
    auto out = std::make_shared<std::string>();
    auto held = std::make_shared<double>(train::kDefaultHeldOutFraction);
    auto max_frames = std::make_shared<int64_t>(0);
    auto skip = std::make_shared<bool>(false);
    pack->add_option("inputs", *inputs,
                     "Video files, or folders (of videos, or of frames as one clip)")
        ->required();
    pack->add_option("--size", *size, "Model resolution WxH")->capture_default_str();
    pack->add_option("--fit", *fit, "letterbox (pad) or crop")->capture_default_str();
    pack->add_option("-o,--output", *out, "Dataset file (.safetensors)")->required();
    pack->add_option("--held-out", *held, "Held-out fraction at the end of each clip")
        ->capture_default_str();
    pack->add_option("--max-frames", *max_frames, "At most this many frames per clip (0 = all)");
    pack->add_flag("--skip-bad", *skip, "Skip clips that cannot be decoded instead of failing");
    pack->callback([=] {
#ifdef DFS_WITH_MEDIA
      const auto [w, h] = parse_size(*size);
      std::vector<std::string> cmd = {"dforce", "dataset", "pack"};
      for (const auto& i : *inputs) cmd.push_back(fs::path(i).filename().string());
      cmd.insert(cmd.end(),
                 {"--size", *size, "--fit", *fit, "-o", fs::path(*out).filename().string()});
      const auto dataset =
          pack_clips(*inputs, w, h, *fit, *held, *max_frames, join_command(cmd), *skip);
      train::save_dataset(*out, dataset);
      print_dataset(dataset, *out);
#else
      (void)size;
      throw Error(
          "`dforce dataset pack` needs the full build (FFmpeg); this dforce is core-only. Pack on "
          "a full "
          "machine and copy the .safetensors file here.");
#endif
    });
  }
  {
    auto* build = ds->add_subcommand(
        "build",
        "Build the broad training set: Debian's real footage (opencv-doc, visp-images-data) plus "
        "synthetic camera motion over still photographs (wallpapers, sample pictures)");
    auto o = std::make_shared<BuildOptions>();
    auto size = std::make_shared<std::string>("256x192");
    auto out = std::make_shared<std::string>();
    build->add_option("-o,--output", *out, "Dataset file (.safetensors)")->required();
    build->add_option("--size", *size, "WxH")->capture_default_str();
    build->add_option("--motion-clips", o->motion.clips, "Synthetic clips")->capture_default_str();
    build->add_option("--motion-frames", o->motion.frames, "Frames per synthetic clip")
        ->capture_default_str();
    build->add_option("--seed", o->motion.seed, "Seed of the synthetic clips")
        ->capture_default_str();
    build->add_option("--unseen", o->unseen, "Real clips held out whole (names)")
        ->delimiter(',')
        ->capture_default_str();
    build->add_option("--opencv-data", o->opencv_data, "opencv-doc's examples/data folder")
        ->capture_default_str();
    build->add_option("--visp-data", o->visp_data, "visp-images-data's ViSP-images folder")
        ->capture_default_str();
    build->add_option("--stills", o->still_dirs, "Folders searched for still photographs")
        ->capture_default_str();
    build->callback([=] {
#ifdef DFS_WITH_MEDIA
      auto opts = *o;
      std::tie(opts.width, opts.height) = parse_size(*size);
      if (opts.width % 8 != 0 || opts.height % 8 != 0)
        throw Error(
            "--size must be a multiple of 8 on each side (the latent autoencoder's factor)");
      const std::string command = "dforce dataset build --size " + *size + " --motion-clips " +
                                  std::to_string(opts.motion.clips) + " --motion-frames " +
                                  std::to_string(opts.motion.frames) + " --seed " +
                                  std::to_string(opts.motion.seed) + " -o " +
                                  fs::path(*out).filename().string();
      const auto dataset = build_dataset(opts, command);
      train::save_dataset(*out, dataset);
      std::printf("%s: %dx%d, %lld frames (%lld training, %lld held out), %zu clips, %s\n",
                  out->c_str(), dataset.width(), dataset.height(),
                  static_cast<long long>(dataset.frame_count()),
                  static_cast<long long>(dataset.train_frame_count()),
                  static_cast<long long>(dataset.held_out_frame_count()), dataset.clips.size(),
                  dataset.fingerprint().c_str());
#else
      (void)size;
      (void)out;
      throw Error("`dforce dataset build` needs the full build (FFmpeg) to decode the sources");
#endif
    });
  }
  {
    auto* synth = ds->add_subcommand("synth", "Generate a synthetic moving-objects dataset");
    auto s = std::make_shared<train::SyntheticSettings>();
    auto size = std::make_shared<std::string>("64x48");
    auto out = std::make_shared<std::string>();
    synth->add_option("-o,--output", *out, "Dataset file (.safetensors)")->required();
    synth->add_option("--size", *size, "WxH")->capture_default_str();
    synth->add_option("--clips", s->clips, "Number of clips")->capture_default_str();
    synth->add_option("--frames", s->frames, "Frames per clip")->capture_default_str();
    synth->add_option("--seed", s->seed, "Random seed")->capture_default_str();
    synth->callback([=] {
      auto settings = *s;
      std::tie(settings.width, settings.height) = parse_size(*size);
      const auto dataset = train::make_synthetic_dataset(settings);
      train::save_dataset(*out, dataset);
      print_dataset(dataset, *out);
    });
  }
  {
    auto* info = ds->add_subcommand("info", "Print a dataset file's clips and split");
    auto path = std::make_shared<std::string>();
    info->add_option("dataset", *path, "Dataset file")->required();
    info->callback([=] {
      const auto dataset = train::load_dataset(*path);
      print_dataset(dataset, *path);
      std::printf("provenance: %s\n", dataset.provenance.dump().c_str());
    });
  }
}

}  // namespace dforce
