// Why this file exists: the decoder's nearest-neighbour ×2 upsampling (before its conv).
// Forward copies each pixel into a 2×2 block; backward sums each block back, in a fixed order.
#include <cstdint>

#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {
constexpr int64_t kParallelGrain = int64_t(1) << 16;
}  // namespace

template <class T>
void upsample_nearest2x_forward(int n, int h, int w, int c, const T* x, T* y) {
  // x (N, H, W, C) → y (N, 2H, 2W, C); parallel over output rows.
  const int64_t rows = int64_t(n) * 2 * h;
#pragma omp parallel for schedule(static) if (rows * 2 * w * c > kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t img = r / (2 * h), ih = (r % (2 * h)) / 2;
    const T* src = x + (img * h + ih) * int64_t(w) * c;
    T* dst = y + r * 2 * int64_t(w) * c;
    for (int64_t iw = 0; iw < w; ++iw)
      for (int64_t ch = 0; ch < c; ++ch) {
        dst[(2 * iw) * c + ch] = src[iw * c + ch];
        dst[(2 * iw + 1) * c + ch] = src[iw * c + ch];
      }
  }
}

template <class T>
void upsample_nearest2x_backward(int n, int h, int w, int c, const T* dy, T* dx) {
  // dy (N, 2H, 2W, C) → dx (N, H, W, C); parallel over input rows.
  const int64_t rows = int64_t(n) * h, wide = 2 * int64_t(w) * c;
#pragma omp parallel for schedule(static) if (rows * w * c > kParallelGrain)
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t img = r / h, ih = r % h;
    const T* top = dy + (img * 2 * h + 2 * ih) * wide;
    const T* bottom = top + wide;
    T* dst = dx + r * int64_t(w) * c;
    for (int64_t iw = 0; iw < w; ++iw)
      for (int64_t ch = 0; ch < c; ++ch) {
        const int64_t left = 2 * iw * c + ch, right = left + c;
        dst[iw * c + ch] = (top[left] + top[right]) + (bottom[left] + bottom[right]);
      }
  }
}

#define LADDER_INSTANTIATE(T)                                                           \
  template void upsample_nearest2x_forward<T>(int, int, int, int, const T*, T*);        \
  template void upsample_nearest2x_backward<T>(int, int, int, int, const T*, T*);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
