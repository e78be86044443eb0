// viewer_widget.h — the frame viewer: the current frame at full size, or original vs generated.
//
// Modes: Result (the generated frame where one exists, else the original), Original, Side by
// side, and A/B wipe (drag the divider). The original is shown at the clip's own size; a
// generated frame (model resolution) is scaled up to the same box. An overlay names the frame,
// its timecode and its state (pinned / generated / live preview). GUI thread only.
#pragma once

#include <QImage>
#include <QString>
#include <QWidget>

namespace dfs::ui {

class ViewerWidget : public QWidget {
  Q_OBJECT

 public:
  enum class Mode { Result, Original, SideBySide, Wipe };

  explicit ViewerWidget(QWidget* parent = nullptr);

  void set_mode(Mode mode);
  Mode mode() const { return mode_; }
  // `original`: the clip frame (null where the position has none); `result`: the generated
  // frame or live preview (null where none); `is_preview` marks it as not final.
  void set_frame(const QImage& original, const QImage& result, bool is_preview,
                 const QString& caption);
  void set_smooth(bool smooth);  // scale generated frames smoothly (else nearest: exact pixels)
  // Names of the two sides in Side by side / A/B wipe ("Take 1", "Take 2" when comparing two
  // takes); "" = the defaults ("original" and "generated").
  void set_side_labels(const QString& a, const QString& b);
  const QImage& original_image() const { return original_; }  // side A
  const QImage& result_image() const { return result_; }      // side B

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  QSize sizeHint() const override { return {768, 576}; }

 private:
  void draw_fitted(QPainter& p, const QImage& image, const QRect& box, const QString& label,
                   bool nearest);

  Mode mode_ = Mode::Result;
  QImage original_;
  QImage result_;
  bool is_preview_ = false;
  QString caption_;
  bool smooth_ = true;
  QString label_a_;    // "" = "original"
  QString label_b_;    // "" = "generated" / "live preview"
  double wipe_ = 0.5;  // divider position, fraction of the width
};

}  // namespace dfs::ui
