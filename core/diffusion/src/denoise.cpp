// The model wrapper's objective conversion (see denoise.h).
#include "dfs/diffusion/denoise.h"

#include <utility>

namespace dfs::diffusion {

DenoiseFn x0_denoiser(PredictFn predict, NoiseSchedule schedule, Objective objective) {
  return [predict = std::move(predict), schedule, objective](const DenoiseCall& call) {
    return schedule.to_x0(objective, predict(call), call.x, call.levels);
  };
}

}  // namespace dfs::diffusion
