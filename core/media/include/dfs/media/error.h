// dfs/media/error.h — the one exception type of dfs_media.
//
// Every failure a user can cause (missing file, damaged stream, unwritable folder, a setting
// the encoder cannot honour) is thrown as dfs::media::Error. what() is a complete sentence a
// person can act on and names the file: "cannot open 'clip.mp4': no video stream (audio only)".
#pragma once

#include <stdexcept>
#include <string>

namespace dfs::media {

class Error : public std::runtime_error {
 public:
  Error(std::string path, const std::string& problem)
      : std::runtime_error(path.empty() ? problem : "'" + path + "': " + problem),
        path_(std::move(path)),
        problem_(problem) {}

  const std::string& path() const { return path_; }        // file concerned ("" if none)
  const std::string& problem() const { return problem_; }  // message without the path

 private:
  std::string path_;
  std::string problem_;
};

}  // namespace dfs::media
