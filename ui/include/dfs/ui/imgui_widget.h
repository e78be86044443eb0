// imgui_widget.h — a QWidget that hosts one Dear ImGui context, drawn by ImGui's OpenGL3 backend.
//
// Qt owns the widget and the events; this class is the "platform backend" Dear ImGui needs
// (display size, delta time, mouse, wheel, keys, text) and drives Debian's ImGui OpenGL3
// renderer backend. Each widget has its own ImGuiContext, so several panels can live in
// different docks; every ImGui call happens with that context made current first.
//
// Why not a QOpenGLWidget (the design's first wording): a window that contains one makes Qt
// composite the *whole* window through OpenGL on every repaint of any widget in it. With a
// software OpenGL (Mesa llvmpipe: Xvfb, VMs, remote desktops) that costs 30-90 ms per repaint
// and stalled the event loop for 50-450 ms during generation. So ImGui renders, still with its
// OpenGL3 backend, into this widget's own offscreen framebuffer (a QOffscreenSurface + FBO in a
// private GL context); the widget paints the resulting image like any raster widget and the
// rest of the window never touches OpenGL. Reading a panel back costs well under a
// millisecond on a GPU and a few on llvmpipe, and only when the panel changed.
//
// Rendering is on demand, not a busy loop: an input event or a call to request_redraw()
// renders a few frames (ImGui needs one or two extra frames to settle hover/active state),
// then the widget sleeps. Where OpenGL 3 is unavailable the panel says so in plain text and
// the rest of the application works. Thread-safety: GUI thread only, like every QWidget.
#pragma once

#include <QElapsedTimer>
#include <QImage>
#include <QString>
#include <QWidget>
#include <memory>

struct ImGuiContext;
class QOpenGLContext;
class QOffscreenSurface;
class QOpenGLFramebufferObject;

namespace dfs::ui {

class ImGuiWidget : public QWidget {
  Q_OBJECT

 public:
  explicit ImGuiWidget(QWidget* parent = nullptr);
  ~ImGuiWidget() override;

  // Asks for a repaint that also lets ImGui settle (hover highlights, popups) afterwards.
  void request_redraw();
  // The panel's data changed: render it again at the next paint (QWidget::update() alone
  // repaints the last rendered image, which is stale then).
  void content_changed();

  // Renders a frame now and returns it (what the widget shows). Null image when OpenGL is
  // unavailable. Tests and screenshots use it.
  QImage grab_framebuffer();

  // True once the offscreen OpenGL context and ImGui's renderer are up.
  bool gl_ready() const { return backend_ready_; }
  // Why the panel cannot draw (empty while it can).
  QString gl_error() const { return gl_error_; }

  // Number of ImGui frames rendered so far (tests wait on it).
  int frames_rendered() const { return frames_rendered_; }
  // Wall time of the last ImGui frame (new frame + GL render + read back), milliseconds.
  double last_render_ms() const { return last_render_ms_; }

 protected:
  // Draws the panel's content. Called between ImGui::NewFrame() and ImGui::Render() with this
  // widget's context current; the caller has opened a window covering the whole widget.
  virtual void draw_ui() = 0;

  void paintEvent(QPaintEvent* event) override;
  void keyPressEvent(QKeyEvent* event) override;
  void keyReleaseEvent(QKeyEvent* event) override;
  void focusOutEvent(QFocusEvent* event) override;
  // Feeds the pointer (buttons, position, wheel, leaving) to ImGui, and Tab while it types.
  bool event(QEvent* event) override;

 private:
  bool ensure_gl();                     // creates the GL context, surface and renderer once
  void render_frame();                  // one ImGui frame into the FBO, read back into image_
  void release_gl();                    // shuts the renderer backend down and frees GL objects
  void feed_mouse(QMouseEvent* event);  // press, double click, release or move
  void feed_wheel(QWheelEvent* event);
  void feed_key(QKeyEvent* event, bool down);
  void feed_modifiers(Qt::KeyboardModifiers modifiers);

  ImGuiContext* context_ = nullptr;  // owned; destroyed with the widget
  std::unique_ptr<QOpenGLContext> gl_;
  std::unique_ptr<QOffscreenSurface> surface_;
  std::unique_ptr<QOpenGLFramebufferObject> fbo_;
  bool gl_tried_ = false;       // context creation attempted (it is not retried)
  bool backend_ready_ = false;  // ImGui_ImplOpenGL3_Init done for gl_
  QString gl_error_;
  QImage image_;           // the last rendered frame, device pixels
  bool dirty_ = true;      // image_ is out of date
  QElapsedTimer clock_;    // delta time between ImGui frames
  int settle_frames_ = 0;  // extra frames to paint after input
  int frames_rendered_ = 0;
  double last_render_ms_ = 0;
};

}  // namespace dfs::ui
