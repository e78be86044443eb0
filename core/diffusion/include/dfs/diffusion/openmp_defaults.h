// dfs/diffusion/openmp_defaults.h — how long LibTorch's OpenMP threads spin before they sleep.
//
// Debian's LibTorch parallelises with GNU OpenMP (libgomp). Its threads spin for a while at
// the end of every parallel region (GOMP_SPINCOUNT, 300000 by default) before they sleep.
// With another program keeping one core busy, a spinning thread holds the free core while its
// partner waits for a time slice on the busy one, so every small parallel op (layer_norm,
// softmax, gelu) stretches from ~0.03 ms to ~11 ms: the default 2-thread run of `dforce
// extend` took 8-18 s instead of 1.6 s beside one busy process. A short spin lets the waiting
// thread sleep, and the kernel moves its partner onto the core it frees.
//
// libgomp reads its environment once, in its own constructor, before main() runs, so the
// programs (dforce, dfstudio) set the default from their .preinit_array, before any library
// is initialised, by re-executing themselves once with GOMP_SPINCOUNT added
// (src/process/openmp_defaults.cpp). A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT always wins;
// DFS_OPENMP_DEFAULTS=off turns the re-execution off (e.g. under valgrind).
// Torch-free, header-only.
#pragma once

#include <cstdlib>
#include <string>

namespace dfs::diffusion {

// Iterations an idle OpenMP thread spins before it sleeps, unless the user says otherwise.
// Measured in the README's contention table: 2 threads, idle and beside a busy loop.
inline constexpr const char* kOpenmpSpinCount = "1000";
// Set in the environment of the re-executed process, so it can say where the policy came from.
inline constexpr const char* kOpenmpDefaultsMarker = "DFS_OPENMP_DEFAULTS_APPLIED";

// One line for --version and bench headers: the wait policy in force and who chose it.
inline std::string openmp_wait_policy() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  const bool ours = std::getenv(kOpenmpDefaultsMarker) != nullptr;
  std::string out;
  if (policy != nullptr) out = std::string("OMP_WAIT_POLICY=") + policy;
  if (spin != nullptr) out += std::string(out.empty() ? "" : ", ") + "GOMP_SPINCOUNT=" + spin;
  if (out.empty()) return "libgomp default (spin 300000, then sleep)";
  return out + (ours ? " (Diffusion Forcing Studio's default)" : " (from the environment)");
}

}  // namespace dfs::diffusion
