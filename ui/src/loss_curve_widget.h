// loss_curve_widget.h — a small plot of the training loss over steps ("Learn this clip").
//
// Paints the points it was given (step, loss) as a line, y on a log scale (losses fall by
// orders of magnitude), with the first and last values written beside it. GUI thread only.
#pragma once

#include <QWidget>
#include <utility>
#include <vector>

namespace dfs::ui {

class LossCurveWidget : public QWidget {
  Q_OBJECT

 public:
  explicit LossCurveWidget(QWidget* parent = nullptr);
  void add_point(double step, double loss);  // non-finite or <= 0 losses are skipped
  void clear();
  int point_count() const { return static_cast<int>(points_.size()); }
  const std::vector<std::pair<double, double>>& points() const { return points_; }
  QSize sizeHint() const override { return {360, 140}; }

 protected:
  void paintEvent(QPaintEvent* event) override;

 private:
  std::vector<std::pair<double, double>> points_;
};

}  // namespace dfs::ui
