// loss_curve_widget.cpp — see loss_curve_widget.h.
#include "loss_curve_widget.h"

#include <QPainter>
#include <QPainterPath>
#include <algorithm>
#include <cmath>

namespace dfs::ui {

LossCurveWidget::LossCurveWidget(QWidget* parent) : QWidget(parent) {
  setMinimumSize(240, 100);
  setAccessibleName(tr("Training loss curve"));
}

void LossCurveWidget::add_point(double step, double loss) {
  if (!std::isfinite(loss) || loss <= 0 || !std::isfinite(step)) return;
  points_.emplace_back(step, loss);
  update();
}

void LossCurveWidget::clear() {
  points_.clear();
  update();
}

void LossCurveWidget::paintEvent(QPaintEvent*) {
  QPainter p(this);
  p.setRenderHint(QPainter::Antialiasing);
  p.fillRect(rect(), QColor(30, 30, 34));
  const QRectF area = QRectF(rect()).adjusted(44, 10, -10, -20);
  p.setPen(QColor(90, 90, 100));
  p.drawRect(area);
  p.setPen(QColor(170, 170, 180));
  if (points_.size() < 2) {
    p.drawText(rect(), Qt::AlignCenter,
               points_.empty() ? tr("The loss curve appears here") : tr("Waiting for steps..."));
    return;
  }
  double lo = points_.front().second, hi = lo;
  for (const auto& [s, l] : points_) lo = std::min(lo, l), hi = std::max(hi, l);
  const double llo = std::log10(lo), lhi = std::max(std::log10(hi), llo + 1e-3);
  const double s0 = points_.front().first, s1 = std::max(points_.back().first, s0 + 1);
  QPainterPath path;
  for (size_t i = 0; i < points_.size(); ++i) {
    const double x = area.left() + (points_[i].first - s0) / (s1 - s0) * area.width();
    const double y =
        area.bottom() - (std::log10(points_[i].second) - llo) / (lhi - llo) * area.height();
    if (i == 0)
      path.moveTo(x, y);
    else
      path.lineTo(x, y);
  }
  p.setPen(QPen(QColor(242, 169, 59), 1.6));
  p.drawPath(path);
  p.setPen(QColor(170, 170, 180));
  p.drawText(QRectF(0, area.top() - 6, 42, 14), Qt::AlignRight, QString::number(hi, 'g', 3));
  p.drawText(QRectF(0, area.bottom() - 8, 42, 14), Qt::AlignRight, QString::number(lo, 'g', 3));
  p.drawText(QRectF(area.left(), area.bottom() + 3, area.width(), 14), Qt::AlignLeft,
             tr("step %1").arg(s0, 0, 'f', 0));
  p.drawText(QRectF(area.left(), area.bottom() + 3, area.width(), 14), Qt::AlignRight,
             tr("step %1 (log scale)").arg(s1, 0, 'f', 0));
}

}  // namespace dfs::ui
