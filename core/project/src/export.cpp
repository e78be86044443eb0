// export.cpp — see dfs/project/export.h.
#include "dfs/project/export.h"

#include <exception>
#include <memory>

#include "dfs/media/decoder.h"
#include "dfs/project/generation.h"

namespace dfs::project {

ExportOutcome export_project(const Project& project, const diffusion::ModelInfo& info,
                             const std::map<int, Frame>& generated, const std::string& clip_path,
                             std::atomic<int>* progress, const std::atomic<bool>* cancel) {
  const ExportSettings& es = project.export_settings;
  const Timeline& t = project.timeline;
  if (t.length() == 0) throw Error("nothing to export: the project has no frames");
  EncoderSink sink(es, generation_metadata_json(project, &info));
  SinkFormat format;
  format.width = info.width;
  format.height = info.height;
  format.fps = project.clip.fps > 0 ? project.clip.fps : 8.0;
  format.frames = t.length();
  int first = 0, last = t.length() - 1;
  if (es.format == ExportFormat::PngFrame) {
    first = last = es.in;
  } else if (es.range == ExportRange::InOut) {
    first = es.in;
    last = es.out;
  }
  std::unique_ptr<media::Decoder> decoder;
  ExportOutcome outcome;
  sink.begin(format);
  try {
    for (int p = first; p <= last; ++p) {
      if (cancel != nullptr && cancel->load()) {
        outcome.cancelled = true;
        break;
      }
      auto g = generated.find(p);
      if (g != generated.end()) {
        sink.write(p, g->second, t.pinned(p) ? FrameOrigin::Previous : FrameOrigin::Generated);
      } else if (t.is_source(p) && es.range != ExportRange::Generated) {
        if (clip_path.empty())
          throw Error("frame " + std::to_string(p) + " comes from the clip, but the project has "
                      "no clip to decode it from");
        if (!decoder) decoder = media::open_decoder(clip_path);
        const Frame source = decoder->frame_at(t.clip_frame(p)).image;
        sink.write(p, fit_to_model(source, info.width, info.height, project.clip.fit),
                   FrameOrigin::Source);
      }
      if (progress != nullptr) progress->store(p - first + 1);
    }
  } catch (...) {
    sink.discard();  // no half-written file under the final name; the error is the caller's
    throw;
  }
  outcome.output = sink.output_path();
  outcome.frames_written = sink.frames_written();
  if (outcome.cancelled || outcome.frames_written == 0) {
    sink.discard();
    if (!outcome.cancelled)
      throw Error("nothing was exported: the chosen range holds no frames (generate first?)");
    return outcome;
  }
  sink.finish(false);
  return outcome;
}

std::map<int, Frame> load_saved_results(const Document& doc, int* missing) {
  std::map<int, Frame> frames;
  int lost = 0;
  const Project& p = doc.project();
  if (!p.results.cache_dir.empty()) {
    for (int i = 0; i < p.timeline.length(); ++i) {
      if (!p.results.has(i)) continue;
      try {
        frames[i] = media::read_image(doc.resolve(p.results.cached_frame_path(i)));
      } catch (const std::exception&) {
        ++lost;
      }
    }
  }
  if (missing != nullptr) *missing = lost;
  return frames;
}

}  // namespace dfs::project
