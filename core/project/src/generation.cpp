// generation.cpp — the one generation path: Project + Model -> decoded, fitted source frames ->
// engine timeline -> run_rollout -> sink. Plus the sinks, the export metadata and model lookup.
//
// Index
//   [SECTION] Helpers
//   [SECTION] Timeline building
//   [SECTION] Sinks
//   [SECTION] GenerationJob
//   [SECTION] Generation metadata
//   [SECTION] Model lookup
#include "dfs/project/generation.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <optional>

#include "dfs/media/decoder.h"
#include "dfs/media/encoder.h"
#include "dfs/media/error.h"
#include "dfs/media/frame_ops.h"
#include "dfs/media/metadata.h"
#include "dfs/version.h"
#include "json_io.h"

namespace dfs::project {

namespace fs = std::filesystem;
using detail::json;

// [SECTION] Helpers ------------------------------------------------------------------------------

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

media::FitMode to_media(FitMode fit) {
  switch (fit) {
    case FitMode::Letterbox:
      return media::FitMode::kLetterbox;
    case FitMode::Crop:
      return media::FitMode::kCrop;
    case FitMode::Stretch:
      return media::FitMode::kStretch;
  }
  return media::FitMode::kLetterbox;
}

// Runs `f`, turning the libraries' own exceptions into project Errors with a prefix, so callers
// catch one type.
template <typename F>
auto translate_errors(const std::string& what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(what.empty() ? std::string(e.what()) : what + ": " + e.what());
  }
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
    decoder_ = translate_errors("cannot read the clip", [&] { return media::open_decoder(path_); });
  }

  Frame get(int clip_frame) {
    Frame native;
    if (source_) {
      native = translate_errors("clip frame " + std::to_string(clip_frame),
                                [&] { return source_(clip_frame); });
    } else {
      native = translate_errors(
          "cannot decode frame " + std::to_string(clip_frame) + " of the clip", [&] {
            if (decoder_->position() == clip_frame) {
              auto f = decoder_->read();
              if (f && f->index == clip_frame) return std::move(f->image);
            }
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
  std::unique_ptr<media::Decoder> decoder_;
};

}  // namespace

Frame fit_to_model(const Frame& frame, int width, int height, FitMode fit) {
  if (frame.empty()) throw Error("cannot fit an empty frame to the model's resolution");
  if (frame.byte_size() != frame.rgb.size())
    throw Error("frame buffer size does not match its " + std::to_string(frame.width) + "x" +
                std::to_string(frame.height) + " size");
  if (frame.width == width && frame.height == height)
    return frame;  // exact: pins stay bit-identical
  return translate_errors("resizing a frame", [&] {
    return media::resize(frame, width, height, to_media(fit), media::Filter::kSmooth);
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

// [SECTION] Sinks ---------------------------------------------------------------------------------

void MemorySink::begin(const SinkFormat& format) {
  std::lock_guard lock(mutex_);
  format_ = format;
  frames_.clear();
  origins_.clear();
  finished_ = cancelled_ = false;
}

void MemorySink::write(int position, const Frame& frame, FrameOrigin origin) {
  std::lock_guard lock(mutex_);
  frames_[position] = frame;
  origins_[position] = origin;
}

void MemorySink::finish(bool cancelled) {
  std::lock_guard lock(mutex_);
  finished_ = true;
  cancelled_ = cancelled;
}

SinkFormat MemorySink::format() const {
  std::lock_guard lock(mutex_);
  return format_;
}

std::map<int, Frame> MemorySink::frames() const {
  std::lock_guard lock(mutex_);
  return frames_;
}

std::vector<int> MemorySink::positions() const {
  std::lock_guard lock(mutex_);
  std::vector<int> out;
  out.reserve(frames_.size());
  for (const auto& kv : frames_) out.push_back(kv.first);
  return out;
}

bool MemorySink::has(int position) const {
  std::lock_guard lock(mutex_);
  return frames_.count(position) != 0;
}

Frame MemorySink::frame(int position) const {
  std::lock_guard lock(mutex_);
  auto it = frames_.find(position);
  return it == frames_.end() ? Frame{} : it->second;
}

FrameOrigin MemorySink::origin(int position) const {
  std::lock_guard lock(mutex_);
  auto it = origins_.find(position);
  if (it == origins_.end()) throw Error("frame " + std::to_string(position) + " was not received");
  return it->second;
}

bool MemorySink::finished() const {
  std::lock_guard lock(mutex_);
  return finished_;
}

bool MemorySink::cancelled() const {
  std::lock_guard lock(mutex_);
  return cancelled_;
}

struct EncoderSink::Impl {
  ExportSettings settings;
  std::string metadata;
  media::Encoder encoder;
  int written = 0;
  bool open = false;
};

EncoderSink::EncoderSink(ExportSettings settings, std::string metadata_json)
    : impl_(std::make_unique<Impl>()) {
  impl_->settings = std::move(settings);
  impl_->metadata = std::move(metadata_json);
  if (impl_->settings.path.empty()) throw Error("no output path given for the export");
}

EncoderSink::~EncoderSink() = default;

void EncoderSink::begin(const SinkFormat& format) {
  const ExportSettings& s = impl_->settings;
  media::EncodeSettings e;
  switch (s.format) {
    case ExportFormat::Mp4:
      e.format = media::ExportFormat::kMp4;
      break;
    case ExportFormat::WebM:
      e.format = media::ExportFormat::kWebm;
      break;
    case ExportFormat::Gif:
      e.format = media::ExportFormat::kGif;
      break;
    case ExportFormat::PngSequence:
      e.format = media::ExportFormat::kPngSequence;
      break;
    case ExportFormat::PngFrame:
      e.format = media::ExportFormat::kPng;
      break;
  }
  e.fps = s.fps > 0 ? s.fps : (format.fps > 0 ? format.fps : 8.0);
  // Quality 0..100 -> CRF, lower CRF = better. Linear maps chosen so that the default 80 gives
  // H.264 CRF 16 (visually lossless for small upscaled frames) and VP9 CRF 27.
  const double q = std::clamp(s.quality, 0, 100);
  e.crf = s.format == ExportFormat::WebM ? static_cast<int>(std::lround(55.0 - 0.35 * q))
                                         : static_cast<int>(std::lround(40.0 - 0.3 * q));
  e.metadata_json = impl_->metadata;
  translate_errors("cannot export", [&] { impl_->encoder.open(s.path, e); });
  impl_->open = true;
}

void EncoderSink::write(int position, const Frame& frame, FrameOrigin origin) {
  const ExportSettings& s = impl_->settings;
  bool take = true;
  if (s.format == ExportFormat::PngFrame)
    take = position == s.in;
  else if (s.range == ExportRange::Generated)
    take = origin == FrameOrigin::Generated;
  else if (s.range == ExportRange::InOut)
    take = position >= s.in && position <= s.out;
  if (!take || !impl_->open) return;
  translate_errors("cannot export", [&] {
    if (s.scale > 1)
      impl_->encoder.write(media::upscale(
          frame, s.scale, s.smooth ? media::Filter::kSmooth : media::Filter::kNearest));
    else
      impl_->encoder.write(frame);
  });
  ++impl_->written;
}

void EncoderSink::finish(bool cancelled) {
  if (!impl_->open) return;
  impl_->open = false;
  if (impl_->written == 0) {
    try {
      impl_->encoder.close();
    } catch (const std::exception&) {
      // Nothing was written: there is no file to finalise.
    }
    if (!cancelled)
      throw Error("nothing to export to '" + impl_->settings.path +
                  "': the export range holds no frames");
    return;
  }
  if (cancelled) {
    // Finalise what we have so the file plays; an error here must not hide the cancel.
    try {
      impl_->encoder.close();
    } catch (const std::exception&) {
    }
    return;
  }
  translate_errors("cannot finish the export", [&] { impl_->encoder.close(); });
}

int EncoderSink::frames_written() const {
  return impl_->written;
}
const std::string& EncoderSink::output_path() const {
  return impl_->settings.path;
}

PngCacheSink::PngCacheSink(std::string cache_dir, FrameSink* next)
    : dir_(std::move(cache_dir)), next_(next) {}

void PngCacheSink::begin(const SinkFormat& format) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw Error("cannot create the cache folder '" + dir_ + "': " + ec.message());
  if (next_) next_->begin(format);
}

void PngCacheSink::write(int position, const Frame& frame, FrameOrigin origin) {
  if (origin == FrameOrigin::Generated) {
    Results naming;
    naming.cache_dir = dir_;
    const std::string path = naming.cached_frame_path(position);
    translate_errors("cannot cache a generated frame", [&] { media::write_png(path, frame); });
  }
  if (next_) next_->write(position, frame, origin);
}

void PngCacheSink::finish(bool cancelled) {
  if (next_) next_->finish(cancelled);
}

void TeeSink::begin(const SinkFormat& format) {
  for (FrameSink* s : sinks_) s->begin(format);
}

void TeeSink::write(int position, const Frame& frame, FrameOrigin origin) {
  for (FrameSink* s : sinks_) s->write(position, frame, origin);
}

void TeeSink::finish(bool cancelled) {
  // Every sink gets its finish even if one throws; the first error is reported.
  std::exception_ptr first;
  for (FrameSink* s : sinks_) {
    try {
      s->finish(cancelled);
    } catch (...) {
      if (!first) first = std::current_exception();
    }
  }
  if (first) std::rethrow_exception(first);
}

double GenerationResult::frames_per_second() const {
  const double gen = seconds - decode_seconds;
  return generated.empty() || gen <= 0 ? 0.0 : static_cast<double>(generated.size()) / gen;
}

// [SECTION] GenerationJob
// ---------------------------------------------------------------------------

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
  // carries at most `context` known frames (DESIGN.md, "Guidance horizon"). Skipping them
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

// [SECTION] Generation metadata
// ---------------------------------------------------------------------

std::string generation_metadata_json(const Project& p, const diffusion::ModelInfo* model,
                                     int indent) {
  json m{{"path", p.model_path}};
  if (model) {
    m["name"] = model->name;
    m["width"] = model->width;
    m["height"] = model->height;
    m["max_frames"] = model->max_frames;
    m["causal"] = model->causal;
    m["objective"] = model->objective;
    m["noise_schedule"] = model->noise_schedule;
    m["parameter_count"] = model->parameter_count;
  }
  // Exports write this before the rollout runs (the encoder is opened first), so the frames
  // this run will generate — every unpinned position — count as well as earlier results.
  std::vector<int> generated;
  for (int i = 0; i < p.timeline.length(); ++i) {
    const bool earlier = static_cast<size_t>(i) < p.results.generated.size() &&
                         p.results.generated[static_cast<size_t>(i)];
    if (earlier || !p.timeline.pinned(i)) generated.push_back(i);
  }
  json j{{"format", kGenerationFormat},
         {"format_version", kGenerationFormatVersion},
         {"app", "Diffusion Forcing Studio"},
         {"app_version", kVersion},
         {"model", m},
         {"seed", p.generation.rollout.seed},
         {"settings", detail::settings_to_json_object(p.generation)},
         {"clip", detail::clip_to_json(p.clip)},
         {"fit", to_string(p.clip.fit)},
         {"timeline", detail::timeline_to_json(p.timeline)},
         {"export", detail::export_to_json(p.export_settings)},
         {"generated", generated}};
  return j.dump(indent);
}

void restore_from_metadata(Project& project, const std::string& text, const RestoreOptions& what) {
  const json j = detail::parse_object(text, "generation settings");
  const auto format_it = j.find("format");
  const std::string format =
      format_it != j.end() && format_it->is_string() ? format_it->get<std::string>() : "";
  Project next = project;
  if (format == kProjectFormat) {
    const Project from = project_from_json(text);
    if (what.settings) next.generation = from.generation;
    if (what.timeline) next.timeline = from.timeline;
    if (what.clip) next.clip = from.clip;
    if (what.model) next.model_path = from.model_path;
  } else if (format == kGenerationFormat) {
    int version = 0;
    if (auto v = j.find("format_version"); v != j.end() && v->is_number_integer())
      version = v->get<int>();
    if (version < 1 || version > kGenerationFormatVersion)
      throw Error("generation settings format_version " + std::to_string(version) +
                  " is not supported (this build reads 1.." +
                  std::to_string(kGenerationFormatVersion) + ")");
    if (what.settings && j.contains("settings"))
      next.generation = detail::settings_from_json_object(j.at("settings"), "settings");
    if (what.timeline && j.contains("timeline"))
      next.timeline = detail::timeline_from_json(j.at("timeline"), "timeline");
    if (what.clip && j.contains("clip")) next.clip = detail::clip_from_json(j.at("clip"), "clip");
    if (what.model && j.contains("model")) {
      const json& m = j.at("model");
      if (!m.is_object()) throw Error("model must be an object");
      if (auto path = m.find("path"); path != m.end()) {
        if (!path->is_string()) throw Error("model.path must be a string");
        next.model_path = path->get<std::string>();
      }
    }
  } else {
    throw Error("these are not Diffusion Forcing Studio generation settings (\"format\" is \"" +
                format + "\"; expected \"" + kGenerationFormat + "\" or \"" + kProjectFormat +
                "\")");
  }
  // Results of the old timeline do not describe the restored one.
  if (what.timeline) next.results = Results{};
  validate(next);
  project = std::move(next);
}

void restore_from_exported_file(Project& project, const std::string& exported_path,
                                const RestoreOptions& what) {
  std::error_code ec;
  if (!fs::exists(exported_path, ec))
    throw Error("cannot read settings from '" + exported_path + "': no such file");
  const std::optional<std::string> text =
      translate_errors("cannot read settings from '" + exported_path + "'",
                       [&] { return media::read_generation_metadata(exported_path); });
  if (!text)
    throw Error(
        "'" + exported_path +
        "' carries no generation settings (it was not exported by Diffusion Forcing Studio, "
        "or its metadata and .json sidecar were removed)");
  try {
    restore_from_metadata(project, *text, what);
  } catch (const Error& e) {
    throw Error("cannot restore settings from '" + exported_path + "': " + e.what());
  }
}

// [SECTION] Model lookup
// ----------------------------------------------------------------------------

namespace {
constexpr const char* kDemoModelName = "demo.safetensors";

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}
}  // namespace

std::string find_demo_model(const std::string& executable_path) {
  if (const char* env = std::getenv("DFS_MODEL"); env && *env && is_file(env)) return env;
  std::error_code ec;
  fs::path exe = executable_path;
  if (exe.empty() || !exe.has_parent_path()) exe = fs::read_symlink("/proc/self/exe", ec);
  if (!exe.empty()) {
    const fs::path dir = fs::absolute(exe, ec).parent_path();
    for (const fs::path& candidate :
         {dir / ".." / ".." / "models" / kDemoModelName,
          dir / ".." / "share" / "dfstudio" / "models" / kDemoModelName})
      // Normalised first: "bin/.." must not need "bin" to exist.
      if (is_file(candidate.lexically_normal())) return candidate.lexically_normal().string();
  }
  const fs::path local = fs::path("models") / kDemoModelName;
  if (is_file(local)) return local.string();
  return "";
}

diffusion::Model load_model_or_demo(const std::string& path, const std::string& executable_path,
                                    std::string* warning, const std::string& device) {
  if (warning) warning->clear();
  std::string chosen = path;
  if (!chosen.empty() && !is_file(chosen)) {
    if (fs::path(chosen).filename() != kDemoModelName)
      throw Error("model file '" + chosen +
                  "' does not exist (give a .safetensors model file, or "
                  "leave --model out to use the shipped demo model)");
    chosen.clear();  // "the demo model" wherever it is installed
  }
  if (chosen.empty()) chosen = find_demo_model(executable_path);
  if (!chosen.empty())
    return translate_errors("cannot load model '" + chosen + "'",
                            [&] { return diffusion::Model::load(chosen, device); });
  if (warning)
    *warning =
        "no model file found ($DFS_MODEL, models/demo.safetensors next to the build or install); "
        "using a randomly initialised 'demo' model: the generated frames will look like noise, "
        "not like a continuation of the clip";
  return translate_errors("cannot create the fallback model", [&] {
    return diffusion::Model::random("demo", 0, device == "auto" ? "cpu" : device);
  });
}

}  // namespace dfs::project
