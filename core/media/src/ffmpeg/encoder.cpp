// encoder.cpp — dfs::media::Encoder with FFmpeg: H.264 (MP4/MKV), VP9 (WebM), GIF, PNG.
//
// open() validates and creates the output (so an unwritable folder fails at once); the
// codec and muxer start at the first write(), when the frame size is known. The output is
// written under a partial name and renamed into place by close() (see encoder.h).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>

#include <fcntl.h>
#include <unistd.h>

#include "dfs/media/encoder.h"
#include "dfs/media/error.h"
#include "dfs/media/frame_ops.h"
#include "dfs/media/metadata.h"
#include "dfs/partial_files.h"
#include "ffmpeg/av_common.h"
#include "palette.h"

namespace dfs::media {

namespace fs = std::filesystem;

namespace {

std::string lower_extension(const std::string& path) {
  std::string ext = fs::path(path).extension().string();
  for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return ext;
}

bool is_video(ExportFormat f) {
  return f == ExportFormat::Mp4 || f == ExportFormat::Mkv || f == ExportFormat::WebM;
}

// Encodes one RGB frame as a complete PNG file image (libav's PNG encoder).
std::vector<std::uint8_t> encode_png(const Frame& frame, const std::string& path) {
  using namespace ffmpeg;
  const AVCodec* codec = avcodec_find_encoder(AV_CODEC_ID_PNG);
  if (!codec) throw Error(path, "this FFmpeg build has no PNG encoder");
  CodecPtr ctx(avcodec_alloc_context3(codec));
  ctx->width = frame.width;
  ctx->height = frame.height;
  ctx->pix_fmt = AV_PIX_FMT_RGB24;
  ctx->time_base = AVRational{1, 1};
  int rc = avcodec_open2(ctx.get(), codec, nullptr);
  if (rc < 0) throw Error(path, "cannot start the PNG encoder (" + av_error_text(rc) + ")");
  FramePtr f = make_frame();
  f->width = frame.width;
  f->height = frame.height;
  f->format = AV_PIX_FMT_RGB24;
  f->data[0] = const_cast<std::uint8_t*>(frame.rgb.data());
  f->linesize[0] = frame.stride();
  rc = avcodec_send_frame(ctx.get(), f.get());
  if (rc >= 0) rc = avcodec_send_frame(ctx.get(), nullptr);
  if (rc < 0) throw Error(path, "PNG encoding failed (" + av_error_text(rc) + ")");
  PacketPtr pkt = make_packet();
  std::vector<std::uint8_t> bytes;
  while (avcodec_receive_packet(ctx.get(), pkt.get()) >= 0) {
    bytes.insert(bytes.end(), pkt->data, pkt->data + pkt->size);
    av_packet_unref(pkt.get());
  }
  if (bytes.empty()) throw Error(path, "PNG encoder produced no data");
  return bytes;
}

// FFmpeg's text for an I/O error, with the full-disk advice of dfs::write_error_text.
std::string io_error_text(int rc) {
  if (rc == AVERROR(ENOSPC) || rc == AVERROR(EFBIG) || rc == AVERROR(EDQUOT))
    return dfs::write_error_text(AVUNERROR(rc));
  return ffmpeg::av_error_text(rc);
}

// Flushes a finished file to the disk, so that the rename that follows publishes whole bytes.
bool sync_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = ::fsync(fd) == 0;
  return (::close(fd) == 0) && ok;
}

// Writes `bytes` to `path` atomically: a partial file beside it, then a rename.
void write_file(const std::string& path, const std::vector<std::uint8_t>& bytes) {
  const std::string tmp = dfs::partial_name(path);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) throw Error(path, std::string("cannot create the file: ") + std::strerror(errno));
  bool ok = std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
  ok = ok && std::fflush(f) == 0;
  int err = ok ? 0 : errno;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    if (err == 0) err = errno;
    std::remove(tmp.c_str());
    throw Error(path, "cannot write the file completely (" +
                          dfs::write_error_text(err ? err : EIO) +
                          "); nothing was written under this name");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    err = errno;
    std::remove(tmp.c_str());
    throw Error(path, std::string("cannot move the file into place: ") + std::strerror(err));
  }
}

void check_folder(const std::string& path, const fs::path& folder_in) {
  const fs::path folder = folder_in.empty() ? fs::path(".") : folder_in;
  std::error_code ec;
  if (!fs::exists(folder, ec))
    throw Error(path, "the folder '" + folder.string() + "' does not exist");
  if (!fs::is_directory(folder, ec)) throw Error(path, "'" + folder.string() + "' is not a folder");
}

}  // namespace

ExportFormat parse_export_format(const std::string& text) {
  std::string t = text;
  for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (t.empty()) return ExportFormat::Auto;
  if (const auto format = enum_from_name(kExportFormatNames, t)) return *format;
  throw Error("",
              "unknown export format '" + text + "' (" + enum_choices(kExportFormatNames) + ")");
}

ExportFormat format_for_path(const std::string& path) {
  if (!path.empty() && (path.back() == '/' || path.back() == '\\'))
    return ExportFormat::PngSequence;
  std::error_code ec;
  if (fs::is_directory(path, ec)) return ExportFormat::PngSequence;
  const std::string ext = lower_extension(path);
  if (ext == ".mp4" || ext == ".m4v" || ext == ".mov") return ExportFormat::Mp4;
  if (ext == ".mkv") return ExportFormat::Mkv;
  if (ext == ".webm") return ExportFormat::WebM;
  if (ext == ".gif") return ExportFormat::Gif;
  if (ext == ".png") return ExportFormat::PngFrame;
  if (ext.empty()) return ExportFormat::PngSequence;
  throw Error(path, "cannot tell the export format from the extension '" + ext +
                        "' (use .mp4, .mkv, .webm, .gif, .png or a folder)");
}

struct Encoder::Impl {
  std::string path;     // the final name
  std::string partial;  // what the muxer writes until finish() renames it to `path`
  EncodeSettings settings;
  ExportFormat format = ExportFormat::Auto;
  std::int64_t frames = 0;
  int width = 0, height = 0;          // size of the frames given (fixed by the first)
  int enc_width = 0, enc_height = 0;  // size encoded (even for yuv420p)
  bool started = false;
  bool closed = false;
  bool failed = false;  // a write failed and the output was abandoned
  bool header_written = false;
  // Video / GIF state.
  AVFormatContext* out = nullptr;
  ffmpeg::CodecPtr codec;
  AVStream* stream = nullptr;
  ffmpeg::SwsPtr sws;
  ffmpeg::FramePtr frame;
  ffmpeg::PacketPtr packet;

  ~Impl() { release(); }

  void release() {
    if (out) {
      if (out->pb && !(out->oformat->flags & AVFMT_NOFILE)) avio_closep(&out->pb);
      avformat_free_context(out);
      out = nullptr;
    }
    codec.reset();
    sws.reset();
    frame.reset();
    packet.reset();
  }

  // Abandons the output after a failure or a discard(): nothing appears under the final name.
  void abandon() {
    closed = true;
    // Some muxers free their state only in the trailer (GIF keeps its last packet until then:
    // found by LeakSanitizer on a full disk). The file is deleted below, so errors do not matter.
    if (out && header_written) (void)av_write_trailer(out);
    header_written = false;
    release();
    if (!partial.empty()) {
      std::error_code ec;
      fs::remove(partial, ec);
      partial.clear();
    }
  }

  bool uses_muxer() const {
    return format != ExportFormat::PngFrame && format != ExportFormat::PngSequence;
  }

  void open_output() {
    using namespace ffmpeg;
    const char* muxer = format == ExportFormat::Mp4    ? "mp4"
                        : format == ExportFormat::Mkv  ? "matroska"
                        : format == ExportFormat::WebM ? "webm"
                                                       : "gif";
    if (format == ExportFormat::Mp4 && lower_extension(path) == ".mov") muxer = "mov";
    // The muxer writes the partial file (MP4's faststart re-reads it by this name).
    int rc = avformat_alloc_output_context2(&out, nullptr, muxer, partial.c_str());
    if (rc < 0 || !out)
      throw Error(path, std::string("this FFmpeg build has no ") + muxer + " muxer");
    rc = avio_open(&out->pb, partial.c_str(), AVIO_FLAG_WRITE);
    if (rc < 0) throw Error(path, "cannot create the file: " + av_error_text(rc));
  }

  void start(const Frame& first) {
    using namespace ffmpeg;
    width = first.width;
    height = first.height;
    started = true;
    if (!uses_muxer()) return;
    const bool yuv420 = is_video(format);
    enc_width = width;
    enc_height = height;
    if (yuv420) {
      if (settings.even_size == EvenSize::kPad) {
        enc_width += width & 1;
        enc_height += height & 1;
      } else {
        enc_width = std::max(2, width & ~1);
        enc_height = std::max(2, height & ~1);
      }
    }
    const char* encoder_name = format == ExportFormat::WebM  ? "libvpx-vp9"
                               : format == ExportFormat::Gif ? "gif"
                                                             : "libx264";
    const AVCodec* enc = avcodec_find_encoder_by_name(encoder_name);
    if (!enc)
      throw Error(path, std::string("this FFmpeg build has no ") + encoder_name + " encoder");
    stream = avformat_new_stream(out, nullptr);
    codec.reset(avcodec_alloc_context3(enc));
    if (!stream || !codec) throw Error(path, "out of memory starting the encoder");
    const AVRational rate = av_d2q(settings.fps, 100000);
    codec->width = enc_width;
    codec->height = enc_height;
    codec->time_base = av_inv_q(rate);
    codec->framerate = rate;
    codec->sample_aspect_ratio = AVRational{1, 1};
    codec->thread_count = 0;
    if (yuv420) {
      codec->pix_fmt = AV_PIX_FMT_YUV420P;
      // swscale's RGB→YUV uses BT.601 limited range: say so, so players decode it back alike.
      codec->colorspace = AVCOL_SPC_SMPTE170M;
      codec->color_primaries = AVCOL_PRI_SMPTE170M;
      codec->color_trc = AVCOL_TRC_SMPTE170M;
      codec->color_range = AVCOL_RANGE_MPEG;
    } else {
      codec->pix_fmt = AV_PIX_FMT_PAL8;
    }
    if (out->oformat->flags & AVFMT_GLOBALHEADER) codec->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if (format == ExportFormat::WebM) {
      const int crf = settings.crf >= 0 ? settings.crf : 32;
      if (crf > 63) throw Error(path, "VP9 CRF must be 0..63");
      codec->bit_rate = 0;  // constant quality
      av_opt_set_int(codec->priv_data, "crf", crf, 0);
      av_opt_set(codec->priv_data, "deadline", "good", 0);
      av_opt_set_int(codec->priv_data, "cpu-used", 4, 0);
      av_opt_set_int(codec->priv_data, "row-mt", 1, 0);
    } else if (yuv420) {
      const int crf = settings.crf >= 0 ? settings.crf : 20;
      if (crf > 51) throw Error(path, "H.264 CRF must be 0..51");
      av_opt_set_int(codec->priv_data, "crf", crf, 0);
      static const char* const kPresets[] = {"ultrafast", "superfast", "veryfast", "faster",
                                             "fast",      "medium",    "slow",     "slower",
                                             "veryslow",  "placebo"};
      const bool known = std::find(std::begin(kPresets), std::end(kPresets), settings.preset) !=
                         std::end(kPresets);
      if (!known || av_opt_set(codec->priv_data, "preset", settings.preset.c_str(), 0) < 0)
        throw Error(path, "unknown x264 preset '" + settings.preset + "'");
    }
    int rc = avcodec_open2(codec.get(), enc, nullptr);
    if (rc < 0)
      throw Error(path, std::string("cannot start the ") + encoder_name + " encoder (" +
                            av_error_text(rc) + ")");
    rc = avcodec_parameters_from_context(stream->codecpar, codec.get());
    if (rc < 0) throw Error(path, "cannot configure the output stream");
    stream->time_base = codec->time_base;
    stream->avg_frame_rate = rate;
    if (!settings.metadata_json.empty() && format != ExportFormat::Gif)
      av_dict_set(&out->metadata, "comment", settings.metadata_json.c_str(), 0);
    AVDictionary* opts = nullptr;
    if (format == ExportFormat::Mp4) av_dict_set(&opts, "movflags", "+faststart", 0);
    if (format == ExportFormat::Gif)
      av_dict_set_int(&opts, "loop", settings.gif_loop < 0 ? -1 : settings.gif_loop, 0);
    rc = avformat_write_header(out, &opts);
    av_dict_free(&opts);
    if (rc < 0) throw Error(path, "cannot write the file header (" + io_error_text(rc) + ")");
    header_written = true;

    frame = make_frame();
    frame->format = codec->pix_fmt;
    frame->width = enc_width;
    frame->height = enc_height;
    packet = make_packet();
  }

  void drain() {
    using namespace ffmpeg;
    for (;;) {
      const int rc = avcodec_receive_packet(codec.get(), packet.get());
      if (rc == AVERROR(EAGAIN) || rc == AVERROR_EOF) return;
      if (rc < 0) throw Error(path, "encoding failed (" + av_error_text(rc) + ")");
      av_packet_rescale_ts(packet.get(), codec->time_base, stream->time_base);
      packet->stream_index = stream->index;
      const int w = av_interleaved_write_frame(out, packet.get());
      av_packet_unref(packet.get());
      if (w < 0) throw Error(path, "cannot write to the file (" + io_error_text(w) + ")");
    }
  }

  void encode(const Frame& rgb) {
    using namespace ffmpeg;
    int rc = av_frame_make_writable(frame.get());
    if (rc < 0 && !frame->buf[0]) rc = av_frame_get_buffer(frame.get(), 0);
    if (rc < 0) rc = av_frame_get_buffer(frame.get(), 0);
    if (rc < 0) throw Error(path, "out of memory for an encoder frame");
    if (format == ExportFormat::Gif) {
      const IndexedImage indexed = quantize(rgb, settings.gif_dither);
      for (int y = 0; y < rgb.height; ++y)
        std::memcpy(frame->data[0] + static_cast<size_t>(y) * frame->linesize[0],
                    indexed.indices.data() + static_cast<size_t>(y) * rgb.width, rgb.width);
      std::memcpy(frame->data[1], indexed.palette.data(), 256 * 4);
    } else {
      // Pad with black (kPad) or scale (kScale) to the even encoded size.
      const Frame* src = &rgb;
      Frame padded;
      int src_w = rgb.width, src_h = rgb.height;
      if (settings.even_size == EvenSize::kPad && (enc_width != width || enc_height != height)) {
        // Replicate the last column/row: a black border would bleed into the picture's edge
        // through 2x2 chroma subsampling.
        padded = Frame(enc_width, enc_height);
        for (int y = 0; y < enc_height; ++y) {
          const std::uint8_t* from = rgb.row(std::min(y, height - 1));
          std::memcpy(padded.row(y), from, rgb.stride());
          if (enc_width != width)
            std::memcpy(padded.row(y) + rgb.stride(), from + rgb.stride() - 3, 3);
        }
        src = &padded;
        src_w = enc_width;
        src_h = enc_height;
      }
      sws.reset(sws_getCachedContext(sws.release(), src_w, src_h, AV_PIX_FMT_RGB24, enc_width,
                                     enc_height, AV_PIX_FMT_YUV420P, SWS_BICUBIC | SWS_ACCURATE_RND,
                                     nullptr, nullptr, nullptr));
      if (!sws) throw Error(path, "cannot convert RGB to YUV");
      const uint8_t* src_data[4] = {src->rgb.data(), nullptr, nullptr, nullptr};
      const int src_stride[4] = {src->stride(), 0, 0, 0};
      sws_scale(sws.get(), src_data, src_stride, 0, src_h, frame->data, frame->linesize);
    }
    frame->pts = frames;
    rc = avcodec_send_frame(codec.get(), frame.get());
    if (rc < 0) throw Error(path, "encoding failed (" + av_error_text(rc) + ")");
    drain();
  }

  std::string sequence_file(std::int64_t n) const {
    char name[32];
    std::snprintf(name, sizeof(name), "frame_%06lld.png", static_cast<long long>(n));
    return (fs::path(path) / name).string();
  }

  void finish() {
    using namespace ffmpeg;
    if (uses_muxer() && started) {
      int rc = avcodec_send_frame(codec.get(), nullptr);
      if (rc < 0 && rc != AVERROR_EOF)
        throw Error(path, "flushing the encoder failed (" + av_error_text(rc) + ")");
      drain();
      rc = av_write_trailer(out);
      header_written = false;
      if (rc < 0) throw Error(path, "cannot finish the file (" + io_error_text(rc) + ")");
      if (out->pb) {
        rc = avio_closep(&out->pb);
        if (rc < 0) throw Error(path, "cannot close the file (" + io_error_text(rc) + ")");
      }
    }
    release();
    if (!partial.empty()) {
      if (!sync_file(partial))
        throw Error(path, std::string("cannot flush the file to disk: ") + std::strerror(errno));
      std::error_code ec;
      fs::rename(partial, path, ec);
      if (ec) throw Error(path, "cannot move the finished file into place: " + ec.message());
      partial.clear();
    }
    if (!settings.metadata_json.empty() && settings.write_sidecar)
      write_sidecar(path, settings.metadata_json);
  }
};

namespace {

void write_frame(Encoder::Impl& s, const Frame& frame) {
  if (!s.started) s.start(frame);
  const Frame* src = &frame;
  Frame fitted;
  if (frame.width != s.width || frame.height != s.height) {
    fitted = resize(frame, s.width, s.height, FitMode::Letterbox);
    src = &fitted;
  }
  switch (s.format) {
    case ExportFormat::PngFrame:
      write_file(s.path, encode_png(*src, s.path));
      break;
    case ExportFormat::PngSequence: {
      const std::string file = s.sequence_file(s.frames);
      write_file(file, encode_png(*src, file));
      break;
    }
    default:
      s.encode(*src);
  }
}

}  // namespace

Encoder::Encoder() = default;
Encoder::~Encoder() {
  try {
    close();
  } catch (...) {  // a destructor must not throw; call close() to see errors
  }
}

void Encoder::open(const std::string& path, const EncodeSettings& settings) {
  std::lock_guard lock(mutex_);
  ffmpeg::init_logging();
  if (impl_ && !impl_->closed) throw Error(path, "encoder is already open; close() it first");
  auto impl = std::make_unique<Impl>();
  impl->path = path;
  impl->settings = settings;
  impl->format = settings.format == ExportFormat::Auto ? format_for_path(path) : settings.format;
  if (!(settings.fps > 0) || !std::isfinite(settings.fps) || settings.fps > 1000)
    throw Error(path, "frame rate must be between 0 and 1000 frames per second");
  if (!settings.metadata_json.empty() && !nlohmann::json::accept(settings.metadata_json))
    throw Error(path, "generation metadata is not valid JSON");
  if (path.empty()) throw Error(path, "no output file name given");

  std::string clean = path;
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  const fs::path target(clean);
  check_folder(path, target.parent_path());
  std::error_code ec;
  if (impl->format == ExportFormat::PngSequence) {
    impl->path = clean;
    if (!fs::exists(target, ec) && !fs::create_directory(target, ec))
      throw Error(path, "cannot create the folder: " + ec.message());
    if (!fs::is_directory(target, ec)) throw Error(path, "exists and is not a folder");
    dfs::remove_stale_partials(target, "frame_", false);
    // Prove the folder is writable now rather than at the first frame.
    const std::string probe_file = (target / ".dfs_write_test").string();
    std::FILE* f = std::fopen(probe_file.c_str(), "wb");
    if (!f) throw Error(path, std::string("cannot write into the folder: ") + std::strerror(errno));
    std::fclose(f);
    fs::remove(probe_file, ec);
  } else {
    if (fs::is_directory(target, ec)) throw Error(path, "is a folder, not a file name");
    dfs::remove_stale_partials(target.parent_path(), target.filename().string());
    const std::string partial = dfs::partial_name(path);
    if (impl->uses_muxer()) {
      impl->partial = partial;
      try {
        impl->open_output();
      } catch (...) {
        impl->abandon();
        throw;
      }
    } else {  // a single PNG: prove now that the folder takes a file
      std::FILE* f = std::fopen(partial.c_str(), "wb");
      if (!f) throw Error(path, std::string("cannot create the file: ") + std::strerror(errno));
      std::fclose(f);
      fs::remove(partial, ec);
    }
  }
  impl_ = std::move(impl);
}

void Encoder::write(const Frame& frame) {
  std::lock_guard lock(mutex_);
  if (impl_ && impl_->failed)
    throw Error(impl_->path, "an earlier write failed; the export was abandoned");
  if (!impl_ || impl_->closed) throw Error("", "encoder: write() before open()");
  Impl& s = *impl_;
  if (frame.empty() || frame.rgb.size() < frame.byte_size())
    throw Error(s.path, "cannot encode an empty frame");
  if (s.format == ExportFormat::PngFrame && s.frames > 0)
    throw Error(s.path, "a single PNG holds one frame; export a PNG sequence or video for more");
  try {
    write_frame(s, frame);
  } catch (...) {
    s.abandon();  // an I/O or encoder failure: the output cannot be trusted any more
    s.failed = true;
    throw;
  }
  ++s.frames;
}

void Encoder::close() {
  std::lock_guard lock(mutex_);
  if (!impl_ || impl_->closed) return;
  Impl& s = *impl_;
  s.closed = true;
  if (s.frames == 0) {
    s.abandon();
    throw Error(s.path, "no frames were written; nothing was exported");
  }
  try {
    s.finish();
  } catch (...) {
    s.abandon();
    throw;
  }
}

void Encoder::discard() {
  std::lock_guard lock(mutex_);
  if (impl_ && !impl_->closed) impl_->abandon();
}

bool Encoder::is_open() const {
  std::lock_guard lock(mutex_);
  return impl_ && !impl_->closed;
}

std::int64_t Encoder::frames_written() const {
  std::lock_guard lock(mutex_);
  return impl_ ? impl_->frames : 0;
}

std::string Encoder::path() const {
  std::lock_guard lock(mutex_);
  return impl_ ? impl_->path : std::string();
}

void encode_frames(const std::string& path, const std::vector<Frame>& frames,
                   const EncodeSettings& settings) {
  Encoder encoder;
  encoder.open(path, settings);
  for (const Frame& f : frames) encoder.write(f);
  encoder.close();
}

void write_png(const std::string& path, const Frame& frame) {
  EncodeSettings settings;
  settings.format = ExportFormat::PngFrame;
  encode_frames(path, {frame}, settings);
}

}  // namespace dfs::media
