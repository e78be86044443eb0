// One training run from a recipe (train_job.h).
#include "dfs/diffusion/train/train_job.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <string>

#include "dfs/clock_text.h"
#include "dfs/diffusion/api.h"
#include "dfs/diffusion/autoencoder.h"
#include "dfs/diffusion/model_file.h"
#include "dfs/diffusion/train/ae_trainer.h"
#include "dfs/diffusion/weights.h"

namespace dfs::diffusion::train {

namespace fs = std::filesystem;

namespace {

// printf-style formatting into a string, for log lines.
[[gnu::format(printf, 1, 2)]] std::string text(const char* format, ...) {
  char buf[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf, sizeof buf, format, args);
  va_end(args);
  return buf;
}

}  // namespace

std::string default_checkpoint_path(const std::string& output) {
  fs::path p(output);
  if (p.extension() == ".safetensors") p.replace_extension("");
  return p.string() + ".ckpt.safetensors";
}

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
namespace {

nlohmann::json autoencoder_provenance(const TrainJob& job) {
  if (job.autoencoder.empty()) return nullptr;
  nlohmann::json out = {{"file", fs::path(job.autoencoder).filename().string()}};
  const auto file = load_safetensors(job.autoencoder);
  if (const auto it = file.metadata.find("provenance"); it != file.metadata.end()) {
    auto p = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
    out["provenance"] = p.is_discarded() ? nlohmann::json(it->second) : p;
  }
  return out;
}

}  // namespace

JobOutcome run_train_job(const TrainJob& job, const VideoDataset& data_in,
                         std::shared_ptr<Distributed> dist, const TrainJobCallbacks& callbacks) {
  const auto log = [&](const std::string& line) {
    if (callbacks.log) callbacks.log(line);
  };
  if (job.minutes <= 0 && job.steps <= 0)
    throw Error("give --minutes or --steps (how long to train)");
  const bool writer = !dist || dist->is_writer();
  auto recipe = train_recipe(job.recipe);
  const std::string ckpt =
      job.checkpoint.empty() ? default_checkpoint_path(job.output) : job.checkpoint;
  Autoencoder ae{nullptr};
  if (!job.from.empty()) {
    const auto from = load_denoiser(job.from);
    const auto name = recipe.model.name;
    recipe.model = from.config;  // fine-tuning keeps the architecture of the starting model
    recipe.model.name = name;
    ae = from.ae;  // and a latent model keeps its autoencoder
  }
  if (!job.autoencoder.empty()) {
    if (ae)
      throw Error(
          "--from names a latent model, which brings its own autoencoder: drop --autoencoder");
    ae = load_autoencoder(job.autoencoder);
  }
  // A latent model trains on the dataset's frames encoded by its autoencoder (the dataset
  // struct shares its tensors, so this copy is cheap).
  VideoDataset data = data_in;
  if (recipe.model.channels != 3 || ae) {
    if (!ae)
      throw Error("recipe '" + job.recipe +
                  "' runs on latents: give --autoencoder FILE (from `dforce ae train`)");
    if (!ae->config().normalised())
      throw Error("the autoencoder has no latent statistics: use the file `dforce ae train` wrote");
    if (ae->config().latent_channels != recipe.model.channels)
      throw Error("the autoencoder makes " + std::to_string(ae->config().latent_channels) +
                  " latent channels but the model takes " + std::to_string(recipe.model.channels));
    if (data.width() != recipe.model.width * kLatentFactor ||
        data.height() != recipe.model.height * kLatentFactor)
      throw Error("the dataset is " + std::to_string(data.width()) + "x" +
                  std::to_string(data.height()) + " but this latent model generates " +
                  std::to_string(recipe.model.width * kLatentFactor) + "x" +
                  std::to_string(recipe.model.height * kLatentFactor) +
                  " frames (pack or build the data at that size)");
    fs::path cache(job.output);
    cache.replace_extension("");
    // Rank 0 encodes and writes the cache; the others then read it (no two writers).
    if (!writer) dist->wait_for("latents", 24 * 3600.0);
    encode_dataset(data, ae, cache.string() + ".latents.safetensors",
                   [&](const std::string& line) { log(line); });
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
    recipe.model = ModelConfig::from_json(apply_overrides(base, job.model_overrides, "model"));
  }
  if (!job.train_overrides.empty()) {
    auto base = s.to_json();
    base["clip_balance"] = s.clip_balance;
    s = TrainSettings::from_json(apply_overrides(base, job.train_overrides, "training"));
  }

  auto make = [&] {
    auto t = std::make_unique<Trainer>(recipe.model, s, data, job.device);
    if (!job.from.empty() && !job.resume) t->load_weights(job.from);
    if (ae) t->set_autoencoder(ae);
    return t;
  };
  std::unique_ptr<Trainer> trainer;
  if (job.resume) {
    if (!fs::exists(ckpt)) throw Error("--resume: no checkpoint at '" + ckpt + "'");
    const auto info = read_checkpoint_info(ckpt);
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
    std::string line = text("resumed from %s at step %lld (%s trained so far)", ckpt.c_str(),
                            static_cast<long long>(trainer->step_count()),
                            dfs::format_clock(trainer->seconds()).c_str());
    if (was != now)
      line += text(
          "; written by %d process%s, continued by %d: the global batch of %d is the "
          "same, so the run goes on as it would have",
          was, was == 1 ? "" : "es", now, s.batch_size);
    log(line);
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
    log(text("starting from the weights of %s", job.from.c_str()));
  log(text("model %s: %lld parameters, %dx%d, %d frames per clip, batch %d, device %s, %d threads",
           recipe.model.name.c_str(), static_cast<long long>(trainer->parameter_count()),
           recipe.model.width, recipe.model.height, trainer->clip_frames(), s.batch_size,
           trainer->device().c_str(), runtime_info().threads));
  log(text("data %s: %lld training frames in %zu clips; lr schedule over %lld steps; checkpoint %s",
           job.data_path.c_str(), static_cast<long long>(data.train_frame_count()),
           data.clips.size(), static_cast<long long>(s.schedule_steps), ckpt.c_str()));

  TrainLoopOptions opt;
  opt.max_steps = job.steps;
  opt.max_seconds = job.minutes * 60;
  opt.checkpoint_path = ckpt;
  opt.checkpoint_every_seconds = job.checkpoint_minutes * 60;
  opt.checkpoint_extra = {{"command", job.command},
                          {"data", job.data_path},
                          {"world_size", dist ? dist->world_size() : 1}};
  opt.stop = callbacks.stop;
  opt.distributed = dist;
  opt.on_progress = [&](const TrainProgress& p) {
    if (callbacks.on_progress) callbacks.on_progress(p);
    if (p.checkpointed && writer && callbacks.on_checkpoint) callbacks.on_checkpoint(*trainer);
  };
  JobOutcome out;
  out.loop = run_training(*trainer, opt);
  out.steps = trainer->step_count();
  out.parameters = trainer->parameter_count();
  out.seconds_total = trainer->seconds();
  out.checkpoint = ckpt;
  if (out.loop.stopped)
    log(text("interrupted: checkpoint saved at step %lld", static_cast<long long>(out.steps)));
  if (dist)
    log(text("data-parallel: %lld gradient all-reduces, %.1f ms each on average",
             static_cast<long long>(dist->allreduce_calls()),
             1000.0 * dist->allreduce_seconds() / std::max<int64_t>(1, dist->allreduce_calls())));
  if (!writer) return out;

  const auto rt = runtime_info();
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
                                     {"date", dfs::now_utc()}};
  trainer->export_model(job.output, provenance);
  log(text("wrote %s (EMA weights, step %lld, %s of training, %.2f samples/s this run)",
           job.output.c_str(), static_cast<long long>(out.steps),
           dfs::format_clock(out.seconds_total).c_str(), out.loop.samples_per_second));
  return out;
}

}  // namespace dfs::diffusion::train
