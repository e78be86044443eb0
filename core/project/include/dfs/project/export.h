// dfs/project/export.h — THE export path for what a project holds: the Studio's File ▸ Export
// and `dforce export <project>` both call export_project, so a range, a format or a fit means
// the same in both. (A generation run straight into a file, `dforce extend/generate`, streams
// through the same EncoderSink from generation.h.)
//
// Thread-safety: export_project runs on any one thread and touches nothing but its arguments;
// `progress` and `cancel` may be read/set from another thread while it runs.
#pragma once

#include <atomic>
#include <map>
#include <string>

#include "dfs/diffusion/api.h"
#include "dfs/frame.h"
#include "dfs/project/document.h"

namespace dfs::project {

struct ExportOutcome {
  std::string output;      // the file or folder written (or that would have been, if cancelled)
  int frames_written = 0;  // frames the encoder accepted
  bool cancelled = false;  // stopped by `cancel`: nothing is left under the final name
};

// Writes `project`'s export range (project.export_settings: format, range, in/out, scale, fps)
// through an EncoderSink: at each position the generated frame where `generated` has one, else
// the clip's frame (decoded from `clip_path`, fitted to the model's size by project.clip.fit)
// unless the range is "generated only". The export embeds the generation settings
// (generation_metadata_json with `info`). `progress` (optional) counts positions handled;
// `cancel` (optional) stops between frames: the partial output is removed and nothing carries
// the final name. Throws Error when the output cannot be written, the clip cannot be decoded,
// or the range holds no frame at all.
ExportOutcome export_project(const Project& project, const diffusion::ModelInfo& info,
                             const std::map<int, Frame>& generated, const std::string& clip_path,
                             std::atomic<int>* progress = nullptr,
                             const std::atomic<bool>* cancel = nullptr);

// The generated frames a saved project keeps beside it (Results.cache_dir, PNG files), by
// position. Missing or unreadable files are skipped and counted in `missing` (optional): the
// project itself stays usable without them.
std::map<int, Frame> load_saved_results(const Document& doc, int* missing = nullptr);

}  // namespace dfs::project
