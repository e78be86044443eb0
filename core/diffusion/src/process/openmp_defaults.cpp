// Sets the OpenMP spin count before libgomp reads it (dfs/diffusion/openmp_defaults.h).
//
// Compiled into each program that links `dfs_openmp_defaults` (not into the library: a
// .preinit_array exists only in executables). The function below runs before any shared
// library is initialised: no LibTorch, no libstdc++ and not even libc's environment set-up
// has run yet, so it touches only its arguments, static storage and raw system calls
// (setenv here would be undone when libc initialises its environment from the stack).
// Re-executing now costs only the dynamic loader's relocations (~25 ms here), not LibTorch's
// start-up (~0.7 s), which has not happened yet.
#include <unistd.h>

#include "dfs/diffusion/openmp_defaults.h"

namespace {

// Plain loops rather than <cstring>: nothing of libc is relied on beyond execve.
bool same(const char* a, const char* b) {
  while (*a != '\0' && *a == *b) ++a, ++b;
  return *a == *b;
}

// The value of `name` in `envp`, or nullptr.
const char* value_of(char** envp, const char* name) {
  for (char** e = envp; *e != nullptr; ++e) {
    const char* v = *e;
    const char* n = name;
    while (*n != '\0' && *v == *n) ++v, ++n;
    if (*n == '\0' && *v == '=') return v + 1;
  }
  return nullptr;
}

// Appends `tail` to `out` at `at`; returns the new end. `out` is large enough for our strings.
char* append(char* at, const char* tail) {
  while (*tail != '\0') *at++ = *tail++;
  *at = '\0';
  return at;
}

// Static storage: there is no allocator to call yet.
constexpr int kMaxVariables = 4096;
char* new_environment[kMaxVariables + 3];
char spin_variable[64];
char marker_variable[64];

void apply_openmp_defaults(int /*argc*/, char** argv, char** envp) {
  if (argv == nullptr || envp == nullptr) return;
  if (value_of(envp, "OMP_WAIT_POLICY") != nullptr || value_of(envp, "GOMP_SPINCOUNT") != nullptr)
    return;
  if (value_of(envp, dfs::diffusion::kOpenmpDefaultsMarker) != nullptr) return;  // re-executed
  if (const char* v = value_of(envp, "DFS_OPENMP_DEFAULTS");
      v != nullptr && (same(v, "off") || same(v, "0") || same(v, "no")))
    return;
  int count = 0;
  while (envp[count] != nullptr) {
    if (count == kMaxVariables) return;  // an environment this large is left as it is
    new_environment[count] = envp[count];
    ++count;
  }
  append(append(spin_variable, "GOMP_SPINCOUNT="), dfs::diffusion::kOpenmpSpinCount);
  append(append(marker_variable, dfs::diffusion::kOpenmpDefaultsMarker), "=1");
  new_environment[count++] = spin_variable;
  new_environment[count++] = marker_variable;
  new_environment[count] = nullptr;
  // Only returns on failure (no /proc, say): then the program runs on with libgomp's default.
  execve("/proc/self/exe", argv, new_environment);
}

}  // namespace

__attribute__((section(".preinit_array"), used)) static void (*const dfs_openmp_preinit)(
    int, char**, char**) = &apply_openmp_defaults;
