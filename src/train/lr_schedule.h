// Why this file exists: the learning-rate schedule, a function of images seen (not steps),
// so that it survives changes of batch size and world size: linear warmup over
// `warmup_images`, then cosine decay to zero at the end of the whole ladder.
#pragma once

#include <algorithm>
#include <cmath>

namespace ladder {

class LrSchedule {
 public:
  LrSchedule(double peak, double warmup_images, double total_images)
      : peak_(peak), warmup_(warmup_images), total_(total_images) {}

  // The rate of the step that starts after `images_before` images and trains `batch` more:
  // warmup counts the step's own images (step 1 already moves), the cosine starts at the
  // step's first image (the last step still moves).
  double at(double images_before, double batch) const {
    double images_after = images_before + batch;
    if (images_after < warmup_) return peak_ * images_after / warmup_;
    double span = std::max(1.0, total_ - warmup_);
    double progress = std::clamp((std::max(images_before, warmup_) - warmup_) / span, 0.0, 1.0);
    return peak_ * 0.5 * (1.0 + std::cos(3.141592653589793 * progress));
  }

 private:
  double peak_, warmup_, total_;
};

}  // namespace ladder
