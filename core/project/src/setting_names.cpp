// setting_names.cpp — reading the names of the fit mode, export format and export range (the
// tables of dfs/fit_and_format.h and document.h), and the export format an output path implies.
#include "dfs/project/document.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <string>

namespace dfs::project {

namespace fs = std::filesystem;

FitMode fit_mode_from_string(const std::string& s) {
  if (const auto mode = enum_from_name(kFitModeNames, s)) return *mode;
  throw Error("unknown fit mode '" + s + "' (expected " + enum_choices(kFitModeNames) + ")");
}

ExportFormat export_format_from_string(const std::string& s) {
  if (const auto format = enum_from_name(kProjectExportFormatNames, s)) return *format;
  throw Error("unknown export format '" + s + "' (expected " +
              enum_choices(kProjectExportFormatNames) + ")");
}

ExportFormat export_format_from_path(const std::string& path) {
  if (path.empty()) throw Error("no output path given");
  if (path.back() == '/') return ExportFormat::PngSequence;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return ExportFormat::PngSequence;
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  if (ext.empty()) return ExportFormat::PngSequence;
  if (ext == ".mp4" || ext == ".m4v" || ext == ".mov") return ExportFormat::Mp4;
  if (ext == ".mkv") return ExportFormat::Mkv;
  if (ext == ".webm") return ExportFormat::WebM;
  if (ext == ".gif") return ExportFormat::Gif;
  if (ext == ".png") return ExportFormat::PngFrame;
  throw Error("cannot export to '" + path + "': unknown extension '" + ext +
              "' (use .mp4, .mkv, .webm, .gif, .png, or a folder for a PNG sequence)");
}

ExportRange export_range_from_string(const std::string& s) {
  if (const auto range = enum_from_name(kExportRangeNames, s)) return *range;
  throw Error("unknown export range '" + s + "' (expected " + enum_choices(kExportRangeNames) +
              ")");
}

}  // namespace dfs::project
