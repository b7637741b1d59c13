// Why this file exists: max pooling, the downsampling of LPIPS's feature networks
// (torchvision AlexNet: 3×3 stride 2; VGG16: 2×2 stride 2; no padding, floor mode). The
// backward recomputes each window's argmax from the saved input, so no index tensor is kept.
// Images are independent, so the loops split over them across OpenMP threads without
// changing a bit (overlapping windows add into dx in one fixed order per image).
#include <algorithm>
#include <cstdint>

#include "core/check.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

void check_dims(const MaxPoolDims& d) {
  LADDER_CHECK(d.kernel > 0 && d.stride > 0 && d.out_h() >= 1 && d.out_w() >= 1 && d.h >= d.kernel &&
                   d.w >= d.kernel,
               "max_pool2d: a ", d.kernel, "×", d.kernel, " window does not fit ", d.h, "×", d.w);
}

// The flat offset (within one image) of the first maximum of window (oy, ox), channel ch,
// scanning rows then columns as PyTorch does (strictly greater replaces).
template <class T>
int64_t argmax_in_window(const MaxPoolDims& d, const T* image, int oy, int ox, int ch) {
  int64_t best = (int64_t(oy) * d.stride * d.w + int64_t(ox) * d.stride) * d.c + ch;
  for (int ky = 0; ky < d.kernel; ++ky)
    for (int kx = 0; kx < d.kernel; ++kx) {
      const int64_t at = ((int64_t(oy) * d.stride + ky) * d.w + int64_t(ox) * d.stride + kx) * d.c + ch;
      if (image[at] > image[best]) best = at;
    }
  return best;
}

}  // namespace

template <class T>
void max_pool2d_forward(const MaxPoolDims& d, const T* x, T* y) {
  check_dims(d);
  const int ho = d.out_h(), wo = d.out_w();
  const int64_t in_image = int64_t(d.h) * d.w * d.c, out_image = int64_t(ho) * wo * d.c;
#pragma omp parallel for schedule(static) if (d.n > 1)
  for (int i = 0; i < d.n; ++i) {
    const T* image = x + i * in_image;  // (H, W, C)
    T* out = y + i * out_image;         // (Ho, Wo, C)
    for (int oy = 0; oy < ho; ++oy)
      for (int ox = 0; ox < wo; ++ox)
        for (int ch = 0; ch < d.c; ++ch)
          out[(int64_t(oy) * wo + ox) * d.c + ch] = image[argmax_in_window(d, image, oy, ox, ch)];
  }
}

template <class T>
void max_pool2d_backward(const MaxPoolDims& d, const T* x, const T* dy, T* dx) {
  check_dims(d);
  const int ho = d.out_h(), wo = d.out_w();
  const int64_t in_image = int64_t(d.h) * d.w * d.c, out_image = int64_t(ho) * wo * d.c;
#pragma omp parallel for schedule(static) if (d.n > 1)
  for (int i = 0; i < d.n; ++i) {
    const T* image = x + i * in_image;  // (H, W, C)
    const T* grad = dy + i * out_image;  // (Ho, Wo, C)
    T* out = dx + i * in_image;          // (H, W, C)
    std::fill(out, out + in_image, T(0));
    for (int oy = 0; oy < ho; ++oy)
      for (int ox = 0; ox < wo; ++ox)
        for (int ch = 0; ch < d.c; ++ch)
          out[argmax_in_window(d, image, oy, ox, ch)] += grad[(int64_t(oy) * wo + ox) * d.c + ch];
  }
}

#define LADDER_INSTANTIATE(T)                                                  \
  template void max_pool2d_forward<T>(const MaxPoolDims&, const T*, T*); \
  template void max_pool2d_backward<T>(const MaxPoolDims&, const T*, const T*, T*);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
