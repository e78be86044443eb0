// dfs/media/probe.h — what a clip is, without decoding it.
//
// probe() opens the container, reads the stream headers and demuxes the video packets (no
// decoding) to learn the exact frame count and whether the frame rate is variable. Cost: one
// read through the file's packets (milliseconds for the sample clips). Thread-safe (no shared
// state). Throws dfs::media::Error for anything that is not a readable video.
#pragma once

#include <cstdint>
#include <string>

namespace dfs::media {

struct ProbeInfo {
  std::string path;  // as given
  std::string
      container;  // demuxer short name: "mov,mp4,m4a,3gp,3g2,mj2", "avi", "matroska,webm", "gif"...
  std::string container_long;    // human name: "QuickTime / MOV"
  std::string codec;             // decoder short name: "h264", "hevc", "vp9", "mpeg4", "prores"...
  std::string pixel_format;      // source pixel format name: "yuv420p", "rgb24"...
  int width = 0;                 // coded (storage) pixels, before rotation
  int height = 0;                // coded (storage) pixels, before rotation
  int display_width = 0;         // after sample aspect ratio and rotation: what a viewer shows
  int display_height = 0;        // after sample aspect ratio and rotation
  double display_aspect = 0;     // display_width / display_height (includes SAR and rotation)
  int rotation = 0;              // clockwise degrees the decoder applies: 0, 90, 180 or 270
  double fps = 0;                // frames per second (average for variable-rate streams)
  bool variable_fps = false;     // frame durations differ by more than one timestamp tick
  double duration = 0;           // seconds (stream, else container; 0 if unknown)
  std::int64_t frame_count = 0;  // number of video frames
  bool frame_count_exact = false;  // true: counted from packets; false: duration * fps estimate
  std::int64_t bit_rate = 0;       // bits per second (0 if unknown)
  bool has_audio = false;          // the container also holds an audio stream
};

// Probes `path`. Throws Error (missing, unreadable, directory, empty, not a media file, no
// video stream, resolution larger than max_pixels).
ProbeInfo probe(const std::string& path);

// Largest frame the library will decode (width * height), checked before anything is
// allocated: a corrupt or hostile header declaring 100000x100000 is refused with an Error.
inline constexpr std::int64_t kDefaultMaxPixels = 8192LL * 8192LL;

}  // namespace dfs::media
