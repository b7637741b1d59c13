// Why this file exists: the learning-rate schedule, a function of images seen (not steps), so
// that it survives changes of batch size and world size. Linear warmup over the first
// `warmup_images` of the run; within each rung a cosine from the rung's peak
// (lr × stages.lr_scale[rung]) to zero at the rung's last image, so that every rung of the
// ladder trains at a useful rate (a rung with reset_optimizer starts from its peak again).
#pragma once

#include <algorithm>
#include <cmath>

namespace ladder {

class LrSchedule {
 public:
  LrSchedule(double peak, double warmup_images) : peak_(peak), warmup_(warmup_images) {}

  // The rate of the step that trains `batch` images after `run_images` in the whole run and
  // `rung_images` in this rung of `rung_total` images. Warmup counts the step's own images
  // (step 1 already moves); the cosine starts at the step's first image (the last step
  // still moves).
  double at(double run_images, double rung_images, double rung_total, double batch,
            double rung_scale) const {
    double warmup = warmup_ > 0 ? std::min(1.0, (run_images + batch) / warmup_) : 1.0;
    double progress = std::clamp(rung_images / std::max(1.0, rung_total), 0.0, 1.0);
    return peak_ * rung_scale * warmup * 0.5 * (1.0 + std::cos(3.141592653589793 * progress));
  }

 private:
  double peak_, warmup_;
};

}  // namespace ladder
