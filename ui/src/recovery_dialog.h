// recovery_dialog.h — "Recover unsaved work?": the sessions a crash or kill left, each with its
// project, clip, frames, unsaved edits and when it was autosaved, and three answers:
//   Recover  the selected session (the dialog closes; the window opens it),
//   Discard  the selected session (its autosave is deleted when the dialog closes with OK),
//   Later    close and keep everything for the next start.
#pragma once

#include <QDialog>
#include <QList>
#include <QString>

#include "dfs/ui/main_window.h"

class QListWidget;
class QLabel;

namespace dfs::ui {

class RecoveryDialog : public QDialog {
  Q_OBJECT

 public:
  RecoveryDialog(QList<MainWindow::RecoverySession> sessions, QWidget* parent = nullptr);

  // After exec() == Accepted: the record of the session to recover ("" = none) and those the
  // user discarded. Rejected (Later): nothing is to be done.
  QString recover_record() const { return recover_; }
  QList<MainWindow::RecoverySession> discarded() const { return discarded_; }

  // Two lines describing a session, e.g. "shot.dfsproj: clip vtest.avi, 40 frames (16
  // generated)" / "12 unsaved edits, autosaved 2026-12-06 02:14:30 (3 min ago)".
  static QString describe(const MainWindow::RecoverySession& session);

 private:
  void discard_selected();
  QList<MainWindow::RecoverySession> sessions_;
  QList<MainWindow::RecoverySession> discarded_;
  QString recover_;
  QListWidget* list_ = nullptr;
};

}  // namespace dfs::ui
