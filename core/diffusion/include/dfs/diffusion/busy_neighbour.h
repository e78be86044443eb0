// dfs/diffusion/busy_neighbour.h — a busy loop in a child process, for contended benchmarks.
//
// "Another program keeps one core busy" is what a user with a browser or a build open has.
// `dforce bench --contended` and `dfstudio --bench-ui --contended` run their cases beside one
// of these: a child process that spins on one core (the last one, pinned, so runs compare)
// until it is destroyed. The child dies with its parent (PR_SET_PDEATHSIG), so an interrupted
// bench leaves no spinning process behind. Torch-free, header-only, Linux.
//
// The child execs a shell loop rather than spinning in the forked copy of the parent: while a
// forked child lives, every page the parent writes for the first time is copied (copy on
// write), which another program never costs us. In dfstudio --bench-ui that made the first
// OpenGL panel render of the contended run 2-5x slower (GUI CPU 10-24 ms instead of 3-5 ms).
#pragma once

#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <thread>

namespace dfs::diffusion {

class BusyNeighbour {
 public:
  BusyNeighbour() {
    const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
    cpu_ = static_cast<int>(cores) - 1;
    pid_ = fork();
    if (pid_ < 0) throw std::runtime_error("cannot start the busy-loop process (fork failed)");
    if (pid_ == 0) {
      // Child of a multi-threaded parent: system calls and a loop only.
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(cpu_, &set);
      sched_setaffinity(0, sizeof(set), &set);  // kept across exec
      execl("/bin/sh", "sh", "-c", "while :; do :; done", static_cast<char*>(nullptr));
      volatile unsigned long spins = 0;  // no shell: spin here (copy-on-write costs and all)
      for (;;) spins = spins + 1;
    }
  }
  ~BusyNeighbour() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      int status = 0;
      waitpid(pid_, &status, 0);
    }
  }
  BusyNeighbour(const BusyNeighbour&) = delete;
  BusyNeighbour& operator=(const BusyNeighbour&) = delete;

  int cpu() const { return cpu_; }
  std::string describe() const {
    return "a busy-loop process pinned to CPU " + std::to_string(cpu_);
  }

 private:
  pid_t pid_ = -1;
  int cpu_ = 0;
};

}  // namespace dfs::diffusion
