// dfs/diffusion/busy_neighbour.h — a busy loop in a child process, for contended benchmarks.
//
// "Another program keeps one core busy" is what a user with a browser or a build open has.
// `dforce bench --contended` and `dfstudio --bench-ui --contended` run their cases beside one
// of these: a forked child that spins on one core (the last one, pinned, so runs compare) until
// it is destroyed. The child dies with its parent (PR_SET_PDEATHSIG), so an interrupted bench
// leaves no spinning process behind. Torch-free, header-only, Linux.
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
      sched_setaffinity(0, sizeof(set), &set);
      volatile unsigned long spins = 0;
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
