// Why this file exists: the pointwise ops (SiLU, residual add, gradient accumulation,
// scaling, copying) and the UNet's channel plumbing (concatenation of skips, per-image
// channel vectors broadcast over the pixels). Each element is independent, so the loops split across OpenMP threads freely
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
void lerp_inplace(int64_t n, const T* x, T t, T* y) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) y[i] += t * (x[i] - y[i]);
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
void concat_channels(int64_t m, int ca, int cb, const T* a, const T* b, T* y) {
#pragma omp parallel for schedule(static) if (m * (ca + cb) > kParallelGrain)
  for (int64_t p = 0; p < m; ++p) {
    std::copy_n(a + p * ca, ca, y + p * (ca + cb));
    std::copy_n(b + p * cb, cb, y + p * (ca + cb) + ca);
  }
}

template <class T>
void split_channels(int64_t m, int ca, int cb, const T* dy, T* da, T* db) {
#pragma omp parallel for schedule(static) if (m * (ca + cb) > kParallelGrain)
  for (int64_t p = 0; p < m; ++p) {
    const T* row = dy + p * (ca + cb);
    std::copy_n(row, ca, da + p * ca);
    std::copy_n(row + ca, cb, db + p * cb);
  }
}

template <class T>
void add_per_channel(int n, int64_t hw, int c, const T* x, const T* v, T* y) {
#pragma omp parallel for collapse(2) schedule(static) if (int64_t(n) * hw * c > kParallelGrain)
  for (int b = 0; b < n; ++b)
    for (int64_t p = 0; p < hw; ++p)
      for (int j = 0; j < c; ++j) y[(b * hw + p) * c + j] = x[(b * hw + p) * c + j] + v[b * c + j];
}

template <class T>
void sum_per_channel(int n, int64_t hw, int c, const T* dy, T* dv) {
  // One thread per image, pixels summed in order: the same bits whatever the thread count.
#pragma omp parallel for schedule(static)
  for (int b = 0; b < n; ++b) {
    T* out = dv + b * c;
    std::fill(out, out + c, T(0));
    for (int64_t p = 0; p < hw; ++p)
      for (int j = 0; j < c; ++j) out[j] += dy[(b * hw + p) * c + j];
  }
}

template <class T>
void scale_inplace(int64_t n, T alpha, T* x) {
#pragma omp parallel for schedule(static) if (n > kParallelGrain)
  for (int64_t i = 0; i < n; ++i) x[i] *= alpha;
}

#define LADDER_INSTANTIATE(T)                                             \
  template void silu_forward<T>(int64_t, const T*, T*);                   \
  template void silu_backward<T>(int64_t, const T*, const T*, T*);        \
  template void add_forward<T>(int64_t, const T*, const T*, T*);          \
  template void add_accumulate<T>(int64_t, const T*, T*);                 \
  template void scale_inplace<T>(int64_t, T, T*);                         \
  template void copy<T>(int64_t, const T*, T*);                           \
  template void lerp_inplace<T>(int64_t, const T*, T, T*);                \
  template void concat_channels<T>(int64_t, int, int, const T*, const T*, T*); \
  template void split_channels<T>(int64_t, int, int, const T*, T*, T*);   \
  template void add_per_channel<T>(int, int64_t, int, const T*, const T*, T*); \
  template void sum_per_channel<T>(int, int64_t, int, const T*, T*);      \

LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
