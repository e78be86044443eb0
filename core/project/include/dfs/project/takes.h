// dfs/project/takes.h — the take store: every finished (or stopped with frames) generation kept
// as a take, its frames as PNG files on disk and its description in one JSON index.
//
// Layout of a takes folder (the Studio picks it: "<project>_takes/" beside a saved project, a
// per-session folder for an untitled one; Project::takes.folder records it):
//   takes.json                 the index: {"format": "dfstudio-takes", "format_version": 1,
//                              "next_id": N, "takes": [ {id, name, starred, created, seed,
//                              model_path, model_name, seconds, cancelled, length, positions,
//                              settings: {...the project's generation settings...}}, ... ]}
//   take_0001/frame_000012.png one PNG per generated position of take 1 (bit-exact on read-back)
//
// Pixels are never held for all takes: load_frames() reads one take when it is shown.
//
// Safety: the index is written atomically (write_file_atomically). Adding writes the frames
// first and the index last; deleting writes the index first and removes the files last, so a
// crash at any moment leaves at worst an orphan folder, never an index naming missing files.
// A bad or missing index throws Error from open() and changes nothing on disk.
//
// Thread-safety: none; one thread (the Studio's GUI thread) owns a TakeStore. Only the static
// write_frames() and write_index_text() (they touch no store) may run on another thread: the
// Studio writes a take's PNGs and index there (reserve, index_with; write_frames and
// write_index_text elsewhere; adopt), so its window never waits for the disk.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dfs/frame.h"
#include "dfs/project/document.h"

namespace dfs::project {

inline constexpr const char* kTakesFormat = "dfstudio-takes";
inline constexpr int kTakesFormatVersion = 1;
inline constexpr const char* kTakesIndexName = "takes.json";

struct TakeInfo {
  int id = 0;        // > 0, unique in its store, never reused
  std::string name;  // "Take 3" unless renamed
  bool starred = false;
  std::string created;          // UTC, ISO 8601 ("2026-12-06T02:14:31Z"); add() fills it if ""
  uint64_t seed = 0;            // seed the frames were made with
  std::string model_path;       // the project's model_path then ("" = the demo model)
  std::string model_name;       // ModelInfo::name
  GenerationSettings settings;  // the project's generation settings of the run
  double seconds = 0;           // wall time of the run
  bool cancelled = false;       // stopped before the end (the take holds what finished)
  int length = 0;               // timeline length when it was made
  std::vector<int> positions;   // timeline positions it has a frame for, ascending
  friend bool operator==(const TakeInfo&, const TakeInfo&) = default;
};

class TakeStore {
 public:
  // Opens the store in `folder` (which need not exist yet: then it is empty and is created by
  // the first add()). Throws Error, changing nothing, when the index cannot be read or names
  // invalid data, or when the index is missing although the folder holds take folders.
  static TakeStore open(const std::string& folder);

  const std::string& folder() const { return folder_; }
  std::string index_path() const;
  const std::vector<TakeInfo>& takes() const { return takes_; }  // oldest first
  int size() const { return static_cast<int>(takes_.size()); }
  const TakeInfo* find(int id) const;  // null if there is no such take
  int index_of(int id) const;          // position in takes(), -1 if none

  // Keeps `frames` (position -> picture; positions < 0 are rejected) as a new take described
  // by `info` (id, positions and, if empty, name and created are filled in). Writes the PNGs,
  // then the index. Returns the new take. Throws Error and leaves the store as it was.
  const TakeInfo& add(TakeInfo info, const std::map<int, Frame>& frames);

  // add() in three parts, for a caller that writes the frames on another thread:
  //   reserve()       validates `frames` and fills in `info` (a new id, name, created, positions,
  //                   length) without touching the disk; throws Error for invalid frames;
  //   write_frames()  writes the PNGs into take_dir(info.id), on any thread; throws Error after
  //                   removing that folder;
  //   commit()        adds the take to the index (written at once); throws Error, removing the
  //                   take's folder and leaving the store as it was.
  // A reserved id is never given out again, even if the take is never committed. Until commit()
  // the store does not list the take; other changes (rename, star, remove) meanwhile are fine.
  TakeInfo reserve(TakeInfo info, const std::map<int, Frame>& frames);
  static void write_frames(const std::string& take_dir, const std::map<int, Frame>& frames);
  const TakeInfo& commit(const TakeInfo& info);
  // commit() with the index written elsewhere: index_with() is the index text once the reserved
  // `info` is listed (as the store is now); write_index_text() writes such a text into a takes
  // folder, atomically, on any thread (throws Error); adopt() then lists the take without
  // touching the disk. No other index write may come between index_with() and adopt().
  std::string index_with(const TakeInfo& info) const;
  static void write_index_text(const std::string& folder, const std::string& text);
  const TakeInfo& adopt(const TakeInfo& info);
  // Reads a take's frames back. Throws Error naming the missing or unreadable file.
  std::map<int, Frame> load_frames(int id) const;
  std::string frame_path(int id, int position) const;  // folder/take_0001/frame_000012.png
  std::string take_dir(int id) const;                  // folder/take_0001

  // Each rewrites the index; throws Error for an unknown id or an empty name.
  void rename(int id, const std::string& name);
  void set_starred(int id, bool starred);
  void remove(int id);  // index first, then the take's files

  // Copies every take (files and index) into `folder`, which must not exist or be empty, and
  // returns the store there. Throws Error; a failed copy removes what it wrote.
  TakeStore copy_to(const std::string& folder) const;

 private:
  void write_index() const;

  std::string folder_;
  int next_id_ = 1;
  std::vector<TakeInfo> takes_;
};

// The current UTC time as ISO 8601 ("2026-12-06T02:14:31Z").
std::string utc_timestamp();

}  // namespace dfs::project
