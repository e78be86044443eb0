// fuzz_project.cpp — libFuzzer target for the project file (.dfsproj) and settings readers.
//
// Contract under test: any byte string given to project_from_json or settings_from_json either
// parses into a valid value or throws dfs::project::Error — no crash, no other exception, no
// undefined behaviour. A project that parses must survive a round trip unchanged (what the
// Studio saves is what it loads). Built by packaging/fuzz.sh (clang, -DDFS_BUILD_FUZZERS=ON);
// seeds in corpus/project/.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "dfs/project/document.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace dp = dfs::project;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const dp::Project p = dp::project_from_json(text);
    dp::validate(p);  // what the reader returns is valid
    const std::string saved = dp::to_json(p);
    const dp::Project q = dp::project_from_json(saved);
    if (!(q == p) || dp::to_json(q) != saved) std::abort();  // the round trip changed it
  } catch (const dp::Error&) {
    // A clean, explained rejection.
  }
  try {
    (void)dp::settings_from_json(text);
  } catch (const dp::Error&) {
  }
  return 0;
}
