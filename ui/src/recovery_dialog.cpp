// recovery_dialog.cpp — see recovery_dialog.h.
#include "recovery_dialog.h"

#include <QDialogButtonBox>
#include <QFileInfo>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QVBoxLayout>
#include <utility>

namespace dfs::ui {

QString RecoveryDialog::describe(const MainWindow::RecoverySession& s) {
  const QString project =
      s.project_path.isEmpty() ? tr("Untitled project") : QFileInfo(s.project_path).fileName();
  const qint64 ago = s.saved_utc.secsTo(QDateTime::currentDateTimeUtc());
  const QString when =
      ago < 120 ? tr("%1 s ago").arg(ago)
                : ago < 7200 ? tr("%1 min ago").arg(ago / 60) : tr("%1 h ago").arg(ago / 3600);
  return tr("%1: clip %2, %3 frames (%4 generated)\n%5 unsaved edits, autosaved %6 (%7)")
      .arg(project, s.clip_name.isEmpty() ? tr("(none)") : s.clip_name)
      .arg(s.frames)
      .arg(s.generated)
      .arg(s.edits)
      .arg(s.saved_utc.toLocalTime().toString("yyyy-MM-dd hh:mm:ss"), when);
}

RecoveryDialog::RecoveryDialog(QList<MainWindow::RecoverySession> sessions, QWidget* parent)
    : QDialog(parent), sessions_(std::move(sessions)) {
  setWindowTitle(tr("Recover unsaved work?"));
  setObjectName("recovery_dialog");
  auto* layout = new QVBoxLayout(this);
  auto* text = new QLabel(
      tr("Diffusion Forcing Studio did not close normally. This unsaved work was autosaved. "
         "Recovering opens it as an unsaved document; the project file stays as it is until you "
         "save."));
  text->setWordWrap(true);
  layout->addWidget(text);
  list_ = new QListWidget;
  list_->setObjectName("recovery_sessions");
  for (const auto& s : sessions_) {
    auto* item = new QListWidgetItem(describe(s), list_);
    item->setData(Qt::UserRole, s.record_path);
    item->setToolTip(tr("Autosave: %1").arg(s.autosave_path));
  }
  list_->setCurrentRow(0);
  list_->setMinimumWidth(560);
  list_->setWordWrap(true);
  list_->setSpacing(4);
  layout->addWidget(list_);
  auto* buttons = new QDialogButtonBox;
  auto* recover = buttons->addButton(tr("&Recover"), QDialogButtonBox::AcceptRole);
  auto* discard = buttons->addButton(tr("&Discard"), QDialogButtonBox::DestructiveRole);
  auto* later = buttons->addButton(tr("&Later"), QDialogButtonBox::RejectRole);
  recover->setObjectName("recover");
  discard->setObjectName("discard");
  later->setObjectName("later");
  recover->setDefault(true);
  layout->addWidget(buttons);
  connect(recover, &QPushButton::clicked, this, [this] {
    if (list_->currentItem() != nullptr)
      recover_ = list_->currentItem()->data(Qt::UserRole).toString();
    accept();
  });
  connect(discard, &QPushButton::clicked, this, &RecoveryDialog::discard_selected);
  connect(later, &QPushButton::clicked, this, [this] {
    // Later keeps what is left; what was discarded in this dialog goes.
    if (discarded_.isEmpty()) reject();
    else accept();
  });
}

void RecoveryDialog::discard_selected() {
  QListWidgetItem* item = list_->currentItem();
  if (item == nullptr) return;
  const QString record = item->data(Qt::UserRole).toString();
  for (const auto& s : sessions_)
    if (s.record_path == record) discarded_.push_back(s);
  delete item;
  if (list_->count() == 0) accept();
}

}  // namespace dfs::ui
