// timeline_widget.cpp — see timeline_widget.h.
#include "timeline_widget.h"

#include <QContextMenuEvent>
#include <QMouseEvent>
#include <QPainter>
#include <QWheelEvent>
#include <algorithm>
#include <cmath>

#include "colors.h"
#include "noise_curve_panel.h"  // FrameFlag

namespace dfs::ui {
namespace {

constexpr int kRulerHeight = 22;
constexpr int kMarkerHeight = 12;
constexpr double kMaxZoom = 120.0;  // pixels per frame at the closest zoom

QColor qcolor(std::uint32_t rgb, int alpha = 255) {
  return QColor((rgb >> 16) & 0xFF, (rgb >> 8) & 0xFF, rgb & 0xFF, alpha);
}

}  // namespace

TimelineWidget::TimelineWidget(QWidget* parent) : QWidget(parent) {
  setMinimumHeight(90);
  setMouseTracking(true);
  setFocusPolicy(Qt::ClickFocus);
  setToolTip(
      tr("Filmstrip: click to go to a frame, drag to select a range, click the marker "
         "track (under the pictures) to pin/unpin, wheel to zoom, Shift+wheel to scroll, "
         "right click for more."));
}

QString TimelineWidget::timecode(int frame, double fps) {
  if (fps <= 0) return QString::number(frame);
  const int whole_fps = std::max(1, static_cast<int>(std::lround(fps)));
  const int ff = frame % whole_fps;
  const double seconds = frame / fps;
  const int s = static_cast<int>(seconds);
  return QString("%1:%2:%3.%4")
      .arg(s / 3600, 2, 10, QChar('0'))
      .arg((s / 60) % 60, 2, 10, QChar('0'))
      .arg(s % 60, 2, 10, QChar('0'))
      .arg(ff, 2, 10, QChar('0'));
}

void TimelineWidget::set_layout(int length, int source_first, int source_count, int clip_frames,
                                double fps) {
  const bool changed = length != length_;
  length_ = length;
  source_first_ = source_first;
  source_count_ = source_count;
  clip_frames_ = clip_frames;
  fps_ = fps;
  if (changed) {
    // Drop images of positions that no longer exist.
    results_.erase(results_.lower_bound(length_), results_.end());
    previews_.erase(previews_.lower_bound(length_), previews_.end());
  }
  clamp_view();
  update();
}

void TimelineWidget::reset_thumbnails(int count) {
  thumbnails_.assign(static_cast<size_t>(std::max(0, count)), QImage());
  thumbnails_received_ = 0;
  update();
}

void TimelineWidget::set_thumbnail(int ordinal, const QImage& image) {
  if (ordinal < 0 || ordinal >= static_cast<int>(thumbnails_.size())) return;
  if (thumbnails_[static_cast<size_t>(ordinal)].isNull()) ++thumbnails_received_;
  thumbnails_[static_cast<size_t>(ordinal)] = image;
  update();
}

void TimelineWidget::set_flags(const std::vector<std::uint8_t>& flags) {
  flags_ = flags;
  update();
}

void TimelineWidget::set_result_image(int position, const QImage& image) {
  results_[position] = image;
  previews_.erase(position);
  update();
}

void TimelineWidget::set_preview_image(int position, const QImage& image) {
  previews_[position] = image;
  update();
}

void TimelineWidget::clear_previews() {
  previews_.clear();
  update();
}

void TimelineWidget::clear_results() {
  results_.clear();
  update();
}

void TimelineWidget::set_current(int position) {
  current_ = position;
  // Keep the playhead visible while playing.
  if (zoom_ > 0 && length_ > 0) {
    const double x = x_of(position);
    if (x < 0 || x > width() - 10) {
      view_first_ = position - (width() * 0.2) / px_per_frame();
      clamp_view();
    }
  }
  update();
}

void TimelineWidget::set_selection(int first, int last) {
  selection_ = {first, last};
  update();
}

void TimelineWidget::set_in_out(int in, int out) {
  in_out_ = {in, out};
  update();
}

double TimelineWidget::px_per_frame() const {
  if (length_ <= 0) return 1.0;
  return zoom_ > 0 ? zoom_ : static_cast<double>(width()) / length_;
}

double TimelineWidget::x_of(double position) const {
  return (position - view_first_) * px_per_frame();
}

int TimelineWidget::position_at(double x) const {
  if (length_ <= 0) return 0;
  return std::clamp(static_cast<int>(std::floor(view_first_ + x / px_per_frame())), 0, length_ - 1);
}

void TimelineWidget::clamp_view() {
  if (zoom_ > 0 && zoom_ * length_ <= width()) zoom_ = 0;  // everything fits: back to "fit"
  if (zoom_ <= 0) {
    view_first_ = 0;
    return;
  }
  const double visible = width() / zoom_;
  view_first_ = std::clamp(view_first_, 0.0, std::max(0.0, length_ - visible));
}

void TimelineWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), QColor(24, 24, 27));
  if (length_ <= 0) {
    p.setPen(QColor(150, 150, 150));
    p.drawText(rect(), Qt::AlignCenter,
               tr("Open a clip (File > Open clip, or drop a video file here)"));
    return;
  }
  const int thumbs_bottom = height() - kRulerHeight - kMarkerHeight;
  const double ppf = px_per_frame();
  const int first = position_at(0);
  const int last = position_at(width() - 1);

  // [thumbnails] One slot per thumbnail width (or per frame when zoomed in further).
  const int thumb_h = std::max(10, thumbs_bottom - 4);
  const double slot_w = std::max(ppf, thumb_h * 4.0 / 3.0);
  p.setRenderHint(QPainter::SmoothPixmapTransform, true);
  for (double x = -std::fmod(x_of(0), slot_w); x < width(); x += slot_w) {
    const int pos = position_at(std::max(0.0, x + slot_w * 0.5));
    if (pos < 0 || pos >= length_) continue;
    const QRectF slot(x + 1, 2, slot_w - 2, thumb_h);
    const QImage* image = nullptr;
    auto preview = previews_.find(pos);
    auto result = results_.find(pos);
    if (preview != previews_.end())
      image = &preview->second;
    else if (result != results_.end())
      image = &result->second;
    else if (pos < source_count_ && !thumbnails_.empty() && clip_frames_ > 0) {
      const int clip_frame = source_first_ + pos;
      const auto n = static_cast<long long>(thumbnails_.size());
      const int ordinal =
          static_cast<int>(std::clamp<long long>(clip_frame * n / clip_frames_, 0, n - 1));
      if (!thumbnails_[static_cast<size_t>(ordinal)].isNull())
        image = &thumbnails_[static_cast<size_t>(ordinal)];
    }
    if (image != nullptr) {
      p.drawImage(slot, *image);
    } else {
      p.fillRect(slot, pos < source_count_ ? QColor(45, 45, 50) : QColor(34, 34, 38));
      if (pos >= source_count_ && slot.width() > 24) {
        p.setPen(QColor(90, 90, 100));
        p.drawText(slot, Qt::AlignCenter, tr("new"));
      }
    }
    if (preview != previews_.end()) {
      p.setPen(QPen(qcolor(colors::kPreview), 2));
      p.drawRect(slot.adjusted(1, 1, -1, -1));
    }
  }
  // The boundary between the clip and the frames to generate.
  if (source_count_ > 0 && source_count_ < length_) {
    const double x = x_of(source_count_);
    p.setPen(QPen(QColor(230, 230, 230, 160), 1, Qt::DashLine));
    p.drawLine(QPointF(x, 0), QPointF(x, thumbs_bottom));
  }

  // [markers]
  const int my = thumbs_bottom;
  p.fillRect(QRect(0, my, width(), kMarkerHeight), QColor(16, 16, 18));
  for (int pos = first; pos <= last; ++pos) {
    const std::uint8_t f =
        pos < static_cast<int>(flags_.size()) ? flags_[static_cast<size_t>(pos)] : 0;
    const double x0 = x_of(pos);
    const double w = std::max(1.0, ppf - (ppf > 4 ? 1.0 : 0.0));
    if (f & kFramePinned) p.fillRect(QRectF(x0, my + 1, w, 5), qcolor(colors::kPinned));
    if (f & kFrameGenerated)
      p.fillRect(QRectF(x0, my + 6, w, 5), qcolor(colors::kGenerated));
    else if (previews_.count(pos))
      p.fillRect(QRectF(x0, my + 6, w, 5), qcolor(colors::kPreview));
  }

  // [selection]
  if (!selection_.empty()) {
    const double x0 = x_of(selection_.first);
    const double x1 = x_of(selection_.last + 1);
    p.fillRect(QRectF(x0, 0, x1 - x0, height() - kRulerHeight), qcolor(colors::kSelection, 60));
    p.setPen(QPen(qcolor(colors::kSelection), 1));
    p.drawRect(QRectF(x0, 0, x1 - x0, height() - kRulerHeight - 1));
  }

  // [ruler] Frame numbers at a readable spacing, timecode when there is room.
  const int ry = height() - kRulerHeight;
  p.fillRect(QRect(0, ry, width(), kRulerHeight), QColor(30, 30, 34));
  static constexpr int kNice[] = {1,   2,   5,   10,   20,   25,   50,   100,
                                  200, 250, 500, 1000, 2000, 5000, 10000};
  int step = kNice[std::size(kNice) - 1];
  for (int n : kNice)
    if (n * ppf >= 90) {
      step = n;
      break;
    }
  QFont font = p.font();
  font.setPointSizeF(std::max(6.5, font.pointSizeF() * 0.8));
  p.setFont(font);
  p.setPen(QColor(165, 165, 170));
  for (int pos = (first / step) * step; pos <= last; pos += step) {
    const double x = x_of(pos);
    p.drawLine(QPointF(x, ry), QPointF(x, ry + 4));
    p.drawText(QPointF(x + 2, ry + 15), fps_ > 0
                                            ? QString("%1  %2").arg(pos).arg(timecode(pos, fps_))
                                            : QString::number(pos));
  }

  // [in/out] Export range brackets, when set (I and O keys).
  if (!in_out_.empty() && (in_out_.first > 0 || in_out_.last < length_ - 1)) {
    const double x0 = x_of(in_out_.first);
    const double x1 = x_of(in_out_.last + 1);
    p.setPen(QPen(QColor(240, 240, 240), 2));
    p.drawLine(QPointF(x0, ry), QPointF(x1, ry));
    p.drawLine(QPointF(x0, ry), QPointF(x0, ry + 8));
    p.drawLine(QPointF(x1, ry), QPointF(x1, ry + 8));
  }

  // [playhead]
  const double cx = x_of(current_ + 0.5);
  p.setPen(QPen(qcolor(colors::kCurrent), 2));
  p.drawLine(QPointF(cx, 0), QPointF(cx, height()));
}

void TimelineWidget::mousePressEvent(QMouseEvent* event) {
  if (length_ <= 0) return;
  const QPointF pt = event->position();
  const int pos = position_at(pt.x());
  if (event->button() == Qt::MiddleButton) {
    drag_ = Drag::Pan;
    pan_last_x_ = pt.x();
    return;
  }
  if (event->button() != Qt::LeftButton) return;
  const int my = height() - kRulerHeight - kMarkerHeight;
  if (pt.y() >= my && pt.y() < my + kMarkerHeight) {
    emit pin_toggle_requested(pos);
    return;
  }
  drag_ = Drag::Scrub;
  drag_anchor_ = pos;
  emit seek_requested(pos);
}

void TimelineWidget::mouseMoveEvent(QMouseEvent* event) {
  const QPointF pt = event->position();
  if (drag_ == Drag::Pan) {
    if (zoom_ > 0) {
      view_first_ -= (pt.x() - pan_last_x_) / zoom_;
      clamp_view();
    }
    pan_last_x_ = pt.x();
    update();
    return;
  }
  if (drag_ == Drag::None) return;
  const int pos = position_at(pt.x());
  if (drag_ == Drag::Scrub && pos != drag_anchor_) drag_ = Drag::Select;
  if (drag_ == Drag::Select) {
    selection_ = FrameSpan::between(drag_anchor_, pos);
    update();
  }
}

void TimelineWidget::mouseReleaseEvent(QMouseEvent*) {
  if (drag_ == Drag::Select) emit selection_changed(selection_.first, selection_.last);
  drag_ = Drag::None;
}

void TimelineWidget::wheelEvent(QWheelEvent* event) {
  if (length_ <= 0) return;
  const double notches = event->angleDelta().y() / 120.0;
  if (event->modifiers() & Qt::ShiftModifier) {
    if (zoom_ > 0) view_first_ -= notches * (width() / zoom_) * 0.15;
  } else {
    const double anchor = view_first_ + event->position().x() / px_per_frame();
    const double next = std::clamp(px_per_frame() * std::pow(1.25, notches), 0.01, kMaxZoom);
    zoom_ = next;
    view_first_ = anchor - event->position().x() / zoom_;
  }
  clamp_view();
  update();
  event->accept();
}

void TimelineWidget::contextMenuEvent(QContextMenuEvent* event) {
  if (length_ <= 0) return;
  emit context_menu_requested(position_at(event->pos().x()), event->globalPos());
}

}  // namespace dfs::ui
