// What the diffusion trainer and the autoencoder trainer share, internal to src/train:
// per-step seeds, config diffs for refusing a resume, optimiser tensors in checkpoints, and the
// training loop (steps, time limit, stop flag, periodic checkpoints, progress).
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "dfs/diffusion/api.h"
#include "dfs/diffusion/train/distributed.h"
#include "dfs/diffusion/train/optimizer.h"
#include "dfs/diffusion/train/trainer.h"
#include "../load_adaptive.h"

namespace dfs::diffusion::train::detail {

// SplitMix64 (Steele et al. 2014): a good 64-bit mixer to derive independent seeds.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The seed of random stream `stream` at step `step`.
inline uint64_t step_seed(uint64_t seed, int64_t step, uint64_t stream) {
  return splitmix64(splitmix64(seed ^ splitmix64(static_cast<uint64_t>(step))) + stream);
}

inline constexpr uint64_t kStreamData = 1;   // clip choice, augmentation, level pattern
inline constexpr uint64_t kStreamNoise = 2;  // levels and Gaussian noise (torch generator)

// "prefix.key: checkpoint X, requested Y; ..." for every key whose value differs.
inline std::string json_diff(const nlohmann::json& expected, const nlohmann::json& found,
                             const std::string& prefix) {
  std::string out;
  std::set<std::string> keys;
  for (auto it = expected.begin(); it != expected.end(); ++it) keys.insert(it.key());
  for (auto it = found.begin(); it != found.end(); ++it) keys.insert(it.key());
  for (const auto& k : keys) {
    const auto a = expected.contains(k) ? expected[k].dump() : std::string("(absent)");
    const auto b = found.contains(k) ? found[k].dump() : std::string("(absent)");
    if (a != b)
      out += (out.empty() ? "" : "; ") + prefix + k + ": checkpoint " + b + ", requested " + a;
  }
  return out;
}

// Checkpoint tensors "model.<name>", "ema.<name>", "adam_m.<name>", "adam_v.<name>".
inline void add_optimizer_tensors(const AdamWState& st,
                                  std::map<std::string, torch::Tensor>& tensors) {
  for (size_t i = 0; i < st.params.size(); ++i) {
    tensors["model." + st.names[i]] = st.params[i].detach().cpu().contiguous();
    tensors["ema." + st.names[i]] = st.ema[i].detach().cpu().contiguous();
    tensors["adam_m." + st.names[i]] = st.m[i].cpu().contiguous();
    tensors["adam_v." + st.names[i]] = st.v[i].cpu().contiguous();
  }
}

inline torch::Tensor checkpoint_tensor(const std::map<std::string, torch::Tensor>& tensors,
                                       const std::string& name, const torch::Tensor& like,
                                       const std::string& path) {
  const auto it = tensors.find(name);
  if (it == tensors.end())
    throw Error("checkpoint '" + path + "' is missing tensor '" + name + "'");
  if (it->second.sizes() != like.sizes() || it->second.scalar_type() != like.scalar_type())
    throw Error("checkpoint '" + path + "': tensor '" + name + "' has the wrong shape or type");
  return it->second;
}

inline void load_optimizer_tensors(AdamWState& st,
                                   const std::map<std::string, torch::Tensor>& tensors,
                                   const std::string& path) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < st.params.size(); ++i) {
    const auto& n = st.names[i];
    st.params[i].copy_(checkpoint_tensor(tensors, "model." + n, st.params[i], path));
    st.ema[i].copy_(checkpoint_tensor(tensors, "ema." + n, st.ema[i], path));
    st.m[i].copy_(checkpoint_tensor(tensors, "adam_m." + n, st.m[i], path));
    st.v[i].copy_(checkpoint_tensor(tensors, "adam_v." + n, st.v[i], path));
  }
}

// Runs steps until a limit or the stop flag; checkpoints every checkpoint_every_seconds and
// once at the end (when a path is given). T: step(), step_count(), add_seconds(double),
// save_checkpoint(path, extra).
template <class T>
TrainLoopResult run_loop(T& trainer, const TrainLoopOptions& options, int batch_size) {
  using clock = std::chrono::steady_clock;
  TrainLoopResult result;
  const auto start = clock::now();
  auto last_checkpoint = start;
  auto last_step_end = start;
  double loss_avg = 0, rate_avg = 0;
  const double batch = batch_size;
  auto checkpoint = [&] {
    const auto now = clock::now();
    trainer.add_seconds(std::chrono::duration<double>(now - last_checkpoint).count());
    if (!options.distributed || options.distributed->is_writer()) {
      try {
        trainer.save_checkpoint(options.checkpoint_path, options.checkpoint_extra);
      } catch (const std::exception& e) {
        // The write is atomic (dfs/partial_files.h): the previous checkpoint is still whole.
        throw Error(std::string(e.what()) + "\ntraining stopped at step " +
                    std::to_string(trainer.step_count()) +
                    " because its checkpoint could not be written; the previous checkpoint "
                    "is intact and --resume continues from it");
      }
    }
    last_checkpoint = now;
  };
  // Data-parallel runs decide together (rank clocks and signals differ): one MAX all-reduce
  // of a code per step. 0 = go on, 1 = checkpoint due, 2 = time is up, 3 = stop requested.
  bool checkpoint_due = false;
  while (true) {
    if (options.max_steps > 0 && trainer.step_count() >= options.max_steps) break;
    const double elapsed = std::chrono::duration<double>(clock::now() - start).count();
    int code = 0;
    if (options.stop && options.stop->load()) code = 3;
    else if (options.max_seconds > 0 && elapsed >= options.max_seconds) code = 2;
    else if (!options.checkpoint_path.empty() &&
             std::chrono::duration<double>(clock::now() - last_checkpoint).count() >=
                 options.checkpoint_every_seconds)
      code = 1;
    if (options.distributed)
      code = static_cast<int>(std::lround(options.distributed->max(code)));
    if (code == 2) break;
    if (code == 3) {
      result.stopped = true;
      break;
    }
    checkpoint_due = code == 1;
    dfs::diffusion::detail::adapt_threads_to_load();
    const auto stats = trainer.step();
    ++result.steps_run;
    const auto now = clock::now();
    const double dt = std::chrono::duration<double>(now - last_step_end).count();
    last_step_end = now;
    // Exponential averages; the first steps seed them directly.
    const double a =
        result.steps_run <= 1
            ? 1.0
            : (result.steps_run < 20 ? 1.0 / static_cast<double>(result.steps_run) : 0.05);
    loss_avg = (1 - a) * loss_avg + a * stats.loss;
    rate_avg = (1 - a) * rate_avg + a * (batch / std::max(dt, 1e-9));

    TrainProgress p;
    p.step = stats.step;
    p.target_steps = options.max_steps;
    p.loss = stats.loss;
    p.loss_average = loss_avg;
    p.learning_rate = stats.learning_rate;
    p.samples_per_second = rate_avg;
    p.elapsed_seconds = std::chrono::duration<double>(now - start).count();
    double eta = -1;
    if (options.max_steps > 0 && rate_avg > 0)
      eta = static_cast<double>(options.max_steps - stats.step) * batch / rate_avg;
    if (options.max_seconds > 0) {
      const double left = std::max(0.0, options.max_seconds - p.elapsed_seconds);
      eta = eta < 0 ? left : std::min(eta, left);
    }
    p.eta_seconds = eta;
    if (checkpoint_due) {
      checkpoint();
      p.checkpointed = true;
    }
    if (options.on_progress) options.on_progress(p);
  }
  if (!options.checkpoint_path.empty() && result.steps_run > 0) {
    checkpoint();
  } else {
    trainer.add_seconds(std::chrono::duration<double>(clock::now() - last_checkpoint).count());
  }
  result.seconds = std::chrono::duration<double>(clock::now() - start).count();
  result.final_loss_average = loss_avg;
  result.samples_per_second =
      result.seconds > 0 ? static_cast<double>(result.steps_run) * batch / result.seconds : 0;
  return result;
}

}  // namespace dfs::diffusion::train::detail
