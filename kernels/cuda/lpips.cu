// Why this file exists: the ops of the LPIPS perceptual loss around its feature network on the
// GPU, the twins of kernels/cpu/max_pool.cpp and kernels/cpu/lpips_head.cpp (the same
// contracts, kernels/cpu/ops.h): max pooling, whose backward gathers (one thread per input
// element walks the windows that hold it in the CPU's order: no atomics, and for fp32 the
// CPU's bits); the ScalingLayer; the unit norm over channels (one warp per pixel, double
// sums); and one layer's calibrated distance (a deterministic sum per image, common.cuh).
#include <vector>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace ladder::cuda {
namespace {

using detail::from_float;
using detail::to_float;

constexpr int kWarp = 32;

struct PoolGeometry {
  int n, h, w, c, kernel, stride, ho, wo;
};

PoolGeometry geometry(const cpu::MaxPoolDims& d) {
  LADDER_CHECK(d.kernel > 0 && d.stride > 0 && d.h >= d.kernel && d.w >= d.kernel && d.n >= 0 && d.c > 0,
               "CUDA max_pool2d: a ", d.kernel, "×", d.kernel, " window does not fit ", d.h, "×", d.w);
  return {d.n, d.h, d.w, d.c, d.kernel, d.stride, d.out_h(), d.out_w()};
}

// The flat offset within one image (H, W, C) of the first maximum of window (oy, ox), channel
// ch, scanning rows then columns (strictly greater replaces), as the CPU and PyTorch do.
template <class T>
__device__ int64_t argmax_in_window(const PoolGeometry& g, const T* image, int oy, int ox, int ch) {
  int64_t best = (int64_t(oy) * g.stride * g.w + int64_t(ox) * g.stride) * g.c + ch;
  float best_value = to_float(image[best]);
  for (int ky = 0; ky < g.kernel; ++ky)
    for (int kx = 0; kx < g.kernel; ++kx) {
      const int64_t at = ((int64_t(oy) * g.stride + ky) * g.w + int64_t(ox) * g.stride + kx) * g.c + ch;
      const float value = to_float(image[at]);
      if (value > best_value) best = at, best_value = value;
    }
  return best;
}

// Flat index i of an (N, rows, cols, C) tensor as its (n, y, x, ch).
struct Pixel {
  int64_t n;
  int y, x, ch;
};
__device__ Pixel pixel_of(int64_t i, int rows, int cols, int c) {
  Pixel p;
  p.ch = static_cast<int>(i % c);
  i /= c;
  p.x = static_cast<int>(i % cols);
  i /= cols;
  p.y = static_cast<int>(i % rows);
  p.n = i / rows;
  return p;
}

template <class T>
__global__ void max_pool_forward_kernel(PoolGeometry g, const T* x, T* y) {
  const int64_t total = int64_t(g.n) * g.ho * g.wo * g.c;
  for (int64_t i = detail::global_thread(); i < total; i += detail::grid_stride()) {
    const Pixel o = pixel_of(i, g.ho, g.wo, g.c);
    const T* image = x + o.n * int64_t(g.h) * g.w * g.c;  // (H, W, C)
    y[i] = image[argmax_in_window(g, image, o.y, o.x, o.ch)];
  }
}

template <class T>
__global__ void max_pool_backward_kernel(PoolGeometry g, const T* x, const T* dy, T* dx) {
  const int64_t total = int64_t(g.n) * g.h * g.w * g.c;
  for (int64_t i = detail::global_thread(); i < total; i += detail::grid_stride()) {
    const Pixel in = pixel_of(i, g.h, g.w, g.c);
    const int ch = in.ch, ix = in.x, iy = in.y;
    const int64_t n = in.n;
    const T* image = x + n * int64_t(g.h) * g.w * g.c;     // (H, W, C)
    const T* grad = dy + n * int64_t(g.ho) * g.wo * g.c;   // (Ho, Wo, C)
    const int64_t here = (int64_t(iy) * g.w + ix) * g.c + ch;
    // The windows holding (iy, ix): o·stride <= i < o·stride + kernel.
    const int oy_first = iy < g.kernel ? 0 : (iy - g.kernel) / g.stride + 1;
    const int ox_first = ix < g.kernel ? 0 : (ix - g.kernel) / g.stride + 1;
    const int oy_last = min(g.ho - 1, iy / g.stride), ox_last = min(g.wo - 1, ix / g.stride);
    float sum = 0.0f;  // in the CPU's order: windows by rows, then columns
    for (int oy = oy_first; oy <= oy_last; ++oy)
      for (int ox = ox_first; ox <= ox_last; ++ox)
        if (argmax_in_window(g, image, oy, ox, ch) == here) sum += to_float(grad[(int64_t(oy) * g.wo + ox) * g.c + ch]);
    dx[i] = from_float<T>(sum);
  }
}

struct Standardize {
  float shift[3], scale[3];
};

template <class T>
__global__ void standardize_forward_kernel(int64_t m, int cin, Standardize s, const T* x, T* y) {
  for (int64_t i = detail::global_thread(); i < m * 3; i += detail::grid_stride()) {
    const int64_t p = i / 3;
    const int ch = static_cast<int>(i % 3);
    y[i] = from_float<T>((to_float(x[p * cin + (cin == 1 ? 0 : ch)]) - s.shift[ch]) / s.scale[ch]);
  }
}

template <class T>
__global__ void standardize_backward_kernel(int64_t m, int cin, Standardize s, const T* dy, T* dx) {
  for (int64_t p = detail::global_thread(); p < m; p += detail::grid_stride()) {
    if (cin == 3) {
      for (int ch = 0; ch < 3; ++ch) dx[p * 3 + ch] = from_float<T>(to_float(dy[p * 3 + ch]) / s.scale[ch]);
    } else {  // the one channel fed all three
      dx[p] = from_float<T>(to_float(dy[p * 3]) / s.scale[0] + to_float(dy[p * 3 + 1]) / s.scale[1] +
                            to_float(dy[p * 3 + 2]) / s.scale[2]);
    }
  }
}

// Σ over the warp's lanes, the result in every lane (fixed order: the same bits every run).
__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

// One warp per pixel; a warp's lanes stride over the channels.
__device__ __forceinline__ int64_t first_warp() {
  return (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
}
__device__ __forceinline__ int64_t warp_stride() { return int64_t(gridDim.x) * blockDim.x / kWarp; }

template <class T>
__global__ void unit_norm_forward_kernel(int64_t m, int c, double eps, const T* x, T* y, T* norm) {
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  for (int64_t p = first_warp(); p < m; p += warp_stride()) {  // the same p in every lane
    const T* xp = x + p * c;  // (C)
    double sq = 0;
    for (int ch = lane; ch < c; ch += kWarp) {
      const double v = to_float(xp[ch]);
      sq += v * v;
    }
    const double r = sqrt(warp_sum(sq)), inv = 1.0 / (r + eps);
    if (lane == 0) norm[p] = from_float<T>(static_cast<float>(r));
    for (int ch = lane; ch < c; ch += kWarp) y[p * c + ch] = from_float<T>(static_cast<float>(to_float(xp[ch]) * inv));
  }
}

template <class T>
__global__ void unit_norm_backward_kernel(int64_t m, int c, double eps, const T* x, const T* norm, const T* dy,
                                          T* dx) {
  const int lane = static_cast<int>(threadIdx.x % kWarp);
  for (int64_t p = first_warp(); p < m; p += warp_stride()) {
    const T* xp = x + p * c;
    const T* gp = dy + p * c;
    const double r = to_float(norm[p]), s = r + eps;
    double dot = 0;
    for (int ch = lane; ch < c; ch += kWarp) dot += double(to_float(xp[ch])) * to_float(gp[ch]);
    dot = warp_sum(dot);
    // At r = 0 the input is the zero vector and the second term vanishes with it.
    const double k = r > 0 ? dot / (r * s * s) : 0.0;
    for (int ch = lane; ch < c; ch += kWarp)
      dx[p * c + ch] = from_float<T>(static_cast<float>(to_float(gp[ch]) / s - to_float(xp[ch]) * k));
  }
}

unsigned warps_grid(int64_t pixels) { return detail::grid_for(pixels * kWarp); }

// w_ch·(a − b)² at flat index j of one image's (hw, c) features.
template <class T>
struct WeightedSquare {
  const T* a;
  const T* b;
  const float* w;
  int c;
  __device__ double operator()(int64_t j) const {
    const double diff = double(to_float(a[j])) - double(to_float(b[j]));
    return double(w[j % c]) * diff * diff;
  }
};

template <class T>
__global__ void weighted_distance_backward_kernel(int64_t count, int c, double k, const T* a, const T* b,
                                                  const float* w, T* da) {
  for (int64_t j = detail::global_thread(); j < count; j += detail::grid_stride())
    da[j] = from_float<T>(static_cast<float>(k * w[j % c] * (double(to_float(a[j])) - double(to_float(b[j])))));
}

}  // namespace

template <class T>
void max_pool2d_forward(const cpu::MaxPoolDims& d, const T* x, T* y, cudaStream_t stream) {
  const PoolGeometry g = geometry(d);
  const int64_t total = int64_t(g.n) * g.ho * g.wo * g.c;
  if (total == 0) return;
  max_pool_forward_kernel<T><<<detail::grid_for(total), detail::kThreads, 0, stream>>>(g, x, y);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void max_pool2d_backward(const cpu::MaxPoolDims& d, const T* x, const T* dy, T* dx, cudaStream_t stream) {
  const PoolGeometry g = geometry(d);
  const int64_t total = int64_t(g.n) * g.h * g.w * g.c;
  if (total == 0) return;
  max_pool_backward_kernel<T><<<detail::grid_for(total), detail::kThreads, 0, stream>>>(g, x, dy, dx);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void channel_standardize_forward(int64_t m, int cin, const float* shift, const float* scale, const T* x, T* y,
                                 cudaStream_t stream) {
  LADDER_CHECK(cin == 1 || cin == 3, "CUDA channel_standardize: 1 or 3 input channels, got ", cin);
  if (m <= 0) return;
  const Standardize s{{shift[0], shift[1], shift[2]}, {scale[0], scale[1], scale[2]}};
  standardize_forward_kernel<T><<<detail::grid_for(m * 3), detail::kThreads, 0, stream>>>(m, cin, s, x, y);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void channel_standardize_backward(int64_t m, int cin, const float* scale, const T* dy, T* dx, cudaStream_t stream) {
  LADDER_CHECK(cin == 1 || cin == 3, "CUDA channel_standardize: 1 or 3 input channels, got ", cin);
  if (m <= 0) return;
  const Standardize s{{0, 0, 0}, {scale[0], scale[1], scale[2]}};
  standardize_backward_kernel<T><<<detail::grid_for(m), detail::kThreads, 0, stream>>>(m, cin, s, dy, dx);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void channel_unit_norm_forward(int64_t m, int c, double eps, const T* x, T* y, T* norm, cudaStream_t stream) {
  LADDER_CHECK(eps > 0 && c > 0, "CUDA channel_unit_norm: eps ", eps, ", channels ", c);
  if (m <= 0) return;
  unit_norm_forward_kernel<T><<<warps_grid(m), detail::kThreads, 0, stream>>>(m, c, eps, x, y, norm);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void channel_unit_norm_backward(int64_t m, int c, double eps, const T* x, const T* norm, const T* dy, T* dx,
                                cudaStream_t stream) {
  LADDER_CHECK(eps > 0 && c > 0, "CUDA channel_unit_norm: eps ", eps, ", channels ", c);
  if (m <= 0) return;
  unit_norm_backward_kernel<T><<<warps_grid(m), detail::kThreads, 0, stream>>>(m, c, eps, x, norm, dy, dx);
  LADDER_CUDA_CHECK_LAUNCH();
}

int64_t weighted_distance_scratch_doubles(int n, int64_t hw, int c) {
  return detail::sum_partials(hw * c) + n;
}

template <class T>
void weighted_distance_accumulate(int n, int64_t hw, int c, const T* a, const T* b, const float* w, double* d,
                                  double* scratch, cudaStream_t stream) {
  LADDER_CHECK(n >= 0 && hw > 0 && c > 0, "CUDA weighted_distance: n ", n, ", pixels ", hw, ", channels ", c);
  if (n == 0) return;
  const int64_t per_image = hw * c;
  double* sums = scratch + detail::sum_partials(per_image);  // (n), after the partials the launches reuse
  for (int i = 0; i < n; ++i)
    detail::launch_sum(per_image, WeightedSquare<T>{a + i * per_image, b + i * per_image, w, c}, sums + i, scratch,
                       stream);
  std::vector<double> host(static_cast<size_t>(n));  // one wait for all the images
  LADDER_CUDA_CHECK(cudaMemcpyAsync(host.data(), sums, sizeof(double) * n, cudaMemcpyDeviceToHost, stream));
  LADDER_CUDA_CHECK(cudaStreamSynchronize(stream));
  for (int i = 0; i < n; ++i) d[i] += host[size_t(i)] / double(hw);
}

template <class T>
void weighted_distance_backward(int n, int64_t hw, int c, const T* a, const T* b, const float* w,
                                const double* ddist, T* da, cudaStream_t stream) {
  LADDER_CHECK(n >= 0 && hw > 0 && c > 0, "CUDA weighted_distance: n ", n, ", pixels ", hw, ", channels ", c);
  const int64_t per_image = hw * c;
  for (int i = 0; i < n; ++i) {
    const double k = 2.0 * ddist[i] / double(hw);
    weighted_distance_backward_kernel<T><<<detail::grid_for(per_image), detail::kThreads, 0, stream>>>(
        per_image, c, k, a + i * per_image, b + i * per_image, w, da + i * per_image);
    LADDER_CUDA_CHECK_LAUNCH();
  }
}

#define LADDER_INSTANTIATE(T)                                                                                      \
  template void max_pool2d_forward<T>(const cpu::MaxPoolDims&, const T*, T*, cudaStream_t);                        \
  template void max_pool2d_backward<T>(const cpu::MaxPoolDims&, const T*, const T*, T*, cudaStream_t);             \
  template void channel_standardize_forward<T>(int64_t, int, const float*, const float*, const T*, T*,             \
                                               cudaStream_t);                                                     \
  template void channel_standardize_backward<T>(int64_t, int, const float*, const T*, T*, cudaStream_t);           \
  template void channel_unit_norm_forward<T>(int64_t, int, double, const T*, T*, T*, cudaStream_t);                \
  template void channel_unit_norm_backward<T>(int64_t, int, double, const T*, const T*, const T*, T*,              \
                                              cudaStream_t);                                                      \
  template void weighted_distance_accumulate<T>(int, int64_t, int, const T*, const T*, const float*, double*,      \
                                                double*, cudaStream_t);                                           \
  template void weighted_distance_backward<T>(int, int64_t, int, const T*, const T*, const float*, const double*,  \
                                              T*, cudaStream_t);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(bf16_t)
LADDER_INSTANTIATE(half_t)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cuda
