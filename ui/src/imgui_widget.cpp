// imgui_widget.cpp — Qt → Dear ImGui 1.86 platform glue, offscreen OpenGL (see imgui_widget.h).
#include "dfs/ui/imgui_widget.h"

#include <QKeyEvent>
#include <QMouseEvent>
#include <QOffscreenSurface>
#include <QOpenGLContext>
#include <QOpenGLFramebufferObject>
#include <QOpenGLFunctions>
#include <QPainter>
#include <QSurfaceFormat>
#include <QTimer>
#include <QWheelEvent>

#include <backends/imgui_impl_opengl3.h>
#include <imgui.h>

namespace dfs::ui {
namespace {

// ImGui 1.86 reads keys from io.KeysDown[512] through io.KeyMap. Qt's printable keys are
// their Latin-1 code (< 256); its special keys live at 0x01000000 + small offsets, which we
// fold into 256..511.
int key_slot(int qt_key) {
  if (qt_key >= 0 && qt_key < 256) return qt_key;
  if ((qt_key & 0xFF000000) == 0x01000000) return 256 + (qt_key & 0xFF);
  return -1;
}

// Paint this many frames after an input event: ImGui decides hover/active state during a
// frame and shows it in the next one.
constexpr int kSettleFrames = 3;
constexpr int kSettleIntervalMs = 16;

ImGuiMouseButton to_imgui_button(Qt::MouseButton button) {
  switch (button) {
    case Qt::LeftButton:
      return ImGuiMouseButton_Left;
    case Qt::RightButton:
      return ImGuiMouseButton_Right;
    case Qt::MiddleButton:
      return ImGuiMouseButton_Middle;
    default:
      return -1;
  }
}

}  // namespace

ImGuiWidget::ImGuiWidget(QWidget* parent) : QWidget(parent) {
  setAttribute(Qt::WA_OpaquePaintEvent);  // the image covers every pixel
  setFocusPolicy(Qt::StrongFocus);
  setMouseTracking(true);
  setMinimumSize(200, 120);

  ImGuiContext* previous = ImGui::GetCurrentContext();
  context_ = ImGui::CreateContext();
  ImGui::SetCurrentContext(context_);
  ImGuiIO& io = ImGui::GetIO();
  io.IniFilename = nullptr;  // layout lives in Qt's docks, not in an imgui.ini
  io.LogFilename = nullptr;
  io.BackendPlatformName = "dfs_qt";
  const std::pair<ImGuiKey, int> keys[] = {
      {ImGuiKey_Tab, Qt::Key_Tab},
      {ImGuiKey_LeftArrow, Qt::Key_Left},
      {ImGuiKey_RightArrow, Qt::Key_Right},
      {ImGuiKey_UpArrow, Qt::Key_Up},
      {ImGuiKey_DownArrow, Qt::Key_Down},
      {ImGuiKey_PageUp, Qt::Key_PageUp},
      {ImGuiKey_PageDown, Qt::Key_PageDown},
      {ImGuiKey_Home, Qt::Key_Home},
      {ImGuiKey_End, Qt::Key_End},
      {ImGuiKey_Insert, Qt::Key_Insert},
      {ImGuiKey_Delete, Qt::Key_Delete},
      {ImGuiKey_Backspace, Qt::Key_Backspace},
      {ImGuiKey_Space, Qt::Key_Space},
      {ImGuiKey_Enter, Qt::Key_Return},
      {ImGuiKey_Escape, Qt::Key_Escape},
      {ImGuiKey_KeyPadEnter, Qt::Key_Enter},
      {ImGuiKey_A, Qt::Key_A},
      {ImGuiKey_C, Qt::Key_C},
      {ImGuiKey_V, Qt::Key_V},
      {ImGuiKey_X, Qt::Key_X},
      {ImGuiKey_Y, Qt::Key_Y},
      {ImGuiKey_Z, Qt::Key_Z},
  };
  for (const auto& [imgui_key, qt_key] : keys) io.KeyMap[imgui_key] = key_slot(qt_key);
  ImGui::StyleColorsDark();
  ImGuiStyle& style = ImGui::GetStyle();
  style.WindowRounding = 0;
  style.WindowBorderSize = 0;
  style.FrameRounding = 3;
  ImGui::SetCurrentContext(previous);
  clock_.start();
}

ImGuiWidget::~ImGuiWidget() {
  release_gl();
  if (ImGui::GetCurrentContext() == context_) ImGui::SetCurrentContext(nullptr);
  ImGui::DestroyContext(context_);
}

bool ImGuiWidget::ensure_gl() {
  if (gl_tried_) return backend_ready_;
  gl_tried_ = true;
  // GLSL 1.30 = OpenGL 3.0, which Mesa's llvmpipe (Xvfb, CI) and every desktop driver give.
  QSurfaceFormat format;
  format.setRenderableType(QSurfaceFormat::OpenGL);
  format.setDepthBufferSize(0);
  format.setStencilBufferSize(0);
  gl_ = std::make_unique<QOpenGLContext>();
  gl_->setFormat(format);
  if (!gl_->create()) {
    gl_error_ =
        tr("OpenGL is not available on this display, so this panel cannot be drawn. "
           "Everything else works; the same settings are in the Controls panel.");
    qWarning("dfs_ui: %s", qPrintable(gl_error_));
    gl_.reset();
    return false;
  }
  surface_ = std::make_unique<QOffscreenSurface>();
  surface_->setFormat(gl_->format());
  surface_->create();
  if (!surface_->isValid() || !gl_->makeCurrent(surface_.get())) {
    gl_error_ = tr("Could not make an OpenGL context current for this panel.");
    qWarning("dfs_ui: %s", qPrintable(gl_error_));
    surface_.reset();
    gl_.reset();
    return false;
  }
  ImGuiContext* previous = ImGui::GetCurrentContext();
  ImGui::SetCurrentContext(context_);
  backend_ready_ = ImGui_ImplOpenGL3_Init("#version 130");
  ImGui::SetCurrentContext(previous);
  if (!backend_ready_) {
    gl_error_ = tr("This display's OpenGL is older than 3.0; the panel needs OpenGL 3.");
    qWarning("dfs_ui: ImGui OpenGL3 renderer failed to initialise");
  }
  gl_->doneCurrent();
  return backend_ready_;
}

void ImGuiWidget::release_gl() {
  if (!gl_) return;
  gl_->makeCurrent(surface_.get());
  fbo_.reset();
  if (backend_ready_) {
    ImGuiContext* previous = ImGui::GetCurrentContext();
    ImGui::SetCurrentContext(context_);
    ImGui_ImplOpenGL3_Shutdown();
    ImGui::SetCurrentContext(previous == context_ ? nullptr : previous);
    backend_ready_ = false;
  }
  gl_->doneCurrent();
  gl_.reset();
  surface_.reset();
}

void ImGuiWidget::render_frame() {
  if (!ensure_gl()) return;
  QElapsedTimer timer;
  timer.start();
  const qreal ratio = devicePixelRatioF();
  const QSize pixels(std::max(1, qRound(width() * ratio)), std::max(1, qRound(height() * ratio)));
  if (!gl_->makeCurrent(surface_.get())) return;
  if (!fbo_ || fbo_->size() != pixels) fbo_ = std::make_unique<QOpenGLFramebufferObject>(pixels);
  fbo_->bind();
  auto* gl = gl_->functions();
  gl->glViewport(0, 0, pixels.width(), pixels.height());
  gl->glClearColor(0.09f, 0.09f, 0.10f, 1.0f);
  gl->glClear(GL_COLOR_BUFFER_BIT);

  ImGui::SetCurrentContext(context_);
  ImGuiIO& io = ImGui::GetIO();
  io.DisplaySize = ImVec2(static_cast<float>(width()), static_cast<float>(height()));
  io.DisplayFramebufferScale = ImVec2(static_cast<float>(ratio), static_cast<float>(ratio));
  const qint64 ns = clock_.nsecsElapsed();
  clock_.restart();
  io.DeltaTime = std::max(1e-4f, static_cast<float>(ns) * 1e-9f);

  ImGui_ImplOpenGL3_NewFrame();
  ImGui::NewFrame();
  ImGui::SetNextWindowPos(ImVec2(0, 0));
  ImGui::SetNextWindowSize(io.DisplaySize);
  const ImGuiWindowFlags flags = ImGuiWindowFlags_NoDecoration | ImGuiWindowFlags_NoMove |
                                 ImGuiWindowFlags_NoSavedSettings |
                                 ImGuiWindowFlags_NoBringToFrontOnFocus;
  ImGui::Begin("##panel", nullptr, flags);
  draw_ui();
  ImGui::End();
  ImGui::Render();
  ImGui_ImplOpenGL3_RenderDrawData(ImGui::GetDrawData());
  // toImage() reads the pixels back (glReadPixels) and flips them to top-down rows.
  image_ = fbo_->toImage().convertToFormat(QImage::Format_RGB32);
  image_.setDevicePixelRatio(ratio);
  fbo_->release();
  gl_->doneCurrent();
  dirty_ = false;
  ++frames_rendered_;
  last_render_ms_ = static_cast<double>(timer.nsecsElapsed()) * 1e-6;

  // Keep painting while a button is held (drags) or a few frames after input.
  bool mouse_held = false;
  for (bool down : io.MouseDown) mouse_held = mouse_held || down;
  if (mouse_held) settle_frames_ = std::max(settle_frames_, 1);
  if (settle_frames_ > 0) {
    --settle_frames_;
    QTimer::singleShot(kSettleIntervalMs, this, [this] {
      dirty_ = true;
      update();
    });
  }
}

QImage ImGuiWidget::grab_framebuffer() {
  render_frame();
  return backend_ready_ ? image_ : QImage();
}

void ImGuiWidget::paintEvent(QPaintEvent* /*event*/) {
  if (dirty_ && isVisible()) render_frame();
  QPainter painter(this);
  if (!backend_ready_) {
    painter.fillRect(rect(), QColor(23, 23, 26));
    painter.setPen(QColor(220, 220, 220));
    painter.drawText(rect().adjusted(12, 12, -12, -12), Qt::AlignCenter | Qt::TextWordWrap,
                     gl_error_.isEmpty() ? tr("Starting OpenGL…") : gl_error_);
    return;
  }
  painter.drawImage(QPoint(0, 0), image_);
}

void ImGuiWidget::request_redraw() {
  settle_frames_ = std::max(settle_frames_, kSettleFrames);
  dirty_ = true;
  update();
}

void ImGuiWidget::content_changed() {
  dirty_ = true;
  update();
}

void ImGuiWidget::feed_modifiers(Qt::KeyboardModifiers modifiers) {
  ImGuiIO& io = ImGui::GetIO();
  io.KeyCtrl = modifiers & Qt::ControlModifier;
  io.KeyShift = modifiers & Qt::ShiftModifier;
  io.KeyAlt = modifiers & Qt::AltModifier;
  io.KeySuper = modifiers & Qt::MetaModifier;
}

void ImGuiWidget::feed_mouse(QMouseEvent* event) {
  ImGui::SetCurrentContext(context_);
  ImGuiIO& io = ImGui::GetIO();
  const QPointF p = event->position();
  io.MousePos = ImVec2(static_cast<float>(p.x()), static_cast<float>(p.y()));
  feed_modifiers(event->modifiers());
  // A move has no button; a double click is a press (ImGui tells double clicks itself).
  const int button = to_imgui_button(event->button());
  if (button >= 0) io.MouseDown[button] = event->type() != QEvent::MouseButtonRelease;
  request_redraw();
}

void ImGuiWidget::feed_wheel(QWheelEvent* event) {
  ImGui::SetCurrentContext(context_);
  ImGuiIO& io = ImGui::GetIO();
  // Qt reports eighths of a degree; one notch = 15 degrees = 120 units = 1.0 for ImGui.
  io.MouseWheel += static_cast<float>(event->angleDelta().y()) / 120.0f;
  io.MouseWheelH += static_cast<float>(event->angleDelta().x()) / 120.0f;
  feed_modifiers(event->modifiers());
  request_redraw();
  event->accept();
}

void ImGuiWidget::feed_key(QKeyEvent* event, bool down) {
  ImGui::SetCurrentContext(context_);
  ImGuiIO& io = ImGui::GetIO();
  const int slot = key_slot(event->key());
  if (slot >= 0) io.KeysDown[slot] = down;
  feed_modifiers(event->modifiers());
  if (down) {
    for (QChar c : event->text())
      if (c.isPrint()) io.AddInputCharacterUTF16(c.unicode());
  }
  request_redraw();
}

void ImGuiWidget::keyPressEvent(QKeyEvent* event) {
  feed_key(event, true);
  ImGui::SetCurrentContext(context_);
  // Let the main window's shortcuts (Space, J/K/L, P...) work unless ImGui is typing.
  if (!ImGui::GetIO().WantTextInput) event->ignore();
}

void ImGuiWidget::keyReleaseEvent(QKeyEvent* event) {
  feed_key(event, false);
  event->ignore();
}

void ImGuiWidget::focusOutEvent(QFocusEvent* event) {
  ImGui::SetCurrentContext(context_);
  ImGuiIO& io = ImGui::GetIO();
  for (bool& down : io.KeysDown) down = false;
  for (bool& down : io.MouseDown) down = false;
  request_redraw();
  QWidget::focusOutEvent(event);
}

bool ImGuiWidget::event(QEvent* event) {
  // Every pointer event reaches ImGui the same way, here rather than in one handler each. As
  // in QWidget::event, a disabled widget takes no mouse or wheel input.
  switch (event->type()) {
    case QEvent::MouseButtonPress:
    case QEvent::MouseButtonDblClick:
    case QEvent::MouseButtonRelease:
    case QEvent::MouseMove:
      if (!isEnabled()) break;
      feed_mouse(static_cast<QMouseEvent*>(event));
      return true;
    case QEvent::Wheel:
      if (!isEnabled()) break;
      feed_wheel(static_cast<QWheelEvent*>(event));
      return true;
    case QEvent::Leave:
      ImGui::SetCurrentContext(context_);
      ImGui::GetIO().MousePos = ImVec2(-FLT_MAX, -FLT_MAX);
      request_redraw();
      break;  // QWidget::event goes on to leaveEvent()
    case QEvent::KeyPress: {
      // Tab must reach ImGui (text fields), not move Qt's focus chain, while ImGui is typing.
      auto* key = static_cast<QKeyEvent*>(event);
      if (context_ != nullptr && (key->key() == Qt::Key_Tab || key->key() == Qt::Key_Backtab)) {
        ImGui::SetCurrentContext(context_);
        if (ImGui::GetIO().WantTextInput) {
          keyPressEvent(key);
          return true;
        }
      }
      break;
    }
    default:
      break;
  }
  return QWidget::event(event);
}

}  // namespace dfs::ui
