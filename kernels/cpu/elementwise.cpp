// Why this file exists: the pointwise ops (SiLU, residual add, gradient accumulation,
// scaling, copying). Each element is independent, so the loops split across OpenMP threads freely
// without changing any result bit.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

// Below this many elements a loop runs on one thread.
constexpr int64_t kParallelGrain = int64_t(1) << 16;

template <class T>
T sigmoid(T x) {
  return T(1) / (T(1) + std::exp(-x));
}

}  // namespace

template <class T>
void silu_forward(int64_t n, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * sigmoid(x[i]);
}

// d/dx [x·σ(x)] = σ(x)·(1 + x·(1 − σ(x))).
template <class T>
void silu_backward(int64_t n, const T* x, const T* dy, T* dx) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) {
    const T s = sigmoid(x[i]);
    dx[i] = dy[i] * s * (T(1) + x[i] * (T(1) - s));
  }
}

template <class T>
void add_forward(int64_t n, const T* a, const T* b, T* y) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + b[i];
}

template <class T>
void add_accumulate(int64_t n, const T* x, T* y) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

template <class T>
void copy(int64_t n, const T* x, T* y) {
  // Blocks of a few MiB per thread: one thread alone does not saturate memory bandwidth.
  constexpr int64_t kBlock = int64_t(1) << 20;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t first = b * kBlock;
    std::memcpy(y + first, x + first, static_cast<size_t>(std::min(kBlock, n - first)) * sizeof(T));
  }
}

template <class T>
void scale_inplace(int64_t n, T alpha, T* x) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) x[i] *= alpha;
}

template <class T>
void normalize_images(int64_t n, const uint8_t* in, T* out) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) out[i] = T(in[i]) * (T(2) / T(255)) - T(1);
}

#define LADDER_INSTANTIATE(T)                                             \
  template void silu_forward<T>(int64_t, const T*, T*);                   \
  template void silu_backward<T>(int64_t, const T*, const T*, T*);        \
  template void add_forward<T>(int64_t, const T*, const T*, T*);          \
  template void add_accumulate<T>(int64_t, const T*, T*);                 \
  template void scale_inplace<T>(int64_t, T, T*);                         \
  template void copy<T>(int64_t, const T*, T*);                           \
  template void normalize_images<T>(int64_t, const uint8_t*, T*);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
