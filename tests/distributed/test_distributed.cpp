// Data-parallel training, end to end: real dforce processes on 127.0.0.1 over Gloo.
//
// Each test starts `dforce train` (directly with torchrun's variables, or through `dforce
// launch`) on a small synthetic dataset and the tiny recipe, then reads what the processes
// wrote. One intra-op thread per process, so two ranks fit the CI machine's two cores.
#include <torch/torch.h>
#include <catch2/catch.hpp>
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "dfs/diffusion/train/dataset.h"
#include "dfs_skip.h"
#include "dfs/diffusion/train/distributed.h"
#include "dfs/diffusion/train/trainer.h"
#include "dfs/diffusion/weights.h"

extern char** environ;

namespace fs = std::filesystem;
using namespace dfs::diffusion;

namespace {

using Clock = std::chrono::steady_clock;

// A fresh folder holding the shared dataset.
struct Workdir {
  fs::path dir;
  std::string data;
  explicit Workdir(const std::string& name) {
    dir = fs::temp_directory_path() / ("dfs_dist_" + name + "_" + std::to_string(getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    train::SyntheticSettings s;
    s.clips = 4;
    s.frames = 24;
    s.width = 32;
    s.height = 24;
    s.seed = 3;
    data = (dir / "data.safetensors").string();
    train::save_dataset(data, train::make_synthetic_dataset(s));
  }
  ~Workdir() { fs::remove_all(dir); }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

// A started dforce process; its stdout and stderr go to `log`.
struct Proc {
  pid_t pid = -1;
  std::string log;
  int status = 0;
  bool finished = false;

  // Waits up to `seconds`; true if it ended.
  bool wait(double seconds) {
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    while (!finished) {
      const pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid) {
        finished = true;
        break;
      }
      if (Clock::now() > until) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }
  bool ok() const { return finished && WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  std::string output() const {
    std::ifstream in(log);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
  }
  ~Proc() {
    if (pid > 0 && !finished) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
    }
  }
};

// Starts dforce with `args` and extra environment `env` ("NAME=value").
std::unique_ptr<Proc> start(const std::vector<std::string>& args,
                            const std::vector<std::string>& env, const std::string& log) {
  auto p = std::make_unique<Proc>();
  p->log = log;
  std::vector<std::string> all_env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string v(*e);
    bool replaced = false;
    for (const auto& x : env)
      if (v.compare(0, x.find('=') + 1, x, 0, x.find('=') + 1) == 0) replaced = true;
    if (!replaced) all_env.push_back(v);
  }
  all_env.insert(all_env.end(), env.begin(), env.end());
  std::vector<char*> argv, envp;
  std::string exe = DFS_DFORCE_PATH;
  argv.push_back(exe.data());
  std::vector<std::string> a = args;
  for (auto& s : a) argv.push_back(s.data());
  argv.push_back(nullptr);
  for (auto& s : all_env) envp.push_back(s.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  const int rc = posix_spawn(&p->pid, exe.c_str(), &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  REQUIRE(rc == 0);
  return p;
}

// Runs dforce to the end (at most `seconds`); the process.
std::unique_ptr<Proc> run(const std::vector<std::string>& args, const std::vector<std::string>& env,
                          const std::string& log, double seconds = 300) {
  auto p = start(args, env, log);
  REQUIRE(p->wait(seconds));
  return p;
}

std::vector<std::string> rank_env(int rank, int world, int port) {
  return {"RANK=" + std::to_string(rank),       "WORLD_SIZE=" + std::to_string(world),
          "LOCAL_RANK=" + std::to_string(rank), "LOCAL_WORLD_SIZE=" + std::to_string(world),
          "MASTER_ADDR=127.0.0.1",              "MASTER_PORT=" + std::to_string(port),
          "DFS_THREADS=1"};
}

// A port for one test's rendezvous (distinct per test and per process running the suite).
int test_port(int k) {
  return 20000 + static_cast<int>(getpid() % 2000) * 10 + k;
}

// Ranks 0 and 1 of 2, started in that order with `args0` and `args1`, meeting on test_port(k);
// their logs are r0.log and r1.log.
std::array<std::unique_ptr<Proc>, 2> start_ranks(const Workdir& w,
                                                 const std::vector<std::string>& args0,
                                                 const std::vector<std::string>& args1, int k) {
  return {start(args0, rank_env(0, 2, test_port(k)), w.path("r0.log")),
          start(args1, rank_env(1, 2, test_port(k)), w.path("r1.log"))};
}

std::vector<std::string> train_args(const Workdir& w, const std::string& out, int steps,
                                    int batch) {
  return {"train", "--data", w.data, "--config", "tiny", "-o", w.path(out), "--steps",
          std::to_string(steps), "--schedule-steps", "8", "--batch", std::to_string(batch),
          "--checkpoint-minutes", "0", "--dist-timeout", "30"};
}

// `args` with "--resume" appended.
std::vector<std::string> resuming(std::vector<std::string> args) {
  args.push_back("--resume");
  return args;
}

// `launch` (a `dforce launch ... --` prefix) followed by `args`.
std::vector<std::string> launched(std::vector<std::string> launch,
                                  const std::vector<std::string>& args) {
  launch.insert(launch.end(), args.begin(), args.end());
  return launch;
}

// Largest |a - b| over every tensor of two safetensors files (with the same names), and the
// largest |a| (the scale the difference is read against).
std::pair<double, double> max_difference(const std::string& a, const std::string& b,
                                         const std::string& prefix = "") {
  const auto fa = load_safetensors(a), fb = load_safetensors(b);
  double diff = 0, scale = 0;
  int compared = 0;
  for (const auto& [name, t] : fa.tensors) {
    if (name.rfind(prefix, 0) != 0 || !t.is_floating_point()) continue;
    const auto it = fb.tensors.find(name);
    REQUIRE(it != fb.tensors.end());
    REQUIRE(it->second.sizes() == t.sizes());
    diff = std::max(diff, (t.to(torch::kFloat64) - it->second.to(torch::kFloat64)).abs().max().item<double>());
    scale = std::max(scale, t.abs().max().item<double>());
    ++compared;
  }
  REQUIRE(compared > 10);
  return {diff, scale};
}

// Float tolerance of "the same weights": the ranks sum their shares' gradients, one process
// sums the whole batch inside its matrix products, so the two add the same float32 numbers in
// a different order (relative error ~1e-7 per gradient). AdamW divides by sqrt(v), which keeps
// that relative error; over K steps of rate ~1e-4 (warm-up) the weights move by at most ~K*lr,
// so 1e-5 absolute is 10x above float noise and far below one step's update (a wrong batch
// share or a missing all-reduce differs by ~1e-4 after the first step).
constexpr double kWeightTolerance = 1e-5;

#define SKIP_WITHOUT_C10D()                                                    \
  if (!train::distributed_available()) DFS_SKIP(train::distributed_unavailable_reason())

}  // namespace

TEST_CASE("2 Gloo processes with batch B each train the same weights as 1 process with 2B",
          "[distributed]") {
  SKIP_WITHOUT_C10D();
  Workdir w("equal");
  auto one = run(train_args(w, "one.safetensors", 6, 4), {"DFS_THREADS=1"}, w.path("one.log"));
  INFO(one->output());
  REQUIRE(one->ok());
  const auto two = train_args(w, "two.safetensors", 6, 4);
  auto [r0, r1] = start_ranks(w, two, two, 0);
  REQUIRE(r0->wait(300));
  REQUIRE(r1->wait(300));
  INFO(r0->output() << r1->output());
  REQUIRE(r0->ok());
  REQUIRE(r1->ok());
  CHECK(r0->output().find("data-parallel: 2 processes (gloo)") != std::string::npos);
  // Rank 0 alone logs.
  CHECK(r1->output().find("step ") == std::string::npos);

  // The raw weights and the EMA after 6 steps.
  const auto [raw, raw_scale] =
      max_difference(w.path("one.ckpt.safetensors"), w.path("two.ckpt.safetensors"), "model.");
  const auto [ema, ema_scale] =
      max_difference(w.path("one.safetensors"), w.path("two.safetensors"));
  WARN("1 process x batch 4 vs 2 processes x batch 2, 6 steps: max |weight difference| "
       << raw << " (weights up to " << raw_scale << "), EMA " << ema);
  CHECK(raw <= kWeightTolerance);
  CHECK(ema <= kWeightTolerance);
  // The differences are float noise, not zero by construction: a different share breaks it.
  auto other = run(train_args(w, "other.safetensors", 6, 2), {"DFS_THREADS=1"},
                   w.path("other.log"));
  REQUIRE(other->ok());
  CHECK(max_difference(w.path("one.ckpt.safetensors"), w.path("other.ckpt.safetensors"),
                       "model.")
            .first > 10 * kWeightTolerance);
}

TEST_CASE("A checkpoint resumes across world sizes: 2 -> 1 and 1 -> 2 processes",
          "[distributed]") {
  SKIP_WITHOUT_C10D();
  Workdir w("resume");
  auto straight = run(train_args(w, "straight.safetensors", 6, 4), {"DFS_THREADS=1"},
                      w.path("straight.log"));
  REQUIRE(straight->ok());

  // The resumed run `args` ends well, says how the world size changed (`note`), and its
  // checkpoint `out` holds the weights of the straight run.
  auto check_resumed = [&](const std::vector<std::string>& args, const std::string& log,
                           const std::string& note, const std::string& out) {
    auto p = run(args, {"DFS_THREADS=1"}, w.path(log));
    INFO(p->output());
    REQUIRE(p->ok());
    CHECK(p->output().find(note) != std::string::npos);
    CHECK(max_difference(w.path("straight.ckpt.safetensors"), w.path(out), "model.").first <=
          kWeightTolerance);
  };

  // 2 processes to step 3, then 1 process to step 6.
  auto a = run({"launch", "-n", "2", "--"}, {}, w.path("dummy.log"), 5);  // usage error
  CHECK_FALSE(a->ok());
  const std::vector<std::string> launch2 = {"launch", "-n", "2", "--"};
  auto p1 = run(launched(launch2, train_args(w, "a.safetensors", 3, 4)), {"DFS_THREADS=1"},
                w.path("a1.log"));
  INFO(p1->output());
  REQUIRE(p1->ok());
  check_resumed(resuming(train_args(w, "a.safetensors", 6, 4)), "a2.log",
                "written by 2 processes, continued by 1", "a.ckpt.safetensors");

  // 1 process to step 3, then 2 processes to step 6.
  auto q1 = run(train_args(w, "b.safetensors", 3, 4), {"DFS_THREADS=1"}, w.path("b1.log"));
  REQUIRE(q1->ok());
  check_resumed(launched(launch2, resuming(train_args(w, "b.safetensors", 6, 4))), "b2.log",
                "written by 1 process, continued by 2", "b.ckpt.safetensors");

  // A batch the new world size does not divide is refused, naming the fix.
  auto q3 =
      run(launched({"launch", "-n", "3", "--"}, resuming(train_args(w, "b.safetensors", 8, 4))),
          {"DFS_THREADS=1"}, w.path("b3.log"));
  CHECK_FALSE(q3->ok());
  CHECK(q3->output().find("does not divide among 3 processes") != std::string::npos);
}

TEST_CASE("A rank killed mid-run ends the others within the timeout, the checkpoint is intact",
          "[distributed]") {
  SKIP_WITHOUT_C10D();
  Workdir w("kill");
  auto args = train_args(w, "k.safetensors", 100000, 4);
  args.back() = "10";  // --dist-timeout 10
  auto [r0, r1] = start_ranks(w, args, args, 1);
  // Wait for a few checkpoints (one per step).
  const auto ckpt = w.path("k.ckpt.safetensors");
  const auto until = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < until) {
    if (fs::exists(ckpt) && train::read_checkpoint_info(ckpt).step >= 3) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  REQUIRE(fs::exists(ckpt));
  kill(r1->pid, SIGKILL);
  const auto t0 = Clock::now();
  REQUIRE(r0->wait(60));
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  INFO(r0->output());
  WARN("rank 0 stopped " << seconds << " s after rank 1 was killed (timeout 10 s)");
  CHECK_FALSE(r0->ok());
  CHECK(seconds < 10 + 5);
  CHECK(r0->output().find("rank 0 of 2") != std::string::npos);
  // The last checkpoint loads, and training resumes from it in one process.
  const auto info = train::read_checkpoint_info(ckpt);
  CHECK(info.step >= 3);
  auto again = run(resuming(train_args(w, "k.safetensors", static_cast<int>(info.step) + 2, 4)),
                   {"DFS_THREADS=1"}, w.path("again.log"));
  INFO(again->output());
  CHECK(again->ok());
  for (const auto& e : fs::directory_iterator(w.dir))
    CHECK(e.path().filename().string().find(".partial") == std::string::npos);
}

TEST_CASE("dforce launch names a rank that dies and fails as a whole", "[distributed]") {
  SKIP_WITHOUT_C10D();
  Workdir w("launch");
  auto p = start(launched({"launch", "-n", "2", "--grace", "5", "--"},
                          train_args(w, "l.safetensors", 100000, 4)),
                 {"DFS_THREADS=1"}, w.path("launch.log"));
  // The launcher prints its ranks' pids; kill rank 1 once training runs.
  const auto ckpt = w.path("l.ckpt.safetensors");
  const auto until = Clock::now() + std::chrono::seconds(120);
  while (Clock::now() < until && !fs::exists(ckpt))
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  REQUIRE(fs::exists(ckpt));
  const auto out = p->output();
  const auto at = out.find("(pids ");
  REQUIRE(at != std::string::npos);
  std::istringstream pids(out.substr(at + 6));
  int pid0 = 0, pid1 = 0;
  pids >> pid0 >> pid1;
  REQUIRE(pid1 > 0);
  kill(pid1, SIGKILL);
  REQUIRE(p->wait(60));
  INFO(p->output());
  CHECK_FALSE(p->ok());
  CHECK(p->output().find("rank 1 was killed by signal 9") != std::string::npos);
  CHECK(kill(pid0, 0) != 0);  // rank 0 is gone too
}

TEST_CASE("Mismatched ranks are refused at start, and a missing peer times out",
          "[distributed]") {
  SKIP_WITHOUT_C10D();
  Workdir w("refuse");
  auto [r0, r1] =
      start_ranks(w, train_args(w, "m.safetensors", 4, 4), train_args(w, "m.safetensors", 4, 8), 2);
  REQUIRE(r0->wait(120));
  REQUIRE(r1->wait(120));
  const auto both = r0->output() + r1->output();
  INFO(both);
  CHECK_FALSE(r0->ok());
  CHECK_FALSE(r1->ok());
  CHECK(both.find("training settings differ between ranks: batch_size: rank 0 4, rank 1 8") !=
        std::string::npos);
  CHECK_FALSE(fs::exists(w.path("m.safetensors")));

  // Rank 0 of 2 alone: the rendezvous gives up after --dist-timeout.
  auto args = train_args(w, "n.safetensors", 4, 4);
  args.back() = "3";
  const auto t0 = Clock::now();
  auto lone = run(args, rank_env(0, 2, test_port(3)), w.path("lone.log"), 60);
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  INFO(lone->output());
  CHECK_FALSE(lone->ok());
  CHECK(lone->output().find("did every rank start") != std::string::npos);
  CHECK(seconds < 3 + 10);
}
