// Why this file exists: the per-pixel ops of the LPIPS perceptual loss around its feature
// network (docs/reference-lpips.md): the input ScalingLayer (which broadcasts one gray channel
// to three, as PyTorch does), lpips.normalize_tensor (unit
// norm over channels) and the calibrated squared distance of one layer (the NetLinLayer's
// 1×1 conv without bias, then the spatial mean). Reductions run in double within a pixel or
// an image; pixels and images split across OpenMP threads without changing a bit.
#include <cmath>
#include <cstdint>

#include "core/check.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

constexpr int64_t kParallelGrain = int64_t(1) << 12;  // pixels

}  // namespace

template <class T>
void channel_standardize_forward(int64_t m, int cin, const T* shift, const T* scale, const T* x, T* y) {
  LADDER_CHECK(cin == 1 || cin == 3, "channel_standardize: 1 or 3 input channels, got ", cin);
#pragma omp parallel for schedule(static) if (m > kParallelGrain)
  for (int64_t p = 0; p < m; ++p)
    for (int ch = 0; ch < 3; ++ch) y[p * 3 + ch] = (x[p * cin + (cin == 1 ? 0 : ch)] - shift[ch]) / scale[ch];
}

template <class T>
void channel_standardize_backward(int64_t m, int cin, const T* scale, const T* dy, T* dx) {
  LADDER_CHECK(cin == 1 || cin == 3, "channel_standardize: 1 or 3 input channels, got ", cin);
#pragma omp parallel for schedule(static) if (m > kParallelGrain)
  for (int64_t p = 0; p < m; ++p) {
    if (cin == 3) {
      for (int ch = 0; ch < 3; ++ch) dx[p * 3 + ch] = dy[p * 3 + ch] / scale[ch];
    } else {  // the one channel fed all three
      dx[p] = dy[p * 3] / scale[0] + dy[p * 3 + 1] / scale[1] + dy[p * 3 + 2] / scale[2];
    }
  }
}

template <class T>
void channel_unit_norm_forward(int64_t m, int c, double eps, const T* x, T* y, T* norm) {
  LADDER_CHECK(eps > 0, "channel_unit_norm: eps must be positive, got ", eps);
#pragma omp parallel for schedule(static) if (m > kParallelGrain)
  for (int64_t p = 0; p < m; ++p) {
    const T* xp = x + p * c;  // (C)
    double sq = 0;
    for (int ch = 0; ch < c; ++ch) sq += double(xp[ch]) * xp[ch];
    const double r = std::sqrt(sq), inv = 1.0 / (r + eps);
    norm[p] = static_cast<T>(r);
    for (int ch = 0; ch < c; ++ch) y[p * c + ch] = static_cast<T>(xp[ch] * inv);
  }
}

template <class T>
void channel_unit_norm_backward(int64_t m, int c, double eps, const T* x, const T* norm, const T* dy, T* dx) {
#pragma omp parallel for schedule(static) if (m > kParallelGrain)
  for (int64_t p = 0; p < m; ++p) {
    const T *xp = x + p * c, *gp = dy + p * c;  // (C)
    const double r = norm[p], s = r + eps;
    double dot = 0;
    for (int ch = 0; ch < c; ++ch) dot += double(xp[ch]) * gp[ch];
    // At r = 0 the input is the zero vector and the second term vanishes with it.
    const double k = r > 0 ? dot / (r * s * s) : 0.0;
    for (int ch = 0; ch < c; ++ch) dx[p * c + ch] = static_cast<T>(gp[ch] / s - xp[ch] * k);
  }
}

template <class T>
void weighted_distance_accumulate(int n, int64_t hw, int c, const T* a, const T* b, const T* w, double* d) {
#pragma omp parallel for schedule(static) if (n > 1)
  for (int i = 0; i < n; ++i) {
    double sum = 0;
    for (int64_t p = int64_t(i) * hw; p < int64_t(i + 1) * hw; ++p) {
      double pixel = 0;  // the 1×1 conv's output at this pixel
      for (int ch = 0; ch < c; ++ch) {
        const double diff = double(a[p * c + ch]) - b[p * c + ch];
        pixel += double(w[ch]) * diff * diff;
      }
      sum += pixel;
    }
    d[i] += sum / double(hw);
  }
}

template <class T>
void weighted_distance_backward(int n, int64_t hw, int c, const T* a, const T* b, const T* w, const double* ddist,
                                T* da) {
#pragma omp parallel for schedule(static) if (n > 1)
  for (int i = 0; i < n; ++i) {
    const double k = 2.0 * ddist[i] / double(hw);
    for (int64_t p = int64_t(i) * hw; p < int64_t(i + 1) * hw; ++p)
      for (int ch = 0; ch < c; ++ch)
        da[p * c + ch] = static_cast<T>(k * w[ch] * (double(a[p * c + ch]) - b[p * c + ch]));
  }
}

#define LADDER_INSTANTIATE(T)                                                                              \
  template void channel_standardize_forward<T>(int64_t, int, const T*, const T*, const T*, T*);           \
  template void channel_standardize_backward<T>(int64_t, int, const T*, const T*, T*);                    \
  template void channel_unit_norm_forward<T>(int64_t, int, double, const T*, T*, T*);                     \
  template void channel_unit_norm_backward<T>(int64_t, int, double, const T*, const T*, const T*, T*);    \
  template void weighted_distance_accumulate<T>(int, int64_t, int, const T*, const T*, const T*, double*); \
  template void weighted_distance_backward<T>(int, int64_t, int, const T*, const T*, const T*, const double*, T*);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
