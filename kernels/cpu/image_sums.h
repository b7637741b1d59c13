// Why this file exists: the GroupNorm backwards (group_norm.cpp, group_norm_silu.cpp) sum the
// affine gradients per (image, channel) in parallel over images, then over the images in one
// fixed order, so that the result does not depend on the thread count. This is that last step.
#pragma once

#include <cstdint>
#include <vector>

namespace ladder::cpu {

// out[c] += Σ_n parts[n·channels + c], n = 0 .. images−1 in order; parts (images, channels).
template <class T>
void add_image_sums(int64_t images, int channels, const std::vector<double>& parts, T* out) {
  for (int c = 0; c < channels; ++c) {
    double sum = 0;
    for (int64_t n = 0; n < images; ++n) sum += parts[size_t(n) * channels + c];
    out[c] += T(sum);
  }
}

}  // namespace ladder::cpu
