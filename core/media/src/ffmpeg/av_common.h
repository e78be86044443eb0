// av_common.h — internal: the libav plumbing shared by probe, decoder and encoder.
// Only files under src/ffmpeg/ include this (and therefore libav).
#pragma once

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswscale/swscale.h>
}

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dfs/media/error.h"
#include "dfs/media/probe.h"

namespace dfs::media::ffmpeg {

// av_strerror as a std::string ("Invalid data found when processing input").
std::string av_error_text(int code);

struct FormatCloser {
  void operator()(AVFormatContext* c) const { avformat_close_input(&c); }
};
struct CodecCloser {
  void operator()(AVCodecContext* c) const { avcodec_free_context(&c); }
};
struct FrameFree {
  void operator()(AVFrame* f) const { av_frame_free(&f); }
};
struct PacketFree {
  void operator()(AVPacket* p) const { av_packet_free(&p); }
};
struct SwsFree {
  void operator()(SwsContext* s) const { sws_freeContext(s); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatCloser>;
using CodecPtr = std::unique_ptr<AVCodecContext, CodecCloser>;
using FramePtr = std::unique_ptr<AVFrame, FrameFree>;
using PacketPtr = std::unique_ptr<AVPacket, PacketFree>;
using SwsPtr = std::unique_ptr<SwsContext, SwsFree>;

FramePtr make_frame();
PacketPtr make_packet();

// Quiets libav's own console logging once per process (errors come back as Error messages;
// DFS_FFMPEG_LOG=1 in the environment keeps them for debugging).
void init_logging();

// Checks that `path` names a readable regular file before libav sees it, so that the common
// mistakes get precise messages ("does not exist", "is a directory", "is empty"...).
void check_readable_file(const std::string& path);

// An opened container with its video stream chosen and its packets indexed.
struct Input {
  std::string path;
  FormatPtr format;
  int stream_index = -1;
  AVStream* stream = nullptr;  // owned by format
  const AVCodec* codec = nullptr;
  int rotation = 0;  // clockwise degrees to apply
  // Presentation timestamps of every video packet (pts, else dts), sorted and de-duplicated:
  // frame n is shown at pts[n] (stream time base). Empty when the stream has no timestamps.
  std::vector<std::int64_t> pts;
  bool pts_from_dts = false;               // some packets had no pts; the index is built from dts
  std::vector<std::int64_t> keyframe_pts;  // timestamps (same domain as pts) of keyframes, sorted
  std::int64_t packets = 0;                // video packets seen by the index pass
  std::int64_t index_bytes = 0;            // sum of packet sizes
};

// Opens `path`, picks the video stream, refuses frames over max_pixels, and (index = true)
// demuxes every packet to build Input::pts, then rewinds. Throws Error.
Input open_input(const std::string& path, std::int64_t max_pixels, bool index = true);

// Rewinds `input` to its first packet (seek, or reopen when the demuxer cannot seek).
void rewind_input(Input& input);

// ProbeInfo from an opened, indexed input.
ProbeInfo describe(const Input& input);

// Reads the container's "comment" tag ("" if none / not a media file). Never throws.
std::string read_comment_tag(const std::string& path);

}  // namespace dfs::media::ffmpeg
