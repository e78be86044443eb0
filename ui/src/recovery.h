// recovery.h — the Studio's crash-recovery records (issue 11, "Never lose work").
//
// Every running Studio that has autosaved keeps one small JSON record in
// <AppDataLocation>/recovery/session-<pid>.json: which project (path, or untitled), which
// autosave file, when (UTC), how many unsaved edits, what it shows (clip, frames), and the PID
// of the Studio that wrote it. A clean close, a save or a discard removes it. A record whose
// PID is no longer a running Studio (a crash, `kill -9`, a power cut) is a session to offer
// back on the next start. Records are written atomically (project::write_file_atomically), so
// a kill during a write leaves the previous record whole.
//
// GUI-thread only; no state of its own beyond the files.
#pragma once

#include <QList>
#include <QString>

#include "dfs/ui/main_window.h"

namespace dfs::ui::recovery {

using Session = MainWindow::RecoverySession;

// <AppDataLocation>/recovery (created when missing). Read on every call, so a test that sets
// XDG_DATA_HOME gets its own.
QString directory();
// Where this process's record goes: directory()/session-<pid>.json.
QString own_record_path();
// The autosave of an untitled document of this process: directory()/untitled-<pid>.dfsproj.autosave.
QString own_untitled_autosave_path();
// The folder beside an autosave that holds its generated frames as PNGs.
QString frames_dir_for(const QString& autosave_path);

// Writes `session` (its record_path is where) atomically. Throws project::Error.
void write_record(const Session& session);
// Every readable record in directory() (unreadable ones are skipped), newest first. Records of
// running Studios are included; `alive` tells which.
struct Entry {
  Session session;
  bool alive = false;  // its PID is a running Studio (this one included)
  bool own = false;    // written by this process
};
QList<Entry> read_records();
// Whether `pid` is a running process of the same program as this one (/proc/<pid>/comm): a
// PID that a dead Studio left and another program now uses is not a Studio.
bool is_running_studio(qint64 pid);
// Removes the record, the autosave it names and that autosave's frames folder (what exists).
void remove_session_files(const Session& session, bool keep_autosave = false);

}  // namespace dfs::ui::recovery
