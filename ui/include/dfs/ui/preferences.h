// dfs/ui/preferences.h — the Studio's preferences (Edit > Preferences...), kept in QSettings.
//
// A plain value: load() reads it from a QSettings (group "preferences"), falling back to the
// default for every stored value that is missing, mistyped or out of range and saying so in the
// returned messages; save() writes it back. MainWindow::apply_preferences() puts it into effect.
//
// Public (not in ui/src) because MainWindow's public interface takes and returns it, and a public
// header never includes a src/ header (docs/ARCHITECTURE.md).
//
// Thread-safety: a plain value; QSettings is the caller's (GUI thread).
#pragma once

#include <QString>
#include <QStringList>

#include "dfs/fit_and_format.h"

class QSettings;

namespace dfs::ui {

struct Preferences {
  // Bounds (the dialog's spin boxes use them too).
  static constexpr int kMaxThreads = 256;
  static constexpr int kMinAutosaveSeconds = 5;  // 0 = off, else at least this
  static constexpr int kMaxAutosaveSeconds = 3600;

  int threads = 0;          // generation threads; 0 = automatic (all cores but one)
  QString device = "auto";  // "auto" (CUDA when available), "cpu" or "cuda"; next model load
  QString export_folder;    // "" = beside the clip (or the Videos folder when not writable)
  dfs::ExportFormat export_format = dfs::ExportFormat::Mp4;  // never Auto
  int autosave_seconds = 30;                                 // 0 = off
  double stabilization_user = 0.02;       // new projects: level pinned frames are fed at
  double stabilization_generated = 0.02;  // new projects: level earlier generated frames at

  // Every problem, one message each naming the setting; empty when valid.
  QStringList problems() const;
  // Reads group "preferences"; a value that is missing keeps its default silently, one that is
  // unreadable or out of range keeps its default and adds a message naming it.
  QStringList load(QSettings& settings);
  void save(QSettings& settings) const;  // group "preferences"

  friend bool operator==(const Preferences&, const Preferences&) = default;
};

// The devices the Preferences offer on this machine: "auto", "cpu", and "cuda" when available.
QStringList available_devices();

// The thread count `threads` (0 = automatic) stands for here: $DFS_THREADS when set, else all
// cores but one (the GUI and the X server keep one on a 2-core machine).
int resolve_threads(int threads);

// The export formats a user can pick, with the extension each writes ("" = a folder of PNGs).
QString export_extension(dfs::ExportFormat format);

}  // namespace dfs::ui
