// dforce train, learn, eval, train-bench — the training family (datasets: cmd_dataset.cpp).
//
// Thin wiring over dfs::diffusion::train (datasets, trainer, evaluation). Decoding a clip for
// `learn` needs dfs_media, so it exists only in the full build (DFS_WITH_MEDIA); everything
// else also runs in the core-only build on a GPU machine.
//
// Index
//   [SECTION] Helpers (contact sheet, process group, the training job)
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
using dfs::diffusion::Error;
namespace fs = std::filesystem;

// [SECTION] Helpers (contact sheet, process group, the training job) -------------------------

namespace {

// Images go through the media library. The core-only build (a GPU box with LibTorch alone)
// has none, so there the sheet is a binary PPM beside the requested name: raw RGB behind a
// text header, which every image viewer and converter reads.
void write_sheet(const std::string& path, const dfs::Frame& sheet) {
#ifdef DFS_WITH_MEDIA
  try {
    dfs::media::write_png(path, sheet);
  } catch (const dfs::media::Error& e) {
    throw Error(e.what());
  }
#else
  const std::string ppm = fs::path(path).replace_extension(".ppm").string();
  std::ofstream f(ppm, std::ios::binary);
  f << "P6\n" << sheet.width << " " << sheet.height << "\n255\n";
  for (int y = 0; y < sheet.height; ++y)
    f.write(reinterpret_cast<const char*>(sheet.row(y)),
            static_cast<std::streamsize>(sheet.width) * 3);
  if (!f) throw Error("cannot write '" + ppm + "'");
  if (ppm != path)
    std::printf("core-only build (no image encoder): wrote the sheet as %s\n", ppm.c_str());
#endif
}

// Everything `train` and `learn` share: build the trainer, run the loop, export.
// The process group of a run started by a launcher (null when this is the only process).
// Ranks other than 0 stay quiet: rank 0 alone writes logs, checkpoints and the model.
using train::TrainJob;

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

// Runs the job with its messages on stdout, the progress line, and Ctrl-C to stop it.
train::JobOutcome run_job(const TrainJob& job, const train::VideoDataset& data,
                          std::shared_ptr<train::Distributed> dist) {
  ProgressPrinter printer(job.steps);
  train::TrainJobCallbacks callbacks;
  callbacks.log = [&](const std::string& line) {
    std::printf("%s\n", line.c_str());
    std::fflush(stdout);
  };
  callbacks.on_progress = [&](const train::TrainProgress& p) { printer(p); };
  callbacks.stop = &g_stop;
  SigintGuard guard;
  auto outcome = train::run_train_job(job, data, std::move(dist), callbacks);
  printer.finish();
  return outcome;
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
    // The cheap held-out loss the Studio's "Learn this clip" reports (same frames, same noise
    // for both models: train::mean_held_out_loss), before and after.
    const auto ls = train::learn_loss_settings();
    const bool measure = !j.from.empty() && writer;
    const double loss_before = measure ? train::mean_held_out_loss(j.from, data, ls) : 0;
    run_job(j, data, dist);
    if (measure)
      std::printf("held-out loss (%lld frames never trained on): %.5f before, %.5f after\n",
                  static_cast<long long>(data.held_out_frame_count()), loss_before,
                  train::mean_held_out_loss(j.output, data, ls));
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
  auto solver = std::make_shared<std::string>("ddim");
  cmd->add_option("--solver", *solver, "Update rule: ddim or dpmpp-2m (DPM-Solver++(2M))")
      ->check(CLI::IsMember({"ddim", "dpmpp-2m"}))
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
    settings.sampler.solver = dfs::diffusion::solver_from_string(*solver);
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
                       {"solver", *solver},
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
  register_train(app);
  register_learn(app);
  register_eval(app);
  register_train_bench(app);
}

}  // namespace dforce
