// learn_dialog.cpp — see learn_dialog.h.
#include "learn_dialog.h"

#include <QDoubleSpinBox>
#include <QFormLayout>
#include <QHBoxLayout>
#include <QLabel>
#include <QPixmap>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>

#include "loss_curve_widget.h"

namespace dfs::ui {

namespace {
QString clock_text(double seconds) {
  if (!(seconds >= 0) || !std::isfinite(seconds)) return QStringLiteral("?");
  const long long s = std::llround(seconds);
  return QStringLiteral("%1:%2").arg(s / 60).arg(s % 60, 2, 10, QLatin1Char('0'));
}
}  // namespace

LearnDialog::LearnDialog(QWidget* parent) : QDialog(parent) {
  setWindowTitle(tr("Learn this clip"));
  setModal(false);
  setObjectName("learn_dialog");
  auto* layout = new QVBoxLayout(this);
  target_ = new QLabel;
  target_->setWordWrap(true);
  layout->addWidget(target_);
  auto* row = new QHBoxLayout;
  auto* form = new QFormLayout;
  minutes_ = new QDoubleSpinBox;
  minutes_->setRange(0.25, 24 * 60);
  minutes_->setDecimals(2);
  minutes_->setValue(10);
  minutes_->setSuffix(tr(" min"));
  minutes_->setToolTip(
      tr("Wall-clock training budget. A checkpoint is written every minute; Cancel keeps the "
         "weights learned so far."));
  form->addRow(tr("Budget:"), minutes_);
  row->addLayout(form);
  start_ = new QPushButton(tr("Start"));
  cancel_ = new QPushButton(tr("Cancel"));
  cancel_->setEnabled(false);
  row->addWidget(start_);
  row->addWidget(cancel_);
  layout->addLayout(row);
  progress_ = new QProgressBar;
  progress_->setRange(0, 1000);
  progress_->setValue(0);
  progress_->setFormat(tr("idle"));
  layout->addWidget(progress_);
  status_ =
      new QLabel(tr("Fine-tunes the current model on the open clip, in the background "
                    "at low priority; generation stays usable meanwhile."));
  status_->setWordWrap(true);
  layout->addWidget(status_);
  curve_ = new LossCurveWidget;
  layout->addWidget(curve_, 1);
  sample_caption_ = new QLabel(tr("Sample continuation: after the first checkpoint"));
  layout->addWidget(sample_caption_);
  sample_label_ = new QLabel;
  sample_label_->setMinimumHeight(60);
  sample_label_->setAlignment(Qt::AlignLeft | Qt::AlignVCenter);
  layout->addWidget(sample_label_);
  result_ = new QLabel;
  result_->setWordWrap(true);
  result_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  layout->addWidget(result_);
  log_ = new QPlainTextEdit;
  log_->setReadOnly(true);
  log_->setMaximumBlockCount(500);
  log_->setMinimumHeight(80);
  layout->addWidget(log_);
  connect(start_, &QPushButton::clicked, this, [this] { emit start_requested(minutes()); });
  connect(cancel_, &QPushButton::clicked, this, [this] { emit cancel_requested(); });
  resize(560, 620);
}

double LearnDialog::minutes() const {
  return minutes_->value();
}

void LearnDialog::set_minutes(double minutes) {
  minutes_->setValue(minutes);
}

void LearnDialog::set_target(const QString& clip, const QString& output) {
  target_->setText(tr("Clip: <b>%1</b><br>Model written to: <b>%2</b>")
                       .arg(clip.toHtmlEscaped(), output.toHtmlEscaped()));
}

void LearnDialog::set_running(bool running, double budget_seconds) {
  start_->setEnabled(!running);
  minutes_->setEnabled(!running);
  cancel_->setEnabled(running);
  if (running) {
    budget_seconds_ = budget_seconds;
    curve_->clear();
    progress_->setValue(0);
    progress_->setFormat(tr("preparing (decoding, measuring the starting model)..."));
    result_->clear();
  }
}

void LearnDialog::show_progress(long long step, double steps_per_second, double loss,
                                double elapsed_seconds, double eta_seconds) {
  curve_->add_point(static_cast<double>(step), loss);
  const double total = budget_seconds_ > 0 ? budget_seconds_ : elapsed_seconds + eta_seconds;
  if (total > 0)
    progress_->setValue(
        static_cast<int>(std::clamp(1000.0 * elapsed_seconds / total, 0.0, 1000.0)));
  progress_->setFormat(tr("%p%  -  ETA %1").arg(clock_text(eta_seconds)));
  status_->setText(tr("step %1  -  %2 steps/s  -  loss %3  -  %4 elapsed  -  ETA %5")
                       .arg(step)
                       .arg(steps_per_second, 0, 'f', 2)
                       .arg(loss, 0, 'g', 4)
                       .arg(clock_text(elapsed_seconds), clock_text(eta_seconds)));
}

void LearnDialog::show_sample(const QImage& strip, const QString& caption) {
  sample_ = strip;
  sample_caption_->setText(caption);
  sample_label_->setPixmap(QPixmap::fromImage(
      strip.scaledToWidth(std::min(strip.width(), 540), Qt::SmoothTransformation)));
}

void LearnDialog::show_result(const QString& text) {
  result_->setText(text);
  progress_->setFormat(tr("finished"));
}

QString LearnDialog::log_text() const {
  return log_->toPlainText();
}

QString LearnDialog::result_text() const {
  return result_->text();
}

void LearnDialog::append_log(const QString& line) {
  log_->appendPlainText(line);
}

}  // namespace dfs::ui
