// Why this file exists: the forward-only ops of the feature networks that score images
// (InceptionV3 for FID and KID) on the GPU, the twins of kernels/cpu/feature_ops.cpp (same
// contracts, fp32 only: the scoring network runs in fp32 on every device). Every output element
// is computed by one thread in the CPU's order of operations, with the multiply-adds written
// as separate roundings (__fmul_rn/__fadd_rn) so that nvcc cannot contract them into FMAs the
// CPU code does not use; the global average pool sums each (image, channel) in double in pixel
// order. No atomics: the same inputs give the same bits on every run.
#include <limits>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace ladder::cuda {
namespace {

using detail::global_thread;
using detail::grid_for;
using detail::grid_stride;
using detail::kThreads;

__global__ void channel_affine_kernel(int64_t n, int c, const float* x, const float* scale, const float* shift,
                                      float floor, float* y) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const int k = static_cast<int>(i % c);
    y[i] = fmaxf(__fadd_rn(__fmul_rn(x[i], scale[k]), shift[k]), floor);
  }
}

__global__ void pool3x3_same_kernel(bool max_pool, int64_t n, int h, int w, int c, const float* x, float* y) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const int k = static_cast<int>(i % c);
    const int ox = static_cast<int>((i / c) % w);
    const int oy = static_cast<int>((i / (int64_t(c) * w)) % h);
    const int64_t image = i / (int64_t(c) * w * h);
    const int y0 = max(0, oy - 1), y1 = min(h - 1, oy + 1), x0 = max(0, ox - 1), x1 = min(w - 1, ox + 1);
    float value = max_pool ? x[((image * h + y0) * w + x0) * c + k] : 0.f;
    for (int iy = y0; iy <= y1; ++iy)
      for (int ix = x0; ix <= x1; ++ix) {
        const float v = x[((image * h + iy) * w + ix) * c + k];
        value = max_pool ? fmaxf(value, v) : __fadd_rn(value, v);
      }
    y[i] = max_pool ? value : __fdiv_rn(value, float((y1 - y0 + 1) * (x1 - x0 + 1)));
  }
}

__global__ void global_average_pool_kernel(int n, int64_t pixels, int c, const float* x, float* y) {
  for (int64_t i = global_thread(); i < int64_t(n) * c; i += grid_stride()) {
    const int64_t image = i / c;
    const int k = static_cast<int>(i % c);
    double sum = 0;
    for (int64_t p = 0; p < pixels; ++p) sum += x[(image * pixels + p) * c + k];
    y[i] = static_cast<float>(sum / static_cast<double>(pixels));
  }
}

__global__ void copy_channels_kernel(int64_t n, int c_src, const float* src, int c_dst, int offset, float* dst) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const int64_t p = i / c_src;
    dst[p * c_dst + offset + (i % c_src)] = src[i];
  }
}

// One axis tap of a resize, in fp32 as the CPU computes it (kernels/cpu/feature_ops.cpp).
struct Tap {
  int lo, hi;
  float frac;
};
__device__ Tap axis_tap(bool half_pixel, int in, int out, int i) {
  float src;
  if (half_pixel) {
    const float scale = __fdiv_rn(float(in), float(out));
    src = fmaxf(0.f, __fsub_rn(__fmul_rn(__fadd_rn(float(i), 0.5f), scale), 0.5f));
  } else {
    const float scale = static_cast<float>(static_cast<double>(in) / static_cast<double>(out));
    src = __fmul_rn(float(i), scale);
  }
  Tap t;
  t.lo = min(static_cast<int>(src), in - 1);
  t.hi = min(t.lo + 1, in - 1);
  t.frac = __fsub_rn(src, float(t.lo));
  return t;
}

__global__ void resize_bilinear_kernel(bool half_pixel, int64_t n, int h, int w, int c, const float* x, int out_h,
                                       int out_w, float* y) {
  for (int64_t i = global_thread(); i < n; i += grid_stride()) {
    const int k = static_cast<int>(i % c);
    const int ox = static_cast<int>((i / c) % out_w);
    const int oy = static_cast<int>((i / (int64_t(c) * out_w)) % out_h);
    const int64_t image = i / (int64_t(c) * out_w * out_h);
    const Tap row = axis_tap(half_pixel, h, out_h, oy), column = axis_tap(half_pixel, w, out_w, ox);
    const float* row_lo = x + (image * h + row.lo) * int64_t(w) * c;
    const float* row_hi = x + (image * h + row.hi) * int64_t(w) * c;
    const int64_t a = int64_t(column.lo) * c + k, b = int64_t(column.hi) * c + k;
    const float dx = column.frac, dy = row.frac;
    if (half_pixel) {  // PyTorch: weights (1 − d, d), rows then columns
      const float w0 = __fsub_rn(1.f, dx), h0 = __fsub_rn(1.f, dy);
      const float top = __fadd_rn(__fmul_rn(w0, row_lo[a]), __fmul_rn(dx, row_lo[b]));
      const float bottom = __fadd_rn(__fmul_rn(w0, row_hi[a]), __fmul_rn(dx, row_hi[b]));
      y[i] = __fadd_rn(__fmul_rn(h0, top), __fmul_rn(dy, bottom));
    } else {  // TF1: lerp along x, then along y
      const float top = __fadd_rn(row_lo[a], __fmul_rn(__fsub_rn(row_lo[b], row_lo[a]), dx));
      const float bottom = __fadd_rn(row_hi[a], __fmul_rn(__fsub_rn(row_hi[b], row_hi[a]), dx));
      y[i] = __fadd_rn(top, __fmul_rn(__fsub_rn(bottom, top), dy));
    }
  }
}

}  // namespace

void channel_affine(int64_t m, int c, const float* x, const float* scale, const float* shift, bool relu, float* y,
                    cudaStream_t stream) {
  LADDER_CHECK(m >= 0 && c >= 1, "CUDA channel_affine: bad size ", m, "x", c);
  const int64_t n = m * c;
  if (n == 0) return;
  channel_affine_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, c, x, scale, shift,
                                                              relu ? 0.f : -std::numeric_limits<float>::infinity(), y);
  LADDER_CUDA_CHECK_LAUNCH();
}

void pool3x3_same(cpu::SamePool kind, int n, int h, int w, int c, const float* x, float* y, cudaStream_t stream) {
  LADDER_CHECK(n >= 0 && h >= 1 && w >= 1 && c >= 1, "CUDA pool3x3_same: bad size ", n, "x", h, "x", w, "x", c);
  const int64_t total = int64_t(n) * h * w * c;
  if (total == 0) return;
  pool3x3_same_kernel<<<grid_for(total), kThreads, 0, stream>>>(kind == cpu::SamePool::kMax, total, h, w, c, x, y);
  LADDER_CUDA_CHECK_LAUNCH();
}

void global_average_pool(int n, int64_t pixels, int c, const float* x, float* y, cudaStream_t stream) {
  LADDER_CHECK(n >= 0 && pixels >= 1 && c >= 1, "CUDA global_average_pool: bad size");
  if (n == 0) return;
  global_average_pool_kernel<<<grid_for(int64_t(n) * c), kThreads, 0, stream>>>(n, pixels, c, x, y);
  LADDER_CUDA_CHECK_LAUNCH();
}

void copy_channels(int64_t m, int c_src, const float* src, int c_dst, int offset, float* dst, cudaStream_t stream) {
  LADDER_CHECK(offset >= 0 && offset + c_src <= c_dst, "CUDA copy_channels: ", c_src, " channels at ", offset,
               " do not fit in ", c_dst);
  const int64_t n = m * c_src;
  if (n == 0) return;
  copy_channels_kernel<<<grid_for(n), kThreads, 0, stream>>>(n, c_src, src, c_dst, offset, dst);
  LADDER_CUDA_CHECK_LAUNCH();
}

void resize_bilinear(cpu::BilinearMode mode, int n, int h, int w, int c, const float* x, int out_h, int out_w,
                     float* y, cudaStream_t stream) {
  LADDER_CHECK(n >= 0 && h >= 1 && w >= 1 && c >= 1 && out_h >= 1 && out_w >= 1, "CUDA resize_bilinear: bad size");
  const int64_t total = int64_t(n) * out_h * out_w * c;
  if (total == 0) return;
  resize_bilinear_kernel<<<grid_for(total), kThreads, 0, stream>>>(mode == cpu::BilinearMode::kHalfPixel, total, h,
                                                                   w, c, x, out_h, out_w, y);
  LADDER_CUDA_CHECK_LAUNCH();
}

}  // namespace ladder::cuda
