// The rollout's helper thread (src/helper_thread.h): its queue on its own, and a rollout that
// decodes on it against one that decodes between forwards.
#include <torch/torch.h>
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/model.h"
#include "dfs/diffusion/model_impl.h"
#include "diffusion_test_util.h"
#include "helper_thread.h"

using namespace dfs::diffusion;

TEST_CASE("the helper thread runs every job once, on one intra-op thread, errors at finish",
          "[helper]") {
  const int caller_threads = at::get_num_threads();
  const auto caller = std::this_thread::get_id();
  std::mutex mutex;
  std::vector<int> ran;
  std::vector<int> helper_threads_seen;  // intra-op threads of the jobs the helper ran
  {
    HelperThread helper;
    for (int i = 0; i < 40; ++i)
      helper.post([&, i] {
        const int n = at::get_num_threads();
        const std::lock_guard<std::mutex> lock(mutex);
        ran.push_back(i);
        if (std::this_thread::get_id() != caller) helper_threads_seen.push_back(n);
      });
    helper.finish();
    // One job the helper surely runs itself: nobody calls finish() until it has.
    std::atomic<bool> done{false};
    helper.post([&] {
      const int n = at::get_num_threads();
      {
        const std::lock_guard<std::mutex> lock(mutex);
        if (std::this_thread::get_id() != caller) helper_threads_seen.push_back(n);
      }
      done = true;
    });
    while (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::sort(ran.begin(), ran.end());
    REQUIRE(ran.size() == 40);
    for (int i = 0; i < 40; ++i) CHECK(ran[static_cast<size_t>(i)] == i);
    CHECK_FALSE(helper_threads_seen.empty());
    for (int n : helper_threads_seen) CHECK(n == 1);
    CHECK(at::get_num_threads() == caller_threads);  // the caller's count is its own

    // A job's exception comes out of the next finish, once; later jobs still run.
    std::atomic<bool> later_ran{false};
    helper.post([] { throw std::runtime_error("decoder refused"); });
    helper.post([&later_ran] { later_ran = true; });
    CHECK_THROWS_WITH(helper.finish(), "decoder refused");
    CHECK(later_ran);
    CHECK_NOTHROW(helper.finish());
  }
  // finish() runs what is still queued on the calling thread: the helper is held in a job
  // until one of the queued jobs, run by the caller, lets it go.
  {
    HelperThread helper;
    std::atomic<bool> release{false}, holding{false};
    std::atomic<int> on_caller{0};
    helper.post([&] {
      holding = true;
      const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
      while (!release && std::chrono::steady_clock::now() < give_up)
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    });
    while (!holding) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    for (int i = 0; i < 3; ++i)
      helper.post([&] {
        if (std::this_thread::get_id() == caller) ++on_caller;
      });
    helper.post([&] { release = true; });
    helper.finish();
    CHECK(on_caller == 3);
    CHECK(release);
  }
  // The destructor runs what is still queued before it joins.
  std::atomic<int> count{0};
  {
    HelperThread helper;
    for (int i = 0; i < 5; ++i)
      helper.post([&count] {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
        ++count;
      });
  }
  CHECK(count == 5);
}

namespace {

struct HelperEnv {  // sets $DFS_HELPER_THREAD for one scope
  explicit HelperEnv(const char* value) { setenv("DFS_HELPER_THREAD", value, 1); }
  ~HelperEnv() { unsetenv("DFS_HELPER_THREAD"); }
};

struct Run {
  std::vector<int> order;          // the timeline indices in the order they were emitted
  std::vector<dfs::Frame> frames;  // by timeline index
  RolloutResult result;
};

// The shipped latent model extending a 3-frame clip over several windows, frames emitted in
// order; `cancel_after` > 0 cancels at that progress step.
Run extend(Model& model, int frames, int cancel_after = 0) {
  const auto timeline = dfs_test::pinned_pattern_timeline(model.info(), frames, 3, 5, 3, 180, 25);
  RolloutSettings s;
  s.context = 3;
  s.horizon = 4;
  s.seed = 11;
  s.sampler.schedule.steps = 4;
  Run run;
  run.frames.resize(timeline.size());
  int steps = 0;
  std::atomic<bool> cancel{false};
  RolloutCallbacks cb;
  cb.want_preview = false;
  cb.on_frame = [&](int i, const dfs::Frame& f) {
    run.order.push_back(i);
    run.frames[static_cast<size_t>(i)] = f;
  };
  cb.on_progress = [&](const RolloutProgress&) {
    if (++steps == cancel_after) cancel = true;
  };
  cb.cancel = &cancel;
  run.result = run_rollout(model, timeline, s, cb);
  return run;
}

}  // namespace

TEST_CASE("a rollout decoding on the helper thread gives the same frames, in order",
          "[helper][rollout]") {
  auto model = Model::load(std::string(DFS_SOURCE_DIR) + "/models/demo.safetensors", "cpu");
  const int threads = at::get_num_threads();
  // The helper decodes on one thread; the decoder's bytes do not depend on its thread count,
  // so with the network on 1 or 2 threads both runs give the same frames.
  for (const int network_threads : {1, 2}) {
    configure_threads(network_threads);
    Run inline_run, helper_run;
    {
      HelperEnv env("0");
      inline_run = extend(model, 14);
    }
    {
      HelperEnv env("1");
      helper_run = extend(model, 14);
    }
    INFO("network threads " << network_threads);
    REQUIRE(inline_run.order.size() == 14);
    REQUIRE(helper_run.order.size() == 14);
    for (int i = 0; i < 14; ++i) {
      CHECK(inline_run.order[static_cast<size_t>(i)] == i);
      CHECK(helper_run.order[static_cast<size_t>(i)] == i);
      CHECK(helper_run.frames[static_cast<size_t>(i)].rgb ==
            inline_run.frames[static_cast<size_t>(i)].rgb);
    }
    CHECK(helper_run.result.frames_final == 14);
    CHECK(helper_run.result.seconds_decode_helper > 0);
    CHECK(helper_run.result.seconds_decode >= helper_run.result.seconds_decode_helper);
    CHECK(inline_run.result.seconds_decode_helper == 0);
  }
  configure_threads(threads);
}

TEST_CASE("a cancelled rollout keeps every frame the helper thread was decoding",
          "[helper][rollout]") {
  auto model = Model::load(std::string(DFS_SOURCE_DIR) + "/models/demo.safetensors", "cpu");
  const int threads = at::get_num_threads();
  configure_threads(1);
  // Cancelled at several points: the helper's run ends with what the inline run ends with.
  for (const int cancel_after : {5, 9, 13}) {
    Run inline_run, helper_run;
    {
      HelperEnv env("0");
      inline_run = extend(model, 14, cancel_after);
    }
    {
      HelperEnv env("1");
      helper_run = extend(model, 14, cancel_after);
    }
    INFO("cancelled after step " << cancel_after);
    CHECK(helper_run.result.cancelled);
    CHECK(helper_run.result.frames_final == inline_run.result.frames_final);
    CHECK(helper_run.result.frames_final > 3);  // generated frames, not only the pinned ones
    CHECK(helper_run.result.frames_final < 14);
    REQUIRE(static_cast<int>(helper_run.order.size()) == helper_run.result.frames_final);
    for (size_t i = 0; i < helper_run.order.size(); ++i) {
      CHECK(helper_run.order[i] == static_cast<int>(i));
      CHECK(helper_run.frames[i].rgb == inline_run.frames[i].rgb);
    }
  }
  configure_threads(threads);
}
