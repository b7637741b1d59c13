// Why this file exists: the loss scaler's update rule and the checks on restored state.
#include "train/loss_scaler.h"

#include <algorithm>
#include <cmath>

#include "core/check.h"

namespace ladder {

LossScaler::LossScaler(bool enabled, double initial, int64_t growth_interval, double growth,
                       double backoff)
    : enabled_(enabled),
      growth_interval_(growth_interval),
      growth_(growth),
      backoff_(backoff),
      scale_(enabled ? initial : 1.0) {
  LADDER_CHECK(std::isfinite(initial) && initial >= kMinScale,
               "loss scale initial value must be finite and >= ", kMinScale, ", got ", initial);
  LADDER_CHECK(growth_interval >= 1, "loss scale growth interval must be >= 1, got ",
               growth_interval);
  LADDER_CHECK(std::isfinite(growth) && growth > 1, "loss scale growth factor must be > 1, got ",
               growth);
  LADDER_CHECK(backoff > 0 && backoff < 1, "loss scale backoff factor must be in (0, 1), got ",
               backoff);
}

bool LossScaler::update(bool grads_finite) {
  if (!grads_finite) {
    ++skipped_;
    clean_steps_ = 0;
    // Floor at 1 (PyTorch has none). A scale below 1 shrinks the fp16 gradients, so more of
    // them underflow; it cannot cure an overflow either, because at scale 1 a non-finite
    // gradient comes from the model itself (an fp16 activation overflow in the forward, a
    // diverged loss), not from the scaling. Without a floor a run that keeps producing NaNs
    // would walk the scale down to 0 and then divide by it. At the floor the step is still
    // skipped and counted; the trainer sees the growing skipped() count.
    if (enabled_) scale_ = std::max(scale_ * backoff_, kMinScale);
    return false;
  }
  if (enabled_ && ++clean_steps_ >= growth_interval_) {
    scale_ *= growth_;
    clean_steps_ = 0;
  }
  return true;
}

void LossScaler::restore(const LossScalerState& state) {
  if (!(std::isfinite(state.scale) && state.scale >= kMinScale))
    LADDER_FAIL("loss scaler state: scale must be finite and >= ", kMinScale, ", got ",
                state.scale);
  if (state.clean_steps < 0)
    LADDER_FAIL("loss scaler state: clean_steps must be >= 0, got ", state.clean_steps);
  if (state.skipped < 0)
    LADDER_FAIL("loss scaler state: skipped must be >= 0, got ", state.skipped);
  skipped_ = state.skipped;
  if (enabled_) {
    scale_ = state.scale;
    // A count at or past the interval (a checkpoint from a build with a longer interval)
    // simply grows the scale on the next clean step.
    clean_steps_ = state.clean_steps;
  }
}

}  // namespace ladder
