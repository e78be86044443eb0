// dforce dataset pack|synth|info, train, learn, eval, train-bench — the training family.
//
// Thin wiring over dfs::diffusion::train (datasets, trainer, evaluation). Decoding clips for
// `dataset pack` and `learn` needs dfs_media, so those two exist only in the full build
// (DFS_WITH_MEDIA); everything else also runs in the core-only build on a GPU machine.
//
// Index
//   [SECTION] Helpers (sizes, signals, progress line, PNG, peak memory)
//   [SECTION] dataset pack / synth / info
//   [SECTION] train
//   [SECTION] learn
//   [SECTION] eval
//   [SECTION] train-bench
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
using dfs::diffusion::Error;
namespace fs = std::filesystem;

// [SECTION] Helpers (sizes, signals, progress line, PNG, peak memory) ---------------------

namespace {

// A PNG without compression (stored deflate blocks): enough for the contact sheet in the
// core-only build, which has no image encoder. PNG spec (ISO/IEC 15948) Sec. 5 and 10, zlib
// RFC 1950 (Adler-32), deflate RFC 1951 Sec. 3.2.4 (stored blocks).
[[maybe_unused]] void write_png_stored(const std::string& path, const dfs::Frame& frame) {
  auto crc32 = [](const std::vector<uint8_t>& d, size_t from) {
    uint32_t c = 0xffffffffu;
    for (size_t i = from; i < d.size(); ++i) {
      c ^= d[i];
      for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1u)));
    }
    return c ^ 0xffffffffu;
  };
  auto be32 = [](std::vector<uint8_t>& d, uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) d.push_back(static_cast<uint8_t>(v >> s));
  };
  std::vector<uint8_t> out = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  auto chunk = [&](const char* type, const std::vector<uint8_t>& body) {
    be32(out, static_cast<uint32_t>(body.size()));
    const size_t start = out.size();
    out.insert(out.end(), type, type + 4);
    out.insert(out.end(), body.begin(), body.end());
    be32(out, crc32(out, start));
  };
  std::vector<uint8_t> ihdr;
  be32(ihdr, static_cast<uint32_t>(frame.width));
  be32(ihdr, static_cast<uint32_t>(frame.height));
  ihdr.insert(ihdr.end(), {8, 2, 0, 0, 0});  // 8-bit RGB, no interlace
  chunk("IHDR", ihdr);
  std::vector<uint8_t> raw;
  for (int y = 0; y < frame.height; ++y) {
    raw.push_back(0);  // filter: none
    raw.insert(raw.end(), frame.row(y), frame.row(y) + frame.stride());
  }
  std::vector<uint8_t> z = {0x78, 0x01};
  uint32_t a = 1, b = 0;
  for (uint8_t v : raw) {
    a = (a + v) % 65521u;
    b = (b + a) % 65521u;
  }
  for (size_t pos = 0; pos < raw.size() || pos == 0; pos += 65535) {
    const size_t n = std::min<size_t>(65535, raw.size() - pos);
    z.push_back(pos + n >= raw.size() ? 1 : 0);
    z.push_back(static_cast<uint8_t>(n & 0xff));
    z.push_back(static_cast<uint8_t>(n >> 8));
    z.push_back(static_cast<uint8_t>(~n & 0xff));
    z.push_back(static_cast<uint8_t>((~n >> 8) & 0xff));
    z.insert(z.end(), raw.begin() + static_cast<std::ptrdiff_t>(pos),
             raw.begin() + static_cast<std::ptrdiff_t>(pos + n));
    if (raw.empty()) break;
  }
  be32(z, (b << 16) | a);
  chunk("IDAT", z);
  chunk("IEND", {});
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
  if (!f) throw Error("cannot write '" + path + "'");
}

void write_sheet(const std::string& path, const dfs::Frame& sheet) {
#ifdef DFS_WITH_MEDIA
  try {
    dfs::media::write_png(path, sheet);
  } catch (const dfs::media::Error& e) {
    throw Error(e.what());
  }
#else
  write_png_stored(path, sheet);
#endif
}

// Everything `train` and `learn` share: build the trainer, run the loop, export.
struct TrainJob {
  std::string data_path;
  std::string recipe = "demo";
  std::string output;
  std::string checkpoint;   // empty = default next to the output
  std::string from;         // initial weights (fine-tuning)
  std::string autoencoder;  // latent recipes: the autoencoder file (`dforce ae train`)
  std::string device = "auto";
  double minutes = 0;
  int64_t steps = 0;
  int64_t schedule_steps = 0;  // cosine horizon; 0 = --steps (or the checkpoint's on resume)
  double checkpoint_minutes = 5;
  bool resume = false;
  // Overrides of the recipe (< 0 / 0 = keep).
  int batch = 0;
  double lr = 0;
  int64_t seed = -1;
  int clip_frames = 0;
  int warmup = -1;
  std::vector<std::string> model_overrides;  // key=value on the model config JSON
  std::vector<std::string> train_overrides;  // key=value on the training settings JSON
  std::string command;                       // for the provenance
  // Data-parallel runs (under a launcher: torchrun's variables).
  std::string dist_backend = "auto";
  double dist_timeout = 300;
};

struct JobOutcome {
  train::TrainLoopResult loop;
  int64_t steps = 0;
  int64_t parameters = 0;
  double seconds_total = 0;
  std::string checkpoint;
};

// Applies "key=value" pairs to a JSON object; value is parsed as JSON (numbers, true/false),
// else taken as a string. Unknown keys are refused so a typo does not pass silently.
nlohmann::json apply_overrides(nlohmann::json j, const std::vector<std::string>& pairs,
                               const char* what) {
  for (const auto& kv : pairs) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(std::string(what) + " override must be key=value, got '" + kv + "'");
    const auto key = kv.substr(0, eq), text = kv.substr(eq + 1);
    if (!j.contains(key))
      throw Error(std::string("unknown ") + what + " key '" + key + "' (known: " + [&] {
        std::string keys;
        for (auto it = j.begin(); it != j.end(); ++it)
          keys += (keys.empty() ? "" : ", ") + it.key();
        return keys;
      }() + ")");
    auto value = nlohmann::json::parse(text, nullptr, false);
    j[key] = value.is_discarded() ? nlohmann::json(text) : value;
  }
  return j;
}

// Where a latent model's autoencoder came from: its file name and the provenance that file
// recorded (`dforce ae train`), or null for pixel models and autoencoders brought by --from.
nlohmann::json autoencoder_provenance(const TrainJob& job) {
  if (job.autoencoder.empty()) return nullptr;
  nlohmann::json out = {{"file", fs::path(job.autoencoder).filename().string()}};
  const auto file = dfs::diffusion::load_safetensors(job.autoencoder);
  if (const auto it = file.metadata.find("provenance"); it != file.metadata.end()) {
    auto p = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    out["provenance"] = p.is_discarded() ? nlohmann::json(it->second) : p;
  }
  return out;
}

// The process group of a run started by a launcher (null when this is the only process).
// Ranks other than 0 stay quiet: rank 0 alone writes logs, checkpoints and the model.
std::shared_ptr<train::Distributed> join_process_group(const TrainJob& job) {
  const auto env = train::read_dist_env();
  if (!env.launched || env.world_size == 1) return nullptr;
  if (!train::distributed_available()) throw Error(train::distributed_unavailable_reason());
  std::string device = job.device;
  if (device == "auto") device = dfs::diffusion::runtime_info().cuda_available ? "cuda" : "cpu";
  train::DistOptions o;
  o.backend = job.dist_backend;
  o.timeout_seconds = job.dist_timeout;
  auto dist = train::Distributed::create(env, o, device);
  if (dist->rank() == 0) {
    std::printf("data-parallel: %d processes (%s), rank 0 of %s:%d writes the log and files\n",
                dist->world_size(), dist->backend().c_str(), env.master_addr.c_str(),
                env.master_port);
  } else {
    std::fflush(stdout);
    if (std::freopen("/dev/null", "w", stdout) == nullptr)
      throw Error("cannot silence rank " + std::to_string(dist->rank()) + "'s output");
  }
  return dist;
}

JobOutcome run_job(const TrainJob& job, const train::VideoDataset& data_in,
                   std::shared_ptr<train::Distributed> dist) {
  if (job.minutes <= 0 && job.steps <= 0)
    throw Error("give --minutes or --steps (how long to train)");
  const bool writer = !dist || dist->is_writer();
  auto recipe = train::train_recipe(job.recipe);
  const std::string ckpt =
      job.checkpoint.empty() ? default_checkpoint_path(job.output) : job.checkpoint;
  dfs::diffusion::Autoencoder ae{nullptr};
  if (!job.from.empty()) {
    const auto from = dfs::diffusion::load_denoiser(job.from);
    const auto name = recipe.model.name;
    recipe.model = from.config;  // fine-tuning keeps the architecture of the starting model
    recipe.model.name = name;
    ae = from.ae;  // and a latent model keeps its autoencoder
  }
  if (!job.autoencoder.empty()) {
    if (ae)
      throw Error(
          "--from names a latent model, which brings its own autoencoder: drop --autoencoder");
    ae = dfs::diffusion::load_autoencoder(job.autoencoder);
  }
  // A latent model trains on the dataset's frames encoded by its autoencoder (the dataset
  // struct shares its tensors, so this copy is cheap).
  train::VideoDataset data = data_in;
  if (recipe.model.channels != 3 || ae) {
    if (!ae)
      throw Error("recipe '" + job.recipe +
                  "' runs on latents: give --autoencoder FILE (from `dforce ae train`)");
    if (!ae->config().normalised())
      throw Error("the autoencoder has no latent statistics: use the file `dforce ae train` wrote");
    if (ae->config().latent_channels != recipe.model.channels)
      throw Error("the autoencoder makes " + std::to_string(ae->config().latent_channels) +
                  " latent channels but the model takes " + std::to_string(recipe.model.channels));
    if (data.width() != recipe.model.width * dfs::diffusion::kLatentFactor ||
        data.height() != recipe.model.height * dfs::diffusion::kLatentFactor)
      throw Error("the dataset is " + std::to_string(data.width()) + "x" +
                  std::to_string(data.height()) + " but this latent model generates " +
                  std::to_string(recipe.model.width * dfs::diffusion::kLatentFactor) + "x" +
                  std::to_string(recipe.model.height * dfs::diffusion::kLatentFactor) +
                  " frames (pack or build the data at that size)");
    fs::path cache(job.output);
    cache.replace_extension("");
    // Rank 0 encodes and writes the cache; the others then read it (no two writers).
    if (!writer) dist->wait_for("latents", 24 * 3600.0);
    train::encode_dataset(data, ae, cache.string() + ".latents.safetensors",
                          [](const std::string& line) {
                            std::printf("%s\n", line.c_str());
                            std::fflush(stdout);
                          });
    if (writer && dist) dist->signal("latents");
  }
  auto& s = recipe.train;
  if (job.batch > 0) s.batch_size = job.batch;
  if (job.lr > 0) s.learning_rate = job.lr;
  if (job.seed >= 0) s.seed = static_cast<uint64_t>(job.seed);
  if (job.clip_frames > 0) s.clip_frames = job.clip_frames;
  if (job.warmup >= 0) s.warmup_steps = job.warmup;
  if (job.schedule_steps > 0)
    s.schedule_steps = job.schedule_steps;
  else if (job.steps > 0)
    s.schedule_steps = job.steps;
  // Fields written only when they differ from their default are still overridable.
  if (!job.model_overrides.empty()) {
    auto base = recipe.model.to_json();
    base["overlap"] = recipe.model.overlap;
    recipe.model =
        dfs::diffusion::ModelConfig::from_json(apply_overrides(base, job.model_overrides, "model"));
  }
  if (!job.train_overrides.empty()) {
    auto base = s.to_json();
    base["clip_balance"] = s.clip_balance;
    s = train::TrainSettings::from_json(apply_overrides(base, job.train_overrides, "training"));
  }

  auto make = [&] {
    auto t = std::make_unique<train::Trainer>(recipe.model, s, data, job.device);
    if (!job.from.empty() && !job.resume) t->load_weights(job.from);
    if (ae) t->set_autoencoder(ae);
    return t;
  };
  std::unique_ptr<train::Trainer> trainer;
  if (job.resume) {
    if (!fs::exists(ckpt)) throw Error("--resume: no checkpoint at '" + ckpt + "'");
    const auto info = train::read_checkpoint_info(ckpt);
    if (info.model.name != recipe.model.name)
      throw Error("refusing to resume: '" + ckpt + "' was trained with --config " +
                  info.model.name + ", not --config " + recipe.model.name);
    // The learning-rate horizon belongs to the run: it comes from the checkpoint unless
    // --schedule-steps says otherwise (then a different value is refused as a mismatch).
    if (job.schedule_steps <= 0) s.schedule_steps = info.train.schedule_steps;
    trainer = make();
    trainer->load_checkpoint(ckpt);
    const int was = info.extra.is_object() ? info.extra.value("world_size", 1) : 1;
    const int now = dist ? dist->world_size() : 1;
    std::printf("resumed from %s at step %lld (%s trained so far)", ckpt.c_str(),
                static_cast<long long>(trainer->step_count()),
                format_duration(trainer->seconds()).c_str());
    if (was != now)
      std::printf("; written by %d process%s, continued by %d: the global batch of %d is the "
                  "same, so the run goes on as it would have",
                  was, was == 1 ? "" : "es", now, s.batch_size);
    std::printf("\n");
  } else {
    trainer = make();
    if (job.steps <= 0 && job.schedule_steps <= 0) {
      // Time-limited run: fix the cosine horizon once from a measured step time; it is stored
      // in the checkpoint, so a resumed run keeps the same schedule.
      double sec = trainer->measure_step_seconds(2);
      if (dist) sec = dist->max(sec) / dist->world_size();  // every rank fixes the same horizon
      s.schedule_steps =
          std::max<int64_t>(s.warmup_steps + 10, static_cast<int64_t>(job.minutes * 60 / sec));
      trainer = make();
    }
  }
  if (dist) trainer->set_distributed(dist);  // refuses mismatched ranks; rank 0's state wins
  if (!job.from.empty() && !job.resume)
    std::printf("starting from the weights of %s\n", job.from.c_str());
  std::printf(
      "model %s: %lld parameters, %dx%d, %d frames per clip, batch %d, device %s, %d threads\n",
      recipe.model.name.c_str(), static_cast<long long>(trainer->parameter_count()),
      recipe.model.width, recipe.model.height, trainer->clip_frames(), s.batch_size,
      trainer->device().c_str(), dfs::diffusion::runtime_info().threads);
  std::printf(
      "data %s: %lld training frames in %zu clips; lr schedule over %lld steps; checkpoint %s\n",
      job.data_path.c_str(), static_cast<long long>(data.train_frame_count()), data.clips.size(),
      static_cast<long long>(s.schedule_steps), ckpt.c_str());
  std::fflush(stdout);

  train::TrainLoopOptions opt;
  opt.max_steps = job.steps;
  opt.max_seconds = job.minutes * 60;
  opt.checkpoint_path = ckpt;
  opt.checkpoint_every_seconds = job.checkpoint_minutes * 60;
  opt.checkpoint_extra = {{"command", job.command},
                          {"data", job.data_path},
                          {"world_size", dist ? dist->world_size() : 1}};
  opt.stop = &g_stop;
  opt.distributed = dist;
  ProgressPrinter printer(job.steps);
  opt.on_progress = [&](const train::TrainProgress& p) { printer(p); };
  JobOutcome out;
  {
    SigintGuard guard;
    out.loop = train::run_training(*trainer, opt);
  }
  printer.finish();
  out.steps = trainer->step_count();
  out.parameters = trainer->parameter_count();
  out.seconds_total = trainer->seconds();
  out.checkpoint = ckpt;
  if (out.loop.stopped)
    std::printf("interrupted: checkpoint saved at step %lld\n", static_cast<long long>(out.steps));
  if (dist)
    std::printf("data-parallel: %lld gradient all-reduces, %.1f ms each on average\n",
                static_cast<long long>(dist->allreduce_calls()),
                1000.0 * dist->allreduce_seconds() / std::max<int64_t>(1, dist->allreduce_calls()));
  if (!writer) return out;

  const auto rt = dfs::diffusion::runtime_info();
  nlohmann::json clips = nlohmann::json::array();
  for (const auto& c : data.clips)
    clips.push_back({{"name", c.name},
                     {"source", c.source},
                     {"train_frames", c.train_length},
                     {"held_out_frames", c.held_out_length()}});
  const nlohmann::json provenance = {{"trained_by", "dforce " + rt.version},
                                     {"command", job.command},
                                     {"recipe", job.recipe},
                                     {"from", job.from},
                                     {"data",
                                      {{"file", fs::path(job.data_path).filename().string()},
                                       {"fingerprint", data.fingerprint()},
                                       {"clips", clips},
                                       {"provenance", data.provenance}}},
                                     {"autoencoder", autoencoder_provenance(job)},
                                     {"train_settings", s.to_json()},
                                     {"steps", out.steps},
                                     {"clips_seen", out.steps * s.batch_size},
                                     {"seconds", out.seconds_total},
                                     {"final_loss_average", out.loop.final_loss_average},
                                     {"samples_per_second", out.loop.samples_per_second},
                                     {"device", trainer->device()},
                                     {"world_size", dist ? dist->world_size() : 1},
                                     {"dist_backend", dist ? dist->backend() : "none"},
                                     {"threads", rt.threads},
                                     {"torch", rt.torch_version},
                                     {"blas", rt.blas},
                                     {"date", now_utc()}};
  trainer->export_model(job.output, provenance);
  std::printf("wrote %s (EMA weights, step %lld, %s of training, %.2f samples/s this run)\n",
              job.output.c_str(), static_cast<long long>(out.steps),
              format_duration(out.seconds_total).c_str(), out.loop.samples_per_second);
  return out;
}

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

// [SECTION] dataset pack / synth / info ----------------------------------------------------

#ifdef DFS_WITH_MEDIA
bool is_image(const fs::path& p) {
  auto e = p.extension().string();
  std::transform(e.begin(), e.end(), e.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return e == ".png" || e == ".jpg" || e == ".jpeg" || e == ".bmp" || e == ".pgm" || e == ".ppm" ||
         e == ".webp";
}

// Decodes one clip (a video file, or a folder of images in name order) at width x height.
torch::Tensor decode_clip(const fs::path& input, int width, int height, dfs::media::FitMode fit,
                          int64_t max_frames, std::string& note) {
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
  auto t = torch::empty({static_cast<int64_t>(frames.size()), height, width, 3}, torch::kUInt8);
  for (size_t i = 0; i < frames.size(); ++i)
    std::memcpy(t[static_cast<int64_t>(i)].data_ptr<uint8_t>(), frames[i].rgb.data(),
                frames[i].byte_size());
  return t;
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
    torch::Tensor frames;
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
    train::append_clip(ds, name, path.filename().string(), frames, held_out);
    std::printf("  %-16s %5lld frames%s%s\n", name.c_str(), static_cast<long long>(frames.size(0)),
                note.empty() ? "" : "  ", note.c_str());
    sources.push_back({{"name", name},
                       {"file", path.filename().string()},
                       {"frames", frames.size(0)},
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

// [SECTION] dataset build: the broad training set from Debian's packages -----------------------

// The real footage and still photographs Debian ships (DESIGN.md "Data"), at fixed paths so that
// the same packages give the same dataset. `unseen` clips are held out whole.
struct BuildSource {
  std::string name;
  std::string path;  // video file, or folder of frames
  bool unseen = false;
};

struct BuildOptions {
  std::string opencv_data = "/usr/share/doc/opencv-doc/examples/data";
  std::string visp_data = "/usr/share/visp-images-data/ViSP-images";
  std::vector<std::string> still_dirs = {"/usr/share/wallpapers", "/usr/share/backgrounds"};
  std::vector<std::string> unseen = {"tree", "visp_mbt_cube"};
  int width = 256, height = 192;
  train::MotionSettings motion;
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
        decode_clip(src.path, o.width, o.height, dfs::media::FitMode::kCrop, 0, note);
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
                             dfs::media::FitMode::kStretch);
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

void register_dataset(CLI::App& app) {
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

// [SECTION] train --------------------------------------------------------------------------

void add_train_options(CLI::App* cmd, const std::shared_ptr<TrainJob>& job) {
  cmd->add_option("--minutes", job->minutes, "Train for this many minutes (wall clock)");
  cmd->add_option("--steps", job->steps,
                  "Stop at this step (also the learning-rate horizon unless --schedule-steps)");
  cmd->add_option(
      "--schedule-steps", job->schedule_steps,
      "Learning-rate horizon in steps (default: --steps; with only --minutes, estimated)");
  cmd->add_option("--device", job->device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--checkpoint", job->checkpoint,
                  "Checkpoint file (default: <output>.ckpt.safetensors)");
  cmd->add_option("--checkpoint-minutes", job->checkpoint_minutes, "Minutes between checkpoints")
      ->capture_default_str();
  cmd->add_option("--batch", job->batch, "Clips per step (default: the recipe's)");
  cmd->add_option("--lr", job->lr, "Peak learning rate (default: the recipe's)");
  cmd->add_option("--seed", job->seed, "Random seed (default: the recipe's, 0)");
  cmd->add_option("--clip-frames", job->clip_frames,
                  "Frames per training clip (default: the model's max_frames)");
  cmd->add_option("--warmup", job->warmup, "Warm-up steps (default: the recipe's)");
  cmd->add_option("--model", job->model_overrides,
                  "Override a model config field, key=value (repeatable), e.g. dim=64");
  cmd->add_option("--set", job->train_overrides,
                  "Override a training setting, key=value (repeatable), e.g. loss_weight_floor=0");
  cmd->add_option("--dist-backend", job->dist_backend,
                  "Under a launcher (dforce launch, torchrun): auto (NCCL on CUDA, Gloo on CPU), "
                  "gloo or nccl")
      ->check(CLI::IsMember({"auto", "gloo", "nccl"}))
      ->capture_default_str();
  cmd->add_option("--dist-timeout", job->dist_timeout,
                  "Under a launcher: seconds to wait for a peer (start-up and every step)")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
}

std::string describe_job(const std::string& verb, const TrainJob& j,
                         const std::vector<std::string>& extra) {
  std::vector<std::string> c = {"dforce", verb};
  c.insert(c.end(), extra.begin(), extra.end());
  if (j.minutes > 0) c.insert(c.end(), {"--minutes", std::to_string(j.minutes)});
  if (j.steps > 0) c.insert(c.end(), {"--steps", std::to_string(j.steps)});
  if (j.schedule_steps > 0)
    c.insert(c.end(), {"--schedule-steps", std::to_string(j.schedule_steps)});
  if (j.batch > 0) c.insert(c.end(), {"--batch", std::to_string(j.batch)});
  if (j.lr > 0) c.insert(c.end(), {"--lr", std::to_string(j.lr)});
  if (j.seed >= 0) c.insert(c.end(), {"--seed", std::to_string(j.seed)});
  if (!j.from.empty()) c.insert(c.end(), {"--from", fs::path(j.from).filename().string()});
  if (!j.autoencoder.empty())
    c.insert(c.end(), {"--autoencoder", fs::path(j.autoencoder).filename().string()});
  if (j.device != "auto") c.insert(c.end(), {"--device", j.device});
  for (const auto& m : j.model_overrides) c.insert(c.end(), {"--model", m});
  for (const auto& m : j.train_overrides) c.insert(c.end(), {"--set", m});
  return join_command(c);
}

void register_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "Train a diffusion-forcing model on a packed dataset");
  auto job = std::make_shared<TrainJob>();
  cmd->add_option("--data", job->data_path, "Dataset file from `dforce dataset pack|synth`")
      ->required();
  cmd->add_option("--config", job->recipe,
                  "Recipe: latent-cpu, latent-gpu, latent-tiny (latent models), demo, demo-cpu, "
                  "demo-gpu or tiny (64x48 pixel models)")
      ->capture_default_str();
  cmd->add_option("-o,--output", job->output, "Model file to write (EMA weights)")->required();
  cmd->add_option("--from", job->from, "Start from this model's weights (fine-tuning)");
  cmd->add_option("--autoencoder", job->autoencoder,
                  "Latent recipes: the autoencoder (`dforce ae train`) whose latents the model "
                  "learns; it is written into the model file");
  cmd->add_flag("--resume", job->resume, "Continue from the checkpoint (same config and data)");
  add_train_options(cmd, job);
  cmd->callback([job] {
    auto dist = join_process_group(*job);  // first: a peer that never comes fails fast
    const auto data = train::load_dataset(job->data_path);
    job->command = describe_job("train", *job,
                                {"--data", fs::path(job->data_path).filename().string(), "--config",
                                 job->recipe, "-o", fs::path(job->output).filename().string()});
    run_job(*job, data, dist);
  });
}

// [SECTION] learn --------------------------------------------------------------------------

void register_learn(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "learn", "Teach a model one clip: pack it, then fine-tune (or train from scratch)");
  auto job = std::make_shared<TrainJob>();
  auto clip = std::make_shared<std::string>();
  auto fit = std::make_shared<std::string>("letterbox");
  auto eval = std::make_shared<bool>(false);
  job->minutes = 10;
  job->recipe = "demo";
  cmd->add_option("clip", *clip, "Video file (or folder of frames)")->required();
  cmd->add_option("--from", job->from,
                  "Start from this model (e.g. models/demo.safetensors); default: from scratch");
  cmd->add_option("-o,--output", job->output,
                  "Model file to write (default: <clip>.model.safetensors)");
  cmd->add_option("--fit", *fit, "letterbox or crop")->capture_default_str();
  cmd->add_flag("--eval", *eval, "Evaluate on the clip's held-out part before and after (slow)");
  add_train_options(cmd, job);
  cmd->callback([=] {
#ifdef DFS_WITH_MEDIA
    auto j = *job;
    const fs::path clip_path(*clip);
    if (j.output.empty())
      j.output =
          (clip_path.parent_path() / (clip_path.stem().string() + ".model.safetensors")).string();
    fs::path base(j.output);
    if (base.extension() == ".safetensors") base.replace_extension("");
    j.data_path = base.string() + ".data.safetensors";
    int w = 0, h = 0;
    if (!j.from.empty()) {
      const auto from = dfs::diffusion::load_denoiser(j.from);
      // A latent model's frames are 8x its latent grid.
      const int scale = from.ae ? dfs::diffusion::kLatentFactor : 1;
      w = from.config.width * scale, h = from.config.height * scale;
      if (j.lr <= 0) j.lr = 3e-4;  // fine-tuning: a gentler peak rate
      if (j.warmup < 0) j.warmup = 20;
    } else {
      const auto cfg = train::train_recipe(j.recipe).model;
      w = cfg.width, h = cfg.height;
    }
    auto dist = join_process_group(j);
    const bool writer = !dist || dist->is_writer();
    std::printf("packing %s at %dx%d\n", clip_path.filename().string().c_str(), w, h);
    const auto data = pack_clips({*clip}, w, h, *fit, train::kDefaultHeldOutFraction, 0,
                                 "dforce learn " + clip_path.filename().string(), false);
    if (writer) train::save_dataset(j.data_path, data);
    j.command = describe_job("learn", j, {clip_path.filename().string()});
    // 8 context -> 8 predicted, the mean of 8 samples; a short clip's held-out part is short
    // (tree.avi: 14 frames), then 4 context -> 8 predicted.
    train::EvalSettings es;
    const int held_out = static_cast<int>(data.clips[0].held_out_length());
    es.context = es.rollout_context = held_out >= 16 ? 8 : 4;
    es.horizon = es.rollout_horizon = 8;
    es.rollout_frames = 100;
    es.samples = 8;
    es.segments_per_clip = 2;
    es.log = [](const std::string& l) { std::printf("  %s\n", l.c_str()); };
    if (*eval && !j.from.empty() && writer) {
      std::printf("before (the starting model):\n");
      std::printf("%s", train::evaluate_model(j.from, data, es).to_text().c_str());
    }
    run_job(j, data, dist);
    if (*eval && writer) {
      std::printf("after:\n");
      std::printf("%s", train::evaluate_model(j.output, data, es).to_text().c_str());
    }
#else
    (void)fit;
    (void)eval;
    throw Error(
        "`dforce learn` needs the full build (FFmpeg) to decode the clip; this dforce is "
        "core-only");
#endif
  });
}

// [SECTION] eval ---------------------------------------------------------------------------

void register_eval(CLI::App& app) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a model on a dataset's held-out frames");
  auto model = std::make_shared<std::string>();
  auto data_path = std::make_shared<std::string>();
  auto json_path = std::make_shared<std::string>();
  auto sheet_path = std::make_shared<std::string>();
  auto clips = std::make_shared<std::vector<std::string>>();
  auto s = std::make_shared<train::EvalSettings>();
  auto steps = std::make_shared<int>(s->sampler.schedule.steps);
  auto shape = std::make_shared<std::string>(dfs::diffusion::to_string(s->sampler.schedule.shape));
  cmd->add_option("model", *model, "Model file")->required();
  cmd->add_option("--data", *data_path, "Dataset file (its held-out part is used)")->required();
  cmd->add_option("--json", *json_path, "Also write the report as JSON");
  cmd->add_option("--sheet", *sheet_path, "Write the contact sheet PNG");
  cmd->add_option("--clips", *clips, "Only these clips (names)")->delimiter(',');
  cmd->add_option("--context", s->context,
                  "Known frames before the prediction (b) and in each rollout window (c)")
      ->capture_default_str();
  cmd->add_option("--horizon", s->horizon,
                  "Frames predicted (b) and generated per rollout window (c)")
      ->capture_default_str();
  cmd->add_option("--samples", s->samples, "Sampled continuations per segment (b)")
      ->capture_default_str();
  cmd->add_option("--segments", s->segments_per_clip, "Held-out segments per clip (b)")
      ->capture_default_str();
  cmd->add_option("--rollout-frames", s->rollout_frames,
                  "Length of the long rollouts (c); 0 skips them")
      ->capture_default_str();
  cmd->add_option("--stabilization", s->stabilization, "Stabilisation level of the 'with' rollout")
      ->capture_default_str();
  cmd->add_option("--steps", *steps, "Sampling steps")->capture_default_str();
  cmd->add_option("--schedule", *shape, "Schedule shape")->capture_default_str();
  cmd->add_option("--seed", s->seed, "Sampling seed")->capture_default_str();
  cmd->add_option("--device", s->device, "cpu, cuda or auto")->capture_default_str();
  auto guidance = std::make_shared<std::string>("none");
  cmd->add_option("--guidance", *guidance, "History guidance: none, vanilla or fractional")
      ->capture_default_str();
  cmd->add_option("--guidance-scale", s->sampler.guidance.scale, "History guidance scale w")
      ->capture_default_str();
  auto detail = std::make_shared<std::string>("on");
  cmd->add_option("--detail-transfer", *detail,
                  "Latent models: carry the context's fine detail into static parts: on or off")
      ->check(CLI::IsMember({"on", "off"}))
      ->capture_default_str();
  cmd->add_option("--baseline", s->baseline_model,
                  "Also score this model (e.g. the 64x48 demo) on the same context, downsampled "
                  "to its size, its output upscaled bicubically");
  cmd->callback([=] {
    auto settings = *s;
    settings.clips = *clips;
    settings.rollout_context = settings.context;
    settings.rollout_horizon = settings.horizon;
    settings.sampler.schedule.steps = *steps;
    settings.sampler.schedule.shape = dfs::diffusion::schedule_shape_from_string(*shape);
    settings.sampler.guidance.mode = dfs::diffusion::guidance_mode_from_string(*guidance);
    settings.detail_transfer = *detail == "on";
    settings.log = [](const std::string& l) {
      std::printf("  %s\n", l.c_str());
      std::fflush(stdout);
    };
    const auto data = train::load_dataset(*data_path);
    const auto report = train::evaluate_model(*model, data, settings);
    std::printf("%s", report.to_text().c_str());
    std::printf("evaluation took %s\n", format_duration(report.seconds).c_str());
    if (!json_path->empty()) {
      auto j = report.to_json();
      j["data"] = fs::path(*data_path).filename().string();
      j["settings"] = {{"samples", settings.samples},
                       {"baseline", fs::path(settings.baseline_model).filename().string()},
                       {"guidance", *guidance},
                       {"guidance_scale", settings.sampler.guidance.scale},
                       {"detail_transfer", settings.detail_transfer},
                       {"segments", settings.segments_per_clip},
                       {"context", settings.context},
                       {"horizon", settings.horizon},
                       {"rollout_frames", settings.rollout_frames},
                       {"stabilization", settings.stabilization},
                       {"steps", settings.sampler.schedule.steps},
                       {"schedule", *shape},
                       {"seed", settings.seed}};
      std::ofstream f(*json_path);
      f << j.dump(2) << "\n";
      if (!f) throw Error("cannot write '" + *json_path + "'");
    }
    if (!sheet_path->empty()) {
      write_sheet(*sheet_path, report.contact_sheet);
      std::printf("wrote contact sheet %s (%dx%d)\n", sheet_path->c_str(),
                  report.contact_sheet.width, report.contact_sheet.height);
    }
  });
}

// [SECTION] train-bench --------------------------------------------------------------------

void register_train_bench(CLI::App& app) {
  auto* cmd = app.add_subcommand("train-bench",
                                 "Training speed and peak memory of a recipe (synthetic data)");
  auto recipe = std::make_shared<std::string>("demo");
  auto steps = std::make_shared<int>(5);
  auto device = std::make_shared<std::string>("auto");
  auto json = std::make_shared<bool>(false);
  auto batch = std::make_shared<int>(0);
  auto report = std::make_shared<std::string>();
  cmd->add_option("--config", *recipe, "Recipe")->capture_default_str();
  cmd->add_option("--report", *report, "Also write the JSON report to this file (rank 0)");
  cmd->add_option("--steps", *steps, "Timed steps (after one warm-up step)")->capture_default_str();
  cmd->add_option("--device", *device, "auto, cpu or cuda")->capture_default_str();
  cmd->add_option("--batch", *batch, "Clips per step (default: the recipe's)");
  cmd->add_flag("--json", *json, "Print JSON");
  cmd->callback([=] { run_train_bench(*recipe, *steps, *device, *batch, *json, *report); });
}

}  // namespace

void run_train_bench(const std::string& recipe, int steps, const std::string& device, int batch,
                     bool json, const std::string& report_path) {
  auto r = train::train_recipe(recipe);
  if (batch > 0) r.train.batch_size = batch;
  train::SyntheticSettings ss;
  const bool latent = r.model.channels != 3;
  const int scale = latent ? dfs::diffusion::kLatentFactor : 1;
  ss.width = r.model.width * scale;
  ss.height = r.model.height * scale;
  ss.frames = r.model.max_frames * 2 + 2;
  ss.clips = 2;
  auto data = train::make_synthetic_dataset(ss);
  if (latent) {
    // Latent recipes train on precomputed latents; random ones cost the same per step.
    data.latents =
        torch::randn({data.frame_count(), r.model.channels, r.model.height, r.model.width});
    data.latents_flipped = torch::randn_like(data.latents);
  }
  const double rss_before = peak_rss_mib();
  train::Trainer trainer(r.model, r.train, data, device);
  // Under a launcher: data-parallel, the global batch shared among the ranks.
  TrainJob as_job;
  as_job.device = device;
  auto dist = join_process_group(as_job);
  if (dist) trainer.set_distributed(dist);
  trainer.step();  // warm-up: allocations, lazy initialisation
  const double reduce0 = dist ? dist->allreduce_seconds() : 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < std::max(1, steps); ++i) trainer.step();
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double reduce_ms =
      dist ? 1000.0 * (dist->allreduce_seconds() - reduce0) / std::max(1, steps) : 0.0;
  const double per_s = std::max(1, steps) * r.train.batch_size / sec;
  const auto rt = dfs::diffusion::runtime_info();
  nlohmann::json j = {{"recipe", recipe},
                      {"parameters", trainer.parameter_count()},
                      {"batch_size", r.train.batch_size},
                      {"clip_frames", trainer.clip_frames()},
                      {"resolution", {r.model.width, r.model.height}},
                      {"steps_timed", std::max(1, steps)},
                      {"seconds_per_step", sec / std::max(1, steps)},
                      {"samples_per_second", per_s},
                      {"frames_per_second", per_s * trainer.clip_frames()},
                      {"peak_rss_mib", peak_rss_mib()},
                      {"rss_before_mib", rss_before},
                      {"device", trainer.device()},
                      {"threads", rt.threads},
                      {"blas", rt.blas},
                      {"torch", rt.torch_version},
                      {"world_size", dist ? dist->world_size() : 1},
                      {"dist_backend", dist ? dist->backend() : "none"},
                      {"allreduce_ms_per_step", reduce_ms}};
  if (!report_path.empty() && (!dist || dist->is_writer())) {
    std::ofstream out(report_path);
    out << j.dump(2) << "\n";
    if (!out) throw Error("cannot write the report '" + report_path + "'");
  }
  if (json) {
    std::printf("%s\n", j.dump(2).c_str());
  } else if (report_path.empty()) {
    std::printf(
        "train-bench %s: %lld parameters, batch %d x %d frames at %dx%d on %s (%d threads, %s)\n",
        recipe.c_str(), static_cast<long long>(trainer.parameter_count()), r.train.batch_size,
        trainer.clip_frames(), r.model.width, r.model.height, trainer.device().c_str(), rt.threads,
        rt.blas.c_str());
    std::printf("  %.3f s/step  %.2f samples/s (%.1f frames/s)  peak RSS %.0f MiB\n",
                sec / std::max(1, steps), per_s, per_s * trainer.clip_frames(), peak_rss_mib());
  }
}

void register_train_commands(CLI::App& app) {
  register_dataset(app);
  register_train(app);
  register_learn(app);
  register_eval(app);
  register_train_bench(app);
}

}  // namespace dforce
