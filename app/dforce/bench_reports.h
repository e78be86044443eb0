// bench_reports.h — the kernel-level reports of `dforce bench`: the roofline against a same-run
// dense GEMM (--reference) and windows batched into one forward (--batch).
#pragma once

#include <nlohmann/json.hpp>

#include <vector>

#include "dfs/diffusion/api.h"

namespace dforce {

// Forward GFLOP/s (fast and exact kernels, batch 1 and 2) against a dense 1024^3 GEMM at the
// engine's thread count, measured in the same run; prints unless `json`.
nlohmann::json reference_report(dfs::diffusion::Model& model, int window, bool json);

// Model-bound frames/s with `batches` windows of context + horizon frames in one forward, at
// `steps` forwards per window.
nlohmann::json batched_windows_report(dfs::diffusion::Model& model, int context, int horizon,
                                      int steps, bool exact, const std::vector<int>& batches,
                                      bool json);

}  // namespace dforce
