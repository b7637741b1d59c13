// Why this file exists: what the CPU fast-path tests (oneDNN convolutions, fused GroupNorm)
// share when they compare a fast op with its reference: random inputs and the error measure.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/rng.h"

namespace ladder::cpu::testing {

// n values from N(offset, 1).
inline std::vector<float> random_floats(int64_t n, Rng& rng, double offset = 0) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = static_cast<float>(offset + rng.normal());
  return v;
}

// max |a − b| / max |b|.
inline double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff = std::max(diff, std::abs(double(a[i]) - b[i]));
    scale = std::max(scale, std::abs(double(b[i])));
  }
  return diff / scale;
}

}  // namespace ladder::cpu::testing
