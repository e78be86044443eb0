// dfstudio — the Diffusion Forcing Studio desktop application.
#include <QApplication>
#include <QLabel>
#include <QMainWindow>

int main(int argc, char** argv) {
  QApplication app(argc, argv);
  QApplication::setApplicationName("Diffusion Forcing Studio");
  QMainWindow window;
  window.setWindowTitle("Diffusion Forcing Studio");
  auto* label = new QLabel("Diffusion Forcing Studio", &window);
  label->setAlignment(Qt::AlignCenter);
  window.setCentralWidget(label);
  window.resize(1280, 800);
  window.show();
  return app.exec();
}
