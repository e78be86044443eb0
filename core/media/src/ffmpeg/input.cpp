// input.cpp — opening containers, choosing the video stream, indexing packets, probing.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>

#include "ffmpeg/av_common.h"

namespace dfs::media::ffmpeg {

namespace fs = std::filesystem;

std::string av_error_text(int code) {
  char buf[AV_ERROR_MAX_STRING_SIZE] = {0};
  av_strerror(code, buf, sizeof(buf));
  return buf;
}

FramePtr make_frame() {
  FramePtr f(av_frame_alloc());
  if (!f) throw Error("", "out of memory allocating a frame");
  return f;
}

PacketPtr make_packet() {
  PacketPtr p(av_packet_alloc());
  if (!p) throw Error("", "out of memory allocating a packet");
  return p;
}

void init_logging() {
  static std::once_flag once;
  std::call_once(once, [] {
    const char* keep = std::getenv("DFS_FFMPEG_LOG");
    if (!keep || std::string(keep) != "1") av_log_set_level(AV_LOG_QUIET);
  });
}

void check_readable_file(const std::string& path) {
  init_logging();
  if (path.empty()) throw Error(path, "no file name given");
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (ec || !fs::exists(status)) throw Error(path, "file does not exist");
  if (fs::is_directory(status)) throw Error(path, "is a directory, not a video file");
  // Pipes and devices could block or never end: only regular files are read.
  if (!fs::is_regular_file(status))
    throw Error(path, "is not a regular file (a device or pipe cannot be opened as a clip)");
  if (fs::file_size(path, ec) == 0 && !ec) throw Error(path, "file is empty (0 bytes)");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw Error(path, std::string("cannot be read: ") + std::strerror(errno));
  std::fclose(f);
}

namespace {

// Clockwise rotation in degrees from the stream's display matrix (as ffmpeg's cmdutils
// get_rotation: av_display_rotation_get is counter-clockwise, so it is negated).
int stream_rotation(const AVStream* stream) {
  const auto* matrix = reinterpret_cast<const int32_t*>(
      av_stream_get_side_data(stream, AV_PKT_DATA_DISPLAYMATRIX, nullptr));
  if (!matrix) return 0;
  const double ccw = av_display_rotation_get(matrix);
  if (std::isnan(ccw)) return 0;
  int cw = static_cast<int>(std::lround(-ccw)) % 360;
  if (cw < 0) cw += 360;
  // Only quarter turns are applied; anything else (rare, odd encoders) snaps to the nearest.
  return ((cw + 45) / 90 % 4) * 90;
}

void open_format(Input& in) {
  AVFormatContext* raw = nullptr;
  const int rc = avformat_open_input(&raw, in.path.c_str(), nullptr, nullptr);
  if (rc < 0) {
    throw Error(in.path, "not a video file FFmpeg can read (" + av_error_text(rc) + ")");
  }
  in.format.reset(raw);
  const int info_rc = avformat_find_stream_info(raw, nullptr);
  if (info_rc < 0) {
    throw Error(in.path, "cannot read the stream headers (" + av_error_text(info_rc) + ")");
  }
}

void build_index(Input& in) {
  auto packet = make_packet();
  std::vector<std::int64_t> ts;
  std::vector<std::int64_t> keys;
  bool missing_pts = false;
  bool missing_any = false;
  // Demux errors other than EOF end the pass: a truncated file is indexed up to the damage.
  while (av_read_frame(in.format.get(), packet.get()) >= 0) {
    if (packet->stream_index == in.stream_index) {
      ++in.packets;
      in.index_bytes += packet->size;
      if (packet->flags & AV_PKT_FLAG_DISCARD) {
        // Pre-roll before an MP4 edit list's start: decoded but never shown.
      } else if (packet->pts != AV_NOPTS_VALUE) {
        ts.push_back(packet->pts);
      } else if (packet->dts != AV_NOPTS_VALUE) {
        ts.push_back(packet->dts);
        missing_pts = true;
      } else {
        missing_any = true;
      }
      if ((packet->flags & AV_PKT_FLAG_KEY) && !ts.empty() && !missing_any)
        keys.push_back(ts.back());
    }
    av_packet_unref(packet.get());
  }
  if (missing_any) ts.clear();  // no usable timeline: decode by counting instead
  std::sort(ts.begin(), ts.end());
  ts.erase(std::unique(ts.begin(), ts.end()), ts.end());
  in.pts = std::move(ts);
  in.pts_from_dts = missing_pts;
  std::sort(keys.begin(), keys.end());
  in.keyframe_pts = std::move(keys);
}

}  // namespace

void rewind_input(Input& in) {
  // image2 (a still image named by file) reports a successful seek but then reads nothing.
  const bool seekable = in.format && std::strcmp(in.format->iformat->name, "image2") != 0;
  if (seekable) {
    avformat_flush(in.format.get());
    const std::int64_t start = in.stream->start_time != AV_NOPTS_VALUE ? in.stream->start_time
                               : !in.pts.empty()                       ? in.pts.front()
                                                                       : 0;
    if (av_seek_frame(in.format.get(), in.stream_index, start, AVSEEK_FLAG_BACKWARD) >= 0 ||
        av_seek_frame(in.format.get(), in.stream_index, start,
                      AVSEEK_FLAG_BACKWARD | AVSEEK_FLAG_ANY) >= 0 ||
        av_seek_frame(in.format.get(), -1, 0, AVSEEK_FLAG_BYTE) >= 0) {
      return;
    }
  }
  // The demuxer cannot seek: reopen the file.
  in.format.reset();
  open_format(in);
  in.stream = in.format->streams[in.stream_index];
}

Input open_input(const std::string& path, std::int64_t max_pixels, bool index) {
  check_readable_file(path);
  Input in;
  in.path = path;
  open_format(in);
  AVFormatContext* fmt = in.format.get();

  // The best video stream that is a real video (not a cover picture in an audio file).
  int best = -1;
  for (unsigned i = 0; i < fmt->nb_streams; ++i) {
    const AVStream* s = fmt->streams[i];
    if (s->codecpar->codec_type != AVMEDIA_TYPE_VIDEO) continue;
    if (s->disposition & AV_DISPOSITION_ATTACHED_PIC) continue;
    best = static_cast<int>(i);
    break;
  }
  if (best >= 0) {
    const int chosen = av_find_best_stream(fmt, AVMEDIA_TYPE_VIDEO, -1, -1, nullptr, 0);
    if (chosen >= 0 && !(fmt->streams[chosen]->disposition & AV_DISPOSITION_ATTACHED_PIC))
      best = chosen;
  }
  if (best < 0) {
    bool audio = false;
    for (unsigned i = 0; i < fmt->nb_streams; ++i)
      audio |= fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO;
    throw Error(path, audio ? "no video stream (the file holds audio only)"
                            : "no video stream in this file");
  }
  in.stream_index = best;
  in.stream = fmt->streams[best];
  const AVCodecParameters* par = in.stream->codecpar;
  in.codec = avcodec_find_decoder(par->codec_id);
  if (!in.codec) {
    throw Error(path, std::string("no decoder for the video codec '") +
                          avcodec_get_name(par->codec_id) + "' in this FFmpeg build");
  }
  if (par->width <= 0 || par->height <= 0) {
    throw Error(path, "the video stream declares no picture size (damaged header)");
  }
  const std::int64_t pixels = static_cast<std::int64_t>(par->width) * par->height;
  if (pixels > max_pixels) {
    throw Error(path, "declared resolution " + std::to_string(par->width) + "x" +
                          std::to_string(par->height) + " is larger than the " +
                          std::to_string(max_pixels / 1000000) +
                          " megapixel limit; refusing to decode it");
  }
  in.rotation = stream_rotation(in.stream);
  if (index) {
    build_index(in);
    rewind_input(in);
  }
  return in;
}

ProbeInfo describe(const Input& in) {
  ProbeInfo p;
  const AVFormatContext* fmt = in.format.get();
  const AVStream* s = in.stream;
  const AVCodecParameters* par = s->codecpar;
  p.path = in.path;
  p.container = fmt->iformat->name ? fmt->iformat->name : "";
  p.container_long = fmt->iformat->long_name ? fmt->iformat->long_name : p.container;
  p.codec = avcodec_get_name(par->codec_id);
  const char* pix = av_get_pix_fmt_name(static_cast<AVPixelFormat>(par->format));
  p.pixel_format = pix ? pix : "unknown";
  p.width = par->width;
  p.height = par->height;
  p.rotation = in.rotation;
  p.bit_rate = par->bit_rate > 0 ? par->bit_rate : (fmt->bit_rate > 0 ? fmt->bit_rate : 0);
  for (unsigned i = 0; i < fmt->nb_streams; ++i)
    p.has_audio |= fmt->streams[i]->codecpar->codec_type == AVMEDIA_TYPE_AUDIO;

  AVRational sar = av_guess_sample_aspect_ratio(const_cast<AVFormatContext*>(fmt),
                                                const_cast<AVStream*>(s), nullptr);
  int dw = par->width;
  int dh = par->height;
  if (sar.num > 0 && sar.den > 0 && sar.num != sar.den) {
    dw = static_cast<int>(std::lround(static_cast<double>(par->width) * sar.num / sar.den));
    dw = std::max(dw, 1);
  }
  if (in.rotation == 90 || in.rotation == 270) std::swap(dw, dh);
  p.display_width = dw;
  p.display_height = dh;
  p.display_aspect = static_cast<double>(dw) / dh;

  const double tb = av_q2d(s->time_base);
  // Frame durations from the packet timeline (the last frame's duration is unknown).
  double median_step = 0;
  if (in.pts.size() >= 2) {
    std::vector<std::int64_t> steps;
    steps.reserve(in.pts.size() - 1);
    for (size_t i = 1; i < in.pts.size(); ++i) steps.push_back(in.pts[i] - in.pts[i - 1]);
    std::vector<std::int64_t> sorted = steps;
    std::nth_element(sorted.begin(), sorted.begin() + sorted.size() / 2, sorted.end());
    median_step = static_cast<double>(sorted[sorted.size() / 2]);
    const auto [lo, hi] = std::minmax_element(steps.begin(), steps.end());
    // Rounding to the time base makes constant-rate steps differ by one tick (33/34 ms in
    // Matroska's 1/1000); anything beyond one tick and 2 % is a real rate change.
    const double spread = static_cast<double>(*hi - *lo);
    p.variable_fps = spread > 1.0 && spread > 0.02 * median_step;
  }
  const AVRational avg = s->avg_frame_rate;
  const AVRational real = s->r_frame_rate;
  if (p.variable_fps && in.pts.size() >= 2) {
    p.fps = (in.pts.size() - 1) / (tb * static_cast<double>(in.pts.back() - in.pts.front()));
  } else if (avg.num > 0 && avg.den > 0) {
    p.fps = av_q2d(avg);
  } else if (real.num > 0 && real.den > 0) {
    p.fps = av_q2d(real);
  } else if (median_step > 0) {
    p.fps = 1.0 / (median_step * tb);
  }
  if (s->duration != AV_NOPTS_VALUE && s->duration > 0) {
    p.duration = static_cast<double>(s->duration) * tb;
  } else if (fmt->duration != AV_NOPTS_VALUE && fmt->duration > 0) {
    p.duration = static_cast<double>(fmt->duration) / AV_TIME_BASE;
  } else if (in.pts.size() >= 2 && p.fps > 0) {
    p.duration = static_cast<double>(in.pts.back() - in.pts.front()) * tb + 1.0 / p.fps;
  }
  if (!in.pts.empty()) {
    p.frame_count = static_cast<std::int64_t>(in.pts.size());
    p.frame_count_exact = true;
  } else if (in.packets > 0) {
    p.frame_count = in.packets;  // no timestamps, but one packet per frame is the rule
    p.frame_count_exact = false;
  } else if (s->nb_frames > 0) {
    p.frame_count = s->nb_frames;
  } else {
    p.frame_count = static_cast<std::int64_t>(std::llround(p.duration * p.fps));
  }
  return p;
}

std::string read_comment_tag(const std::string& path) {
  init_logging();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return {};
  AVFormatContext* raw = nullptr;
  if (avformat_open_input(&raw, path.c_str(), nullptr, nullptr) < 0) return {};
  FormatPtr fmt(raw);
  const AVDictionaryEntry* e = av_dict_get(fmt->metadata, "comment", nullptr, 0);
  if (!e) e = av_dict_get(fmt->metadata, "COMMENT", nullptr, 0);
  return e && e->value ? std::string(e->value) : std::string();
}

}  // namespace dfs::media::ffmpeg

namespace dfs::media {

ProbeInfo probe(const std::string& path) {
  auto in = ffmpeg::open_input(path, kDefaultMaxPixels, true);
  if (in.packets == 0) throw Error(path, "the video stream holds no frames");
  return ffmpeg::describe(in);
}

}  // namespace dfs::media
