// learn_dialog.h — Model > Learn this clip...: the non-modal window of a learning run.
//
// Budget in minutes, Start and Cancel, a progress bar with the ETA, the live loss curve, the
// latest sample continuation (refreshed at each checkpoint, about every minute) beside the
// clip's true frames, the held-out loss before/after, and the run's log. It only shows and
// asks: MainWindow (main_window_learn.cpp) runs the training and feeds it. GUI thread only.
#pragma once

#include <QDialog>
#include <QImage>
#include <QString>

class QDoubleSpinBox;
class QLabel;
class QPlainTextEdit;
class QProgressBar;
class QPushButton;

namespace dfs::ui {

class LossCurveWidget;

class LearnDialog : public QDialog {
  Q_OBJECT

 public:
  explicit LearnDialog(QWidget* parent = nullptr);

  double minutes() const;
  void set_minutes(double minutes);
  void set_target(const QString& clip, const QString& output);  // what is learned, where to
  void set_running(bool running, double budget_seconds = 0);
  void show_progress(long long step, double steps_per_second, double loss, double elapsed_seconds,
                     double eta_seconds);
  void show_sample(const QImage& strip, const QString& caption);
  void show_result(const QString& text);
  void append_log(const QString& line);

  LossCurveWidget* loss_curve() const { return curve_; }
  QProgressBar* progress_bar() const { return progress_; }
  const QImage& sample_image() const { return sample_; }
  QPushButton* start_button() const { return start_; }
  QPushButton* cancel_button() const { return cancel_; }
  QString log_text() const;     // the run's log lines
  QString result_text() const;  // the summary shown at the end

 signals:
  void start_requested(double minutes);
  void cancel_requested();

 private:
  QDoubleSpinBox* minutes_ = nullptr;
  QLabel* target_ = nullptr;
  QPushButton* start_ = nullptr;
  QPushButton* cancel_ = nullptr;
  QProgressBar* progress_ = nullptr;
  QLabel* status_ = nullptr;
  LossCurveWidget* curve_ = nullptr;
  QLabel* sample_label_ = nullptr;
  QLabel* sample_caption_ = nullptr;
  QLabel* result_ = nullptr;
  QPlainTextEdit* log_ = nullptr;
  QImage sample_;
  double budget_seconds_ = 0;
};

}  // namespace dfs::ui
