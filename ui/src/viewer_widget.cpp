// viewer_widget.cpp — see viewer_widget.h.
#include "viewer_widget.h"

#include <QMouseEvent>
#include <QPainter>
#include <algorithm>

#include "colors.h"

namespace dfs::ui {
namespace {

QRect fit_rect(QSize image, const QRect& box) {
  if (image.isEmpty() || box.isEmpty()) return box;
  const QSize scaled = image.scaled(box.size(), Qt::KeepAspectRatio);
  return QRect(box.x() + (box.width() - scaled.width()) / 2,
               box.y() + (box.height() - scaled.height()) / 2, scaled.width(), scaled.height());
}

}  // namespace

ViewerWidget::ViewerWidget(QWidget* parent) : QWidget(parent) {
  setMinimumSize(320, 240);
  setAttribute(Qt::WA_OpaquePaintEvent);
  setAccessibleName("Frame viewer");
}

void ViewerWidget::set_mode(Mode mode) {
  mode_ = mode;
  update();
}

void ViewerWidget::set_frame(const QImage& original, const QImage& result, bool is_preview,
                             const QString& caption) {
  original_ = original;
  result_ = result;
  is_preview_ = is_preview;
  caption_ = caption;
  update();
}

void ViewerWidget::set_smooth(bool smooth) {
  smooth_ = smooth;
  update();
}

void ViewerWidget::set_side_labels(const QString& a, const QString& b) {
  label_a_ = a;
  label_b_ = b;
  update();
}

void ViewerWidget::draw_fitted(QPainter& p, const QImage& image, const QRect& box,
                               const QString& label, bool nearest) {
  if (image.isNull()) {
    p.setPen(QColor(110, 110, 118));
    p.drawText(box, Qt::AlignCenter, label.isEmpty() ? tr("no frame") : tr("%1: none").arg(label));
    return;
  }
  p.setRenderHint(QPainter::SmoothPixmapTransform, !nearest);
  const QRect r = fit_rect(image.size(), box);
  p.drawImage(r, image);
  if (!label.isEmpty()) {
    const QRect tag(r.x() + 6, r.y() + 6, p.fontMetrics().horizontalAdvance(label) + 12, 20);
    p.fillRect(tag, QColor(0, 0, 0, 150));
    p.setPen(Qt::white);
    p.drawText(tag, Qt::AlignCenter, label);
  }
}

void ViewerWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.fillRect(rect(), QColor(12, 12, 14));
  const QRect area = rect().adjusted(4, 4, -4, -28);
  const bool nearest = !smooth_;
  const QString result_label = !label_b_.isEmpty() ? label_b_
                               : is_preview_       ? tr("live preview (x0 estimate)")
                                                   : tr("generated");
  const QString original_label = label_a_.isEmpty() ? tr("original") : label_a_;
  // Side A is a clip frame (always smooth), or, comparing two takes, generated like side B.
  const bool nearest_a = !label_a_.isEmpty() && nearest;
  switch (mode_) {
    case Mode::Result:
      if (!result_.isNull())
        draw_fitted(p, result_, area, result_label, nearest);
      else
        draw_fitted(p, original_, area, original_.isNull() ? QString() : QString(), false);
      break;
    case Mode::Original:
      draw_fitted(p, original_, area, tr("original"), false);
      break;
    case Mode::SideBySide: {
      const QRect left(area.x(), area.y(), area.width() / 2 - 2, area.height());
      const QRect right(area.x() + area.width() / 2 + 2, area.y(), area.width() / 2 - 2,
                        area.height());
      draw_fitted(p, original_, left, original_label, nearest_a);
      draw_fitted(p, result_, right, result_label, nearest);
      break;
    }
    case Mode::Wipe: {
      // Both pictures in the same box; the original left of the divider, the result right.
      const QImage& base = !original_.isNull() ? original_ : result_;
      const QRect r = fit_rect(base.size(), area);
      const int split = r.x() + static_cast<int>(r.width() * wipe_);
      p.setRenderHint(QPainter::SmoothPixmapTransform, !nearest_a);
      if (!original_.isNull()) {
        p.save();
        p.setClipRect(QRect(r.x(), r.y(), split - r.x(), r.height()));
        p.drawImage(r, original_);
        p.restore();
      }
      if (!result_.isNull()) {
        p.save();
        p.setRenderHint(QPainter::SmoothPixmapTransform, !nearest);
        p.setClipRect(QRect(split, r.y(), r.right() - split + 1, r.height()));
        p.drawImage(r, result_);
        p.restore();
      }
      p.setPen(QPen(Qt::white, 2));
      p.drawLine(split, r.y(), split, r.bottom());
      p.fillRect(QRect(split - 5, r.center().y() - 14, 10, 28), Qt::white);
      p.setPen(Qt::white);
      p.drawText(QRect(r.x() + 6, r.y() + 4, 200, 20), Qt::AlignLeft,
                 tr("A: %1").arg(original_label));
      p.drawText(QRect(r.right() - 206, r.y() + 4, 200, 20), Qt::AlignRight,
                 tr("B: %1").arg(result_label));
      break;
    }
  }
  // Caption bar.
  const QRect bar(0, height() - 24, width(), 24);
  p.fillRect(bar, QColor(20, 20, 24));
  p.setPen(is_preview_ ? QColor(0xC4, 0x6B, 0xE0) : QColor(210, 210, 215));
  p.drawText(bar.adjusted(8, 0, -8, 0), Qt::AlignVCenter | Qt::AlignLeft, caption_);
}

void ViewerWidget::mousePressEvent(QMouseEvent* event) {
  mouseMoveEvent(event);
}

void ViewerWidget::mouseMoveEvent(QMouseEvent* event) {
  if (mode_ != Mode::Wipe || !(event->buttons() & Qt::LeftButton)) return;
  const QImage& base = !original_.isNull() ? original_ : result_;
  const QRect r = fit_rect(base.size(), rect().adjusted(4, 4, -4, -28));
  if (r.width() <= 0) return;
  wipe_ = std::clamp((event->position().x() - r.x()) / r.width(), 0.0, 1.0);
  update();
}

}  // namespace dfs::ui
