// take_list.cpp — see take_list.h.
#include "take_list.h"

#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QSet>
#include <QTreeWidget>
#include <QVBoxLayout>

namespace dfs::ui {
namespace {
constexpr int kIdRole = Qt::UserRole + 1;
}  // namespace

TakeList::TakeList(QWidget* parent) : QWidget(parent) {
  tree_ = new QTreeWidget;
  tree_->setColumnCount(kColumns);
  tree_->setHeaderLabels(
      {tr("Take"), tr("\u2605"), tr("Date"), tr("Seed"), tr("Model"), tr("Steps"), tr("Frames")});
  tree_->setRootIsDecorated(false);
  tree_->setSelectionMode(QAbstractItemView::ExtendedSelection);
  tree_->setEditTriggers(QAbstractItemView::DoubleClicked | QAbstractItemView::EditKeyPressed);
  tree_->setAccessibleName(tr("Takes"));
  tree_->setObjectName("take_list");
  tree_->header()->setStretchLastSection(false);
  for (int c = kName; c < kColumns; ++c)
    tree_->header()->setSectionResizeMode(c, QHeaderView::ResizeToContents);
  // A model's name can be long ("demo (garden.learned.safetensors)"): a column the user can
  // widen, elided, the whole name in its tooltip, so the take's own name stays readable.
  tree_->header()->setSectionResizeMode(kModel, QHeaderView::Interactive);
  tree_->header()->resizeSection(kModel, 110);

  compare_label_ = new QLabel;
  compare_label_->setWordWrap(true);
  compare_label_->hide();

  show_ = new QPushButton(tr("Show"));
  show_->setToolTip(tr("Show this take's frames (or double-click its date)"));
  compare_ = new QPushButton(tr("Compare"));
  compare_->setToolTip(tr("Select two takes: A on the left (or under the wipe), B on the right"));
  stop_compare_ = new QPushButton(tr("Stop comparing"));
  export_ = new QPushButton(tr("Export..."));
  context_ = new QPushButton(tr("Use as context"));
  context_->setToolTip(
      tr("Pin this take's frames and extend after them: the next generation continues it"));
  delete_ = new QPushButton(tr("Delete"));

  auto* row1 = new QHBoxLayout;
  row1->addWidget(show_);
  row1->addWidget(compare_);
  row1->addWidget(stop_compare_);
  auto* row2 = new QHBoxLayout;
  row2->addWidget(export_);
  row2->addWidget(context_);
  row2->addWidget(delete_);
  auto* layout = new QVBoxLayout(this);
  layout->setContentsMargins(4, 4, 4, 4);
  tree_->setMinimumHeight(48);  // the dock shares its column: fits a 1366 x 768 screen
  layout->addWidget(tree_, 1);
  layout->addWidget(compare_label_);
  layout->addLayout(row1);
  layout->addLayout(row2);

  connect(tree_, &QTreeWidget::itemChanged, this, &TakeList::on_item_changed);
  connect(tree_, &QTreeWidget::itemSelectionChanged, this, &TakeList::update_buttons);
  connect(tree_, &QTreeWidget::itemDoubleClicked, this, [this](QTreeWidgetItem* item, int column) {
    if (column == kName || column == kStar) return;  // those edit the name / the star
    const int id = item->data(kName, kIdRole).toInt();
    // Queued: the window rebuilds the rows, which must not happen inside the tree's own signal.
    QMetaObject::invokeMethod(
        this, [this, id] { emit switch_requested(id); }, Qt::QueuedConnection);
  });
  connect(show_, &QPushButton::clicked, this, [this] {
    if (const int id = single_selected()) emit switch_requested(id);
  });
  connect(compare_, &QPushButton::clicked, this, [this] {
    const std::vector<int> ids = selected_ids();
    if (ids.size() == 2) emit compare_requested(ids[0], ids[1]);
  });
  connect(stop_compare_, &QPushButton::clicked, this, &TakeList::stop_compare_requested);
  connect(export_, &QPushButton::clicked, this, [this] {
    if (const int id = single_selected()) emit export_requested(id);
  });
  connect(context_, &QPushButton::clicked, this, [this] {
    if (const int id = single_selected()) emit context_requested(id);
  });
  connect(delete_, &QPushButton::clicked, this, [this] {
    for (int id : selected_ids()) emit delete_requested(id);
  });
  update_buttons();
}

void TakeList::set_rows(const std::vector<Row>& rows) {
  QSet<int> selected;
  for (int id : selected_ids()) selected.insert(id);
  filling_ = true;
  tree_->clear();
  for (const Row& r : rows) {
    auto* item = new QTreeWidgetItem;
    item->setData(kName, kIdRole, r.id);
    item->setText(kName, r.name);
    item->setCheckState(kStar, r.starred ? Qt::Checked : Qt::Unchecked);
    item->setText(kDate, r.date);
    item->setText(kSeed, QString::number(r.seed));
    item->setText(kModel, r.model);
    item->setToolTip(kModel, r.model);
    item->setText(kSteps, QString::number(r.steps));
    item->setText(kFrames, QString::number(r.frames));
    item->setFlags(Qt::ItemIsSelectable | Qt::ItemIsEnabled | Qt::ItemIsEditable |
                   Qt::ItemIsUserCheckable);
    item->setToolTip(kStar, tr("Star this take"));
    if (r.current) {
      QFont bold = item->font(kName);
      bold.setBold(true);
      for (int c = 0; c < kColumns; ++c) item->setFont(c, bold);
      item->setToolTip(kName, tr("Shown now"));
    }
    tree_->addTopLevelItem(item);
    if (selected.contains(r.id)) item->setSelected(true);
  }
  filling_ = false;
  update_buttons();
}

void TakeList::set_compare_text(const QString& text) {
  compare_label_->setText(text);
  compare_label_->setVisible(!text.isEmpty());
  stop_compare_->setEnabled(!text.isEmpty());
}

std::vector<int> TakeList::selected_ids() const {
  std::vector<int> ids;
  for (int i = 0; i < tree_->topLevelItemCount(); ++i) {
    QTreeWidgetItem* item = tree_->topLevelItem(i);
    if (item->isSelected()) ids.push_back(item->data(kName, kIdRole).toInt());
  }
  return ids;
}

int TakeList::single_selected() const {
  const std::vector<int> ids = selected_ids();
  return ids.size() == 1 ? ids[0] : 0;
}

void TakeList::on_item_changed(QTreeWidgetItem* item, int column) {
  if (filling_) return;
  const int id = item->data(kName, kIdRole).toInt();
  // Queued: the window rebuilds the rows (deleting `item`), which must not happen while the
  // tree is still inside this signal or its editor is closing.
  if (column == kName) {
    const QString name = item->text(kName);
    QMetaObject::invokeMethod(
        this, [this, id, name] { emit rename_requested(id, name); }, Qt::QueuedConnection);
  }
  if (column == kStar) {
    const bool on = item->checkState(kStar) == Qt::Checked;
    QMetaObject::invokeMethod(
        this, [this, id, on] { emit star_requested(id, on); }, Qt::QueuedConnection);
  }
}

void TakeList::update_buttons() {
  const size_t n = selected_ids().size();
  show_->setEnabled(n == 1);
  compare_->setEnabled(n == 2);
  export_->setEnabled(n == 1);
  context_->setEnabled(n == 1);
  delete_->setEnabled(n >= 1);
  stop_compare_->setEnabled(!compare_label_->text().isEmpty());
}

}  // namespace dfs::ui
