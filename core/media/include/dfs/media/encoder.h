// dfs/media/encoder.h — writing frames out: video files, GIFs, PNGs.
//
// Streaming: open(path, settings) → write(frame) any number of times → close(). Memory does
// not grow with the number of frames, so a rollout can stream an unbounded clip into it.
// One Encoder is used by one thread at a time (calls are also serialised by a mutex).
// close() finalises the file; the destructor closes quietly if the caller forgot (errors are
// then lost, so call close()). Every failure throws dfs::media::Error naming the file.
//
// Nothing half-written ever carries the final name. Until close() succeeds the output lives in
// "<path>.partial-<pid>" beside it (a PNG sequence's frames each as "<frame>.partial"), and
// close() renames it into place. A write or close that fails (a full disk, a file-size limit)
// removes the partial file, as does discard(); a killed process leaves it, recognisable by its
// name, and the next export to the same path removes partial files of processes that are gone.
//
// Sizes: the first frame fixes the size; later frames of another size are resized to it
// (letterbox). H.264/VP9 in yuv420p need even sizes: odd widths/heights are padded by repeating the
// last row/column (EvenSize::kPad, default) or scaled (EvenSize::kScale).
//
// Generation metadata: settings.metadata_json (a JSON document, usually the generation
// settings) is embedded in the container's "comment" tag for MP4/MOV/MKV/WebM (that tag
// survives those muxers and ffprobe shows it) and written to a sidecar "<path>.json" for every
// format (GIF and PNG only have the sidecar). read_generation_metadata() reads it back.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "dfs/fit_and_format.h"
#include "dfs/frame.h"

namespace dfs::media {

// The export formats (dfs/fit_and_format.h); Auto resolves from the path (format_for_path).
using ExportFormat = dfs::ExportFormat;
// Parses a format name or alias ("mp4", "webm", "gif", "png", "png-seq", ...); throws Error.
ExportFormat parse_export_format(const std::string& text);
using dfs::to_string;
ExportFormat format_for_path(const std::string& path);  // what kAuto resolves to; Error if unknown

enum class EvenSize { kPad, kScale };

struct EncodeSettings {
  ExportFormat format = ExportFormat::Auto;
  double fps = 8.0;               // frames per second (> 0; non-integers are kept as a rational)
  int crf = -1;                   // quality, lower is better: H.264 0-51, VP9 0-63;
                                  // -1 = format default (H.264 20, VP9 32)
  std::string preset = "medium";  // x264 preset: ultrafast..veryslow
  EvenSize even_size = EvenSize::kPad;
  std::string metadata_json;  // embedded + sidecar when non-empty (must be valid JSON)
  bool write_sidecar = true;  // write "<path>.json" when metadata_json is non-empty
  bool gif_dither = true;     // Floyd–Steinberg dithering for GIF (smooth gradients)
  int gif_loop = 0;           // 0 = loop forever, -1 = play once
};

class Encoder {
 public:
  Encoder();
  ~Encoder();
  Encoder(const Encoder&) = delete;
  Encoder& operator=(const Encoder&) = delete;

  // Checks the folder is writable and the settings are valid; creates the file lazily at the
  // first write (the size comes from the first frame). Throws Error.
  void open(const std::string& path, const EncodeSettings& settings = {});
  void write(const Frame& frame);  // throws Error (empty frame, second frame of kPng, I/O)
  void close();                    // flushes and finalises; throws Error; idempotent
  void discard();                  // abandons the output: no file appears under the final name
  bool is_open() const;
  std::int64_t frames_written() const;
  std::string path() const;

  struct Impl;  // FFmpeg state, defined in src/ffmpeg

 private:
  mutable std::mutex mutex_;
  std::unique_ptr<Impl> impl_;
};

// One call: writes all `frames` to `path`. Throws Error.
void encode_frames(const std::string& path, const std::vector<Frame>& frames,
                   const EncodeSettings& settings = {});

// Writes one frame as PNG (lossless, bit-exact on read-back). Throws Error.
void write_png(const std::string& path, const Frame& frame);

}  // namespace dfs::media
