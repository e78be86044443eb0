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

#include <QMainWindow>

class QDialog;
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
  bool autosave = true;       // periodic autosave of a dirty document
  int autosave_ms = 120000;   // its interval
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
  void generation_finished(bool cancelled);
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
  // [SECTION] Learning (private; main_window_learn.cpp, main_window_model.cpp)
  void init_learning();
  void offer_pending_learning();
  bool run_learning(double minutes, bool resume);
  void follow_document_model();  // after undo/redo: load the model the document names
};

}  // namespace dfs::ui
