// metadata.cpp — generation-settings sidecars and read-back (container tag via src/ffmpeg).
#include "dfs/media/metadata.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "dfs/media/error.h"
#include "dfs/partial_files.h"

namespace dfs::media {

namespace ffmpeg {
std::string read_comment_tag(const std::string& path);  // src/ffmpeg/input.cpp
}

namespace fs = std::filesystem;

namespace {
bool is_json(const std::string& text) {
  return !text.empty() && nlohmann::json::accept(text);
}
}  // namespace

std::string sidecar_path(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && (p.back() == '/' || p.back() == '\\')) p.pop_back();
  return p + ".json";
}

std::optional<std::string> read_generation_metadata(const std::string& path) {
  std::error_code ec;
  if (fs::is_regular_file(path, ec)) {
    const std::string tag = ffmpeg::read_comment_tag(path);
    if (is_json(tag)) return tag;
  }
  const std::string side = sidecar_path(path);
  if (!fs::is_regular_file(side, ec)) return std::nullopt;
  if (fs::file_size(side, ec) > (64u << 20)) return std::nullopt;  // not ours: too big
  std::ifstream in(side, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  std::string json = text.str();
  if (!is_json(json)) return std::nullopt;
  return json;
}

void write_sidecar(const std::string& path, const std::string& json) {
  const std::string side = sidecar_path(path);
  const std::string tmp = dfs::partial_name(side);
  dfs::remove_stale_partials(fs::path(side).parent_path(), fs::path(side).filename().string());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out)
      throw Error(side, std::string("cannot write the metadata sidecar: ") + std::strerror(errno));
    out << json;
    out.flush();
    if (!out) throw Error(side, "cannot write the metadata sidecar (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, side, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(side, "cannot move the metadata sidecar into place: " + ec.message());
  }
}

}  // namespace dfs::media
