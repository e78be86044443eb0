// take_list.h — the Takes dock's contents: one row per kept generation (name, star, date,
// seed, model, steps, frames) with buttons to show, compare, export, use as context and delete.
//
// A view only: it shows the rows MainWindow hands it and turns clicks and edits into signals
// carrying take ids; the window does the work (main_window_takes.cpp). Names are edited inline
// (double-click or F2); the star column is a check box. GUI thread only.
#pragma once

#include <QString>
#include <QWidget>
#include <cstdint>
#include <vector>

class QLabel;
class QPushButton;
class QTreeWidget;
class QTreeWidgetItem;

namespace dfs::ui {

class TakeList : public QWidget {
  Q_OBJECT

 public:
  struct Row {
    int id = 0;
    QString name;
    bool starred = false;
    QString date;  // as shown ("2026-12-06 02:14")
    std::uint64_t seed = 0;
    QString model;
    int steps = 0;
    int frames = 0;
    bool current = false;  // the take shown (bold)
  };
  enum Column { kName, kStar, kDate, kSeed, kModel, kSteps, kFrames, kColumns };

  explicit TakeList(QWidget* parent = nullptr);

  void set_rows(const std::vector<Row>& rows);  // keeps the selection where ids survive
  void set_compare_text(const QString& text);   // "" hides the comparing line
  std::vector<int> selected_ids() const;        // in list order
  QTreeWidget* tree() const { return tree_; }

 signals:
  void switch_requested(int id);
  void rename_requested(int id, const QString& name);
  void star_requested(int id, bool starred);
  void delete_requested(int id);
  void compare_requested(int a, int b);
  void stop_compare_requested();
  void export_requested(int id);
  void context_requested(int id);

 private:
  void on_item_changed(QTreeWidgetItem* item, int column);
  void update_buttons();
  int single_selected() const;  // the one selected take's id, 0 if not exactly one

  QTreeWidget* tree_ = nullptr;
  QLabel* compare_label_ = nullptr;
  QPushButton* show_ = nullptr;
  QPushButton* compare_ = nullptr;
  QPushButton* stop_compare_ = nullptr;
  QPushButton* export_ = nullptr;
  QPushButton* context_ = nullptr;
  QPushButton* delete_ = nullptr;
  bool filling_ = false;  // set_rows() is filling the tree: edits are not the user's
};

}  // namespace dfs::ui
