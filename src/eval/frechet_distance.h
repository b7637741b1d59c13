// Why this file exists: the Fréchet Inception Distance of two feature sets,
//   FID = ‖μ₁ − μ₂‖² + tr S₁ + tr S₂ − 2 tr √(S₁S₂),
// as pytorch-fid defines it, in double. pytorch-fid takes scipy's sqrtm of S₁S₂, which is
// unstable where the covariances are singular (fewer images than dimensions); ladder takes
// the trace from eigenvalues of a symmetric matrix instead, or, given the features and a set
// smaller than the dimension, from singular values of the centred features' product.
#pragma once

#include <cstdint>

#include "eval/feature_statistics.h"

namespace ladder::eval {

// From statistics alone (e.g. a reference set's cached statistics): tr √(S₁S₂) = Σ √λᵢ over the
// eigenvalues of the symmetric √S₁·S₂·√S₁ (negative ones, rounding, clamped to 0).
double frechet_distance(const FeatureStatistics& a, const FeatureStatistics& b);

// From the features (count, dims) row-major. When either set has fewer images than dims, the
// trace comes from the singular values σᵢ of X₁X₂ᵀ (X the centred features):
// tr √(S₁S₂) = Σ σᵢ / √((N₁ − 1)(N₂ − 1)), exact however singular the covariances are;
// otherwise as from the statistics.
double frechet_distance(const float* a, int64_t count_a, const float* b, int64_t count_b, int dims);
// The same, given the sets' statistics already (sa of a, sb of b): a reference scored again and
// again keeps its statistics instead of recomputing them. The same bits as the above.
double frechet_distance(const float* a, const FeatureStatistics& sa, const float* b, const FeatureStatistics& sb);

// tr √(S₁S₂) by each route (exposed for the tests, which compare the two).
double trace_sqrt_product(const FeatureStatistics& a, const FeatureStatistics& b);
double trace_sqrt_product(const float* a, int64_t count_a, const float* b, int64_t count_b, int dims);

}  // namespace ladder::eval
