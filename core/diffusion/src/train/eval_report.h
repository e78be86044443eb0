// What eval.cpp and eval_report.cpp share, internal to src/train.
#pragma once

#include <string>

namespace dfs::diffusion::train::detail {

// `v` with `decimals` decimals; "inf" and "n/a" (NaN) spelled out.
std::string format_number(double v, int decimals = 2);

}  // namespace dfs::diffusion::train::detail
