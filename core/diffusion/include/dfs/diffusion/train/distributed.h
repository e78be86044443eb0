// dfs/diffusion/train/distributed.h — data-parallel training on torch.distributed's c10d
// process groups (Gloo on CPU, NCCL on CUDA) (torch).
//
// One training path, N processes. A process started by a launcher (torchrun, srun through
// torchrun's variables, or `dforce launch`) reads RANK, WORLD_SIZE, LOCAL_RANK,
// LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT, meets the others through a c10d TCPStore on
// MASTER_ADDR:MASTER_PORT (rank 0 serves it) and joins a process group. Then, as in PyTorch's
// DistributedDataParallel (Li et al. 2020, "PyTorch Distributed", VLDB):
//   - rank 0's weights, EMA and optimiser moments are broadcast to every rank at start;
//   - every rank draws the whole global batch of step s from the (seed, s)-pure sampler and
//     trains on its own contiguous share (batch / world items), so the data each step sees
//     does not depend on the world size;
//   - each rank's loss is its share's weighted sum over the WHOLE batch's frame count, so the
//     gradients summed over ranks are the gradients of the one-process loss;
//   - gradients are summed in buckets (flattened runs of parameters, `bucket_bytes` each), one
//     collective per bucket, all buckets in flight at once;
//   - loop decisions (stop, time limit, checkpoint due) are agreed by a MAX all-reduce, so no
//     rank waits in a collective that the others never enter;
//   - rank 0 alone writes checkpoints, logs and the final model.
// The global batch is TrainSettings::batch_size, so a checkpoint resumes under any world size
// that divides it, and continues the same run.
//
// Failure: every collective and the rendezvous have a timeout (`timeout_seconds`); a peer that
// dies makes the others' next collective fail (connection closed) or time out, and the error
// names the rank and what it was doing. Mismatched configs are refused at start
// (`check_same`).
//
// Built only where LibTorch has c10d and Gloo headers were found (DFS_HAVE_C10D); elsewhere
// `distributed_available()` is false and `Distributed::create` throws with the reason.
//
// Thread-safety: one thread per process uses its Distributed.
#pragma once

#include <torch/torch.h>

#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace dfs::diffusion::train {

// The launcher's environment (torchrun's names).
struct DistEnv {
  bool launched = false;  // WORLD_SIZE is set
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
};
// Reads the variables; throws Error naming a malformed or inconsistent one.
DistEnv read_dist_env();

// Whether this build has c10d with Gloo (and NCCL), and if not, why.
bool distributed_available();
bool nccl_available();
std::string distributed_unavailable_reason();

struct DistOptions {
  std::string backend = "auto";  // auto (NCCL on CUDA, else Gloo), gloo, nccl
  double timeout_seconds = 300;  // rendezvous and every collective
  size_t bucket_bytes = size_t{4} << 20;
};

class Distributed {
 public:
  // Joins the process group described by `env`; `device` is the training device ("cpu",
  // "cuda"). Throws Error (peer never arrived, port taken, backend missing, ...).
  static std::shared_ptr<Distributed> create(const DistEnv& env, const DistOptions& options,
                                             const std::string& device);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const;
  int world_size() const;
  std::string backend() const;  // "gloo" or "nccl"
  bool is_writer() const { return rank() == 0; }

  // Copies rank 0's values into every rank's tensors (in place), in buckets.
  void broadcast(const std::vector<torch::Tensor>& tensors);
  // Sums the gradients of `params` over ranks (in place), bucketed. Parameters without a
  // gradient count as zero (every rank must agree on which have one).
  void allreduce_gradients(const std::vector<torch::Tensor>& params);
  double sum(double value);
  double max(double value);
  bool any(bool value) { return max(value ? 1.0 : 0.0) > 0.5; }
  void barrier();
  // Every rank passes its JSON; throws Error naming the first key where this rank's differs
  // from rank 0's ("training settings differ between ranks: batch_size: rank 0 8, rank 1 4").
  void check_same(const std::string& what, const nlohmann::json& mine);
  // Rank 0 signals `key`; the others wait for it for up to `timeout_seconds` (long phases such
  // as encoding a dataset, where a collective's timeout would be too short).
  void signal(const std::string& key);
  void wait_for(const std::string& key, double timeout_seconds);

  // Time spent in allreduce_gradients so far, and how many calls.
  double allreduce_seconds() const;
  int64_t allreduce_calls() const;

  struct Impl;

 private:
  explicit Distributed(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dfs::diffusion::train
