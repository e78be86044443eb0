// The one main() of every test executable (Catch2 2.13), with skips that CTest can see.
//
// Runs the Catch2 session as CATCH_CONFIG_MAIN would, and counts the test cases that started
// and those that called DFS_SKIP (dfs_skip.h). When the run passed and every test case it ran
// skipped, it exits with kSkipReturnCode, which tests/CMakeLists.txt registers as CTest's
// SKIP_RETURN_CODE: under CTest each process runs one test case, so the summary line counts
// skipped tests as skipped. A failure always wins over a skip.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <set>
#include <string>

#include "dfs_skip.h"

namespace {

std::set<std::string>& started() {
  static std::set<std::string> names;
  return names;
}
std::set<std::string>& skipped() {
  static std::set<std::string> names;
  return names;
}
std::string& current() {
  static std::string name;
  return name;
}

// Test cases are keyed by name: a case with sections starts once per path through them.
struct SkipCounter : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(Catch::TestCaseInfo const& info) override {
    current() = info.name;
    started().insert(info.name);
  }
};

}  // namespace

CATCH_REGISTER_LISTENER(SkipCounter)

void dfs_test::note_skip(const std::string&) { skipped().insert(current()); }

int main(int argc, char** argv) {
  const int rc = Catch::Session().run(argc, argv);
  if (rc == 0 && !started().empty() && skipped().size() == started().size()) {
    std::printf("dfs-test: all %zu test case(s) run here skipped (exit %d)\n", skipped().size(),
                dfs_test::kSkipReturnCode);
    return dfs_test::kSkipReturnCode;
  }
  if (!skipped().empty())
    std::printf("dfs-test: %zu of %zu test case(s) skipped\n", skipped().size(), started().size());
  return rc;
}
