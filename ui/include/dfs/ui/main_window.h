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
#include <QImage>
#include <QList>
#include <QMainWindow>

class QDialog;
#include <QString>
#include <QStringList>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>

#include "dfs/diffusion/api.h"
#include "dfs/frame.h"
#include "dfs/project/document.h"
#include "dfs/ui/preferences.h"

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
  bool restore_layout = true;  // open at the last window geometry and dock layout (QSettings)
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
  // Benchmarks (dfs/ui/bench.h): the name of the longest piece of work the window did on its
  // thread since the last call ("show previews and results", "the run's end", "list a written
  // take", "autosave", ...; "" = none timed) and its milliseconds in *ms (may be null).
  QString take_longest_work(double* ms);

  // [SECTION] Playback and viewing
  void seek(int position);
  int current_position() const;
  void play(int direction = 1);
  void pause();
  bool is_playing() const;
  void set_view_mode(int mode);  // 0 result, 1 original, 2 side by side, 3 A/B wipe

  // [SECTION] Export
  bool start_export(const project::ExportSettings& settings);  // asynchronous
  void cancel_export();  // takes effect within a frame; nothing is left under the final name
  bool is_exporting() const;

  const project::Document& document() const;
  QString last_error() const;
  ImGuiWidget* heat_map_widget() const;
  ImGuiWidget* noise_curve_widget() const;

  // [SECTION] Preferences, schedule presets, noise-curve clipboard (main_window_preferences.cpp)
  Preferences preferences() const;                   // as last applied
  void apply_preferences(const Preferences& prefs);  // invalid: report_error, nothing changes
  bool edit_preferences();           // Edit > Preferences... (modal); true if OK applied them
  int threads_in_force() const;      // generation threads the worker reported (0 = not yet)
  int autosave_interval_ms() const;  // 0 = autosave off
  project::ExportSettings export_dialog_defaults() const;  // what File > Export offers first
  QString presets_dir() const;                             // <app data>/presets
  QStringList schedule_presets() const;                    // preset names there, sorted
  bool save_schedule_preset(const QString& name);          // the project's schedule + noise curve
  bool load_schedule_preset(const QString& name_or_path);  // one undo step; false + error
  bool delete_schedule_preset(const QString& name);
  bool copy_noise_curve();   // the selection's levels (all when none) to the clipboard as JSON
  bool paste_noise_curve();  // clipboard levels onto the selection (all when none), resampled

  // [SECTION] Takes (main_window_takes.cpp). Every generation that finishes, or is stopped
  // with frames, is kept as a take on disk ("<project>_takes/" beside a saved project, a
  // per-session folder for an untitled one). `index` counts takes in the Takes list's order,
  // oldest first. Each returns false (and reports an error) on an invalid index or failure.
  int take_count() const;
  QStringList take_names() const;
  int current_take() const;  // index of the take shown, -1 if none
  bool take_starred(int index) const;
  QString takes_folder() const;  // absolute; "" until the first take
  // A finished run's take is written on a background thread: it is listed (take_count(), the
  // Takes dock) once its frames are on disk, and take_recorded() says so. Opening or saving a
  // project, and closing the window, first wait for takes still being written.
  bool is_writing_take() const;
  // Testing: `observer` runs on the thread that writes each take's frames, just before it
  // writes them (a test can check that thread, or hold the write back). Null = none.
  void set_take_write_observer(std::function<void()> observer);
  bool switch_take(int index);   // its frames become the shown (generated) frames
  bool rename_take(int index, const QString& name);
  bool delete_take(int index);  // asks first unless quiet_errors; deletes its files
  bool star_take(int index, bool starred);
  // Shows take `a` on side A and take `b` on side B; view_mode 2 side by side, 3 A/B wipe.
  // Ends when the view mode goes back to Result or Original, or with stop_comparing().
  bool compare_takes(int a, int b, int view_mode);
  void stop_comparing();
  bool export_take(int index, const project::ExportSettings& settings);  // shows it, exports
  // Shows the take, pins its frames and adds as many new frames again after the timeline's
  // end: the next generation continues from the take.
  bool use_take_as_context(int index);
  QImage viewer_image(int side) const;  // the viewer's picture: 0 = side A, 1 = side B

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

  // [SECTION] Learning (main_window_learn.cpp): Model > Learn this clip... fine-tunes the
  // current model on the open clip on a low-priority thread; when it ends (budget spent or
  // Cancel, which keeps the weights so far) <project or clip stem>.learned.safetensors becomes
  // the project's model as one undo step, and learning_finished() reports it.
  bool start_learning(double minutes);   // false + report_error if it cannot start
  void stop_learning();                  // Cancel: checkpoint, write the model so far, use it
  bool is_learning() const;
  QString learned_model_path() const;    // where this project's learned model goes ("" = none)
  bool has_pending_learning() const;     // an interrupted run (crash, kill) of this project
  bool resume_learning();                // continue it for the budget it had left
  void discard_learning();               // forget it (its checkpoint is deleted)
  void show_learn_dialog();
  QDialog* learn_dialog() const;         // null until first shown or started
  double learning_loss_before() const;   // held-out loss of the last finished run (NaN if none)
  double learning_loss_after() const;

 signals:
  void model_changed(bool ok);
  void clip_opened(const QString& path);
  void generation_progressed(int step, int total_steps);
  // Live previews (the sampler's current x0 estimates, labelled "live preview") reached the
  // filmstrip and viewer. A run's first one is shown as soon as it arrives; later ones at most
  // every 100 ms, together with the final frames that arrived meanwhile.
  void preview_shown();
  void generation_finished(bool cancelled);
  void take_recorded(bool ok);  // a run's take was written and listed (false: an error said why)
  void generation_failed(const QString& message);
  void export_finished(bool ok, const QString& path_or_error);
  void error_reported(const QString& message);
  void learning_finished(bool ok, const QString& model_path_or_error);  // [SECTION] Learning

 protected:
  void closeEvent(QCloseEvent* event) override;
  void dragEnterEvent(QDragEnterEvent* event) override;
  void dropEvent(QDropEvent* event) override;

 private:
  struct State;  // main_window_state.h, which also says which file holds what
  std::unique_ptr<State> s_;

  void build_ui();
  void restore_layout();
  void save_layout() const;
  void build_menus();
  void show_timeline_menu(int position, const QPoint& global_pos);
  void connect_worker();
  void end_run();  // a run finished, stopped or failed: show what arrived, unlock the controls
  void on_model_loaded(const diffusion::ModelInfo& info, const QString& path, const QString& note);
  void refresh_all();
  void refresh_plan(const project::Project* override_project = nullptr);
  void refresh_flags();
  void flush_results();
  void schedule_display();  // flush_results soon: at once after a quiet spell, else batched
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
  // Takes (private; main_window_takes.cpp).
  void build_takes_dock();
  void build_takes_menu();
  void record_take(std::uint64_t seed, double seconds, bool cancelled, int frames_made);
  // Lists the takes whose frames are written, in order; with `wait`, waits for all of them
  // first. `quiet`: no dialogs or widgets (the window is being destroyed).
  void commit_written_takes(bool wait, bool quiet = false);
  void attach_project_takes();               // after a project was opened
  bool carry_takes_to(const QString& path);  // before saving the project as `path`
  void refresh_takes();
  void apply_take_compare(int position, QImage& a, QImage& b);  // refresh_viewer's hook
  int take_id_at(int index);                                    // 0 (and an error) if none

  // Recovery (main_window_recovery.cpp).
  void install_document(project::Document doc);  // clip media, cached frames, refresh
  void note_document_change();                   // counts edits; autosaves every N
  void autosave_soon();             // the automatic autosaves: new frames written off-thread
  void choose_autosave_target();    // s_->autosave_file for the document as it is now
  void wait_for_autosave_frames();  // frames an autosave is writing are on disk after this
  void forget_own_session();                     // clean close/save: autosave + record go
  void ask_for_missing_clip();

  // [SECTION] Learning (private; main_window_learn.cpp, main_window_model.cpp)
  void init_learning();
  void offer_pending_learning();
  bool run_learning(double minutes, bool resume);
  void follow_document_model();  // after undo/redo: load the model the document names
};

}  // namespace dfs::ui
