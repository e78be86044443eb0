// ffmpeg_decoder.cpp — the FFmpeg implementation of dfs::media::Decoder.
//
// Frame index ↔ timestamp: open_input() demuxes every packet once and keeps the sorted,
// de-duplicated presentation timestamps; frame n is the one shown at pts[n]. A decoded
// frame's index is found by binary search on its best-effort timestamp. Two corrections are
// learned from the first decoded frame: (1) timestamps before it are dropped from the
// timeline (leading frames a decoder never outputs, e.g. open-GOP or damaged starts); (2)
// when the index had to use dts (AVI with packed B-frames has no pts), the constant offset
// between packet dts and decoded timestamps. Streams without any timestamps are decoded by
// counting, and "seeking" restarts from the first frame.
//
// Seeking to n (frame-accurate): seek the demuxer backward to the keyframe at or before
// pts[n], decode forward to n. If the first frame out of the decoder is already past n (open
// GOPs, inexact demuxer indices) the anchor moves back 16, 32, 64... frames, finally to the
// start. Small forward steps (<= kForwardDecodeLimit) decode on without seeking.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "dfs/media/decoder.h"
#include "ffmpeg/av_common.h"

namespace dfs::media {
namespace ffmpeg {
namespace {

constexpr std::int64_t kForwardDecodeLimit = 48;  // frames decoded forward instead of seeking
constexpr std::size_t kMaxMessages = 8;           // distinct damage messages kept for the user
// Same-size conversion: SWS_ACCURATE_RND keeps swscale off its unscaled yuv420p→rgb24 fast
// path, which in FFmpeg 5.1 leaves the last pixels black when the width is not a multiple of 4
// (seen at 322). Resizing goes through the general scaler, where ACCURATE_RND would only cost
// time (about a third more in the scaler: it disables SIMD vertical filters).
constexpr int kSwsFlagsSameSize = SWS_BICUBIC | SWS_ACCURATE_RND;
constexpr int kSwsFlagsResize = SWS_BICUBIC;

// Rotates a packed RGB frame by a quarter turn clockwise `quarters` times (1, 2 or 3).
Frame rotate_clockwise(const Frame& src, int degrees) {
  if (degrees == 0) return src;
  const int w = src.width, h = src.height;
  const bool swap = degrees == 90 || degrees == 270;
  Frame out(swap ? h : w, swap ? w : h);
  for (int y = 0; y < h; ++y) {
    const std::uint8_t* s = src.row(y);
    for (int x = 0; x < w; ++x, s += 3) {
      int dx = x, dy = y;
      if (degrees == 90) {
        dx = h - 1 - y;
        dy = x;
      } else if (degrees == 180) {
        dx = w - 1 - x;
        dy = h - 1 - y;
      } else {  // 270
        dx = y;
        dy = w - 1 - x;
      }
      std::memcpy(out.row(dy) + 3 * dx, s, 3);
    }
  }
  return out;
}

class FfmpegDecoder final : public Decoder {
 protected:
  void open_impl(const std::string& path, const DecoderOptions& options) override {
    reset_state();
    options_ = options;
    in_ = open_input(path, options.max_pixels, true);
    if (in_.packets == 0) throw Error(path, "the video stream holds no frames");
    info_ = describe(in_);

    codec_.reset(avcodec_alloc_context3(in_.codec));
    if (!codec_) throw Error(path, "out of memory creating the decoder");
    int rc = avcodec_parameters_to_context(codec_.get(), in_.stream->codecpar);
    if (rc < 0) throw Error(path, "bad codec parameters (" + av_error_text(rc) + ")");
    codec_->pkt_timebase = in_.stream->time_base;
    codec_->thread_count = options.threads;
    codec_->thread_type = FF_THREAD_FRAME | FF_THREAD_SLICE;
    codec_->max_pixels = options.max_pixels;
    rc = avcodec_open2(codec_.get(), in_.codec, nullptr);
    if (rc < 0) {
      throw Error(path, std::string("cannot start the ") + in_.codec->name + " decoder (" +
                            av_error_text(rc) + ")");
    }
    packet_ = make_packet();
    raw_ = make_frame();

    // Output geometry, in display orientation.
    const int dw = info_.display_width, dh = info_.display_height;
    out_w_ = options.width > 0 ? options.width : dw;
    out_h_ = options.height > 0 ? options.height : dh;
    if (options.width > 0) {
      geometry_ = fit_geometry(dw, dh, 0, out_w_, out_h_, options.fit);
    } else {
      geometry_ = FitGeometry{dw, dh, 0, 0};
    }
    rotation_ = options.apply_rotation ? in_.rotation : 0;
    if (!options.apply_rotation && (in_.rotation == 90 || in_.rotation == 270) &&
        options.width <= 0) {
      // Unrotated native output keeps the storage orientation.
      std::swap(out_w_, out_h_);
      geometry_ = FitGeometry{out_w_, out_h_, 0, 0};
    }

    // Learn the timeline corrections from the first frame that decodes.
    if (!decode_next()) {
      throw Error(path, "no frame of this video can be decoded" +
                            (report_.messages.empty() ? std::string()
                                                      : " (" + report_.messages.front() + ")"));
    }
    const std::int64_t t0 = raw_->best_effort_timestamp;
    if (!in_.pts.empty() && t0 != AV_NOPTS_VALUE) {
      if (in_.pts_from_dts) {
        ts_offset_ = t0 - in_.pts.front();
      } else {
        const auto first = std::lower_bound(in_.pts.begin(), in_.pts.end(), t0);
        in_.pts.erase(in_.pts.begin(), first);
        if (in_.pts.empty()) in_.pts.push_back(t0);
      }
      info_.frame_count = static_cast<std::int64_t>(in_.pts.size());
    }
    have_position_ = true;
    next_index_ = 0;
    emit_raw_as_pending();
  }

  void close_impl() override { reset_state(); }

  ProbeInfo info_impl() const override { return info_; }
  std::pair<int, int> output_size_impl() const override { return {out_w_, out_h_}; }

  std::optional<DecodedFrame> read_impl() override {
    if (target_ >= 0) resolve_target();
    if (pending_) {
      std::optional<DecodedFrame> f = std::move(pending_);
      pending_.reset();
      return f;
    }
    if (!decode_next()) return std::nullopt;
    std::int64_t index = index_of_raw();
    if (have_position_ && index < next_index_) index = next_index_;
    if (have_position_ && index > next_index_) report_.frames_missing += index - next_index_;
    have_position_ = true;
    next_index_ = index + 1;
    ++report_.frames_decoded;
    return convert(index);
  }

  void seek_impl(std::int64_t index) override { target_ = index; }

  std::int64_t position_impl() const override {
    if (target_ >= 0) return target_;
    if (pending_) return pending_->index;
    return next_index_;
  }

  DecodeReport report_impl() const override { return report_; }

 private:
  void reset_state() {
    sws_.reset();
    raw_.reset();
    packet_.reset();
    codec_.reset();
    in_ = Input{};
    info_ = ProbeInfo{};
    report_ = DecodeReport{};
    pending_.reset();
    target_ = -1;
    next_index_ = 0;
    have_position_ = false;
    ts_offset_ = 0;
    sent_eof_ = false;
    drained_ = false;
    concealment_noted_ = false;
  }

  void note_failure(const std::string& what, int code) {
    ++report_.packets_failed;
    const std::string msg = what + ": " + av_error_text(code);
    if (report_.messages.size() < kMaxMessages &&
        std::find(report_.messages.begin(), report_.messages.end(), msg) ==
            report_.messages.end()) {
      report_.messages.push_back(msg);
    }
  }

  // Puts the next decoded picture into raw_. False at the end of the stream.
  bool decode_next() {
    if (drained_) return false;
    for (;;) {
      const int rc = avcodec_receive_frame(codec_.get(), raw_.get());
      if (rc == 0) return true;
      if (rc == AVERROR_EOF) {
        drained_ = true;
        return false;
      }
      if (rc != AVERROR(EAGAIN)) {
        note_failure("decoding failed", rc);  // damaged data; keep going
        continue;
      }
      if (sent_eof_) {  // EAGAIN after flushing should not happen; do not spin
        drained_ = true;
        return false;
      }
      // Feed one more video packet.
      bool fed = false;
      while (!fed) {
        const int read = av_read_frame(in_.format.get(), packet_.get());
        if (read < 0) {
          avcodec_send_packet(codec_.get(), nullptr);  // flush delayed frames
          sent_eof_ = true;
          break;
        }
        if (packet_->stream_index == in_.stream_index) {
          const double at =
              packet_->pts != AV_NOPTS_VALUE ? packet_->pts * av_q2d(in_.stream->time_base) : 0.0;
          const int sent = avcodec_send_packet(codec_.get(), packet_.get());
          if (sent < 0 && sent != AVERROR(EAGAIN)) {
            char where[64];
            std::snprintf(where, sizeof(where), "packet at %.2f s rejected", at);
            note_failure(where, sent);
          }
          fed = true;
        }
        av_packet_unref(packet_.get());
      }
    }
  }

  // Presentation index of raw_ (see the file comment).
  std::int64_t index_of_raw() const {
    const std::int64_t ts = raw_->best_effort_timestamp;
    if (in_.pts.empty() || ts == AV_NOPTS_VALUE) return have_position_ ? next_index_ : 0;
    const std::int64_t t = ts - ts_offset_;
    const auto& pts = in_.pts;
    auto it = std::lower_bound(pts.begin(), pts.end(), t);
    if (it == pts.end()) return static_cast<std::int64_t>(pts.size()) - 1;
    if (it != pts.begin() && *it != t && (t - *(it - 1)) < (*it - t)) --it;
    return it - pts.begin();
  }

  double seconds_of(std::int64_t index) const {
    if (in_.pts.empty()) return info_.fps > 0 ? index / info_.fps : 0.0;
    const auto i = std::clamp<std::int64_t>(index, 0, in_.pts.size() - 1);
    return (in_.pts[i] - in_.pts.front()) * av_q2d(in_.stream->time_base);
  }

  void emit_raw_as_pending() {
    const std::int64_t index = index_of_raw();
    have_position_ = true;
    next_index_ = index + 1;
    ++report_.frames_decoded;
    pending_ = convert(index);
  }

  // raw_ → RGB at the output size, rotated upright, fitted into the box.
  DecodedFrame convert(std::int64_t index) {
    const AVFrame* f = raw_.get();
    if (f->decode_error_flags != 0 || (f->flags & AV_FRAME_FLAG_CORRUPT)) {
      ++report_.frames_concealed;
      if (report_.messages.size() < kMaxMessages && !concealment_noted_) {
        report_.messages.push_back("damaged data concealed by the decoder (from frame " +
                                   std::to_string(index) + ")");
        concealment_noted_ = true;
      }
    }
    const bool quarter = rotation_ == 90 || rotation_ == 270;
    const int sw = quarter ? geometry_.scaled_height : geometry_.scaled_width;
    const int sh = quarter ? geometry_.scaled_width : geometry_.scaled_height;
    sws_.reset(sws_getCachedContext(
        sws_.release(), f->width, f->height, static_cast<AVPixelFormat>(f->format), sw, sh,
        AV_PIX_FMT_RGB24, (sw == f->width && sh == f->height) ? kSwsFlagsSameSize : kSwsFlagsResize,
        nullptr, nullptr, nullptr));
    if (!sws_) throw Error(in_.path, "cannot convert this pixel format to RGB");
    // Use the stream's colour matrix and range (BT.709 HD video, full-range JPEG) when known.
    int* inv_table = nullptr;
    int src_range = 0, *table = nullptr, dst_range = 0, brightness = 0, contrast = 0,
        saturation = 0;
    if (sws_getColorspaceDetails(sws_.get(), &inv_table, &src_range, &table, &dst_range,
                                 &brightness, &contrast, &saturation) >= 0) {
      if (f->colorspace != AVCOL_SPC_UNSPECIFIED && f->colorspace != AVCOL_SPC_RGB)
        inv_table = const_cast<int*>(sws_getCoefficients(f->colorspace));
      if (f->color_range == AVCOL_RANGE_JPEG) src_range = 1;
      if (f->color_range == AVCOL_RANGE_MPEG) src_range = 0;
      sws_setColorspaceDetails(sws_.get(), inv_table, src_range, table, dst_range, brightness,
                               contrast, saturation);
    }

    DecodedFrame out;
    out.index = index;
    out.time = seconds_of(index);
    out.keyframe = f->key_frame != 0;  // FFmpeg 5.1 (AV_FRAME_FLAG_KEY is 6.1+)
    const bool direct = rotation_ == 0 && geometry_.offset_x == 0 && geometry_.offset_y == 0 &&
                        sw == out_w_ && sh == out_h_;
    Frame scaled(sw, sh);
    Frame& target = direct ? out.image : scaled;
    if (direct) out.image = Frame(sw, sh);
    uint8_t* dst[4] = {target.rgb.data(), nullptr, nullptr, nullptr};
    int dst_stride[4] = {target.stride(), 0, 0, 0};
    sws_scale(sws_.get(), f->data, f->linesize, 0, f->height, dst, dst_stride);
    if (direct) return out;

    const Frame upright = rotate_clockwise(scaled, rotation_);
    out.image = Frame(out_w_, out_h_);
    const FitGeometry& g = geometry_;
    const int x0 = std::max(0, g.offset_x), y0 = std::max(0, g.offset_y);
    const int x1 = std::min(out_w_, g.offset_x + upright.width);
    const int y1 = std::min(out_h_, g.offset_y + upright.height);
    for (int y = y0; y < y1; ++y) {
      std::memcpy(out.image.row(y) + 3 * x0, upright.row(y - g.offset_y) + 3 * (x0 - g.offset_x),
                  static_cast<size_t>(3) * (x1 - x0));
    }
    return out;
  }

  void flush_decoder() {
    avcodec_flush_buffers(codec_.get());
    sent_eof_ = false;
    drained_ = false;
    pending_.reset();
  }

  void restart() {
    rewind_input(in_);
    flush_decoder();
    have_position_ = true;
    next_index_ = 0;
  }

  // True if a keyframe lies after frame `from` and at or before frame `to` (indices into the
  // timeline), i.e. a seek towards `to` could skip decoding. Unknown keyframes: assume yes.
  bool keyframe_between(std::int64_t from, std::int64_t to) const {
    const auto& keys = in_.keyframe_pts;
    if (keys.empty() || in_.pts.empty()) return true;
    const std::int64_t last = static_cast<std::int64_t>(in_.pts.size()) - 1;
    const std::int64_t a = in_.pts[std::clamp<std::int64_t>(from, 0, last)];
    const std::int64_t b = in_.pts[std::clamp<std::int64_t>(to, 0, last)];
    const auto it = std::upper_bound(keys.begin(), keys.end(), a);
    return it != keys.end() && *it <= b;
  }

  // Decodes forward until frame n is pending (frames just before n go into the cache).
  void skip_forward(std::int64_t n) {
    const std::int64_t keep_from = n - static_cast<std::int64_t>(options_.cache_frames / 2);
    while (decode_next()) {
      std::int64_t index = index_of_raw();
      if (have_position_ && index < next_index_) index = next_index_;
      have_position_ = true;
      next_index_ = index + 1;
      if (index >= n) {
        ++report_.frames_decoded;
        pending_ = convert(index);
        return;
      }
      if (index >= keep_from && options_.cache_frames > 0) remember(convert(index));
    }
  }

  void resolve_target() {
    const std::int64_t n = target_;
    target_ = -1;
    if (pending_) {
      if (pending_->index == n) return;
      const bool ahead = pending_->index < n;
      pending_.reset();
      if (!ahead) have_position_ = false;  // must go back
    }
    if (have_position_ && n >= next_index_ &&
        (n - next_index_ <= kForwardDecodeLimit || !keyframe_between(next_index_, n))) {
      skip_forward(n);  // a seek would land on the same keyframe or earlier: decode on
      return;
    }
    if (in_.pts.empty()) {  // no timeline: count from the start
      restart();
      skip_forward(n);
      return;
    }
    const std::int64_t last = static_cast<std::int64_t>(in_.pts.size()) - 1;
    const std::int64_t clamped = std::min(n, last);
    std::int64_t back = 0;
    for (;;) {
      const std::int64_t anchor = std::max<std::int64_t>(0, clamped - back);
      if (anchor == 0) {
        restart();
        skip_forward(n);
        return;
      }
      avformat_flush(in_.format.get());
      const int rc =
          av_seek_frame(in_.format.get(), in_.stream_index, in_.pts[anchor], AVSEEK_FLAG_BACKWARD);
      if (rc < 0) {
        restart();
        skip_forward(n);
        return;
      }
      flush_decoder();
      have_position_ = false;
      if (!decode_next()) {
        back = back ? back * 2 : 16;
        continue;
      }
      const std::int64_t index = index_of_raw();
      if (index <= n) {
        have_position_ = true;
        next_index_ = index + 1;
        if (index == n) {
          ++report_.frames_decoded;
          pending_ = convert(index);
          return;
        }
        if (options_.cache_frames > 0 &&
            index >= n - static_cast<std::int64_t>(options_.cache_frames / 2))
          remember(convert(index));
        skip_forward(n);
        return;
      }
      back = back ? back * 2 : 16;  // landed past n: start further back
    }
  }

  DecoderOptions options_;
  Input in_;
  ProbeInfo info_;
  CodecPtr codec_;
  PacketPtr packet_;
  FramePtr raw_;
  SwsPtr sws_;
  FitGeometry geometry_;
  int out_w_ = 0, out_h_ = 0, rotation_ = 0;
  DecodeReport report_;
  std::optional<DecodedFrame> pending_;  // decoded, not yet returned; next_index_ is after it
  std::int64_t target_ = -1;             // lazy seek target (-1: none)
  std::int64_t next_index_ = 0;          // index of the frame after the last one decoded
  bool have_position_ = false;           // next_index_ is known (false right after a seek)
  std::int64_t ts_offset_ = 0;           // decoded timestamp − packet dts (dts timelines)
  bool sent_eof_ = false;
  bool drained_ = false;
  bool concealment_noted_ = false;
};

}  // namespace
}  // namespace ffmpeg

std::unique_ptr<Decoder> make_decoder() {
  return std::make_unique<ffmpeg::FfmpegDecoder>();
}

}  // namespace dfs::media
