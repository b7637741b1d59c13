// Why this file exists: FID compares two sets of images by the mean and covariance of their
// feature vectors (InceptionV3's 2048-d pool3). This is those statistics, in double, computed
// the way numpy computes them for pytorch-fid (mean, then the covariance of the centred
// features with N − 1), from features in a fixed order, so that they are the same bits
// whichever ranks extracted the features.
#pragma once

#include <cstdint>
#include <vector>

namespace ladder::eval {

struct FeatureStatistics {
  int64_t count = 0;               // N, the images the features came from
  int dims = 0;                    // d
  std::vector<double> mean;        // (d)
  std::vector<double> covariance;  // (d, d) row-major, Σ (x − μ)(x − μ)ᵀ / (N − 1)
};

// The statistics of `features` (count, dims) row-major, count ≥ 2.
FeatureStatistics feature_statistics(const float* features, int64_t count, int dims);

}  // namespace ladder::eval
