// dfs/partial_files.h — the one naming rule for files while they are being written.
//
// Every file the project writes (project, autosave, model, checkpoint, export, PNG frame) is
// written first as "<final>.partial-<pid>[-<serial>]" in the same folder and renamed over the
// final name only when complete, so a kill, a crash or a full disk never leaves a half file
// under the final name. A killed process leaves its partial file, recognisable by that name;
// the next write of the same final name removes partial files whose process no longer exists.
// Header-only, no dependencies beyond POSIX: every layer uses it.
#pragma once

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>

namespace dfs {

inline std::string partial_name(const std::string& final_path) {
  return final_path + ".partial-" + std::to_string(::getpid());
}
inline std::string partial_name(const std::string& final_path, unsigned serial) {
  return partial_name(final_path) + "-" + std::to_string(serial);
}

// The pid in a partial file's name, or -1 if `name` is not "<stem>.partial-<pid>[-<serial>]"
// with <stem> equal to `stem` (whole_stem) or starting with it.
inline long partial_file_pid(const std::string& name, const std::string& stem, bool whole_stem) {
  static const std::string marker = ".partial-";
  const size_t mark = name.rfind(marker);
  if (mark == std::string::npos || name.compare(0, stem.size(), stem) != 0 ||
      (whole_stem && mark != stem.size()) || mark < stem.size())
    return -1;
  std::string digits = name.substr(mark + marker.size());
  if (const size_t dash = digits.find('-'); dash != std::string::npos) {
    const std::string serial = digits.substr(dash + 1);
    if (serial.empty() || serial.find_first_not_of("0123456789") != std::string::npos) return -1;
    digits.resize(dash);
  }
  if (digits.empty() || digits.size() > 9 ||
      digits.find_first_not_of("0123456789") != std::string::npos)
    return -1;
  return std::strtol(digits.c_str(), nullptr, 10);
}

// Removes the partial files of `stem` in `dir` whose writing process is gone. Partial files of
// live processes (this one included) are left alone; errors are ignored (a best-effort sweep).
inline int remove_stale_partials(const std::filesystem::path& dir_in, const std::string& stem,
                                 bool whole_stem = true) {
  namespace fs = std::filesystem;
  const fs::path dir = dir_in.empty() ? fs::path(".") : dir_in;
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const long pid = partial_file_pid(it->path().filename().string(), stem, whole_stem);
    if (pid <= 0 || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // alive (or EPERM)
    std::error_code ignored;
    if (fs::remove(it->path(), ignored)) ++removed;
  }
  return removed;
}

// strerror(err), with what to do about the errors a full disk gives.
inline std::string write_error_text(int err) {
  std::string text = std::strerror(err);
  if (err == ENOSPC || err == EDQUOT)
    text += " — the disk is full; free some space and try again";
  else if (err == EFBIG)
    text += " — the file-size limit was reached (ulimit -f, or the filesystem's largest file)";
  return text;
}

}  // namespace dfs
