// Data-parallel training on c10d (see dfs/diffusion/train/distributed.h).
#include "dfs/diffusion/train/distributed.h"

#include <chrono>
#include <cstdlib>
#include <string>
#include <utility>

#include "dfs/diffusion/api.h"

#ifdef DFS_HAVE_C10D
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef DFS_HAVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

namespace dfs::diffusion::train {
namespace {

// The whole number in `name`, `fallback` when unset; throws Error when malformed.
int env_int(const char* name, int fallback, int min_value) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const long n = std::strtol(v, &end, 10);
  if (*end != '\0' || n < min_value || n > 1 << 20)
    throw Error(std::string(name) + " must be a whole number >= " + std::to_string(min_value) +
                ", got '" + v + "'");
  return static_cast<int>(n);
}

}  // namespace

DistEnv read_dist_env() {
  DistEnv e;
  e.launched = std::getenv("WORLD_SIZE") != nullptr;
  if (!e.launched) return e;
  e.world_size = env_int("WORLD_SIZE", 1, 1);
  e.rank = env_int("RANK", -1, 0);
  if (e.rank < 0) throw Error("WORLD_SIZE is set but RANK is not (start ranks with a launcher)");
  if (e.rank >= e.world_size)
    throw Error("RANK " + std::to_string(e.rank) + " is not below WORLD_SIZE " +
                std::to_string(e.world_size));
  e.local_rank = env_int("LOCAL_RANK", e.rank, 0);
  e.local_world_size = env_int("LOCAL_WORLD_SIZE", e.world_size, 1);
  if (e.local_rank >= e.local_world_size)
    throw Error("LOCAL_RANK " + std::to_string(e.local_rank) + " is not below LOCAL_WORLD_SIZE " +
                std::to_string(e.local_world_size));
  if (const char* a = std::getenv("MASTER_ADDR"); a != nullptr && *a != '\0') e.master_addr = a;
  e.master_port = env_int("MASTER_PORT", 29500, 1);
  if (e.master_port > 65535) throw Error("MASTER_PORT must be at most 65535");
  return e;
}

#ifdef DFS_HAVE_C10D

bool distributed_available() {
  return true;
}
bool nccl_available() {
#ifdef DFS_HAVE_NCCL
  return true;
#else
  return false;
#endif
}
std::string distributed_unavailable_reason() {
  return {};
}

struct Distributed::Impl {
  int rank = 0;
  int world = 1;
  std::string backend;
  torch::Device device{torch::kCPU};
  size_t bucket_bytes = 0;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef DFS_HAVE_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  double allreduce_seconds = 0;
  int64_t allreduce_calls = 0;

  // Runs one collective on whichever backend this group has and waits for it; a failure
  // (peer gone, timeout) becomes an Error that says what was being done.
  template <class F>
  void run(const char* what, F&& op) {
    try {
      c10::intrusive_ptr<c10d::Work> work;
#ifdef DFS_HAVE_NCCL
      if (nccl) work = op(*nccl);
#endif
      if (gloo) work = op(*gloo);
      work->wait();
    } catch (const Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Error("rank " + std::to_string(rank) + " of " + std::to_string(world) + ": " + what +
                  " failed (a peer died, or did not answer within the timeout): " +
                  first_line(e.what()));
    }
  }

  static std::string first_line(const std::string& s) {
    const auto nl = s.find('\n');
    return nl == std::string::npos ? s : s.substr(0, nl);
  }

  // A run of tensors flattened into one buffer: one collective instead of one per tensor.
  struct Bucket {
    torch::Tensor flat;
    std::vector<torch::Tensor> members;
  };

  // Groups tensors, in order, into runs of at most bucket_bytes of one type (a larger tensor is
  // a bucket of its own) and flattens each run.
  std::vector<Bucket> make_buckets(const std::vector<torch::Tensor>& tensors) const {
    std::vector<Bucket> out;
    size_t bytes = 0;
    for (const auto& t : tensors) {
      const size_t n = static_cast<size_t>(t.numel()) * t.element_size();
      if (out.empty() || bytes + n > bucket_bytes ||
          t.scalar_type() != out.back().members[0].scalar_type()) {
        out.emplace_back();
        bytes = 0;
      }
      out.back().members.push_back(t);
      bytes += n;
    }
    for (auto& b : out) {
      std::vector<torch::Tensor> parts;
      for (const auto& t : b.members) parts.push_back(t.reshape({-1}));
      b.flat = torch::cat(parts);
    }
    return out;
  }

  // Copies a bucket's buffer back into its tensors.
  static void unflatten(Bucket& b) {
    torch::NoGradGuard no_grad;
    int64_t offset = 0;
    for (auto& t : b.members) {
      t.copy_(b.flat.narrow(0, offset, t.numel()).view(t.sizes()));
      offset += t.numel();
    }
  }
};

Distributed::Distributed(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Distributed::~Distributed() = default;

std::shared_ptr<Distributed> Distributed::create(const DistEnv& env, const DistOptions& options,
                                                 const std::string& device) {
  auto impl = std::make_unique<Impl>();
  impl->rank = env.rank;
  impl->world = env.world_size;
  impl->device = torch::Device(device == "cuda" ? "cuda:" + std::to_string(env.local_rank) : "cpu");
  impl->bucket_bytes = std::max<size_t>(options.bucket_bytes, 1024);
  std::string backend = options.backend;
  if (backend == "auto") backend = impl->device.is_cuda() ? "nccl" : "gloo";
  if (backend != "gloo" && backend != "nccl")
    throw Error("--dist-backend must be auto, gloo or nccl, got '" + backend + "'");
  if (backend == "nccl" && !nccl_available())
    throw Error("this build's LibTorch has no NCCL (CPU builds train with --dist-backend gloo)");
  if (backend == "nccl" && !impl->device.is_cuda())
    throw Error("NCCL needs CUDA tensors: train with --device cuda, or use --dist-backend gloo");
  impl->backend = backend;
  const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(options.timeout_seconds * 1000));
  const std::string where = env.master_addr + ":" + std::to_string(env.master_port);
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(env.master_port);
    so.isServer = env.rank == 0;
    so.numWorkers = static_cast<size_t>(env.world_size);
    so.waitWorkers = true;
    so.timeout = timeout;
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env.master_addr, so);
    impl->store = c10::make_intrusive<c10d::PrefixStore>("dforce", tcp);
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                ": the rendezvous at " + where + " failed (" + Impl::first_line(e.what()) +
                "): did every rank start, with the same MASTER_ADDR and MASTER_PORT, within " +
                std::to_string(static_cast<int>(options.timeout_seconds)) + " s?");
  }
  try {
    if (backend == "gloo") {
      auto go = c10d::ProcessGroupGloo::Options::create(timeout);
      go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(
          env.master_addr == "localhost" ? "127.0.0.1" : env.master_addr));
      go->threads = 2;
      impl->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(impl->store, env.rank,
                                                              env.world_size, go);
    } else {
#ifdef DFS_HAVE_NCCL
      auto no = c10d::ProcessGroupNCCL::Options::create();
      no->timeout = timeout;
      impl->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(impl->store, env.rank,
                                                              env.world_size, no);
#endif
    }
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(env.rank) + " of " + std::to_string(env.world_size) +
                ": joining the " + backend + " process group through " + where + " failed (" +
                Impl::first_line(e.what()) +
                "): did every rank start, with the same MASTER_ADDR and MASTER_PORT, within " +
                std::to_string(static_cast<int>(options.timeout_seconds)) + " s?");
  }
  auto d = std::shared_ptr<Distributed>(new Distributed(std::move(impl)));
  d->barrier();
  return d;
}

int Distributed::rank() const {
  return impl_->rank;
}
int Distributed::world_size() const {
  return impl_->world;
}
std::string Distributed::backend() const {
  return impl_->backend;
}

void Distributed::broadcast(const std::vector<torch::Tensor>& tensors) {
  for (auto& bucket : impl_->make_buckets(tensors)) {
    impl_->run("broadcasting the weights", [&](auto& pg) {
      std::vector<torch::Tensor> t{bucket.flat};
      c10d::BroadcastOptions o;
      o.rootRank = 0;
      return pg.broadcast(t, o);
    });
    Impl::unflatten(bucket);
  }
}

void Distributed::allreduce_gradients(const std::vector<torch::Tensor>& params) {
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<torch::Tensor> grads;
  grads.reserve(params.size());
  for (auto p : params) {
    if (!p.grad().defined()) p.mutable_grad() = torch::zeros_like(p);
    grads.push_back(p.grad());
  }
  auto buckets = impl_->make_buckets(grads);
  try {
    // Every bucket is in flight before the first is waited for, so the transfers overlap.
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& b : buckets) {
      std::vector<torch::Tensor> t{b.flat};
#ifdef DFS_HAVE_NCCL
      if (impl_->nccl) works.push_back(impl_->nccl->allreduce(t));
#endif
      if (impl_->gloo) works.push_back(impl_->gloo->allreduce(t));
    }
    for (auto& w : works) w->wait();
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(impl_->rank) + " of " + std::to_string(impl_->world) +
                ": summing the gradients failed (a peer died, or did not answer within the "
                "timeout): " +
                Impl::first_line(e.what()));
  }
  for (auto& b : buckets) Impl::unflatten(b);
  impl_->allreduce_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  ++impl_->allreduce_calls;
}

namespace {
double reduce_scalar(Distributed::Impl& impl, double value, c10d::ReduceOp op, const char* what) {
  auto t = torch::full({1}, value, torch::TensorOptions().dtype(torch::kFloat64));
  if (impl.device.is_cuda()) t = t.to(impl.device);
  impl.run(what, [&](auto& pg) {
    std::vector<torch::Tensor> v{t};
    c10d::AllreduceOptions o;
    o.reduceOp = op;
    return pg.allreduce(v, o);
  });
  return t.cpu().item<double>();
}
}  // namespace

double Distributed::sum(double value) {
  return reduce_scalar(*impl_, value, c10d::ReduceOp::SUM, "summing the loss");
}
double Distributed::max(double value) {
  return reduce_scalar(*impl_, value, c10d::ReduceOp::MAX, "agreeing on the next step");
}

void Distributed::barrier() {
  // A one-element all-reduce: a barrier that works the same on every backend.
  reduce_scalar(*impl_, 0.0, c10d::ReduceOp::SUM, "waiting for the other ranks");
}

void Distributed::check_same(const std::string& what, const nlohmann::json& mine) {
  const std::string key = "check/" + what;
  try {
    if (impl_->rank == 0) {
      const std::string text = mine.dump();
      impl_->store->set(key, std::vector<uint8_t>(text.begin(), text.end()));
    }
  } catch (const std::exception& e) {
    throw Error("rank 0: publishing the " + what + " failed: " + Impl::first_line(e.what()));
  }
  std::string reference;
  try {
    const auto bytes = impl_->store->get(key);  // waits for rank 0, within the store's timeout
    reference.assign(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(impl_->rank) + ": rank 0's " + what +
                " did not arrive: " + Impl::first_line(e.what()));
  }
  const auto ref = nlohmann::json::parse(reference);
  std::string diff;
  if (ref.is_object() && mine.is_object()) {
    for (auto it = ref.begin(); it != ref.end() && diff.empty(); ++it)
      if (!mine.contains(it.key()) || mine[it.key()] != it.value())
        diff = it.key() + ": rank 0 " + it.value().dump() + ", rank " +
               std::to_string(impl_->rank) + " " +
               (mine.contains(it.key()) ? mine[it.key()].dump() : std::string("(absent)"));
    for (auto it = mine.begin(); it != mine.end() && diff.empty(); ++it)
      if (!ref.contains(it.key()))
        diff = it.key() + ": rank 0 (absent), rank " + std::to_string(impl_->rank) + " " +
               it.value().dump();
  } else if (ref != mine) {
    diff = "rank 0 " + ref.dump() + ", rank " + std::to_string(impl_->rank) + " " + mine.dump();
  }
  // Every rank learns whether any rank differs, so all of them stop, not only the odd one.
  const bool bad = any(!diff.empty());
  if (!diff.empty()) throw Error("the " + what + " differ between ranks: " + diff);
  if (bad)
    throw Error("rank " + std::to_string(impl_->rank) + ": another rank's " + what +
                " differ from rank 0's (see its message)");
}

void Distributed::signal(const std::string& key) {
  impl_->store->set("signal/" + key, std::vector<uint8_t>{1});
}

void Distributed::wait_for(const std::string& key, double timeout_seconds) {
  try {
    impl_->store->wait({"signal/" + key},
                       std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000)));
  } catch (const std::exception& e) {
    throw Error("rank " + std::to_string(impl_->rank) + ": waited " +
                std::to_string(static_cast<int>(timeout_seconds)) + " s for rank 0 (" + key +
                "): " + Impl::first_line(e.what()));
  }
}

double Distributed::allreduce_seconds() const {
  return impl_->allreduce_seconds;
}
int64_t Distributed::allreduce_calls() const {
  return impl_->allreduce_calls;
}

#else  // no c10d

bool distributed_available() {
  return false;
}
bool nccl_available() {
  return false;
}
std::string distributed_unavailable_reason() {
  return "this build has no distributed training: LibTorch's c10d headers or Gloo's (Debian: "
         "libgloo-dev) were not found when it was configured";
}

struct Distributed::Impl {};
Distributed::Distributed(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Distributed::~Distributed() = default;
std::shared_ptr<Distributed> Distributed::create(const DistEnv&, const DistOptions&,
                                                 const std::string&) {
  throw Error(distributed_unavailable_reason());
}
int Distributed::rank() const { return 0; }
int Distributed::world_size() const { return 1; }
std::string Distributed::backend() const { return {}; }
void Distributed::broadcast(const std::vector<torch::Tensor>&) {}
void Distributed::allreduce_gradients(const std::vector<torch::Tensor>&) {}
double Distributed::sum(double value) { return value; }
double Distributed::max(double value) { return value; }
void Distributed::barrier() {}
void Distributed::check_same(const std::string&, const nlohmann::json&) {}
void Distributed::signal(const std::string&) {}
void Distributed::wait_for(const std::string&, double) {}
double Distributed::allreduce_seconds() const { return 0; }
int64_t Distributed::allreduce_calls() const { return 0; }

#endif

}  // namespace dfs::diffusion::train
