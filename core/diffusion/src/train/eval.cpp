// Evaluation of a trained model on held-out data: loss by level, prediction vs baselines,
// long rollouts (statistics + scene consistency), contact sheet. See eval.h; the metrics are in
// eval_metrics.cpp, the report's JSON and text in eval_report.cpp.
//
// Index
//   [SECTION] Helpers (frames <-> tensors, held-out windows)
//   [SECTION] (a) loss by level
//   [SECTION] (b) prediction
//   [SECTION] (c) long rollouts
//   [SECTION] (d) contact sheet
#include "dfs/diffusion/train/eval.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>

#include "dfs/diffusion/denoiser.h"
#include "dfs/diffusion/model_file.h"
#include "dfs/diffusion/model_impl.h"
#include "dfs/diffusion/noise.h"
#include "eval_report.h"

namespace dfs::diffusion::train {

// [SECTION] Helpers (frames <-> tensors, held-out windows) --------------------------------

namespace {

Frame to_frame(const torch::Tensor& hwc_u8) {
  const auto t = hwc_u8.contiguous();
  Frame f(static_cast<int>(t.size(1)), static_cast<int>(t.size(0)));
  std::memcpy(f.rgb.data(), t.data_ptr<uint8_t>(), f.byte_size());
  return f;
}

torch::Tensor to_tensor(const Frame& f) {
  return torch::from_blob(const_cast<uint8_t*>(f.rgb.data()), {f.height, f.width, 3}, torch::kUInt8)
      .clone();
}

// uint8 [N, H, W, 3] -> uint8 [N, h, w, 3]: area when shrinking, bicubic when enlarging.
torch::Tensor resize_u8(const torch::Tensor& frames, int width, int height) {
  namespace F = torch::nn::functional;
  if (frames.size(1) == height && frames.size(2) == width) return frames;
  const auto x = frames.permute({0, 3, 1, 2}).to(torch::kFloat32);
  const bool shrink = width <= frames.size(2) && height <= frames.size(1);
  auto opts = F::InterpolateFuncOptions().size(std::vector<int64_t>{height, width});
  const auto y = shrink ? F::interpolate(x, opts.mode(torch::kArea))
                        : F::interpolate(x, opts.mode(torch::kBicubic).align_corners(false));
  return y.round().clamp(0, 255).to(torch::kUInt8).permute({0, 2, 3, 1}).contiguous();
}

torch::Tensor at_64x48(const torch::Tensor& frame_u8) {  // [H, W, 3] -> [48, 64, 3]
  return resize_u8(frame_u8.unsqueeze(0), 64, 48)[0];
}

// `count` starts spread evenly over [first, last] (inclusive).
std::vector<int64_t> spread(int64_t first, int64_t last, int count) {
  std::vector<int64_t> out;
  if (last < first || count <= 0) return out;
  if (count == 1 || last == first) return {first};
  const int64_t n = std::min<int64_t>(count, last - first + 1);
  for (int64_t i = 0; i < n; ++i) out.push_back(first + (last - first) * i / (n - 1));
  return out;
}

void say(const EvalSettings& s, const std::string& line) {
  if (s.log) s.log(line);
}

std::vector<const ClipInfo*> selected_clips(const VideoDataset& data, const EvalSettings& s) {
  std::vector<const ClipInfo*> out;
  if (s.clips.empty()) {
    for (const auto& c : data.clips) out.push_back(&c);
  } else {
    for (const auto& name : s.clips) out.push_back(&data.clips[data.clip_index(name)]);
  }
  return out;
}

// Runs one rollout on `timeline` and returns every generated (unpinned) frame, in order.
std::vector<torch::Tensor> generate(Model& model, const std::vector<TimelineFrame>& timeline,
                                    const RolloutSettings& rs) {
  std::vector<torch::Tensor> out;
  RolloutCallbacks cb;
  cb.want_preview = false;
  cb.on_frame = [&](int index, const Frame& frame) {
    if (!timeline[static_cast<size_t>(index)].pinned) out.push_back(to_tensor(frame));
  };
  run_rollout(model, timeline, rs, cb);
  return out;
}

}  // namespace

// [SECTION] (a) loss by level -------------------------------------------------------------

namespace {

std::vector<LevelLoss> loss_by_level(const std::string& model_path, const VideoDataset& data,
                                     const std::vector<const ClipInfo*>& clips,
                                     const EvalSettings& s) {
  auto loaded = load_denoiser(model_path);
  auto& net = loaded.net;
  net->to(parse_device(s.device));
  net->eval();
  const NoiseSchedule schedule(loaded.config.noise_schedule, loaded.config.sigma_data);
  if (loaded.ae) loaded.ae->to(parse_device(s.device));
  const torch::Device device =
      net->parameters().empty() ? torch::Device(torch::kCPU) : net->parameters().front().device();
  std::vector<LevelLoss> out;
  torch::NoGradGuard no_grad;
  auto gen = at::detail::createCPUGenerator(s.seed + 17);
  for (double level : s.loss_levels) {
    double sum = 0;
    int count = 0;
    for (const auto* clip : clips) {
      const int64_t t = std::min<int64_t>(loaded.config.max_frames, clip->held_out_length());
      if (t < 1) continue;
      for (int64_t start :
           spread(clip->held_out_first(), clip->held_out_first() + clip->held_out_length() - t,
                  s.loss_windows)) {
        auto x0 = frames_to_float(data, start, t).to(device);
        if (loaded.ae) x0 = loaded.ae->encode(x0);  // latent models: the loss is on latents
        x0 = x0.unsqueeze(0);
        for (int draw = 0; draw < std::max(1, s.loss_draws); ++draw) {
          const auto noise = torch::randn(x0.sizes(), gen).to(device);
          const auto levels = torch::full({1, t}, level, torch::kFloat32).to(device);
          const auto x_n = schedule.add_noise(x0, noise, levels);
          const auto pred = net->forward(x_n, levels).to(torch::kFloat32);
          const auto target = schedule.target(loaded.config.objective, x0, noise, levels);
          sum += (pred - target).pow(2).mean().item<double>();
          ++count;
        }
      }
    }
    out.push_back({level, count > 0 ? sum / count : std::nan("")});
  }
  return out;
}

}  // namespace

// [SECTION] (b) prediction ----------------------------------------------------------------

namespace {

struct PredictionSheetRows {
  std::vector<torch::Tensor> context, truth, mean, sample;  // first segment, for the sheet
};

// The mean of `samples` sampled continuations and the first one, as uint8 [h, H, W, 3].
std::pair<torch::Tensor, torch::Tensor> sample_continuations(Model& model,
                                                             const torch::Tensor& context_u8,
                                                             int horizon, const EvalSettings& s,
                                                             uint64_t seed) {
  const int c = static_cast<int>(context_u8.size(0));
  std::vector<TimelineFrame> timeline(static_cast<size_t>(c + horizon));
  for (int i = 0; i < c; ++i) {
    timeline[static_cast<size_t>(i)].content = to_frame(context_u8[i]);
    timeline[static_cast<size_t>(i)].pinned = true;
  }
  RolloutSettings rs;
  rs.sampler = s.sampler;
  rs.detail_transfer = s.detail_transfer;
  rs.context = c;
  rs.horizon = horizon;
  torch::Tensor sum, first;
  for (int k = 0; k < s.samples; ++k) {
    rs.seed = seed + static_cast<uint64_t>(k);
    auto gen = generate(model, timeline, rs);
    if (static_cast<int>(gen.size()) != horizon)
      throw Error("the rollout returned " + std::to_string(gen.size()) + " frames, expected " +
                  std::to_string(horizon));
    auto stacked = torch::stack(gen);
    sum = sum.defined() ? sum + stacked.to(torch::kFloat64) : stacked.to(torch::kFloat64);
    if (k == 0) first = stacked;
  }
  return {(sum / s.samples).round().clamp(0, 255).to(torch::kUInt8), first};
}

PredictionScores predict_clip(Model& model, Model* baseline, const VideoDataset& data,
                              const ClipInfo& clip, const EvalSettings& s,
                              PredictionSheetRows& sheet) {
  PredictionScores r;
  r.clip = clip.name;
  const int c = s.context, h = s.horizon;
  std::vector<std::vector<double>*> all = {&r.psnr_sample,
                                           &r.ssim_sample,
                                           &r.psnr_mean,
                                           &r.ssim_mean,
                                           &r.psnr_copy,
                                           &r.ssim_copy,
                                           &r.psnr_linear,
                                           &r.ssim_linear,
                                           &r.psnr_sample_64,
                                           &r.psnr_mean_64,
                                           &r.psnr_copy_64,
                                           &r.psnr_linear_64,
                                           &r.sharpness_ratio_sample};
  if (baseline != nullptr) {
    r.baseline = baseline->info().name;
    all.insert(all.end(), {&r.psnr_baseline_sample, &r.ssim_baseline_sample, &r.psnr_baseline_mean,
                           &r.ssim_baseline_mean, &r.psnr_baseline_mean_64});
  }
  for (auto* v : all) v->assign(static_cast<size_t>(h), 0.0);
  const auto first = clip.held_out_first();
  const auto starts = spread(first, first + clip.held_out_length() - (c + h), s.segments_per_clip);
  for (size_t seg = 0; seg < starts.size(); ++seg) {
    const auto frames = data.frames.narrow(0, starts[seg], c + h);  // uint8 [c+h, H, W, 3]
    const uint64_t seed = s.seed + 1000 * seg;
    const auto [mean, sample] = sample_continuations(model, frames.narrow(0, 0, c), h, s, seed);
    torch::Tensor base_mean, base_sample;
    if (baseline != nullptr) {
      const auto small =
          resize_u8(frames.narrow(0, 0, c), baseline->info().width, baseline->info().height);
      auto [bm, bs] = sample_continuations(*baseline, small, h, s, seed);
      base_mean = resize_u8(bm, data.width(), data.height());
      base_sample = resize_u8(bs, data.width(), data.height());
    }
    const auto last = frames[c - 1].to(torch::kFloat64), prev = frames[c - 2].to(torch::kFloat64);
    for (int k = 0; k < h; ++k) {
      const auto truth = frames[c + k];
      const auto linear = (last + (k + 1) * (last - prev)).round().clamp(0, 255).to(torch::kUInt8);
      const auto copy = frames[c - 1];
      const auto uk = static_cast<size_t>(k);
      const auto truth64 = at_64x48(truth);
      r.psnr_sample[uk] += psnr_u8(sample[k], truth);
      r.ssim_sample[uk] += ssim_u8(sample[k], truth);
      r.psnr_mean[uk] += psnr_u8(mean[k], truth);
      r.ssim_mean[uk] += ssim_u8(mean[k], truth);
      r.psnr_copy[uk] += psnr_u8(copy, truth);
      r.ssim_copy[uk] += ssim_u8(copy, truth);
      r.psnr_linear[uk] += psnr_u8(linear, truth);
      r.ssim_linear[uk] += ssim_u8(linear, truth);
      r.psnr_sample_64[uk] += psnr_u8(at_64x48(sample[k]), truth64);
      r.psnr_mean_64[uk] += psnr_u8(at_64x48(mean[k]), truth64);
      r.psnr_copy_64[uk] += psnr_u8(at_64x48(copy), truth64);
      r.psnr_linear_64[uk] += psnr_u8(at_64x48(linear), truth64);
      const auto st = frame_statistics(torch::stack({sample[k], truth}));
      const double true_sharp = st[1][2].item<double>();
      r.sharpness_ratio_sample[uk] += true_sharp > 0 ? st[0][2].item<double>() / true_sharp : 0;
      if (baseline != nullptr) {
        r.psnr_baseline_sample[uk] += psnr_u8(base_sample[k], truth);
        r.ssim_baseline_sample[uk] += ssim_u8(base_sample[k], truth);
        r.psnr_baseline_mean[uk] += psnr_u8(base_mean[k], truth);
        r.ssim_baseline_mean[uk] += ssim_u8(base_mean[k], truth);
        r.psnr_baseline_mean_64[uk] += psnr_u8(at_64x48(base_mean[k]), truth64);
      }
    }
    if (seg == 0) {
      for (int i = 0; i < c; ++i) sheet.context.push_back(frames[i]);
      for (int k = 0; k < h; ++k) {
        sheet.truth.push_back(frames[c + k]);
        sheet.mean.push_back(mean[k]);
        sheet.sample.push_back(sample[k]);
      }
    }
    ++r.segments;
  }
  if (r.segments > 0)
    for (auto* v : all)
      for (auto& x : *v) x /= r.segments;
  return r;
}

}  // namespace

// [SECTION] (c) long rollouts -------------------------------------------------------------

namespace {

struct TrainingIndex {
  torch::Tensor flat;        // float [N, D] training frames
  torch::Tensor sq_norm;     // [N]
  std::vector<size_t> clip;  // clip index of each row
};

TrainingIndex build_index(const VideoDataset& data) {
  // Training frames of every clip, and all frames of wholly held-out clips, at 64x48.
  TrainingIndex idx;
  std::vector<torch::Tensor> parts;
  for (size_t c = 0; c < data.clips.size(); ++c) {
    const auto& clip = data.clips[c];
    const int64_t n = clip.train_length > 0 ? clip.train_length : clip.length;
    for (int64_t i = 0; i < n; i += 256) {
      const int64_t k = std::min<int64_t>(256, n - i);
      parts.push_back(resize_u8(data.frames.narrow(0, clip.first + i, k), 64, 48));
    }
    idx.clip.insert(idx.clip.end(), static_cast<size_t>(n), c);
  }
  idx.flat =
      torch::cat(parts).reshape({static_cast<int64_t>(idx.clip.size()), -1}).to(torch::kFloat32);
  idx.sq_norm = idx.flat.pow(2).sum(1);
  return idx;
}

// 1st-99th percentile ranges of the training frames of clip `only` (all clips when < 0).
FrameStatRanges training_ranges(const VideoDataset& data, int64_t only = -1) {
  std::vector<torch::Tensor> parts;
  for (size_t i = 0; i < data.clips.size(); ++i) {
    const auto& clip = data.clips[i];
    if (clip.train_length > 0 && (only < 0 || static_cast<int64_t>(i) == only))
      parts.push_back(data.frames.narrow(0, clip.first, clip.train_length));
  }
  if (parts.empty()) return {};
  std::vector<torch::Tensor> stat_parts;
  for (const auto& p : parts) stat_parts.push_back(frame_statistics(p));
  const auto stats = torch::cat(stat_parts).to(torch::kFloat64);
  auto q = [&](int col, double p) {
    return torch::quantile(stats.select(1, col), p).item<double>();
  };
  FrameStatRanges r;
  r.mean_lo = q(0, 0.01), r.mean_hi = q(0, 0.99);
  r.contrast_lo = q(1, 0.01), r.contrast_hi = q(1, 0.99);
  r.sharpness_lo = q(2, 0.01), r.sharpness_hi = q(2, 0.99);
  return r;
}

// Per frame: inside `ranges` on mean, contrast, sharpness -> [N, 3] bool.
torch::Tensor inside(const torch::Tensor& frames_u8, const FrameStatRanges& ranges) {
  const auto stats = frame_statistics(frames_u8).to(torch::kFloat64);
  const auto in = [&](int col, double lo, double hi) {
    const auto v = stats.select(1, col);
    return (v >= lo).logical_and(v <= hi);
  };
  return torch::stack(
      {in(0, ranges.mean_lo, ranges.mean_hi), in(1, ranges.contrast_lo, ranges.contrast_hi),
       in(2, ranges.sharpness_lo, ranges.sharpness_hi)},
      1);
}

double share_all(const torch::Tensor& in) {
  return in.all(1).to(torch::kFloat64).mean().item<double>();
}

RolloutScores score_rollout(const std::string& clip_name, size_t clip_index,
                            const VideoDataset& data, const std::vector<torch::Tensor>& frames,
                            const TrainingIndex& idx, const FrameStatRanges& pooled) {
  RolloutScores r;
  r.clip = clip_name;
  r.frames = static_cast<int>(frames.size());
  r.ranges = training_ranges(data, static_cast<int64_t>(clip_index));
  const auto& clip = data.clips[clip_index];
  if (clip.held_out_length() > 0) {
    const auto truth = data.frames.narrow(0, clip.held_out_first(), clip.held_out_length());
    r.truth_in_range_all = share_all(inside(truth, pooled));
    r.truth_in_range_all_own = share_all(inside(truth, r.ranges));
  }
  if (frames.empty()) return r;
  const auto all = torch::stack(frames);  // [N, H, W, 3]
  const auto in = inside(all, pooled);
  const auto in_f = in.to(torch::kFloat64);
  r.in_range_mean = in_f.select(1, 0).mean().item<double>();
  r.in_range_contrast = in_f.select(1, 1).mean().item<double>();
  r.in_range_sharpness = in_f.select(1, 2).mean().item<double>();
  r.in_range_all = share_all(in);
  r.in_range_all_own = share_all(inside(all, r.ranges));
  const double n = static_cast<double>(r.frames);
  // Nearest indexed frame by L2 at 64x48: |a|^2 - 2 a.b + |b|^2, argmin over the index rows.
  const auto q = resize_u8(all, 64, 48).reshape({all.size(0), -1}).to(torch::kFloat32);
  const auto d = idx.sq_norm.unsqueeze(0) - 2 * torch::matmul(q, idx.flat.t());
  const auto nearest = d.argmin(1);
  std::map<size_t, int> counts;
  int same = 0;
  for (int64_t i = 0; i < nearest.size(0); ++i) {
    const size_t cl = idx.clip[static_cast<size_t>(nearest[i].item<int64_t>())];
    ++counts[cl];
    if (cl == clip_index) {
      ++same;
    } else if (r.first_scene_exit < 0) {
      r.first_scene_exit = static_cast<int>(i) + 1;
    }
  }
  r.same_scene = same / n;
  for (const auto& [cl, k] : counts) r.nearest_clip_counts.emplace_back(data.clips[cl].name, k);
  return r;
}

std::vector<torch::Tensor> long_rollout(Model& model, const VideoDataset& data,
                                        const ClipInfo& clip, const EvalSettings& s,
                                        double stabilization, double& seconds) {
  const int c = std::min<int>(s.rollout_context, static_cast<int>(clip.held_out_length()));
  std::vector<TimelineFrame> timeline(static_cast<size_t>(c + s.rollout_frames));
  for (int i = 0; i < c; ++i) {
    timeline[static_cast<size_t>(i)].content = to_frame(data.frames[clip.held_out_first() + i]);
    timeline[static_cast<size_t>(i)].pinned = true;
  }
  RolloutSettings rs;
  rs.sampler = s.sampler;
  rs.detail_transfer = s.detail_transfer;
  rs.sampler.stabilization_user = stabilization;
  rs.sampler.stabilization_generated = stabilization;
  rs.context = s.rollout_context;
  rs.horizon = s.rollout_horizon;
  rs.seed = s.seed + 77;
  const auto t0 = std::chrono::steady_clock::now();
  auto out = generate(model, timeline, rs);
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace

// [SECTION] (d) contact sheet ------------------------------------------------------------

namespace {

constexpr int kSheetColumns = 16;
constexpr int kSheetGap = 2;  // pixels between tiles

void paste(torch::Tensor& sheet, const torch::Tensor& tile, int row, int col) {
  const int64_t h = tile.size(0), w = tile.size(1);
  sheet.narrow(0, kSheetGap + row * (h + kSheetGap), h)
      .narrow(1, kSheetGap + col * (w + kSheetGap), w)
      .copy_(tile);
}

}  // namespace

double mean_held_out_loss(const std::string& model_path, const VideoDataset& data,
                          const EvalSettings& s) {
  const auto levels = loss_by_level(model_path, data, selected_clips(data, s), s);
  double sum = 0;
  int n = 0;
  for (const auto& l : levels)
    if (std::isfinite(l.loss)) sum += l.loss, ++n;
  if (n == 0) throw Error("no clip has held-out frames to measure the loss on");
  return sum / n;
}

EvalReport evaluate_model(const std::string& model_path, const VideoDataset& data,
                          const EvalSettings& s) {
  const auto t0 = std::chrono::steady_clock::now();
  EvalReport report;
  report.model_path = model_path;
  if (s.context < 2)
    throw Error("evaluation needs at least 2 context frames (linear extrapolation uses two)");
  if (s.horizon < 1 || s.samples < 1) throw Error("evaluation needs horizon >= 1 and samples >= 1");
  if (s.rollout_frames < 0) throw Error("rollout length must be >= 0");
  Model model = Model::load(model_path, s.device);
  const auto& info = model.info();
  if (info.width != data.width() || info.height != data.height())
    throw Error("the model takes " + std::to_string(info.width) + "x" +
                std::to_string(info.height) + " frames but the dataset is " +
                std::to_string(data.width()) + "x" + std::to_string(data.height()));
  const auto clips = selected_clips(data, s);
  std::unique_ptr<Model> baseline;
  if (!s.baseline_model.empty()) {
    baseline = std::make_unique<Model>(Model::load(s.baseline_model, s.device));
    if (baseline->info().max_frames < s.context + s.horizon)
      throw Error("the baseline model's window is too short for context + horizon");
  }

  say(s, "(a) held-out loss by noise level");
  report.loss_by_level = loss_by_level(model_path, data, clips, s);

  const auto idx = build_index(data);
  report.training_ranges = training_ranges(data);
  const int64_t tile_h = data.height(), tile_w = data.width();
  const int rows_per_clip = 4;
  auto sheet = torch::full(
      {kSheetGap + static_cast<int64_t>(clips.size()) * rows_per_clip * (tile_h + kSheetGap),
       kSheetGap + kSheetColumns * (tile_w + kSheetGap), 3},
      255, torch::kUInt8);
  for (size_t ci = 0; ci < clips.size(); ++ci) {
    const auto& clip = *clips[ci];
    const size_t clip_index = data.clip_index(clip.name);
    const int row0 = static_cast<int>(ci) * rows_per_clip;
    if (clip.held_out_length() >= s.context + s.horizon) {
      say(s, "(b) " + clip.name + ": " + std::to_string(s.context) + " context -> " +
                 std::to_string(s.horizon) + " predicted, " + std::to_string(s.samples) +
                 " samples");
      PredictionSheetRows rows;
      report.prediction.push_back(predict_clip(model, baseline.get(), data, clip, s, rows));
      for (size_t i = 0; i < rows.context.size() && i < 8; ++i)
        paste(sheet,
              rows.context[rows.context.size() - std::min<size_t>(8, rows.context.size()) + i],
              row0, static_cast<int>(i));
      for (size_t i = 0; i < rows.truth.size() && i < 8; ++i) {
        paste(sheet, rows.truth[i], row0, 8 + static_cast<int>(i));
        paste(sheet, rows.mean[i], row0 + 1, static_cast<int>(i));
        paste(sheet, rows.sample[i], row0 + 1, 8 + static_cast<int>(i));
      }
    } else {
      say(s, "(b) " + clip.name + ": skipped (held-out part shorter than context + horizon)");
    }
    if (s.rollout_frames > 0 && clip.held_out_length() >= 1) {
      for (int with = 1; with >= 0; --with) {
        const double level = with ? s.stabilization : 0.0;
        say(s, "(c) " + clip.name + ": " + std::to_string(s.rollout_frames) +
                   "-frame rollout, stabilisation " + detail::format_number(level, 3));
        double secs = 0;
        const auto frames = long_rollout(model, data, clip, s, level, secs);
        auto r = score_rollout(clip.name, clip_index, data, frames, idx, report.training_ranges);
        r.stabilization = level;
        r.seconds = secs;
        report.rollouts.push_back(r);
        for (int k = 0; k < kSheetColumns && !frames.empty(); ++k) {
          const size_t at = static_cast<size_t>(k) * (frames.size() - 1) / (kSheetColumns - 1);
          paste(sheet, frames[at], row0 + 2 + (with ? 0 : 1), k);
        }
      }
    }
  }
  report.contact_sheet = to_frame(sheet);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return report;
}

}  // namespace dfs::diffusion::train
