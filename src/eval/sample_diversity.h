// Why this file exists: a generator that repeats itself can still score a fair FID, so MONAI's
// generative tutorials also report diversity: the mean MS-SSIM over every pair of (up to 100)
// samples, lower meaning more diverse. As they compute it: MultiScaleSSIMMetric with
// kernel_size 4 (σ 1.5), data range 1 on [0, 1], pairs in itertools.combinations order, mean
// and the (N − 1) std over the pairs. The pairs are split over the ranks and gathered in pair
// order, so the figures are the same bits on any world size.
#pragma once

#include <cstdint>

#include "comm/communicator.h"

namespace ladder::eval {

struct Diversity {
  double mean = 0, std = 0;  // over the pairs; NAN when the images are too small (64 px a side)
  int64_t images = 0, pairs = 0;
};

// held (held_count, side, side, channels) uint8: this rank's images rank, rank + W, ... of a
// set of `total`; the first min(total, most) images are paired. A collective.
Diversity ms_ssim_diversity(Communicator& comm, const uint8_t* held, int64_t held_count, int side, int channels,
                            int64_t total, int64_t most = 100);

}  // namespace ladder::eval
