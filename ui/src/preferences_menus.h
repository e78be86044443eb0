// preferences_menus.h — the menu entries of main_window_preferences.cpp: Edit > Copy / Paste
// noise curve and Preferences..., Generate > Schedule presets. They call MainWindow's public
// methods only. GUI thread only.
#pragma once

class QMenu;

namespace dfs::ui {

class MainWindow;

void add_preferences_menus(MainWindow& window, QMenu* edit, QMenu* generate);

}  // namespace dfs::ui
