// takes.cpp — see dfs/project/takes.h.
#include "dfs/project/takes.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "dfs/media/decoder.h"
#include "dfs/media/encoder.h"
#include "errors.h"
#include "json_io.h"

namespace dfs::project {

namespace fs = std::filesystem;
using detail::json;
using detail::translate_errors;

namespace {

std::string take_dir_name(int id) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "take_%04d", id);
  return buf;
}

std::string frame_file_name(int position) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "frame_%06d.png", position);
  return buf;
}

json take_to_json(const TakeInfo& t) {
  return json{{"id", t.id},
              {"name", t.name},
              {"starred", t.starred},
              {"created", t.created},
              {"seed", t.seed},
              {"model_path", t.model_path},
              {"model_name", t.model_name},
              {"seconds", t.seconds},
              {"cancelled", t.cancelled},
              {"length", t.length},
              {"positions", t.positions},
              {"settings", detail::settings_to_json_object(t.settings)}};
}

// Typed reads of one index entry; each error names the field ("takes[2].seed must be ...").
int need_int(const json& obj, const std::string& where, const char* key, int min_value) {
  const json& v = detail::need_member(obj, where, key);
  if (!v.is_number_integer() || v.get<long long>() < min_value || v.get<long long>() > INT32_MAX)
    throw Error(where + "." + key + " must be an integer >= " + std::to_string(min_value) +
                " (got " + v.dump() + ")");
  return v.get<int>();
}

std::string need_string(const json& obj, const std::string& where, const char* key) {
  const json& v = detail::need_member(obj, where, key);
  if (!v.is_string()) throw Error(where + "." + key + " must be a string (got " + v.dump() + ")");
  return v.get<std::string>();
}

bool need_bool(const json& obj, const std::string& where, const char* key) {
  const json& v = detail::need_member(obj, where, key);
  if (!v.is_boolean()) throw Error(where + "." + key + " must be true or false");
  return v.get<bool>();
}

TakeInfo take_from_json(const json& j, const std::string& where) {
  if (!j.is_object()) throw Error(where + " must be an object");
  TakeInfo t;
  t.id = need_int(j, where, "id", 1);
  t.name = need_string(j, where, "name");
  t.starred = need_bool(j, where, "starred");
  t.created = need_string(j, where, "created");
  const json& seed = detail::need_member(j, where, "seed");
  if (!seed.is_number_unsigned() && !(seed.is_number_integer() && seed.get<long long>() >= 0))
    throw Error(where + ".seed must be a non-negative integer");
  t.seed = seed.get<uint64_t>();
  t.model_path = need_string(j, where, "model_path");
  t.model_name = need_string(j, where, "model_name");
  const json& seconds = detail::need_member(j, where, "seconds");
  if (!seconds.is_number() || seconds.get<double>() < 0)
    throw Error(where + ".seconds must be a number >= 0");
  t.seconds = seconds.get<double>();
  t.cancelled = need_bool(j, where, "cancelled");
  t.length = need_int(j, where, "length", 0);
  const json& positions = detail::need_member(j, where, "positions");
  if (!positions.is_array()) throw Error(where + ".positions must be an array");
  for (size_t i = 0; i < positions.size(); ++i) {
    const json& v = positions[i];
    if (!v.is_number_integer() || v.get<long long>() < 0 || v.get<long long>() >= t.length)
      throw Error(where + ".positions[" + std::to_string(i) + "] must be a position in 0.." +
                  std::to_string(t.length - 1) + " (got " + v.dump() + ")");
    t.positions.push_back(v.get<int>());
  }
  std::sort(t.positions.begin(), t.positions.end());
  t.positions.erase(std::unique(t.positions.begin(), t.positions.end()), t.positions.end());
  t.settings = detail::settings_from_json_object(detail::need_member(j, where, "settings"),
                                                 where + ".settings");
  return t;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string utc_timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

TakeStore TakeStore::open(const std::string& folder) {
  if (folder.empty()) throw Error("takes: no folder given");
  TakeStore store;
  store.folder_ = folder;
  const std::string index = store.index_path();
  std::error_code ec;
  if (!fs::exists(index, ec)) {
    // No index: fine for a new (or empty) folder; take folders without one are not ours to
    // forget (or overwrite), so say so and leave them.
    int orphans = 0;
    if (fs::is_directory(folder, ec))
      for (const auto& entry : fs::directory_iterator(folder, ec))
        if (entry.is_directory() && entry.path().filename().string().rfind("take_", 0) == 0)
          ++orphans;
    if (orphans > 0)
      throw Error("the takes index '" + index + "' is missing, but '" + folder + "' holds " +
                  std::to_string(orphans) +
                  " take folder(s); nothing was changed (restore takes.json or move the folder)");
    return store;
  }
  try {
    const json j = detail::parse_object(read_text(index), "the takes index");
    const json* format = j.contains("format") ? &j.at("format") : nullptr;
    if (!format || !format->is_string() || format->get<std::string>() != kTakesFormat)
      throw Error(std::string("it is not a takes index (no \"format\": \"") + kTakesFormat + "\")");
    const int version = need_int(j, "takes", "format_version", 1);
    if (version > kTakesFormatVersion)
      throw Error("it was written by a newer Diffusion Forcing Studio (format version " +
                  std::to_string(version) + ")");
    store.next_id_ = need_int(j, "takes", "next_id", 1);
    const json& list = detail::need_member(j, "takes", "takes");
    if (!list.is_array()) throw Error("takes.takes must be an array");
    for (size_t i = 0; i < list.size(); ++i) {
      TakeInfo t = take_from_json(list[i], "takes[" + std::to_string(i) + "]");
      if (store.find(t.id))
        throw Error("takes[" + std::to_string(i) + "].id " + std::to_string(t.id) +
                    " is used twice");
      store.next_id_ = std::max(store.next_id_, t.id + 1);
      store.takes_.push_back(std::move(t));
    }
  } catch (const Error& e) {
    throw Error("cannot read the takes index '" + index + "': " + e.what() +
                "; the takes' files are left as they are");
  }
  return store;
}

std::string TakeStore::index_path() const {
  return (fs::path(folder_) / kTakesIndexName).string();
}

std::string TakeStore::take_dir(int id) const {
  return (fs::path(folder_) / take_dir_name(id)).string();
}

std::string TakeStore::frame_path(int id, int position) const {
  return (fs::path(take_dir(id)) / frame_file_name(position)).string();
}

const TakeInfo* TakeStore::find(int id) const {
  const int i = index_of(id);
  return i < 0 ? nullptr : &takes_[static_cast<size_t>(i)];
}

int TakeStore::index_of(int id) const {
  for (size_t i = 0; i < takes_.size(); ++i)
    if (takes_[i].id == id) return static_cast<int>(i);
  return -1;
}

namespace {

std::string index_text(const std::vector<TakeInfo>& takes, const TakeInfo* extra, int next_id) {
  json list = json::array();
  for (const TakeInfo& t : takes) list.push_back(take_to_json(t));
  if (extra != nullptr) list.push_back(take_to_json(*extra));
  const json j{{"format", kTakesFormat},
               {"format_version", kTakesFormatVersion},
               {"next_id", next_id},
               {"takes", std::move(list)}};
  return j.dump(2) + "\n";
}

}  // namespace

void TakeStore::write_index() const {
  write_file_atomically(index_path(), index_text(takes_, nullptr, next_id_));
}

std::string TakeStore::index_with(const TakeInfo& info) const {
  return index_text(takes_, &info, next_id_);
}

void TakeStore::write_index_text(const std::string& folder, const std::string& text) {
  write_file_atomically((fs::path(folder) / kTakesIndexName).string(), text);
}

const TakeInfo& TakeStore::adopt(const TakeInfo& info) {
  if (info.id <= 0 || info.id >= next_id_ || find(info.id))
    throw Error("takes: take " + std::to_string(info.id) + " was not reserved in this store");
  takes_.push_back(info);
  return takes_.back();
}

const TakeInfo& TakeStore::add(TakeInfo info, const std::map<int, Frame>& frames) {
  info = reserve(std::move(info), frames);
  try {
    write_frames(take_dir(info.id), frames);
    return commit(info);
  } catch (...) {
    if (next_id_ == info.id + 1) --next_id_;  // nothing else took an id meanwhile
    throw;
  }
}

TakeInfo TakeStore::reserve(TakeInfo info, const std::map<int, Frame>& frames) {
  if (frames.empty()) throw Error("takes: a take needs at least one frame");
  info.positions.clear();
  for (const auto& [position, frame] : frames) {
    if (position < 0) throw Error("takes: frame position " + std::to_string(position) + " < 0");
    if (frame.empty()) throw Error("takes: frame " + std::to_string(position) + " is empty");
    info.positions.push_back(position);
  }
  info.id = next_id_++;
  if (info.name.empty()) info.name = "Take " + std::to_string(info.id);
  if (info.created.empty()) info.created = utc_timestamp();
  info.length = std::max(info.length, info.positions.back() + 1);
  return info;
}

void TakeStore::write_frames(const std::string& dir, const std::map<int, Frame>& frames) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error("takes: cannot create '" + dir + "': " + ec.message());
  try {
    for (const auto& [position, frame] : frames)
      translate_errors("takes: writing frame " + std::to_string(position), [&] {
        media::write_png((fs::path(dir) / frame_file_name(position)).string(), frame);
      });
  } catch (...) {
    fs::remove_all(dir, ec);
    throw;
  }
}

const TakeInfo& TakeStore::commit(const TakeInfo& info) {
  if (info.id <= 0 || info.id >= next_id_ || find(info.id))
    throw Error("takes: take " + std::to_string(info.id) + " was not reserved in this store");
  takes_.push_back(info);
  try {
    write_index();
  } catch (...) {
    takes_.pop_back();
    std::error_code ec;
    fs::remove_all(take_dir(info.id), ec);
    throw;
  }
  return takes_.back();
}

std::map<int, Frame> TakeStore::load_frames(int id) const {
  const TakeInfo* t = find(id);
  if (!t) throw Error("takes: there is no take " + std::to_string(id));
  std::map<int, Frame> out;
  for (int position : t->positions) {
    const std::string path = frame_path(id, position);
    std::error_code ec;
    if (!fs::exists(path, ec))
      throw Error("take '" + t->name + "' is missing its frame file '" + path + "'");
    out[position] = translate_errors("take '" + t->name + "': cannot read '" + path + "'",
                                     [&] { return media::read_image(path); });
  }
  return out;
}

void TakeStore::rename(int id, const std::string& name) {
  const int i = index_of(id);
  if (i < 0) throw Error("takes: there is no take " + std::to_string(id));
  if (name.find_first_not_of(" \t\r\n") == std::string::npos)
    throw Error("a take's name cannot be empty");
  std::vector<TakeInfo> before = takes_;
  takes_[static_cast<size_t>(i)].name = name;
  try {
    write_index();
  } catch (...) {
    takes_ = std::move(before);
    throw;
  }
}

void TakeStore::set_starred(int id, bool starred) {
  const int i = index_of(id);
  if (i < 0) throw Error("takes: there is no take " + std::to_string(id));
  std::vector<TakeInfo> before = takes_;
  takes_[static_cast<size_t>(i)].starred = starred;
  try {
    write_index();
  } catch (...) {
    takes_ = std::move(before);
    throw;
  }
}

void TakeStore::remove(int id) {
  const int i = index_of(id);
  if (i < 0) throw Error("takes: there is no take " + std::to_string(id));
  std::vector<TakeInfo> before = takes_;
  takes_.erase(takes_.begin() + i);
  try {
    write_index();
  } catch (...) {
    takes_ = std::move(before);
    throw;
  }
  std::error_code ec;
  fs::remove_all(take_dir(id), ec);  // after the index: at worst an orphan folder remains
}

TakeStore TakeStore::copy_to(const std::string& folder) const {
  std::error_code ec;
  if (fs::exists(folder, ec) && !fs::is_empty(folder, ec))
    throw Error("cannot copy the takes to '" + folder +
                "': that folder already exists and is not empty");
  const bool existed = fs::exists(folder, ec);
  fs::create_directories(folder, ec);
  if (ec) throw Error("cannot copy the takes to '" + folder + "': " + ec.message());
  TakeStore out;
  out.folder_ = folder;
  out.next_id_ = next_id_;
  try {
    for (const TakeInfo& t : takes_) {
      fs::copy(take_dir(t.id), out.take_dir(t.id), fs::copy_options::recursive, ec);
      if (ec) throw Error("cannot copy take '" + t.name + "' to '" + folder + "': " + ec.message());
    }
    out.takes_ = takes_;
    out.write_index();
  } catch (...) {
    if (existed) {
      for (const auto& entry : fs::directory_iterator(folder, ec)) fs::remove_all(entry, ec);
    } else {
      fs::remove_all(folder, ec);
    }
    throw;
  }
  return out;
}

}  // namespace dfs::project
