// dfs/diffusion/openmp_policy.h — which OpenMP wait policy the process runs with.
//
// Debian's LibTorch parallelises with GNU OpenMP (libgomp), whose threads spin 300,000
// iterations at the end of every parallel region before they sleep. Beside a busy program
// that made 2-thread runs 2.5-3.8x slower; the engine answers with threads that follow the
// machine's load (src/load_adaptive.h), not with a shorter spin, which cost 35 % of the idle
// speed (README, "A busy machine"). A user's OMP_WAIT_POLICY or GOMP_SPINCOUNT is libgomp's
// business; this only reports it. Torch-free, header-only.
#pragma once

#include <cstdlib>
#include <string>

namespace dfs::diffusion {

// One line for --version and bench headers: the wait policy in force.
inline std::string openmp_wait_policy() {
  const char* policy = std::getenv("OMP_WAIT_POLICY");
  const char* spin = std::getenv("GOMP_SPINCOUNT");
  std::string out;
  if (policy != nullptr) out = std::string("OMP_WAIT_POLICY=") + policy;
  if (spin != nullptr) out += std::string(out.empty() ? "" : ", ") + "GOMP_SPINCOUNT=" + spin;
  if (out.empty()) return "libgomp default (spin 300000, then sleep)";
  return out + " (from the environment)";
}

}  // namespace dfs::diffusion
