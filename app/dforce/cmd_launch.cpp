// cmd_launch.cpp — `dforce launch`: N local training processes with torchrun's environment.
//
//   dforce launch -n 2 -- train --data d.safetensors --config tiny -o m.safetensors --steps 100
//
// Each rank is this same dforce, started with RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE,
// MASTER_ADDR=127.0.0.1 and MASTER_PORT (a free port unless --port), and, unless $DFS_THREADS
// is set, cores / N intra-op threads. The launcher forwards Ctrl-C (SIGINT) and SIGTERM to
// every rank once (a second Ctrl-C kills them), and if one rank fails (non-zero exit or a
// signal) it names that rank, stops the others (SIGTERM, then SIGKILL after a grace period)
// and fails as a whole. Each rank runs in its own process group, so the terminal's Ctrl-C
// reaches the ranks only through the launcher, exactly once. Torch-free.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "commands.h"

namespace dforce {
namespace {

std::atomic<int> g_launch_signal{0};
void on_launch_signal(int sig) {
  g_launch_signal.store(sig);
}

// A TCP port that was free a moment ago on 127.0.0.1 (the kernel's choice).
int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("cannot open a socket to find a free port");
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    throw std::runtime_error("cannot find a free port (give --port)");
  }
  close(fd);
  return ntohs(addr.sin_port);
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) return "exited with status " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = sigdescr_np(sig);
    return "was killed by signal " + std::to_string(sig) +
           (name ? std::string(" (") + name + ")" : "");
  }
  return "ended (status " + std::to_string(status) + ")";
}

}  // namespace

int launch_ranks(int n, int port, const std::vector<std::string>& args, double grace_seconds) {
  if (n < 1) throw std::runtime_error("-n must be 1 or more");
  if (args.empty()) throw std::runtime_error("give the command to run, e.g. -- train ...");
  if (port <= 0) port = free_port();
  const unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  const std::string threads = std::to_string(std::max(1u, cores / static_cast<unsigned>(n)));
  const bool set_threads = std::getenv("DFS_THREADS") == nullptr;

  struct sigaction sa {};
  sa.sa_handler = on_launch_signal;
  sigemptyset(&sa.sa_mask);
  struct sigaction old_int {
  }, old_term{};
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  g_launch_signal.store(0);

  std::vector<pid_t> pids(static_cast<size_t>(n), -1);
  std::vector<int> status(static_cast<size_t>(n), 0);
  std::vector<bool> done(static_cast<size_t>(n), false);
  std::fflush(stdout);
  std::fflush(stderr);
  for (int r = 0; r < n; ++r) {
    const pid_t pid = fork();
    if (pid < 0) {
      for (int k = 0; k < r; ++k) kill(pids[k], SIGKILL);
      throw std::runtime_error("cannot start rank " + std::to_string(r) + " (fork failed)");
    }
    if (pid == 0) {
      setpgid(0, 0);
      signal(SIGINT, SIG_DFL);
      signal(SIGTERM, SIG_DFL);
      setenv("RANK", std::to_string(r).c_str(), 1);
      setenv("LOCAL_RANK", std::to_string(r).c_str(), 1);
      setenv("WORLD_SIZE", std::to_string(n).c_str(), 1);
      setenv("LOCAL_WORLD_SIZE", std::to_string(n).c_str(), 1);
      setenv("MASTER_ADDR", "127.0.0.1", 1);
      setenv("MASTER_PORT", std::to_string(port).c_str(), 1);
      if (set_threads) setenv("DFS_THREADS", threads.c_str(), 1);
      std::vector<char*> argv;
      static char name[] = "dforce";
      argv.push_back(name);
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execv("/proc/self/exe", argv.data());
      std::fprintf(stderr, "dforce launch: rank %d: cannot start: %s\n", r, std::strerror(errno));
      _exit(127);
    }
    pids[static_cast<size_t>(r)] = pid;
  }
  std::fprintf(stderr, "dforce launch: %d ranks on 127.0.0.1:%d (pids", n, port);
  for (pid_t p : pids) std::fprintf(stderr, " %d", static_cast<int>(p));
  std::fprintf(stderr, ")\n");

  using clock = std::chrono::steady_clock;
  int failed = -1;
  int forwarded = 0;
  clock::time_point stop_sent{};
  int running = n;
  while (running > 0) {
    int st = 0;
    const pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid > 0) {
      for (int r = 0; r < n; ++r)
        if (pids[static_cast<size_t>(r)] == pid) {
          done[static_cast<size_t>(r)] = true;
          status[static_cast<size_t>(r)] = st;
          --running;
          const bool ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
          if (!ok && failed < 0 && forwarded == 0) {
            failed = r;
            std::fprintf(stderr, "dforce launch: rank %d %s; stopping the other ranks\n", r,
                         describe_status(st).c_str());
            for (int k = 0; k < n; ++k)
              if (!done[static_cast<size_t>(k)]) kill(pids[static_cast<size_t>(k)], SIGTERM);
            stop_sent = clock::now();
          }
        }
      continue;
    }
    if (const int sig = g_launch_signal.exchange(0); sig != 0) {
      ++forwarded;
      // The first Ctrl-C asks the ranks to stop after their step (they checkpoint); the second
      // ends them.
      const int to_send = forwarded == 1 ? sig : SIGKILL;
      std::fprintf(stderr, "dforce launch: %s to every rank\n",
                   forwarded == 1 ? "passing the signal on" : "killing");
      for (int k = 0; k < n; ++k)
        if (!done[static_cast<size_t>(k)]) kill(pids[static_cast<size_t>(k)], to_send);
    }
    if (failed >= 0 &&
        std::chrono::duration<double>(clock::now() - stop_sent).count() > grace_seconds) {
      for (int k = 0; k < n; ++k)
        if (!done[static_cast<size_t>(k)]) kill(pids[static_cast<size_t>(k)], SIGKILL);
      stop_sent = clock::now() + std::chrono::hours(24);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  if (failed >= 0) return 1;
  for (int r = 0; r < n; ++r) {
    const int st = status[static_cast<size_t>(r)];
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
      std::fprintf(stderr, "dforce launch: rank %d %s\n", r, describe_status(st).c_str());
      return 1;
    }
  }
  return 0;
}

void register_launch_commands(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "launch",
      "Run a dforce command as N local data-parallel processes (torchrun's environment), e.g. "
      "dforce launch -n 2 -- train ...");
  auto n = std::make_shared<int>(2);
  auto port = std::make_shared<int>(0);
  auto grace = std::make_shared<double>(10);
  cmd->add_option("-n,--nproc", *n, "Processes (ranks)")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  cmd->add_option("--port", *port, "MASTER_PORT (default: a free port)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--grace", *grace,
                  "Seconds the other ranks get to stop when one fails, before SIGKILL")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  auto args = std::make_shared<std::vector<std::string>>();
  cmd->add_option("command", *args,
                  "The dforce command each rank runs, after `--` (e.g. -- train --data ...)")
      ->required();
  cmd->callback([n, port, grace, args] {
    const int rc = launch_ranks(*n, *port, *args, *grace);
    if (rc != 0) throw std::runtime_error("launch: the run failed (see the rank named above)");
  });
}

}  // namespace dforce
