// Why this file exists: LeakyReLU, the PatchDiscriminator's activation (negative slope 0.2 in
// MONAI), and with slope 0 the ReLU of LPIPS's feature networks. Elementwise, so the loops
// split across OpenMP threads without changing a bit.
#include <cstdint>

#include "core/check.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

constexpr int64_t kParallelGrain = int64_t(1) << 16;

}  // namespace

template <class T>
void leaky_relu_forward(int64_t n, T slope, const T* x, T* y) {
  LADDER_CHECK(slope >= T(0), "leaky_relu: the negative slope must not be negative, got ", slope);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : slope * x[i];
}

template <class T>
void leaky_relu_backward(int64_t n, T slope, const T* x, const T* dy, T* dx) {
  LADDER_CHECK(slope >= T(0), "leaky_relu: the negative slope must not be negative, got ", slope);
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) dx[i] = x[i] > T(0) ? dy[i] : slope * dy[i];
}

#define LADDER_INSTANTIATE(T)                                       \
  template void leaky_relu_forward<T>(int64_t, T, const T*, T*); \
  template void leaky_relu_backward<T>(int64_t, T, const T*, const T*, T*);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
