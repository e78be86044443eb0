// timeline_widget.h — the filmstrip: thumbnails, pins, generated frames, playhead, selection.
//
// Custom-painted (QPainter), so a 10 000-frame clip costs nothing until it is on screen:
// thumbnails are a fixed number of evenly spaced stills decoded in the background
// (dfs::media::ThumbnailJob, owned by MainWindow) and each visible slot shows the still
// nearest to its frame; generated frames and live previews replace the still where they exist.
//
// Tracks, top to bottom: thumbnails; a marker track (amber = pinned, teal = generated, violet =
// live preview); a ruler with frame numbers and timecode. Mouse: click = seek; drag = select a
// range; click on the marker track = toggle that frame's pin; wheel = zoom around the cursor;
// Shift+wheel or drag with the middle button = scroll; right click = context menu. GUI thread.
#pragma once

#include <QImage>
#include <QWidget>
#include <cstdint>
#include <map>
#include <vector>

#include "frame_span.h"

namespace dfs::ui {

class TimelineWidget : public QWidget {
  Q_OBJECT

 public:
  explicit TimelineWidget(QWidget* parent = nullptr);

  // Structure: positions 0..source_count-1 are clip frames source_first.., the rest are new.
  void set_layout(int length, int source_first, int source_count, int clip_frames, double fps);
  // Evenly spaced stills of the whole clip (ThumbnailJob order); `count` slots in total.
  void reset_thumbnails(int count);
  void set_thumbnail(int ordinal, const QImage& image);
  void set_flags(const std::vector<std::uint8_t>& flags);     // FrameFlag bits per position
  void set_result_image(int position, const QImage& image);   // a final generated frame
  void set_preview_image(int position, const QImage& image);  // live x0 estimate
  void clear_previews();
  void clear_results();
  void set_current(int position);
  void set_selection(int first, int last);  // inclusive; first > last = none
  void set_in_out(int in, int out);         // export in/out points (brackets on the ruler)
  int selection_first() const { return selection_.first; }
  int selection_last() const { return selection_.last; }
  int thumbnails_received() const { return thumbnails_received_; }

  static QString timecode(int frame, double fps);  // "00:01:02.05" (hh:mm:ss.ff)

 signals:
  void seek_requested(int position);
  void selection_changed(int first, int last);
  void pin_toggle_requested(int position);
  void context_menu_requested(int position, const QPoint& global_pos);

 protected:
  void paintEvent(QPaintEvent* event) override;
  void mousePressEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void mouseReleaseEvent(QMouseEvent* event) override;
  void wheelEvent(QWheelEvent* event) override;
  void contextMenuEvent(QContextMenuEvent* event) override;
  QSize sizeHint() const override { return {800, 120}; }

 private:
  int position_at(double x) const;
  double x_of(double position) const;
  double px_per_frame() const;
  void clamp_view();

  int length_ = 0;
  int source_first_ = 0;
  int source_count_ = 0;
  int clip_frames_ = 0;
  double fps_ = 0;
  std::vector<QImage> thumbnails_;
  int thumbnails_received_ = 0;
  std::vector<std::uint8_t> flags_;
  std::map<int, QImage> results_;
  std::map<int, QImage> previews_;
  int current_ = 0;
  FrameSpan selection_;
  FrameSpan in_out_;  // export in/out points
  // View: first visible position (fractional) and zoom; zoom 0 = fit the whole timeline.
  double view_first_ = 0;
  double zoom_ = 0;  // pixels per frame; 0 = fit
  // Gesture.
  enum class Drag { None, Scrub, Select, Pan } drag_ = Drag::None;
  int drag_anchor_ = 0;
  double pan_last_x_ = 0;
};

}  // namespace dfs::ui
