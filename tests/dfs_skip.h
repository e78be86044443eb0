// dfs_skip.h — skipping a test case so that CTest reports it as skipped, not passed.
//
// Catch2 v2 has no SKIP. DFS_SKIP(why) says why in the output, records the skip and leaves the
// test case. The shared main() (catch_main.cpp) exits with kSkipReturnCode when every test case
// it ran skipped and none failed; CTest registers that code as SKIP_RETURN_CODE, so a test that
// could not run (no CUDA, no footage, no ffmpeg program) shows as "Skipped" in the summary.
// A skip must come before the test's first assertion (an assertion that passed and then a skip
// would hide what ran).
#pragma once

#include <sstream>
#include <string>

namespace dfs_test {

inline constexpr int kSkipReturnCode = 77;  // the Automake convention CTest users expect

// Records that the running test case skipped (see catch_main.cpp).
void note_skip(const std::string& why);

}  // namespace dfs_test

#define DFS_SKIP(why)                                    \
  do {                                                   \
    std::ostringstream dfs_skip_why_;                    \
    dfs_skip_why_ << why;                                \
    WARN("SKIPPED: " << dfs_skip_why_.str());            \
    ::dfs_test::note_skip(dfs_skip_why_.str());          \
    return;                                              \
  } while (0)
