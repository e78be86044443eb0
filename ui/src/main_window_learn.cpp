// main_window_learn.cpp — Model > Learn this clip...: the learning thread, its dialog, adopting
// the learned model as one undo step, and offering to resume a run a crash interrupted.
//
// The run itself is project::learn_clip (dfs/project/learn.h -> dfs/diffusion/learn.h), the
// same fine-tuning as `dforce learn`. It runs on its own QThread at low priority: the thread is
// niced below the generation worker (Linux: per thread, inherited by LibTorch's intra-op pool
// created on it), and LibTorch's intra-op thread count is the Studio's (dfstudio sets one fewer
// than the cores), so a generation started meanwhile still gets the CPU first.
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <QCoreApplication>
#include <QFileInfo>
#include <QMessageBox>
#include <QPainter>
#include <QPointer>
#include <QPushButton>
#include <QStatusBar>
#include <QThread>
#include <QTimer>
#include <atomic>
#include <chrono>
#include <cmath>
#include <exception>
#include <memory>
#include <optional>
#include <string>

#include "dfs/project/learn.h"
#include "dfs/ui/main_window.h"
#include "learn_dialog.h"
#include "main_window_state.h"

namespace dfs::ui {

// A running learning session. Destroying it (the window closing) stops the run, marked as
// abandoned so its checkpoint and state file stay for the next start's "resume?" offer.
struct LearnSession {
  std::atomic<bool> stop{false};
  std::atomic<bool> abandon{false};
  QThread* thread = nullptr;
  std::string output;
  double budget_seconds = 0;
  ~LearnSession() {
    if (thread == nullptr) return;
    abandon.store(true);
    stop.store(true);
    thread->wait();
    delete thread;
  }
};

namespace {

constexpr int kLearnNice = 10;  // below the generation worker (5) and the GUI (0)

// Context frames (the last two) and the sampled continuation on top; the clip's true frames
// under the continuation.
QImage sample_strip(const diffusion::LearnSample& s) {
  if (s.frames.empty()) return {};
  const int w = s.frames.front().width, h = s.frames.front().height, gap = 4;
  const int shown_context = std::min<int>(2, static_cast<int>(s.context.size()));
  const int columns = shown_context + static_cast<int>(s.frames.size());
  QImage strip(columns * (w + gap) - gap, 2 * h + gap, QImage::Format_RGB888);
  strip.fill(QColor(30, 30, 34));
  QPainter p(&strip);
  int x = 0;
  for (int i = static_cast<int>(s.context.size()) - shown_context;
       i < static_cast<int>(s.context.size()); ++i, x += w + gap)
    p.drawImage(x, 0, to_qimage(s.context[static_cast<size_t>(i)]));
  for (size_t i = 0; i < s.frames.size(); ++i, x += w + gap) {
    p.drawImage(x, 0, to_qimage(s.frames[i]));
    if (i < s.truth.size()) p.drawImage(x, h + gap, to_qimage(s.truth[i]));
  }
  return strip;
}

QString owner_of(const project::Document& doc, const QString& clip_path) {
  if (!doc.path().empty()) return QString::fromStdString(doc.path());
  return clip_path;
}

}  // namespace

void MainWindow::init_learning() {
  connect(this, &MainWindow::clip_opened, this,
          [this] { QTimer::singleShot(0, this, [this] { offer_pending_learning(); }); });
}

QString MainWindow::learned_model_path() const {
  const QString owner = owner_of(s_->doc, s_->clip_path);
  return owner.isEmpty() ? QString()
                         : QString::fromStdString(project::learned_model_path(owner.toStdString()));
}

bool MainWindow::is_learning() const {
  return s_->learning != nullptr;
}

QDialog* MainWindow::learn_dialog() const {
  return s_->learn_dialog;
}

double MainWindow::learning_loss_before() const {
  return s_->learn_loss_before;
}
double MainWindow::learning_loss_after() const {
  return s_->learn_loss_after;
}

void MainWindow::show_learn_dialog() {
  if (s_->learn_dialog == nullptr) {
    s_->learn_dialog = new LearnDialog(this);
    connect(s_->learn_dialog, &LearnDialog::start_requested, this,
            [this](double minutes) { start_learning(minutes); });
    connect(s_->learn_dialog, &LearnDialog::cancel_requested, this, [this] { stop_learning(); });
  }
  if (!is_learning())
    s_->learn_dialog->set_target(
        s_->clip_path.isEmpty() ? tr("(no clip open)") : QFileInfo(s_->clip_path).fileName(),
        learned_model_path().isEmpty() ? tr("(open a clip first)") : learned_model_path());
  s_->learn_dialog->show();
  s_->learn_dialog->raise();
}

bool MainWindow::start_learning(double minutes) {
  return run_learning(minutes, false);
}

bool MainWindow::has_pending_learning() const {
  const QString owner = owner_of(s_->doc, s_->clip_path);
  return !is_learning() && !owner.isEmpty() &&
         project::find_pending_learning(owner.toStdString()).has_value();
}

bool MainWindow::resume_learning() {
  return run_learning(0, true);
}

void MainWindow::discard_learning() {
  const QString owner = owner_of(s_->doc, s_->clip_path);
  if (is_learning() || owner.isEmpty()) return;
  if (const auto pending = project::find_pending_learning(owner.toStdString())) {
    project::discard_pending_learning(*pending);
    statusBar()->showMessage(tr("Discarded the interrupted learning run"), 5000);
  }
}

void MainWindow::stop_learning() {
  if (!s_->learning) return;
  s_->learning->stop.store(true);
  statusBar()->showMessage(tr("Stopping learning: writing the model learned so far..."));
}

bool MainWindow::run_learning(double minutes, bool resume) {
  if (is_learning()) {
    report_error(tr("Busy"), tr("A learning run is already under way."));
    return false;
  }
  if (s_->clip_path.isEmpty()) {
    report_error(tr("Cannot learn"), tr("Open a clip first: learning fine-tunes the model on it."));
    return false;
  }
  const QString owner = owner_of(s_->doc, s_->clip_path);
  project::LearnRequest req;
  req.owner = owner.toStdString();
  req.executable_path = QCoreApplication::applicationFilePath().toStdString();
  if (resume) {
    const auto pending = project::find_pending_learning(req.owner);
    if (!pending) {
      report_error(tr("Cannot resume"), tr("There is no interrupted learning run to resume."));
      return false;
    }
    req.clip_path = pending->clip_path;
    req.model_path = pending->model_path;
    req.fit = pending->fit;
    req.minutes = pending->minutes_left();
    req.resume = true;
  } else {
    if (!(minutes > 0)) {
      report_error(tr("Cannot learn"), tr("The budget must be more than 0 minutes."));
      return false;
    }
    const project::Project& p = s_->doc.project();
    req.clip_path = s_->clip_path.toStdString();
    req.model_path = p.model_path.empty() ? std::string() : s_->doc.resolve(p.model_path);
    req.fit = p.clip.fit;
    req.minutes = minutes;
  }
  show_learn_dialog();
  auto session = std::make_shared<LearnSession>();
  session->output = project::learned_model_path(req.owner);
  session->budget_seconds = req.minutes * 60;
  s_->learn_dialog->set_target(QFileInfo(QString::fromStdString(req.clip_path)).fileName(),
                               QString::fromStdString(session->output));
  s_->learn_dialog->set_minutes(resume ? s_->learn_dialog->minutes() : minutes);
  s_->learn_dialog->set_running(true, session->budget_seconds);
  s_->learn_loss_before = s_->learn_loss_after = std::nan("");

  QPointer<MainWindow> self(this);
  LearnSession* raw = session.get();
  // Posts `f` to the GUI thread; dropped if the window is gone.
  auto post = [self](auto f) {
    if (self) QMetaObject::invokeMethod(self.data(), std::move(f), Qt::QueuedConnection);
  };
  session->thread = QThread::create([req, raw, post, this] {
#ifdef __linux__
    setpriority(PRIO_PROCESS, static_cast<id_t>(syscall(SYS_gettid)), kLearnNice);
#endif
    diffusion::LearnCallbacks cb;
    cb.stop = &raw->stop;
    cb.abandon = &raw->abandon;
    cb.log = [post, this](const std::string& line) {
      const QString text = QString::fromStdString(line);
      post([this, text] {
        if (s_->learn_dialog) s_->learn_dialog->append_log(text);
      });
    };
    auto last = std::chrono::steady_clock::now() - std::chrono::seconds(1);
    cb.on_progress = [post, this, &last](const diffusion::LearnProgress& p) {
      const auto now = std::chrono::steady_clock::now();
      if (!p.checkpointed && now - last < std::chrono::milliseconds(200)) return;
      last = now;
      post([this, p] {
        if (!s_->learn_dialog) return;
        s_->learn_dialog->show_progress(p.step, p.steps_per_second, p.loss_average,
                                        p.elapsed_seconds, p.eta_seconds);
        statusBar()->showMessage(tr("Learning: step %1, loss %2, ETA %3 s")
                                     .arg(p.step)
                                     .arg(p.loss_average, 0, 'g', 4)
                                     .arg(std::lround(std::max(0.0, p.eta_seconds))),
                                 3000);
      });
    };
    cb.on_sample = [post, this](const diffusion::LearnSample& s) {
      const QImage strip = sample_strip(s);
      const long long step = s.step;
      post([this, strip, step] {
        if (s_->learn_dialog)
          s_->learn_dialog->show_sample(
              strip, tr("Sample continuation at step %1 (top: the last context frames, then "
                        "the generated ones; below: the clip's true frames)")
                         .arg(step));
      });
    };
    try {
      const auto result = project::learn_clip(req, cb);
      post([this, result] {
        // End of the session: the thread has returned from its work; join it.
        s_->learning.reset();
        s_->learn_loss_before = result.loss_before;
        s_->learn_loss_after = result.loss_after;
        const QString file = QString::fromStdString(result.output);
        const QString summary =
            tr("%1 after %2 steps (%3 s of training). Held-out loss (%4 frames never trained "
               "on): %5 before, %6 after.")
                .arg(result.stopped ? tr("Cancelled: kept the weights learned so far")
                                    : tr("Finished"))
                .arg(result.steps)
                .arg(std::lround(result.seconds))
                .arg(result.held_out_frames)
                .arg(result.loss_before, 0, 'g', 5)
                .arg(result.loss_after, 0, 'g', 5);
        if (s_->learn_dialog) {
          s_->learn_dialog->set_running(false);
          s_->learn_dialog->show_result(summary);
        }
        statusBar()->showMessage(summary, 15000);
        // A run that made the held-out prediction worse (too short, or a clip unlike its own
        // end) does not replace the model that was better: the file stays for whoever wants it.
        if (std::isfinite(result.loss_before) && std::isfinite(result.loss_after) &&
            result.loss_after >= result.loss_before) {
          const QString kept =
              tr("The learned model predicts the held-out frames no better than the current one "
                 "(%1 before, %2 after), so the project keeps its model. The learned weights are "
                 "in %3 (Model > Open model uses them anyway).")
                  .arg(result.loss_before, 0, 'g', 5)
                  .arg(result.loss_after, 0, 'g', 5)
                  .arg(file);
          if (s_->learn_dialog) s_->learn_dialog->show_result(summary + "\n" + kept);
          statusBar()->showMessage(kept, 15000);
          emit learning_finished(false, kept);
          return;
        }
        // Becomes the project's model as one undo step, once no generation holds the worker.
        // (The retry timer holds the function; the function itself only a weak reference.)
        auto adopt = std::make_shared<std::function<void()>>();
        std::weak_ptr<std::function<void()>> weak = adopt;
        *adopt = [this, file, weak] {
          if (s_->generating || s_->model_loading) {
            if (auto again = weak.lock()) QTimer::singleShot(300, this, [again] { (*again)(); });
            return;
          }
          s_->next_model_label = tr("Use learned model %1").arg(QFileInfo(file).fileName());
          connect(
              this, &MainWindow::model_changed, this,
              [this, file](bool ok) { emit learning_finished(ok, ok ? file : s_->last_error); },
              Qt::SingleShotConnection);
          load_model(file);
        };
        (*adopt)();
      });
    } catch (const std::exception& e) {
      const QString message = QString::fromUtf8(e.what());
      post([this, message] {
        s_->learning.reset();
        if (s_->learn_dialog) {
          s_->learn_dialog->set_running(false);
          s_->learn_dialog->show_result(tr("Learning failed: %1").arg(message));
        }
        report_error(tr("Learning failed"), message);
        emit learning_finished(false, message);
      });
    }
  });
  s_->learning = session;
  session->thread->start(QThread::LowPriority);
  statusBar()->showMessage(tr("Learning %1 for %2 min...")
                               .arg(QFileInfo(QString::fromStdString(req.clip_path)).fileName())
                               .arg(req.minutes, 0, 'f', 2));
  return true;
}

void MainWindow::offer_pending_learning() {
  const QString owner = owner_of(s_->doc, s_->clip_path);
  if (is_learning() || owner.isEmpty()) return;
  const auto pending = project::find_pending_learning(owner.toStdString());
  if (!pending) return;
  const QString what =
      tr("A learning run on %1 was interrupted (started %2): its checkpoint holds %3 steps, "
         "%4 s of training. Resume it for the %5 min it had left?")
          .arg(QFileInfo(QString::fromStdString(pending->clip_path)).fileName(),
               QString::fromStdString(pending->started))
          .arg(pending->steps_done)
          .arg(std::lround(pending->seconds_done))
          .arg(pending->minutes_left(), 0, 'f', 2);
  statusBar()->showMessage(what, 15000);
  if (s_->options.quiet_errors) return;  // tests: has_pending_learning() / resume_learning()
  auto* box = new QMessageBox(QMessageBox::Question, tr("Resume learning?"), what,
                              QMessageBox::NoButton, this);
  auto* resume = box->addButton(tr("Resume"), QMessageBox::AcceptRole);
  auto* discard = box->addButton(tr("Discard"), QMessageBox::DestructiveRole);
  box->addButton(tr("Later"), QMessageBox::RejectRole);
  box->setAttribute(Qt::WA_DeleteOnClose);
  connect(box, &QMessageBox::buttonClicked, this, [this, resume, discard](QAbstractButton* b) {
    if (b == resume)
      resume_learning();
    else if (b == discard)
      discard_learning();
  });
  box->open();
}

}  // namespace dfs::ui
