// Why this file exists: the UNet's channel plumbing on the GPU, with the contracts of
// kernels/cpu/ops.h: concatenating skips along channels (and splitting the gradient), and a
// per-image channel vector broadcast over the pixels (the
// timestep projection) with its reduction. Instantiated for float, bf16 and fp16; fp32 math.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace ladder::cuda {
namespace {

using detail::from_float;
using detail::kThreads;
using detail::to_float;

template <class T>
__global__ void concat_kernel(int64_t m, int ca, int cb, const T* a, const T* b, T* y) {
  const int64_t total = m * (ca + cb);
  for (int64_t i = detail::global_thread(); i < total; i += detail::grid_stride()) {
    const int64_t p = i / (ca + cb);
    const int j = static_cast<int>(i - p * (ca + cb));
    y[i] = j < ca ? a[p * ca + j] : b[p * cb + (j - ca)];
  }
}

template <class T>
__global__ void split_kernel(int64_t m, int ca, int cb, const T* dy, T* da, T* db) {
  const int64_t total = m * (ca + cb);
  for (int64_t i = detail::global_thread(); i < total; i += detail::grid_stride()) {
    const int64_t p = i / (ca + cb);
    const int j = static_cast<int>(i - p * (ca + cb));
    if (j < ca)
      da[p * ca + j] = dy[i];
    else
      db[p * cb + (j - ca)] = dy[i];
  }
}

template <class T>
__global__ void add_per_channel_kernel(int n, int64_t hw, int c, const T* x, const T* v, T* y) {
  const int64_t total = int64_t(n) * hw * c;
  for (int64_t i = detail::global_thread(); i < total; i += detail::grid_stride()) {
    const int j = static_cast<int>(i % c);
    const int64_t b = i / (hw * c);
    y[i] = from_float<T>(to_float(x[i]) + to_float(v[b * c + j]));
  }
}

// One thread per (image, channel), pixels in order: deterministic (the CPU's order too).
template <class T>
__global__ void sum_per_channel_kernel(int n, int64_t hw, int c, const T* dy, T* dv) {
  for (int64_t i = detail::global_thread(); i < int64_t(n) * c; i += detail::grid_stride()) {
    const int64_t b = i / c;
    const int j = static_cast<int>(i % c);
    float sum = 0;
    for (int64_t p = 0; p < hw; ++p) sum += to_float(dy[(b * hw + p) * c + j]);
    dv[i] = from_float<T>(sum);
  }
}

}  // namespace

template <class T>
void concat_channels(int64_t m, int ca, int cb, const T* a, const T* b, T* y, cudaStream_t stream) {
  if (m == 0) return;
  concat_kernel<<<detail::grid_for(m * (ca + cb)), kThreads, 0, stream>>>(m, ca, cb, a, b, y);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void split_channels(int64_t m, int ca, int cb, const T* dy, T* da, T* db, cudaStream_t stream) {
  if (m == 0) return;
  split_kernel<<<detail::grid_for(m * (ca + cb)), kThreads, 0, stream>>>(m, ca, cb, dy, da, db);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void add_per_channel(int n, int64_t hw, int c, const T* x, const T* v, T* y, cudaStream_t stream) {
  if (n == 0) return;
  add_per_channel_kernel<<<detail::grid_for(int64_t(n) * hw * c), kThreads, 0, stream>>>(n, hw, c, x, v, y);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void sum_per_channel(int n, int64_t hw, int c, const T* dy, T* dv, cudaStream_t stream) {
  if (n == 0) return;
  sum_per_channel_kernel<<<detail::grid_for(int64_t(n) * c), kThreads, 0, stream>>>(n, hw, c, dy, dv);
  LADDER_CUDA_CHECK_LAUNCH();
}

#define LADDER_INSTANTIATE(T)                                                                   \
  template void concat_channels<T>(int64_t, int, int, const T*, const T*, T*, cudaStream_t);    \
  template void split_channels<T>(int64_t, int, int, const T*, T*, T*, cudaStream_t);           \
  template void add_per_channel<T>(int, int64_t, int, const T*, const T*, T*, cudaStream_t);    \
  template void sum_per_channel<T>(int, int64_t, int, const T*, T*, cudaStream_t);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(bf16_t)
LADDER_INSTANTIATE(half_t)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cuda
