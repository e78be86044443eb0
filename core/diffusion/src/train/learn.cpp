// "Learn this clip" (learn.h): pack the frames, fine-tune with run_train_job, measure, sample.
#include "dfs/diffusion/learn.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>

#include "dfs/clock_text.h"
#include "dfs/diffusion/api.h"
#include "dfs/diffusion/train/dataset.h"
#include "dfs/diffusion/train/eval.h"
#include "dfs/diffusion/train/train_job.h"
#include "dfs/diffusion/train/trainer.h"

namespace dfs::diffusion {

namespace fs = std::filesystem;

namespace {

train::VideoDataset pack(const std::vector<Frame>& frames, const LearnSettings& s) {
  if (frames.size() < 2)
    throw Error("learning needs a clip of at least 2 frames, got " + std::to_string(frames.size()));
  train::VideoDataset data;
  train::append_clip(data, s.clip_name, s.clip_source, frames, s.held_out_fraction);
  const auto& c = data.clips.front();
  data.provenance = {
      {"made_by", "learn this clip"},
      {"command", s.command},
      {"size", {data.width(), data.height()}},
      {"fit", s.fit},
      {"held_out_fraction", s.held_out_fraction},
      {"split", "by time: last part of the clip"},
      {"sources", {{{"name", c.name}, {"file", s.clip_source}, {"frames", c.length}}}}};
  if (c.held_out_length() < 1)
    throw Error("the clip is too short to hold any frames out for measuring");
  return data;
}

// Samples `count` frames after the last training frames of the clip with the model at `path`.
LearnSample sample(const std::string& path, const train::VideoDataset& data, int count,
                   int64_t step, const std::string& device) {
  LearnSample out;
  out.step = step;
  Model model = Model::load(path, device);
  const auto& info = model.info();
  const auto& clip = data.clips.front();
  const int horizon = std::min(count, std::max(1, info.max_frames / 2));
  const int context = static_cast<int>(
      std::min<int64_t>({clip.train_length, static_cast<int64_t>(info.max_frames - horizon), 8}));
  if (context < 1) return out;
  std::vector<TimelineFrame> timeline(static_cast<size_t>(context + horizon));
  const int64_t first = clip.held_out_first() - context;
  auto to_frame = [&](int64_t index) {
    const auto t = data.frames[index].contiguous();
    Frame f(data.width(), data.height());
    std::memcpy(f.rgb.data(), t.data_ptr<uint8_t>(), f.byte_size());
    return f;
  };
  for (int i = 0; i < context; ++i) {
    timeline[static_cast<size_t>(i)].content = to_frame(first + i);
    timeline[static_cast<size_t>(i)].pinned = true;
    out.context.push_back(timeline[static_cast<size_t>(i)].content);
  }
  for (int i = 0; i < horizon && i < clip.held_out_length(); ++i)
    out.truth.push_back(to_frame(clip.held_out_first() + i));
  RolloutSettings rs;
  rs.context = context;
  rs.horizon = horizon;
  rs.seed = 0;
  RolloutCallbacks cb;
  cb.want_preview = false;
  cb.on_frame = [&](int index, const Frame& frame) {
    if (index >= context) out.frames.push_back(frame);
  };
  run_rollout(model, timeline, rs, cb);
  return out;
}

std::string stem_of(const std::string& output) {
  fs::path p(output);
  if (p.extension() == ".safetensors") p.replace_extension("");
  return p.string();
}

}  // namespace

namespace train {
EvalSettings learn_loss_settings(const std::string& device) {
  EvalSettings es;
  es.loss_windows = 4;
  es.loss_draws = 4;
  es.seed = 0;
  es.device = device == "auto" ? (runtime_info().cuda_available ? "cuda" : "cpu") : device;
  return es;
}
}  // namespace train

LearnCheckpointInfo read_learn_checkpoint(const std::string& path) {
  const auto info = train::read_checkpoint_info(path);
  return {info.step, info.seconds};
}

double held_out_loss(const std::string& model_path, const std::vector<Frame>& frames,
                     double held_out_fraction, const std::string& device) {
  LearnSettings s;
  s.held_out_fraction = held_out_fraction;
  return train::mean_held_out_loss(model_path, pack(frames, s), train::learn_loss_settings(device));
}

LearnResult learn_frames(const std::vector<Frame>& frames, const LearnSettings& s,
                         const LearnCallbacks& cb) {
  const auto log = [&](const std::string& line) {
    if (cb.log) cb.log(line);
  };
  const auto abandoned = [&] { return cb.abandon != nullptr && cb.abandon->load(); };
  if (s.from.empty()) throw Error("learning needs a starting model file");
  if (s.output.empty()) throw Error("learning needs an output model file");
  if (!(s.minutes > 0)) throw Error("the learning budget must be more than 0 minutes");
  const auto data = pack(frames, s);
  const auto& clip = data.clips.front();
  LearnResult r;
  r.output = s.output;
  r.checkpoint = s.checkpoint.empty() ? train::default_checkpoint_path(s.output) : s.checkpoint;
  r.train_frames = static_cast<int>(clip.train_length);
  r.held_out_frames = static_cast<int>(clip.held_out_length());
  const auto es = train::learn_loss_settings(s.device);
  if (s.measure) {
    r.loss_before = train::mean_held_out_loss(s.from, data, es);
    char buf[160];
    std::snprintf(buf, sizeof buf, "held-out loss of the starting model: %.5f (%d frames)",
                  r.loss_before, r.held_out_frames);
    log(buf);
  }

  train::TrainJob job;
  job.data_path = s.clip_source.empty() ? s.clip_name : s.clip_source;
  job.recipe = "demo";
  job.output = s.output;
  job.checkpoint = r.checkpoint;
  job.from = s.from;
  job.device = s.device;
  job.minutes = s.minutes;
  job.checkpoint_minutes = s.checkpoint_minutes;
  job.resume = s.resume;
  job.lr = 3e-4;  // fine-tuning: a gentler peak rate (as `dforce learn --from`)
  job.warmup = 20;
  job.command = s.command;

  const std::string preview = stem_of(s.output) + ".preview.safetensors";
  const auto device = es.device;
  int64_t first_step = -1;
  train::TrainJobCallbacks tc;
  tc.log = log;
  tc.stop = cb.stop;
  tc.on_progress = [&](const train::TrainProgress& p) {
    if (first_step < 0) first_step = p.step - 1;
    if (!cb.on_progress) return;
    LearnProgress lp;
    lp.step = p.step;
    lp.steps_per_second =
        p.elapsed_seconds > 0 ? static_cast<double>(p.step - first_step) / p.elapsed_seconds : 0;
    lp.loss = p.loss;
    lp.loss_average = p.loss_average;
    lp.elapsed_seconds = p.elapsed_seconds;
    lp.eta_seconds = p.eta_seconds;
    lp.checkpointed = p.checkpointed;
    cb.on_progress(lp);
  };
  auto last_sample = std::chrono::steady_clock::now();
  if (s.sample_frames > 0 && cb.on_sample)
    tc.on_checkpoint = [&](train::Trainer& trainer) {
      if (abandoned() || (cb.stop && cb.stop->load())) return;
      const auto now = std::chrono::steady_clock::now();
      if (std::chrono::duration<double>(now - last_sample).count() < s.sample_minutes * 60 - 1)
        return;
      last_sample = now;
      trainer.export_model(preview, {{"preview_of", s.output}});
      const auto smp = sample(preview, data, s.sample_frames, trainer.step_count(), device);
      std::error_code ec;
      fs::remove(preview, ec);
      cb.on_sample(smp);
    };
  const auto outcome = train::run_train_job(job, data, nullptr, tc);
  r.steps = outcome.steps;
  r.steps_run = outcome.loop.steps_run;
  r.seconds = outcome.seconds_total;
  r.stopped = outcome.loop.stopped;
  if (abandoned()) return r;
  if (s.measure) {
    r.loss_after = train::mean_held_out_loss(s.output, data, es);
    char buf[200];
    std::snprintf(buf, sizeof buf, "held-out loss: %.5f before, %.5f after (%+.1f %%)",
                  r.loss_before, r.loss_after, 100.0 * (r.loss_after / r.loss_before - 1.0));
    log(buf);
  }
  if (s.sample_frames > 0 && cb.on_sample)
    cb.on_sample(sample(s.output, data, s.sample_frames, r.steps, device));
  return r;
}

}  // namespace dfs::diffusion
