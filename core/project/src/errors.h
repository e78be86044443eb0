// errors.h — (private) how the project's sources build their Error messages: numbers as text,
// and other libraries' exceptions turned into project::Error.
#pragma once

#include <exception>
#include <sstream>
#include <string>

#include "dfs/project/document.h"

namespace dfs::project::detail {

// A double as a message shows it ("0.25", "1e+12").
inline std::string fmt_double(double v) {
  std::ostringstream os;
  os << v;
  return os.str();
}

// Runs `f`, turning the libraries' own exceptions into project Errors with a prefix, so callers
// catch one type.
template <typename F>
auto translate_errors(const std::string& what, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(what.empty() ? std::string(e.what()) : what + ": " + e.what());
  }
}

}  // namespace dfs::project::detail
