// dfs/media/metadata.h — generation settings travelling with exported files.
//
// The Encoder writes EncodeSettings::metadata_json into the container ("comment" tag) for
// MP4/MOV/MKV/WebM and into a sidecar "<path>.json" for every format. Reading back is one
// call, so the Studio can restore a generation's settings from a dropped file.
#pragma once

#include <optional>
#include <string>

namespace dfs::media {

// "<path>.json" (a trailing '/' of a directory path is dropped first).
std::string sidecar_path(const std::string& path);

// The JSON string stored with `path`: the container's comment tag if it holds valid JSON,
// else the sidecar's content if it holds valid JSON, else nullopt. Never throws for a missing
// or foreign file (returns nullopt); the string is returned exactly as written.
std::optional<std::string> read_generation_metadata(const std::string& path);

// Writes `json` to sidecar_path(path) atomically (temp file + rename). Throws Error.
void write_sidecar(const std::string& path, const std::string& json);

}  // namespace dfs::media
