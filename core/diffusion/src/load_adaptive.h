// Internal to dfs_diffusion: intra-op threads that follow the machine's load.
//
// libgomp's threads spin (300,000 iterations) at the end of every parallel region. Beside
// another busy program a 2-thread run then collapses: one thread holds the free core while its
// partner waits for a time slice on the busy one, so every small parallel op (layer_norm,
// softmax, gelu) waits milliseconds; beside one busy loop the shipped model's 2-thread runs
// took 2.5-3.8x longer. A shorter spin (GOMP_SPINCOUNT=1000) cured that but cost 35 % of the
// idle speed; so the thread count follows the load instead. At most every 200 ms (called once
// per sampling step, per window and per training step) it reads how much CPU other programs
// used since the last look (/proc/stat minus /proc/self/stat) and uses the cores left free,
// at least 1 and at most the configured count. Only when the thread count was left to the
// default (no --threads, no $DFS_THREADS); the README's contention table has the numbers.
#pragma once

namespace dfs::diffusion::detail {

// Adjusts LibTorch's intra-op threads to the cores other programs leave free (see above).
// Cheap when called often (a clock read); thread-safe.
void adapt_threads_to_load();

}  // namespace dfs::diffusion::detail
