// document.cpp — the Document: a Project with a file, undo/redo and load/save, and the atomic
// file write that saving uses.
#include "dfs/project/document.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "dfs/partial_files.h"

namespace dfs::project {

namespace fs = std::filesystem;

// [SECTION] Atomic file write ---------------------------------------------------------------------

void write_file_atomically(const std::string& path, const std::string& text) {
  if (path.empty()) throw Error("cannot save: no file name given");
  const fs::path target(path);
  const fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error("cannot save '" + path + "': the folder '" + dir.string() + "' does not exist");
  if (fs::is_directory(target, ec)) throw Error("cannot save '" + path + "': it is a folder");

  // The temporary file sits in the same folder so that rename() is atomic (same filesystem).
  // Its name says what it is (dfs/partial_files.h); leftovers of killed processes are swept.
  static std::atomic<unsigned> counter{0};
  const std::string tmp = dfs::partial_name(path, counter++);
  dfs::remove_stale_partials(dir, target.filename().string());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) throw Error("cannot save '" + path + "': " + std::strerror(errno));
  auto fail = [&](const std::string& what) {
    const std::string reason = dfs::write_error_text(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error("cannot save '" + path + "': " + what + " failed (" + reason + ")");
  };
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("writing");
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) fail("flushing to disk");
  if (::close(fd) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Error("cannot save '" + path + "': closing failed (" + reason + ")");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const std::string reason = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Error("cannot save '" + path + "': replacing the file failed (" + reason + ")");
  }
  // Make the rename itself durable (best effort: not every filesystem supports it).
  const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
}

// [SECTION] Document ------------------------------------------------------------------------------

Document::Document(Project project) : project_(std::move(project)) {
  validate(project_);
}

bool Document::edit(const std::string& label, const std::function<void(Project&)>& change,
                    const std::string& merge_key) {
  Project next = project_;
  try {
    change(next);
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(label + ": " + e.what());
  }
  // Results follow the timeline's length (an edit that adds frames adds "not generated").
  if (!next.results.generated.empty())
    next.results.generated.resize(static_cast<size_t>(std::max(next.timeline.length(), 0)), false);
  validate(next);
  if (next == project_) return false;

  const bool merge = !merge_key.empty() && merge_open_ && !undo_.empty() &&
                     undo_.back().merge_key == merge_key && redo_.empty();
  if (!merge) {
    undo_.push_back(Step{label, merge_key, std::move(project_)});
    if (undo_.size() > kMaxUndo) undo_.erase(undo_.begin());
  }
  merge_open_ = !merge_key.empty();
  redo_.clear();
  project_ = std::move(next);
  dirty_ = true;
  ++revision_;
  return true;
}

void Document::end_merge() {
  merge_open_ = false;
}

void Document::set_results(Results results) {
  Project next = project_;
  next.results = std::move(results);
  validate(next);
  project_ = std::move(next);
  dirty_ = true;
  ++revision_;
}

void Document::set_takes(TakesRef takes) {
  Project next = project_;
  next.takes = std::move(takes);
  validate(next);
  if (next == project_) return;
  project_ = std::move(next);
  dirty_ = true;
  ++revision_;
}

std::string Document::undo_label() const {
  return undo_.empty() ? "" : undo_.back().label;
}
std::string Document::redo_label() const {
  return redo_.empty() ? "" : redo_.back().label;
}

void Document::apply_snapshot(Project snapshot) {
  // Results are not undone: the generated pixels still exist. Keep them, fitted to the
  // restored timeline's length.
  snapshot.results = project_.results;
  snapshot.takes = project_.takes;  // takes live on disk: undo neither deletes nor revives one
  if (!snapshot.results.generated.empty())
    snapshot.results.generated.resize(static_cast<size_t>(snapshot.timeline.length()), false);
  project_ = std::move(snapshot);
  dirty_ = true;
  ++revision_;
}

bool Document::undo() {
  merge_open_ = false;
  if (undo_.empty()) return false;
  Step step = std::move(undo_.back());
  undo_.pop_back();
  redo_.push_back(Step{step.label, step.merge_key, project_});
  apply_snapshot(std::move(step.before));
  return true;
}

bool Document::redo() {
  merge_open_ = false;
  if (redo_.empty()) return false;
  Step step = std::move(redo_.back());
  redo_.pop_back();
  undo_.push_back(Step{step.label, step.merge_key, project_});
  apply_snapshot(std::move(step.before));
  return true;
}

void Document::clear_history() {
  undo_.clear();
  redo_.clear();
  merge_open_ = false;
}

Document Document::load(const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("cannot open project '" + path + "': no such file");
  if (fs::is_directory(path, ec)) throw Error("cannot open project '" + path + "': it is a folder");
  const auto size = fs::file_size(path, ec);
  constexpr std::uintmax_t kMaxProjectBytes = 256u << 20;  // a million frames of levels fits
  if (ec || size > kMaxProjectBytes)
    throw Error("cannot open project '" + path + "': " + (ec ? ec.message() : "file too large"));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open project '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  Document doc;
  try {
    doc.project_ = project_from_json(text.str());
  } catch (const Error& e) {
    throw Error("cannot open project '" + path + "': " + e.what());
  }
  doc.path_ = path;
  return doc;
}

void Document::save_as(const std::string& path) {
  write_file_atomically(path, to_json(project_));
  path_ = path;
  dirty_ = false;
  ++revision_;
}

void Document::adopt_path(const std::string& path) {
  path_ = path;
  dirty_ = true;
  clear_history();
  ++revision_;
}

void Document::save() {
  if (path_.empty()) throw Error("cannot save: the project has no file name yet (use Save As)");
  save_as(path_);
}

std::string Document::resolve(const std::string& p) const {
  if (p.empty()) return p;
  const fs::path in(p);
  if (in.is_absolute()) return p;
  std::error_code ec;
  const fs::path base =
      path_.empty() ? fs::current_path(ec) : fs::absolute(path_, ec).parent_path();
  return (base / in).lexically_normal().string();
}

}  // namespace dfs::project
