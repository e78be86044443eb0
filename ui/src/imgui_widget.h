// imgui_widget.h — a QOpenGLWidget that hosts one Dear ImGui context.
//
// Qt owns the window, the GL context and the events; this class is the "platform backend"
// Dear ImGui needs (display size, delta time, mouse, wheel, keys, text) and drives Debian's
// ImGui OpenGL3 renderer backend. Each widget has its own ImGuiContext, so several panels can
// live in different docks; every ImGui call happens with that context made current first.
//
// Rendering is on demand, not a busy loop: an input event or a call to update() paints a
// few frames (ImGui needs one or two extra frames to settle hover/active state), then the
// widget sleeps. Thread-safety: GUI thread only, like every QWidget.
#pragma once

#include <QElapsedTimer>
#include <QImage>
#include <QOpenGLWidget>

struct ImGuiContext;

namespace dfs::ui {

class ImGuiWidget : public QOpenGLWidget {
  Q_OBJECT

 public:
  explicit ImGuiWidget(QWidget* parent = nullptr);
  ~ImGuiWidget() override;

  // Asks for a repaint that also lets ImGui settle (hover highlights, popups) afterwards.
  void request_redraw();

  // Number of ImGui frames rendered so far (tests wait on it).
  int frames_rendered() const { return frames_rendered_; }

 protected:
  // Draws the panel's content. Called between ImGui::NewFrame() and ImGui::Render() with this
  // widget's context current; the caller has opened a window covering the whole widget.
  virtual void draw_ui() = 0;

  void initializeGL() override;
  void paintGL() override;

  void mousePressEvent(QMouseEvent* event) override;
  void mouseReleaseEvent(QMouseEvent* event) override;
  void mouseMoveEvent(QMouseEvent* event) override;
  void wheelEvent(QWheelEvent* event) override;
  void keyPressEvent(QKeyEvent* event) override;
  void keyReleaseEvent(QKeyEvent* event) override;
  void leaveEvent(QEvent* event) override;
  void focusOutEvent(QFocusEvent* event) override;
  bool event(QEvent* event) override;

 private:
  void release_gl();  // shuts the renderer backend down (context going away)
  void feed_key(QKeyEvent* event, bool down);
  void feed_modifiers(Qt::KeyboardModifiers modifiers);

  ImGuiContext* context_ = nullptr;  // owned; destroyed with the widget
  bool backend_ready_ = false;
  const QObject* watched_context_ =
      nullptr;  // GL context whose destruction we listen to       // ImGui_ImplOpenGL3_Init done
                // for the current GL context
  QElapsedTimer clock_;    // delta time between ImGui frames
  int settle_frames_ = 0;  // extra frames to paint after input
  int frames_rendered_ = 0;
};

}  // namespace dfs::ui
