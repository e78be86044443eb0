// dforce ae train | eval — the latent autoencoder a latent model is built on.
//
// Thin wiring over dfs::diffusion::train's AutoencoderTrainer and evaluate_autoencoder. Decoding
// a video for `ae eval CLIP` needs dfs_media (full build); datasets work everywhere.
#include <cstring>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "dfs/diffusion/autoencoder.h"
#include "dfs/diffusion/train/ae_trainer.h"
#include "dfs/diffusion/train/dataset.h"
#include "dfs/diffusion/weights.h"
#include "train_cli.h"

#ifdef DFS_WITH_MEDIA
#include "dfs/media/decoder.h"
#include "dfs/media/error.h"
#endif

namespace dforce {

namespace {

namespace dd = dfs::diffusion;

struct AeJob {
  std::string data_path;
  std::string preset = "ae-demo";
  std::string output;
  std::string checkpoint;
  std::string device = "auto";
  double minutes = 0;
  int64_t steps = 0;
  int64_t schedule_steps = 0;
  double checkpoint_minutes = 5;
  bool resume = false;
  int batch = 0;
  int crop = 0;
  double lr = 0;
  std::string from;                    // start from this autoencoder (or latent model)'s weights
  bool decoder_only = false;           // keep the encoder (the latent space) fixed
  std::vector<std::string> overrides;  // key=value on the training settings JSON
};

train::AutoencoderTrainSettings settings_for(const AeJob& job) {
  train::AutoencoderTrainSettings s;
  if (job.batch > 0) s.batch_size = job.batch;
  if (job.crop > 0) s.crop = job.crop;
  if (job.lr > 0) s.optimizer.learning_rate = job.lr;
  s.decoder_only = job.decoder_only;
  if (!job.overrides.empty()) {
    auto j = s.to_json();
    for (const auto& kv : job.overrides) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0)
        throw Error("--set needs key=value, got '" + kv + "'");
      const auto key = kv.substr(0, eq);
      if (!j.contains(key)) throw Error("unknown autoencoder training setting '" + key + "'");
      auto v = nlohmann::json::parse(kv.substr(eq + 1), nullptr, false);
      j[key] = v.is_discarded() ? nlohmann::json(kv.substr(eq + 1)) : v;
    }
    s = train::AutoencoderTrainSettings::from_json(j);
  }
  return s;
}

void run_ae_train(const AeJob& job) {
  if (job.minutes <= 0 && job.steps <= 0)
    throw Error("give --minutes or --steps (how long to train)");
  const auto data = train::load_dataset(job.data_path);
  if (job.decoder_only && job.from.empty())
    throw Error("--decoder-only needs --from (the autoencoder whose encoder stays fixed)");
  dd::Autoencoder from{nullptr};
  if (!job.from.empty()) from = dd::load_autoencoder(job.from);
  auto config = from ? from->config() : dd::autoencoder_preset(job.preset);
  config.latent_mean.clear();
  config.latent_std.clear();
  auto s = settings_for(job);
  const std::string ckpt =
      job.checkpoint.empty() ? default_checkpoint_path(job.output) : job.checkpoint;
  std::unique_ptr<train::AutoencoderTrainer> trainer;
  if (job.resume) {
    if (!fs::exists(ckpt)) throw Error("--resume: no checkpoint at '" + ckpt + "'");
    const auto info = train::read_autoencoder_checkpoint_info(ckpt);
    if (job.schedule_steps <= 0)
      s.optimizer.schedule_steps = info.settings.optimizer.schedule_steps;
    else
      s.optimizer.schedule_steps = job.schedule_steps;
    trainer = std::make_unique<train::AutoencoderTrainer>(config, s, data, job.device);
    if (from) trainer->load_weights(from);  // the frozen statistics; weights from the checkpoint
    trainer->load_checkpoint(ckpt);
    std::printf("resumed from %s at step %lld (%s trained so far)\n", ckpt.c_str(),
                static_cast<long long>(trainer->step_count()),
                format_duration(trainer->seconds()).c_str());
  } else {
    if (job.schedule_steps > 0)
      s.optimizer.schedule_steps = job.schedule_steps;
    else if (job.steps > 0)
      s.optimizer.schedule_steps = job.steps;
    trainer = std::make_unique<train::AutoencoderTrainer>(config, s, data, job.device);
    if (from) trainer->load_weights(from);
    if (job.steps <= 0 && job.schedule_steps <= 0) {
      // Time-limited: fix the cosine horizon from two measured steps (then start afresh).
      const auto t0 = std::chrono::steady_clock::now();
      trainer->step();
      trainer->step();
      const double sec =
          std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / 2;
      s.optimizer.schedule_steps = std::max<int64_t>(s.optimizer.warmup_steps + 10,
                                                     static_cast<int64_t>(job.minutes * 60 / sec));
      trainer = std::make_unique<train::AutoencoderTrainer>(config, s, data, job.device);
      if (from) trainer->load_weights(from);
    }
  }
  std::printf(
      "autoencoder %s: %lld trained parameters, %d latent channels (x8 down), crops %dx%d, batch "
      "%d, device %s, %d threads\n",
      (job.from.empty() ? job.preset
                        : "from " + fs::path(job.from).filename().string() +
                              (job.decoder_only ? ", decoder only" : ""))
          .c_str(),
      static_cast<long long>(trainer->parameter_count()), config.latent_channels, s.crop, s.crop,
      s.batch_size, trainer->device().c_str(), dd::runtime_info().threads);
  std::printf("data %s: %lld training frames; lr schedule over %lld steps; checkpoint %s\n",
              job.data_path.c_str(), static_cast<long long>(data.train_frame_count()),
              static_cast<long long>(s.optimizer.schedule_steps), ckpt.c_str());
  std::fflush(stdout);
  train::TrainLoopOptions opt;
  opt.max_steps = job.steps;
  opt.max_seconds = job.minutes * 60;
  opt.checkpoint_path = ckpt;
  opt.checkpoint_every_seconds = job.checkpoint_minutes * 60;
  opt.checkpoint_extra = {{"data", job.data_path}};
  opt.stop = &g_stop;
  ProgressPrinter printer(job.steps);
  opt.on_progress = [&](const train::TrainProgress& p) { printer(p); };
  train::TrainLoopResult loop;
  {
    SigintGuard guard;
    loop = train::run_training(*trainer, opt);
  }
  printer.finish();
  if (loop.stopped)
    std::printf("interrupted: checkpoint saved at step %lld\n",
                static_cast<long long>(trainer->step_count()));
  double preview_psnr = 0;
  auto ae = trainer->finished(512, &preview_psnr);
  const auto rt = dd::runtime_info();
  const nlohmann::json provenance = {{"trained_by", "dforce " + rt.version},
                                     {"preset", job.preset},
                                     {"data",
                                      {{"file", fs::path(job.data_path).filename().string()},
                                       {"fingerprint", data.fingerprint()},
                                       {"train_frames", data.train_frame_count()}}},
                                     {"train_settings", s.to_json()},
                                     {"steps", trainer->step_count()},
                                     {"seconds", trainer->seconds()},
                                     {"final_loss_average", loop.final_loss_average},
                                     {"preview_psnr_vs_decoder", preview_psnr},
                                     {"device", trainer->device()},
                                     {"threads", rt.threads},
                                     {"torch", rt.torch_version},
                                     {"date", now_utc()}};
  dd::save_autoencoder(job.output, ae, provenance);
  std::printf("wrote %s (EMA weights, step %lld, %s of training; preview %.1f dB vs the decoder)\n",
              job.output.c_str(), static_cast<long long>(trainer->step_count()),
              format_duration(trainer->seconds()).c_str(), preview_psnr);
}

// A dataset file, or a video / folder of frames evaluated whole at width x height.
train::VideoDataset eval_data(const std::string& path, int width, int height) {
  if (fs::path(path).extension() == ".safetensors") return train::load_dataset(path);
#ifdef DFS_WITH_MEDIA
  std::vector<dfs::Frame> frames;
  try {
    dfs::media::DecoderOptions options;
    options.width = width;
    options.height = height;
    options.fit = dfs::media::FitMode::Crop;
    if (fs::is_directory(path)) {
      throw Error(
          "give a video file or a dataset (.safetensors); for a folder of frames, pack it "
          "with `dforce dataset pack` first");
    }
    auto decoder = dfs::media::open_decoder(path, options);
    while (auto f = decoder->read()) frames.push_back(std::move(f->image));
  } catch (const dfs::media::Error& e) {
    throw Error(e.what());
  }
  if (frames.empty()) throw Error("'" + path + "' holds no decodable frames");
  auto t = torch::empty({static_cast<int64_t>(frames.size()), height, width, 3}, torch::kUInt8);
  for (size_t i = 0; i < frames.size(); ++i)
    std::memcpy(t[static_cast<int64_t>(i)].data_ptr<uint8_t>(), frames[i].rgb.data(),
                frames[i].byte_size());
  train::VideoDataset ds;
  train::append_clip(ds, fs::path(path).stem().string(), fs::path(path).filename().string(), t,
                     1.0);
  return ds;
#else
  (void)width;
  (void)height;
  throw Error("this dforce is core-only: give a dataset file (.safetensors), not a video");
#endif
}

}  // namespace

void register_ae_commands(CLI::App& app) {
  auto* ae = app.add_subcommand("ae", "The latent autoencoder: train it, measure it");
  ae->require_subcommand(1);
  {
    auto* cmd = ae->add_subcommand("train", "Train the autoencoder on a dataset's training frames");
    auto job = std::make_shared<AeJob>();
    cmd->add_option("--data", job->data_path, "Dataset file (`dforce dataset build|pack`)")
        ->required();
    cmd->add_option("-o,--output", job->output, "Autoencoder file to write")->required();
    cmd->add_option("--config", job->preset, "ae-demo or ae-tiny")->capture_default_str();
    cmd->add_option("--minutes", job->minutes, "Train for this many minutes");
    cmd->add_option("--steps", job->steps, "Stop at this step");
    cmd->add_option("--schedule-steps", job->schedule_steps, "Learning-rate horizon in steps");
    cmd->add_option("--device", job->device, "auto, cpu or cuda")->capture_default_str();
    cmd->add_option("--checkpoint", job->checkpoint,
                    "Checkpoint file (default: <output>.ckpt.safetensors)");
    cmd->add_option("--checkpoint-minutes", job->checkpoint_minutes, "Minutes between checkpoints")
        ->capture_default_str();
    cmd->add_flag("--resume", job->resume, "Continue from the checkpoint");
    cmd->add_option("--batch", job->batch, "Crops per step (default 8)");
    cmd->add_option("--crop", job->crop, "Crop side in pixels (default 128)");
    cmd->add_option("--lr", job->lr, "Peak learning rate (default 2e-3)");
    cmd->add_option("--set", job->overrides,
                    "Override a training setting, key=value (repeatable), e.g. "
                    "adversarial_weight=0.5");
    cmd->add_option("--from", job->from,
                    "Start from this autoencoder's (or latent model's) weights");
    cmd->add_flag("--decoder-only", job->decoder_only,
                  "Train only the decoder: the encoder, and so the latent space a transformer "
                  "learned, stays exactly as it was (then `dforce ae attach`)");
    cmd->callback([job] { run_ae_train(*job); });
  }
  {
    auto* cmd = ae->add_subcommand(
        "attach",
        "Put a fine-tuned decoder into a latent model file: the autoencoder must have the same "
        "encoder and latent statistics as the model's (made with --decoder-only)");
    auto model = std::make_shared<std::string>();
    auto autoencoder = std::make_shared<std::string>();
    auto out = std::make_shared<std::string>();
    cmd->add_option("model", *model, "Latent model file")->required();
    cmd->add_option("autoencoder", *autoencoder, "Autoencoder file")->required();
    cmd->add_option("-o,--output", *out, "Model file to write")->required();
    cmd->callback([=] {
      auto file = dd::load_safetensors(*model);
      if (!dd::has_autoencoder(file.metadata))
        throw Error("'" + *model + "' is not a latent model");
      auto old_ae = dd::load_autoencoder_from(file.metadata, file.tensors, *model);
      auto new_ae = dd::load_autoencoder(*autoencoder);
      if (old_ae->config().to_json() != new_ae->config().to_json())
        throw Error(
            "the autoencoder's config or latent statistics differ from the model's: the "
            "transformer would see another latent space");
      const auto a = old_ae->encoder->named_parameters(), b = new_ae->encoder->named_parameters();
      for (const auto& p : a)
        if (!torch::equal(p.value(), b[p.key()]))
          throw Error("the autoencoder's encoder differs from the model's (" + p.key() +
                      "): train it with --from MODEL --decoder-only");
      dd::add_autoencoder_to_file(new_ae, file.tensors, file.metadata);
      auto provenance = nlohmann::json::parse(file.metadata["provenance"], nullptr, false);
      if (provenance.is_object())
        provenance["decoder"] = {{"from", fs::path(*autoencoder).filename().string()}};
      file.metadata["provenance"] = provenance.dump();
      dd::save_safetensors(*out, file);
      std::printf("wrote %s: %s with the decoder of %s\n", out->c_str(),
                  fs::path(*model).filename().string().c_str(),
                  fs::path(*autoencoder).filename().string().c_str());
    });
  }
  {
    auto* cmd = ae->add_subcommand(
        "eval", "Reconstruction PSNR/SSIM per clip, beside bicubic from 64x48 and the preview map");
    auto model = std::make_shared<std::string>();
    auto input = std::make_shared<std::string>();
    auto json = std::make_shared<std::string>();
    auto frames = std::make_shared<int>(64);
    auto size = std::make_shared<std::string>("256x192");
    auto clips = std::make_shared<std::vector<std::string>>();
    cmd->add_option("model", *model, "Autoencoder file, or a latent model file")->required();
    cmd->add_option("input", *input,
                    "Dataset file (its held-out frames, and unseen clips whole) or a video file "
                    "(all of it)")
        ->required();
    cmd->add_option("--json", *json, "Also write the scores as JSON");
    cmd->add_option("--frames", *frames, "At most this many frames per clip")
        ->capture_default_str();
    cmd->add_option("--size", *size, "Decode a video at WxH")->capture_default_str();
    cmd->add_option("--clips", *clips, "Only these clips of a dataset")->delimiter(',');
    cmd->callback([=] {
      auto autoencoder = dd::load_autoencoder(*model);
      const auto [w, h] = parse_size(*size);
      const auto data = eval_data(*input, w, h);
      const auto scores = train::evaluate_autoencoder(autoencoder, data, *frames, *clips);
      std::printf("%s", train::to_text(scores).c_str());
      if (!json->empty()) {
        std::ofstream f(*json);
        f << nlohmann::json{{"model", fs::path(*model).filename().string()},
                            {"input", fs::path(*input).filename().string()},
                            {"clips", train::to_json(scores)}}
                 .dump(2)
          << "\n";
        if (!f) throw Error("cannot write '" + *json + "'");
      }
    });
  }
}

}  // namespace dforce
