// main_window_state.h — MainWindow's private state, shared by the main_window_*.cpp files.
//
// Not part of dfs_ui's interface: only MainWindow's own translation units include it. Where each
// part of the window lives:
//   main_window.cpp             construction, docks, widget wiring, refresh (document -> widgets)
//   main_window_actions.cpp     menus, QActions and shortcuts, the filmstrip's context menu
//   main_window_files.cpp       clips, projects, restore from an export, drag and drop, recent
//                               files, autosave, closing
//   main_window_model.cpp       loading a model on the worker, the Model panel
//   main_window_generation.cpp  the worker's signals, generation start/stop/progress/results
//   main_window_editing.cpp     undoable edits, pins, selection, undo/redo
//   main_window_playback.cpp    seeking, J/K/L playback, view modes
//   main_window_export.cpp      the export dialog and the export task
//   main_window_preferences.cpp preferences, schedule presets, noise-curve copy and paste
//   main_window_takes.cpp       the take store, the Takes dock, switching/comparing takes
//   main_window_recovery.cpp    autosave, crash recovery (recovery.h), a clip that moved
//   main_window_learn.cpp       Learn this clip: the learning thread, its dialog, resume offers
//
// Everything here is touched on the GUI thread only, except what is named otherwise
// (export_done / export_cancel are shared with the export task).
#pragma once

#include <QElapsedTimer>
#include <QFuture>
#include <QImage>
#include <QString>
#include <QThread>
#include <QThreadPool>
#include <QTimer>
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/frame.h"
#include "dfs/media/decoder.h"
#include "dfs/media/thumbnails.h"
#include "dfs/project/document.h"
#include "dfs/project/generation.h"
#include "dfs/project/takes.h"
#include "dfs/ui/main_window.h"
#include "planning.h"

class QAction;
class QLabel;
class QMenu;
class QProgressDialog;
class QTextBrowser;

namespace dfs::ui {

class ControlsPanel;
class TakeList;
class LearnDialog;
struct LearnSession;  // main_window_learn.cpp
class GenerationWorker;
class HeatMapPanel;
class NoiseCurvePanel;
class TimelineWidget;
class ViewerWidget;

// A deep copy: the QImage owns its pixels, so `frame` may go away.
inline QImage to_qimage(const Frame& frame) {
  if (frame.empty()) return {};
  return QImage(frame.rgb.data(), frame.width, frame.height, frame.stride(), QImage::Format_RGB888)
      .copy();
}

// The longest piece of window work since it was last read (MainWindow::take_longest_work, for
// dfs/ui/bench.h). Handlers that may take a while on the GUI thread time themselves with a
// ScopedWork; nested ones each count, so the outermost (longest) names the stall.
struct WorkLog {
  const char* longest = nullptr;
  qint64 longest_ns = 0;
};

class ScopedWork {
 public:
  ScopedWork(WorkLog& log, const char* name) : log_(log), name_(name) { timer_.start(); }
  ~ScopedWork() {
    const qint64 ns = timer_.nsecsElapsed();
    if (ns > log_.longest_ns) {
      log_.longest_ns = ns;
      log_.longest = name_;
    }
  }
  ScopedWork(const ScopedWork&) = delete;
  ScopedWork& operator=(const ScopedWork&) = delete;

 private:
  WorkLog& log_;
  const char* name_;
  QElapsedTimer timer_;
};

struct MainWindow::State {
  StudioOptions options;
  project::Document doc;
  // Source clip (GUI thread decoder for the viewer; the worker and exports open their own).
  QString clip_path;
  std::unique_ptr<media::Decoder> decoder;
  int decoded_index = -1;
  QImage decoded_image;
  std::unique_ptr<media::ThumbnailJob> thumbnails;
  int thumbnail_ticket = 0;
  // Model, owned by the worker; the GUI keeps its description.
  std::optional<diffusion::ModelInfo> model_info;
  bool model_loading = false;  // a load is queued on the worker
  QString model_note;
  QThread worker_thread;
  GenerationWorker* worker = nullptr;
  // Generation.
  bool generating = false;
  std::map<int, Frame> generated;
  std::map<int, Frame> previews;
  project::Project run_project;
  std::set<int> pending_results;   // final frames received but not shown yet
  std::set<int> pending_previews;  // previews received but not shown yet
  bool preview_pending = false;
  bool progress_pending = false;
  project::GenerationProgress latest_progress;
  QTimer display_flush;
  QElapsedTimer last_display;  // since the last flush_results (invalid: show the next at once)
  int preview_updates = 0;
  WorkLog work;  // for benchmarks: the longest window work since take_longest_work()
  double last_fps = 0;
  PlanResult plan;
  // Viewing and playback.
  int current = 0;
  int selection_first = 0;
  int selection_last = -1;
  QTimer play_timer;
  int play_direction = 0;  // 0 = paused, +1 forward, -1 backward
  int play_speed = 1;      // J/L pressed repeatedly doubles it
  // Export.
  bool exporting = false;
  std::shared_ptr<std::atomic<int>> export_done;
  std::shared_ptr<std::atomic<bool>> export_cancel;
  QFuture<void> export_future;  // the running export task (QtConcurrent), waited for on close
  QProgressDialog* export_dialog = nullptr;
  QTimer export_poll;
  // Autosave.
  QTimer autosave_timer;
  QString last_error;
  // Widgets.
  ViewerWidget* viewer = nullptr;
  TimelineWidget* timeline = nullptr;
  NoiseCurvePanel* noise = nullptr;
  HeatMapPanel* heat = nullptr;
  ControlsPanel* controls = nullptr;
  QTextBrowser* model_text = nullptr;
  QLabel* status_device = nullptr;
  QLabel* status_model = nullptr;
  QLabel* status_fps = nullptr;
  QLabel* status_note = nullptr;
  // Actions, owned by the window. Those a context menu offers too are built once and added to
  // both the menu bar and that menu, so text, shortcut and behaviour cannot drift apart.
  QAction* undo_action = nullptr;
  QAction* redo_action = nullptr;
  QAction* pin_range_action = nullptr;       // Edit menu and filmstrip context menu
  QAction* unpin_range_action = nullptr;     // Edit menu and filmstrip context menu
  QAction* pin_all_source_action = nullptr;  // Edit menu and filmstrip context menu
  QAction* clear_pins_action = nullptr;      // Edit menu and filmstrip context menu
  QMenu* recent_menu = nullptr;
  std::vector<QAction*> view_modes;
  // [SECTION] Recovery (main_window_recovery.cpp)
  QString autosave_file;                  // this session's autosave ("" until the first)
  QString autosave_for;                   // the document path autosave_file was chosen for
  std::uint64_t autosaved_revision = 0;   // document revision in the last autosave
  std::uint64_t clean_revision = 0;       // document revision when it was last clean
  int carried_edits = 0;                  // unsaved edits of a recovered session
  std::uint64_t frames_revision = 0;      // results revision whose frames are autosaved
  std::uint64_t results_revision = 0;     // bumped when the generated frames change
  std::uint64_t opened_results_revision = 0;  // the revision of the frames the file came with
  project::Results last_results;          // to notice a change of results
  QString missing_clip;                   // clip named by the open project but not there

  // autosave_soon's PNGs being written on take_writer: their results revision and folder.
  struct AutosaveFrames {
    bool pending = false;
    std::uint64_t revision = 0;
    QString dir;
    QFuture<QString> written;  // "" when on disk, else why not
  } autosave_frames;

  // [SECTION] Preferences (main_window_preferences.cpp)
  Preferences preferences;   // as last applied
  int threads_in_force = 0;  // reported by the worker after configure_threads

  // [SECTION] Learning (main_window_learn.cpp)
  std::shared_ptr<LearnSession> learning;  // the running session; its destructor stops it
  LearnDialog* learn_dialog = nullptr;
  QString next_model_label;        // undo label of the next model load ("" = "Use model <file>")
  bool next_model_no_edit = false; // the next load follows the document (undo/redo): no step
  std::string model_doc_path;      // the document's model_path the loaded model stands for
  double learn_loss_before = std::numeric_limits<double>::quiet_NaN();
  double learn_loss_after = std::numeric_limits<double>::quiet_NaN();

  // Forgets the generated frames and live previews, and the filmstrip's generated pictures
  // (the document's results are the caller's to reset). main_window_generation.cpp.
  void clear_generated();

  // [SECTION] Takes (main_window_takes.cpp)
  std::unique_ptr<project::TakeStore> takes;  // null until the first take or an opened folder
  // An untitled project's takes folder ("" = not made yet). Removed with the window (its
  // project was discarded); after a crash it stays, for recovery. Saving moves the takes out.
  struct SessionTakesFolder {
    QString path;
    SessionTakesFolder() = default;
    SessionTakesFolder(const SessionTakesFolder&) = delete;
    SessionTakesFolder& operator=(const SessionTakesFolder&) = delete;
    ~SessionTakesFolder();  // main_window_takes.cpp
  };
  SessionTakesFolder takes_session;
  // Takes being kept: their PNGs are written on take_writer's one thread (a generation's end
  // must not stall the window), then committed to `takes` here, in the order they were made.
  struct PendingTake {
    project::TakeInfo info;    // reserved in `takes` (id, name, positions)
    QFuture<QString> written;  // "" when the frames are on disk, else why not
  };
  std::deque<PendingTake> pending_takes;
  QThreadPool take_writer;                    // one thread, low priority
  std::function<void()> take_write_observer;  // testing: runs on that thread before a write
  TakeList* take_list = nullptr;
  int compare_a = 0;  // take ids shown side by side / wiped; 0 = not comparing
  int compare_b = 0;
  std::map<int, Frame> compare_a_frames;
  std::map<int, Frame> compare_b_frames;
};

}  // namespace dfs::ui
