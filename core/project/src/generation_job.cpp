// generation_job.cpp — the one generation path: Project + Model -> decoded, fitted source frames
// -> engine timeline -> run_rollout -> sink (GenerationJob), and the steps it exposes
// (fit_to_model, build_rollout_timeline, plan_generation, fit_window_to_model).
//
// Index
//   [SECTION] Source frames
//   [SECTION] Timeline building
//   [SECTION] GenerationJob
#include "dfs/project/generation.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <filesystem>
#include <memory>

#include "dfs/media/decoder.h"
#include "dfs/media/frame_ops.h"
#include "errors.h"

namespace dfs::project {

namespace fs = std::filesystem;
using detail::translate_errors;

// [SECTION] Source frames -------------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// Reads clip frames in any order, sequentially when possible (read() is much cheaper than a
// seek), and fits them to the model's resolution.
class SourceReader {
 public:
  SourceReader(const Project& p, const JobOptions& o, int width, int height)
      : fit_(p.clip.fit), width_(width), height_(height), source_(o.source) {
    if (source_ || p.timeline.source_count == 0) return;
    path_ = p.clip.path;
    if (!path_.empty() && fs::path(path_).is_relative() && !o.base_dir.empty())
      path_ = (fs::path(o.base_dir) / path_).lexically_normal().string();
    if (o.decoders) {
      decoder_ = translate_errors("cannot read the clip", [&] { return &o.decoders->open(path_); });
    } else {
      owned_ = translate_errors("cannot read the clip", [&] { return media::open_decoder(path_); });
      decoder_ = owned_.get();
    }
  }

  Frame get(int clip_frame) {
    Frame native;
    if (source_) {
      native = translate_errors("clip frame " + std::to_string(clip_frame),
                                [&] { return source_(clip_frame); });
    } else {
      native = translate_errors(
          "cannot decode frame " + std::to_string(clip_frame) + " of the clip", [&] {
            // frame_at answers from the decoder's cache first (a decoder kept open between runs
            // holds the last run's frames) and decodes on without a seek when the stream is
            // already there.
            return decoder_->frame_at(clip_frame).image;
          });
    }
    return fit_to_model(native, width_, height_, fit_);
  }

 private:
  FitMode fit_;
  int width_, height_;
  FrameSource source_;
  std::string path_;
  std::unique_ptr<media::Decoder> owned_;
  media::Decoder* decoder_ = nullptr;
};

}  // namespace

struct ClipDecoderCache::Impl {
  std::string path;
  std::uintmax_t size = 0;
  fs::file_time_type modified;
  std::unique_ptr<media::Decoder> decoder;
};

ClipDecoderCache::ClipDecoderCache() : impl_(std::make_unique<Impl>()) {}
ClipDecoderCache::~ClipDecoderCache() = default;

media::Decoder& ClipDecoderCache::open(const std::string& path) {
  Impl& m = *impl_;
  std::error_code size_error, time_error;
  const std::uintmax_t size = fs::file_size(path, size_error);
  const fs::file_time_type modified = fs::last_write_time(path, time_error);
  const bool same_file = !size_error && !time_error && size == m.size && modified == m.modified;
  if (m.decoder && m.path == path && same_file && m.decoder->is_open()) return *m.decoder;
  close();
  m.decoder = media::open_decoder(path);
  m.path = path;
  m.size = size_error ? 0 : size;
  m.modified = modified;
  return *m.decoder;
}

void ClipDecoderCache::close() {
  impl_->decoder.reset();
  impl_->path.clear();
}

void set_clip_probe(ClipRef& clip, const media::ProbeInfo& info) {
  clip.width = info.display_width > 0 ? info.display_width : info.width;
  clip.height = info.display_height > 0 ? info.display_height : info.height;
  clip.fps = info.fps;
  clip.frame_count = static_cast<int>(info.frame_count);
  clip.duration_s = info.duration;
  clip.codec = info.codec;
}

Frame fit_to_model(const Frame& frame, int width, int height, FitMode fit) {
  if (frame.empty()) throw Error("cannot fit an empty frame to the model's resolution");
  if (frame.byte_size() != frame.rgb.size())
    throw Error("frame buffer size does not match its " + std::to_string(frame.width) + "x" +
                std::to_string(frame.height) + " size");
  if (frame.width == width && frame.height == height)
    return frame;  // exact: pins stay bit-identical
  return translate_errors("resizing a frame", [&] {
    return media::resize(frame, width, height, fit, media::Filter::kSmooth);
  });
}

// [SECTION] Timeline building ---------------------------------------------------------------------

namespace {

// Kept = the engine treats the frame as pinned (bit-identical output).
bool is_kept(const Timeline& t, int p, bool has_content) {
  return t.pinned(p) || (has_content && t.noise[static_cast<size_t>(p)] == 0.0);
}

}  // namespace

std::vector<diffusion::TimelineFrame> build_rollout_timeline(const Timeline& timeline,
                                                             const std::vector<Frame>& content,
                                                             int first, int end) {
  const int full = timeline.length();
  const int length = end < 0 ? full : end;
  if (static_cast<int>(content.size()) != full)
    throw Error("build_rollout_timeline: " + std::to_string(content.size()) +
                " content frames for a timeline of " + std::to_string(full));
  if (static_cast<int>(timeline.noise.size()) != full)
    throw Error("timeline.noise has " + std::to_string(timeline.noise.size()) + " levels for " +
                std::to_string(full) + " frames");
  if (first < 0 || first > length || length > full)
    throw Error("build_rollout_timeline: the range " + std::to_string(first) + ".." +
                std::to_string(length) + " is outside the timeline");
  std::vector<diffusion::TimelineFrame> out(static_cast<size_t>(length - first));
  for (int p = first; p < length; ++p) {
    auto& f = out[static_cast<size_t>(p - first)];
    const Frame& c = content[static_cast<size_t>(p)];
    const bool has = !c.empty();
    if (timeline.pinned(p) && !has)
      throw Error("frame " + std::to_string(p) +
                  " is pinned but has no picture yet (a new frame that was never generated): "
                  "unpin it or generate it first");
    f.content = c;
    f.pinned = is_kept(timeline, p, has);
    f.start_level = (f.pinned || !has) ? 1.0 : timeline.noise[static_cast<size_t>(p)];
  }
  return out;
}

bool fit_window_to_model(GenerationSettings& s, const diffusion::ModelInfo& model) {
  auto& r = s.rollout;
  if (model.max_frames <= 0 || r.context + r.horizon <= model.max_frames) return false;
  r.horizon = std::max(1, model.max_frames - r.context);
  if (r.context + r.horizon > model.max_frames)
    r.context = std::max(0, model.max_frames - r.horizon);
  return true;
}

double GenerationResult::frames_per_second() const {
  const double gen = seconds - decode_seconds;
  return generated.empty() || gen <= 0 ? 0.0 : static_cast<double>(generated.size()) / gen;
}

// [SECTION] GenerationJob -------------------------------------------------------------------------

struct GenerationJob::Impl {
  Project project;
  diffusion::Model& model;
  JobOptions options;
  diffusion::ModelInfo info;
  int length = 0;
  int start = 0;  // first position handed to run_rollout
  int end = 0;    // one past the last position handed to run_rollout
  int to_generate = 0;
  std::vector<bool> has_content;  // known at construction: source frames and previous results
  std::vector<bool> kept;
  std::vector<diffusion::WindowPlan> windows;
  bool ran = false;

  Impl(Project p, diffusion::Model& m, JobOptions o)
      : project(std::move(p)), model(m), options(std::move(o)), info(m.info()) {}

  FrameOrigin origin_of(int p) const {
    if (!kept[static_cast<size_t>(p)]) return FrameOrigin::Generated;
    return project.timeline.is_source(p) ? FrameOrigin::Source : FrameOrigin::Previous;
  }
};

GenerationPlan plan_generation(const Project& project, const diffusion::ModelInfo& info,
                               const std::set<int>& previous) {
  const Timeline& t = project.timeline;
  if (info.width <= 0 || info.height <= 0)
    throw Error("the model reports no resolution (" + std::to_string(info.width) + "x" +
                std::to_string(info.height) + ")");
  validate(project, info.max_frames);
  const int length = t.length();
  if (length == 0)
    throw Error("the timeline is empty: open a clip and extend it, or choose frames to regenerate");

  GenerationPlan plan;
  plan.has_content.assign(static_cast<size_t>(length), false);
  plan.kept.assign(static_cast<size_t>(length), false);
  int first_generated = -1;
  for (int p = 0; p < length; ++p) {
    const bool has = t.is_source(p) || previous.count(p) != 0;
    plan.has_content[static_cast<size_t>(p)] = has;
    if (t.pinned(p) && !has)
      throw Error("frame " + std::to_string(p) +
                  " is pinned but has no picture yet (a new frame that was never generated): "
                  "unpin it or generate it first");
    plan.kept[static_cast<size_t>(p)] = is_kept(t, p, has);
    if (!plan.kept[static_cast<size_t>(p)]) {
      ++plan.frames_to_generate;
      if (first_generated < 0) first_generated = p;
    }
  }
  if (plan.frames_to_generate == 0)
    throw Error(
        "nothing to generate: every frame is pinned or kept at noise level 0 — unpin "
        "frames, raise their noise level, or extend the clip");

  // Known frames long before the first generated one are never in a window: the rollout
  // carries at most `context` known frames (docs/DESIGN.md, "Guidance horizon"). Skipping them
  // keeps decoding, memory and planning independent of the clip's length.
  plan.start = std::max(0, first_generated - project.generation.rollout.context);

  // Plan with one placeholder picture: planning looks at which frames are known, not at pixels.
  const Frame placeholder(info.width, info.height);
  std::vector<diffusion::TimelineFrame> planning(static_cast<size_t>(length - plan.start));
  for (int p = plan.start; p < length; ++p) {
    auto& f = planning[static_cast<size_t>(p - plan.start)];
    const bool has = plan.has_content[static_cast<size_t>(p)];
    if (has) f.content = placeholder;
    f.pinned = plan.kept[static_cast<size_t>(p)];
    f.start_level = (f.pinned || !has) ? 1.0 : t.noise[static_cast<size_t>(p)];
  }
  plan.windows = translate_errors("cannot plan the generation", [&] {
    return diffusion::plan_rollout(info, planning, project.generation.rollout);
  });
  plan.end = plan.start;
  for (auto& w : plan.windows) {
    w.first += plan.start;
    for (int& f : w.frames) {
      f += plan.start;
      plan.end = std::max(plan.end, f + 1);
    }
  }
  return plan;
}

GenerationJob::GenerationJob(Project project, diffusion::Model& model, JobOptions options)
    : impl_(std::make_unique<Impl>(std::move(project), model, std::move(options))) {
  Impl& m = *impl_;
  std::set<int> previous;
  for (const auto& kv : m.options.previous) previous.insert(kv.first);
  GenerationPlan plan = plan_generation(m.project, m.info, previous);
  if (m.project.timeline.source_count > 0 && m.project.clip.path.empty() && !m.options.source)
    throw Error("the timeline uses " + std::to_string(m.project.timeline.source_count) +
                " clip frames but no clip is open");
  m.length = m.project.timeline.length();
  m.start = plan.start;
  m.end = plan.end;
  m.to_generate = plan.frames_to_generate;
  m.has_content = std::move(plan.has_content);
  m.kept = std::move(plan.kept);
  m.windows = std::move(plan.windows);
}

GenerationJob::~GenerationJob() = default;

const Project& GenerationJob::project() const {
  return impl_->project;
}
int GenerationJob::frames_to_generate() const {
  return impl_->to_generate;
}
int GenerationJob::first_rollout_position() const {
  return impl_->start;
}
int GenerationJob::rollout_end() const {
  return impl_->end;
}
const std::vector<diffusion::WindowPlan>& GenerationJob::windows() const {
  return impl_->windows;
}

GenerationResult GenerationJob::run(FrameSink& sink, const ProgressCallback& on_progress,
                                    const std::atomic<bool>* cancel) {
  Impl& m = *impl_;
  if (m.ran) throw Error("a generation job runs once; create a new one to generate again");
  m.ran = true;
  const auto t0 = Clock::now();
  const Timeline& t = m.project.timeline;
  const int W = m.info.width, H = m.info.height;
  const bool emit_all = m.options.emit_all;
  auto cancelled = [&] { return cancel && cancel->load(std::memory_order_relaxed); };

  GenerationResult result;
  result.final.assign(static_cast<size_t>(m.length), false);
  GenerationProgress progress;
  progress.frames_to_generate = m.to_generate;
  progress.windows = static_cast<int>(m.windows.size());

  SinkFormat format;
  format.width = W;
  format.height = H;
  format.fps = m.project.clip.fps > 0 ? m.project.clip.fps : 8.0;
  format.frames = emit_all ? m.length : m.to_generate;

  bool sink_open = false;
  try {
    sink.begin(format);
    sink_open = true;

    int next_emit = 0;  // positions below this were handed over (or skipped) in order
    auto emit = [&](int p, const Frame& f) {
      const FrameOrigin o = m.origin_of(p);
      if (emit_all || o == FrameOrigin::Generated) sink.write(p, f, o);
      result.final[static_cast<size_t>(p)] = true;
      if (o == FrameOrigin::Generated) result.generated.push_back(p);
      next_emit = std::max(next_emit, p + 1);
    };
    auto report_decoding = [&](int done, int total) {
      if (!on_progress) return;
      progress.phase = GenerationProgress::Phase::Decoding;
      progress.elapsed_s = seconds_since(t0);
      progress.eta_s = -1;
      progress.step = done;
      progress.total_steps = total;
      on_progress(progress);
    };
    auto finish_cancelled = [&] {
      result.cancelled = true;
      result.seconds = seconds_since(t0);
      sink_open = false;
      sink.finish(true);
      return result;
    };

    // 1. Source frames: the kept prefix (streamed straight to the sink), then the rollout's.
    SourceReader reader(m.project, m.options, W, H);
    auto content_of = [&](int p) -> Frame {
      if (t.is_source(p)) return reader.get(t.clip_frame(p));
      auto it = m.options.previous.find(p);
      if (it == m.options.previous.end()) return Frame{};
      return fit_to_model(it->second, W, H, m.project.clip.fit);
    };
    // A frame generated from pure noise never looks at its old picture: don't read it.
    auto needs_content = [&](int p) {
      return m.has_content[static_cast<size_t>(p)] &&
             (m.kept[static_cast<size_t>(p)] || t.noise[static_cast<size_t>(p)] < 1.0);
    };
    int decode_total = emit_all ? m.start : 0;  // pictures to read: the prefix + known content
    for (int p = m.start; p < m.end; ++p) decode_total += needs_content(p) ? 1 : 0;
    if (emit_all) decode_total += m.length - m.end;
    int decoded = 0;
    if (emit_all) {
      for (int p = 0; p < m.start; ++p) {
        if (cancelled()) return finish_cancelled();
        emit(p, content_of(p));
        if (++decoded % 8 == 0) report_decoding(decoded, decode_total);
      }
    }
    next_emit = m.start;
    std::vector<Frame> content(static_cast<size_t>(m.length));
    for (int p = m.start; p < m.end; ++p) {
      if (cancelled()) return finish_cancelled();
      if (!needs_content(p)) continue;
      content[static_cast<size_t>(p)] = content_of(p);
      if (++decoded % 8 == 0) report_decoding(decoded, decode_total);
    }
    result.decode_seconds = seconds_since(t0);

    // 2. The engine's timeline.
    const std::vector<diffusion::TimelineFrame> timeline =
        build_rollout_timeline(t, content, m.start, m.end);
    content = {};

    // 3. Rollout, streaming final frames in order. Kept frames the engine does not report
    // (it reports the ones in its windows) are handed over from their content, in order.
    auto catch_up = [&](int upto) {
      for (int q = next_emit; q < upto; ++q)
        if (m.kept[static_cast<size_t>(q)] && !result.final[static_cast<size_t>(q)])
          emit(q, timeline[static_cast<size_t>(q - m.start)].content);
    };
    const double gen_t0 = seconds_since(t0);
    diffusion::RolloutCallbacks callbacks;
    callbacks.want_preview = m.options.want_preview;
    callbacks.cancel = cancel;
    callbacks.on_frame = [&](int index, const Frame& frame) {
      const int p = m.start + index;
      if (p < 0 || p >= m.length || result.final[static_cast<size_t>(p)]) return;
      catch_up(p);
      emit(p, frame);
    };
    if (on_progress) {
      callbacks.on_progress = [&](const diffusion::RolloutProgress& rp) {
        progress.phase = GenerationProgress::Phase::Generating;
        progress.step = rp.step;
        progress.total_steps = rp.total_steps;
        progress.frames_final = static_cast<int>(result.generated.size());
        progress.window = rp.window;
        progress.windows = rp.windows;
        progress.window_first = rp.window_first + m.start;
        progress.matrix_row = rp.matrix_row;
        progress.elapsed_s = seconds_since(t0);
        const double gen_s = progress.elapsed_s - gen_t0;
        progress.eta_s = rp.step > 0 && rp.total_steps >= rp.step
                             ? gen_s / rp.step * (rp.total_steps - rp.step)
                             : -1.0;
        progress.preview.clear();
        for (const auto& [i, f] : rp.preview) progress.preview.emplace_back(i + m.start, f);
        on_progress(progress);
      };
    }
    const diffusion::RolloutResult rr = translate_errors("generation failed", [&] {
      return diffusion::run_rollout(m.model, timeline, m.project.generation.rollout, callbacks);
    });
    result.cancelled = rr.cancelled;
    result.model_forwards = rr.model_forwards;
    if (!rr.cancelled) catch_up(m.end);
    // 4. Kept positions after the last window, straight from the decoder.
    if (!rr.cancelled && emit_all) {
      for (int p = m.end; p < m.length; ++p) {
        if (cancelled()) {
          result.cancelled = true;
          break;
        }
        emit(p, content_of(p));
        if (++decoded % 8 == 0) report_decoding(decoded, decode_total);
      }
    }
    result.seconds = seconds_since(t0);

    if (on_progress) {
      progress.phase = GenerationProgress::Phase::Done;
      progress.frames_final = static_cast<int>(result.generated.size());
      progress.elapsed_s = result.seconds;
      progress.eta_s = 0;
      progress.preview.clear();
      on_progress(progress);
    }
    sink_open = false;
    sink.finish(result.cancelled);
    return result;
  } catch (const std::exception& e) {
    if (sink_open) {
      try {
        sink.finish(true);
      } catch (const std::exception&) {
        // The first error is the one the user needs to see.
      }
    }
    if (dynamic_cast<const Error*>(&e)) throw;
    throw Error(e.what());
  }
}

}  // namespace dfs::project
