// dfs/ui/main_window.h — the Diffusion Forcing Studio main window.
//
// Owns the document (dfs::project::Document), the source clip's decoder and thumbnails, the
// generated frames, and a worker thread that owns the model (GenerationWorker). Everything the
// menus do is also a public method, so tests and `dfstudio --bench-ui` drive the real window
// the way a person would, without synthetic clicks where a method is clearer.
//
// Threads: every method must be called on the GUI thread. Generation, model loading,
// thumbnails and exports run elsewhere and report back through queued signals; the window
// never blocks on them.
//
// Errors a user can cause (bad clip, model that fails to load, export that cannot be written)
// are reported with report_error(): a dialog (unless StudioOptions::quiet_errors), the status
// bar, last_error() and error_reported(). Nothing is lost and the app keeps running.
#pragma once

#include <QDateTime>
#include <QList>
#include <QMainWindow>
#include <QString>
#include <functional>
#include <map>
#include <memory>

#include "dfs/diffusion/api.h"
#include "dfs/frame.h"
#include "dfs/project/document.h"

namespace dfs::ui {

class ImGuiWidget;

struct StudioOptions {
  QString model_path;         // "" = the shipped demo model (random + a visible note if absent)
  QString clip_path;          // opened at start when set
  bool load_model = true;     // load model_path at start (tests hand a model with use_model)
  bool quiet_errors = false;  // record errors instead of opening dialogs (tests)
  bool autosave = true;       // autosave a dirty document (and keep a recovery record)
  int autosave_ms = 30000;    // at most this long between autosaves of a changed document
  int autosave_edits = 10;    // ... and after this many edits (generated results count)
};

class MainWindow : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(StudioOptions options = {}, QWidget* parent = nullptr);
  ~MainWindow() override;

  // [SECTION] Files
  bool open_clip(const QString& path);  // probes, decodes, lays out "extend"
  bool open_project(const QString& path);
  bool save_project(const QString& path);         // also writes generated frames as PNGs
  bool restore_from_export(const QString& path);  // settings embedded in an exported file
  QString sample_clip_path() const;               // the shipped sample clip ("" if missing)

  // [SECTION] Model
  void load_model(const QString& path);  // asynchronous; model_changed() when done
  void use_model(const diffusion::Model& model, const QString& note);  // hand over a built model
  bool model_ready() const;
  const diffusion::ModelInfo* model_info() const;  // null until a model is loaded

  // [SECTION] Editing (each is one undo step; false + report_error on invalid input)
  bool edit_project(const QString& label, const std::function<void(project::Project&)>& change);
  void toggle_pin(int position);
  void set_selection(int first, int last);  // inclusive; first > last clears
  bool undo();
  bool redo();

  // [SECTION] Generation
  bool start_generation();  // false (and an error) if it cannot start
  void stop_generation();   // takes effect within one sampling step
  bool is_generating() const;
  const std::map<int, Frame>& generated_frames() const;  // final generated frames by position
  int preview_updates() const;                           // live previews shown so far

  // [SECTION] Playback and viewing
  void seek(int position);
  int current_position() const;
  void play(int direction = 1);
  void pause();
  bool is_playing() const;
  void set_view_mode(int mode);  // 0 result, 1 original, 2 side by side, 3 A/B wipe

  // [SECTION] Export
  bool start_export(const project::ExportSettings& settings);  // asynchronous
  bool is_exporting() const;

  const project::Document& document() const;
  QString last_error() const;
  ImGuiWidget* heat_map_widget() const;
  ImGuiWidget* noise_curve_widget() const;

  // [SECTION] Recovery — autosave, crash recovery, a clip that moved (main_window_recovery.cpp)
  // A dirty document is autosaved atomically to "<project>.dfsproj.autosave" (untitled:
  // <app data>/recovery/untitled-<pid>.dfsproj.autosave), never to the project file itself,
  // with a session record in <app data>/recovery/ (ui/src/recovery.h) that a clean close,
  // save or discard removes. A session whose Studio is no longer running is recoverable.
  struct RecoverySession {
    QString record_path;    // the record in <app data>/recovery/
    QString project_path;   // the project it stands for; "" = untitled
    QString autosave_path;  // the autosaved document
    QDateTime saved_utc;    // when the autosave was written
    int edits = 0;          // edits not saved to the project file
    QString clip_name;      // its clip's file name
    int frames = 0;         // timeline positions
    int generated = 0;      // generated frames (autosaved as PNGs beside the autosave)
    qint64 pid = 0;         // the Studio that wrote it
  };
  QList<RecoverySession> recoverable_sessions() const;  // crashed sessions, newest first
  // Opens session `index` as a dirty document that points at its project's path (Save writes
  // there; the project file stays untouched until then). False + report_error if it cannot.
  bool recover_session(int index);
  bool discard_session(int index);  // deletes its autosave and record
  // Offers the recoverable sessions in a dialog (Recover / Discard / Later); under
  // quiet_errors it only reports how many there are (tests call the methods above).
  void check_recovery();
  bool autosave_now();  // autosave + record now (when dirty); false if the write failed
  QString autosave_path() const;       // this session's autosave ("" before the first)
  int edits_since_autosave() const;
  void set_autosave_interval(int ms);  // the preference; 0 = no timed autosave
  // Points the project at its clip's new place, checking that frame count and size match
  // (a warning if not); one undo step. open_project asks for it when the clip is missing.
  bool relocate_clip(const QString& new_path);
  QString missing_clip() const;  // the clip path the open project names but is not there

 signals:
  void model_changed(bool ok);
  void clip_opened(const QString& path);
  void generation_progressed(int step, int total_steps);
  void generation_finished(bool cancelled);
  void generation_failed(const QString& message);
  void export_finished(bool ok, const QString& path_or_error);
  void error_reported(const QString& message);

 protected:
  void closeEvent(QCloseEvent* event) override;
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;

 private:
  struct State;  // main_window_state.h, which also says which file holds what
  std::unique_ptr<State> s_;

  void build_ui();
  void build_menus();
  void show_timeline_menu(int position, const QPoint& global_pos);
  void connect_worker();
  void end_run();  // a run finished, stopped or failed: show what arrived, unlock the controls
  void on_model_loaded(const diffusion::ModelInfo& info, const QString& path, const QString& note);
  void refresh_all();
  void refresh_plan(const project::Project* override_project = nullptr);
  void refresh_flags();
  void flush_results();
  void refresh_viewer();
  void refresh_status();
  void report_error(const QString& title, const QString& message);
  bool attach_clip_media(const QString& path);
  void add_recent(const QString& path);
  void rebuild_recent_menu();
  void show_export_dialog();
  void open_clip_dialog();
  void step_playback();
  void autosave();
  bool confirm_discard();
  // Recovery (main_window_recovery.cpp).
  void install_document(project::Document doc);  // clip media, cached frames, refresh
  void note_document_change();                   // counts edits; autosaves every N
  void forget_own_session();                     // clean close/save: autosave + record go
  void ask_for_missing_clip();
};

}  // namespace dfs::ui
