// dfs/fit_and_format.h — how a frame is fitted into a box, and the export formats (header-only).
//
// One FitMode and one ExportFormat for the whole project: the media library implements them,
// the project saves them, the CLI and the Studio offer them. Names follow dfs/enum_names.h; the
// canonical names are the ones project files have always stored.
#pragma once

#include "dfs/enum_names.h"

namespace dfs {

// How a frame of one aspect ratio goes into a box of another.
enum class FitMode {
  Letterbox,  // scale to fit inside, pad the rest with black (nothing lost, nothing distorted)
  Crop,       // scale to cover, cut the centre (fills the box, loses the edges)
  Stretch,    // scale each axis independently (fills, distorts)
};

inline constexpr EnumNames<FitMode, 5> kFitModeNames{{{FitMode::Letterbox, "letterbox"},
                                                      {FitMode::Crop, "crop"},
                                                      {FitMode::Stretch, "stretch"},
                                                      {FitMode::Letterbox, "pad"},
                                                      {FitMode::Crop, "fill"}}};
inline const char* to_string(FitMode mode) {
  return enum_name(kFitModeNames, mode);
}

enum class ExportFormat {
  Auto,         // from the output path (media::format_for_path); never stored in a project
  Mp4,          // H.264 (libx264) yuv420p, +faststart
  Mkv,          // H.264 (libx264) yuv420p in Matroska
  WebM,         // VP9 (libvpx-vp9) yuv420p
  Gif,          // animated GIF, 256-colour palette per frame (median cut), dithered
  PngSequence,  // a folder of frame_000000.png, frame_000001.png, ... (lossless)
  PngFrame,     // one PNG: exactly one frame (the project exports the frame at `in`)
};

inline constexpr EnumNames<ExportFormat, 15> kExportFormatNames{
    {{ExportFormat::Auto, "auto"},
     {ExportFormat::Mp4, "mp4"},
     {ExportFormat::Mkv, "mkv"},
     {ExportFormat::WebM, "webm"},
     {ExportFormat::Gif, "gif"},
     {ExportFormat::PngSequence, "png_sequence"},
     {ExportFormat::PngFrame, "png_frame"},
     {ExportFormat::Mp4, "h264"},
     {ExportFormat::Mp4, "mov"},
     {ExportFormat::Mkv, "matroska"},
     {ExportFormat::WebM, "vp9"},
     {ExportFormat::PngSequence, "png-seq"},
     {ExportFormat::PngSequence, "pngs"},
     {ExportFormat::PngSequence, "frames"},
     {ExportFormat::PngFrame, "png"}}};
inline const char* to_string(ExportFormat format) {
  return enum_name(kExportFormatNames, format);
}

}  // namespace dfs
