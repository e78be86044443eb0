// widget_row.h — widgets side by side in a borderless row: one row of a form, or one page of a
// stacked widget (the Generate panel, the export dialog). GUI thread only.
#pragma once

#include <QHBoxLayout>
#include <QWidget>
#include <initializer_list>

namespace dfs::ui {

// One widget of a row and its stretch factor (QBoxLayout::addWidget's).
struct RowItem {
  RowItem(QWidget* w, int s = 0) : widget(w), stretch(s) {}  // implicit: a bare widget is {w, 0}
  QWidget* widget;
  int stretch;
};

// A new parentless widget holding `items` left to right with no margins; the form or stack it
// is added to takes ownership.
inline QWidget* widget_row(std::initializer_list<RowItem> items) {
  auto* row = new QWidget;
  auto* layout = new QHBoxLayout(row);
  layout->setContentsMargins(0, 0, 0, 0);
  for (const RowItem& item : items) layout->addWidget(item.widget, item.stretch);
  return row;
}

}  // namespace dfs::ui
