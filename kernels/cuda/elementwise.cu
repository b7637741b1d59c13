// Why this file exists: the pointwise CUDA ops (SiLU, residual add, gradient accumulation,
// scaling, image normalisation, dtype conversion, adding a 16-bit gradient into fp32) and the
// nearest ×2 upsampling. All are memory-bound: vector loads when the pointers allow,
// grid-stride loops, fp32 math. Instantiated for float, bf16 and fp16.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace ladder::cuda {
namespace {

using detail::from_float;
using detail::Inputs;
using detail::kThreads;
using detail::Pack;
using detail::to_float;

struct SiluForwardOp {
  __device__ float operator()(const float* a) const { return a[0] * detail::sigmoid(a[0]); }
};
// d/dx [x·σ(x)] = σ(x)·(1 + x·(1 − σ(x))); args: x, dy.
struct SiluBackwardOp {
  __device__ float operator()(const float* a) const {
    const float s = detail::sigmoid(a[0]);
    return a[1] * s * (1.0f + a[0] * (1.0f - s));
  }
};
struct AddOp {
  __device__ float operator()(const float* a) const { return a[0] + a[1]; }
};
struct ScaleOp {
  float alpha;
  __device__ float operator()(const float* a) const { return a[0] * alpha; }
};
// args: x, y.
struct LerpOp {
  float t;
  __device__ float operator()(const float* a) const { return a[1] + t * (a[0] - a[1]); }
};
struct IdentityOp {
  __device__ float operator()(float v) const { return v; }
};

// out[i] = op(in[i]) with a type change; W elements per thread and step.
template <class From, class To, int W, class Op>
__global__ void cast_kernel(int64_t n, Op op, const From* in, To* out) {
  const int64_t packs = n / W;
  for (int64_t k = detail::global_thread(); k < packs; k += detail::grid_stride()) {
    const Pack<From, W> a = reinterpret_cast<const Pack<From, W>*>(in)[k];
    Pack<To, W> b;
#pragma unroll
    for (int e = 0; e < W; ++e) b.v[e] = from_float<To>(op(to_float(a.v[e])));
    reinterpret_cast<Pack<To, W>*>(out)[k] = b;
  }
  for (int64_t i = packs * W + detail::global_thread(); i < n; i += detail::grid_stride())
    out[i] = from_float<To>(op(to_float(in[i])));
}

template <class From, class To, class Op>
void launch_cast(int64_t n, Op op, const From* in, To* out, cudaStream_t stream) {
  LADDER_CHECK(n >= 0, "CUDA conversion: negative size ", n);
  if (n == 0) return;
  constexpr int W = 4;
  const bool vector = reinterpret_cast<uintptr_t>(in) % (W * sizeof(From)) == 0 &&
                      reinterpret_cast<uintptr_t>(out) % (W * sizeof(To)) == 0;
  if (vector) {
    cast_kernel<From, To, W, Op>
        <<<detail::grid_for((n + W - 1) / W), kThreads, 0, stream>>>(n, op, in, out);
  } else {
    cast_kernel<From, To, 1, Op><<<detail::grid_for(n), kThreads, 0, stream>>>(n, op, in, out);
  }
  LADDER_CUDA_CHECK_LAUNCH();
}

// y[i] += float(x[i]) with y fp32; W elements per thread and step. One thread owns each
// element (read, add, write), so no atomics and the result does not depend on scheduling.
template <class From, int W>
__global__ void accumulate_to_f32_kernel(int64_t n, const From* x, float* y) {
  const int64_t packs = n / W;
  for (int64_t k = detail::global_thread(); k < packs; k += detail::grid_stride()) {
    const Pack<From, W> a = reinterpret_cast<const Pack<From, W>*>(x)[k];
    Pack<float, W> b = reinterpret_cast<const Pack<float, W>*>(y)[k];
#pragma unroll
    for (int e = 0; e < W; ++e) b.v[e] += to_float(a.v[e]);
    reinterpret_cast<Pack<float, W>*>(y)[k] = b;
  }
  for (int64_t i = packs * W + detail::global_thread(); i < n; i += detail::grid_stride())
    y[i] += to_float(x[i]);
}

// ---- Upsampling: W channels per thread (c % W == 0), one output (forward) or input
// (backward) pixel-pack per step. cp = c / W.
template <class T, int W>
__global__ void upsample_forward_kernel(int64_t total, int h, int w, int cp, const T* x, T* y) {
  const auto* xs = reinterpret_cast<const Pack<T, W>*>(x);
  auto* ys = reinterpret_cast<Pack<T, W>*>(y);
  for (int64_t i = detail::global_thread(); i < total; i += detail::grid_stride()) {
    int64_t rest = i / cp;
    const int k = static_cast<int>(i - rest * cp);
    const int ow = static_cast<int>(rest % (2 * w));
    rest /= 2 * w;
    const int oh = static_cast<int>(rest % (2 * h));
    const int64_t img = rest / (2 * h);
    ys[i] = xs[((img * h + oh / 2) * w + ow / 2) * cp + k];
  }
}

template <class T, int W>
__global__ void upsample_backward_kernel(int64_t total, int h, int w, int cp, const T* dy,
                                         T* dx) {
  const auto* dys = reinterpret_cast<const Pack<T, W>*>(dy);
  auto* dxs = reinterpret_cast<Pack<T, W>*>(dx);
  const int64_t out_row = int64_t(2) * w * cp;  // packs per row of dy
  for (int64_t i = detail::global_thread(); i < total; i += detail::grid_stride()) {
    int64_t rest = i / cp;
    const int k = static_cast<int>(i - rest * cp);
    const int iw = static_cast<int>(rest % w);
    rest /= w;
    const int ih = static_cast<int>(rest % h);
    const int64_t img = rest / h;
    const int64_t tl = ((img * 2 * h + 2 * ih) * 2 * w + 2 * iw) * cp + k;
    const Pack<T, W> a = dys[tl], b = dys[tl + cp], c = dys[tl + out_row],
                     d = dys[tl + out_row + cp];
    Pack<T, W> r;
#pragma unroll
    for (int e = 0; e < W; ++e)
      r.v[e] = from_float<T>((to_float(a.v[e]) + to_float(b.v[e])) +
                             (to_float(c.v[e]) + to_float(d.v[e])));
    dxs[i] = r;
  }
}

void check_upsample(int n, int h, int w, int c) {
  LADDER_CHECK(n >= 0 && h >= 0 && w >= 0 && c >= 0, "upsample: bad size ", n, "x", h, "x", w,
               "x", c);
}

}  // namespace

template <class T>
void silu_forward(int64_t n, const T* x, T* y, cudaStream_t stream) {
  detail::launch_map<T, 1>(n, SiluForwardOp{}, Inputs<T, 1>{{x}}, y, stream);
}

template <class T>
void silu_backward(int64_t n, const T* x, const T* dy, T* dx, cudaStream_t stream) {
  detail::launch_map<T, 2>(n, SiluBackwardOp{}, Inputs<T, 2>{{x, dy}}, dx, stream);
}

template <class T>
void add_forward(int64_t n, const T* a, const T* b, T* y, cudaStream_t stream) {
  detail::launch_map<T, 2>(n, AddOp{}, Inputs<T, 2>{{a, b}}, y, stream);
}

template <class T>
void add_accumulate(int64_t n, const T* x, T* y, cudaStream_t stream) {
  detail::launch_map<T, 2>(n, AddOp{}, Inputs<T, 2>{{y, x}}, y, stream);
}

template <class T>
void scale_inplace(int64_t n, float alpha, T* x, cudaStream_t stream) {
  detail::launch_map<T, 1>(n, ScaleOp{alpha}, Inputs<T, 1>{{x}}, x, stream);
}

void lerp_inplace(int64_t n, const float* x, float t, float* y, cudaStream_t stream) {
  detail::launch_map<float, 2>(n, LerpOp{t}, Inputs<float, 2>{{x, y}}, y, stream);
}

template <class From, class To>
void convert(int64_t n, const From* in, To* out, cudaStream_t stream) {
  launch_cast(n, IdentityOp{}, in, out, stream);
}

template <class From>
void accumulate_to_f32(int64_t n, const From* x, float* y, cudaStream_t stream) {
  LADDER_CHECK(n >= 0, "accumulate_to_f32: negative size ", n);
  if (n == 0) return;
  // 4 elements per thread: y moves in 16-byte packs, x in 16 (fp32) or 8 (16-bit) bytes.
  constexpr int W = 4;
  const bool vector = reinterpret_cast<uintptr_t>(x) % (W * sizeof(From)) == 0 &&
                      detail::aligned16(y);
  if (vector) {
    accumulate_to_f32_kernel<From, W>
        <<<detail::grid_for((n + W - 1) / W), kThreads, 0, stream>>>(n, x, y);
  } else {
    accumulate_to_f32_kernel<From, 1><<<detail::grid_for(n), kThreads, 0, stream>>>(n, x, y);
  }
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void upsample_nearest2x_forward(int n, int h, int w, int c, const T* x, T* y,
                                cudaStream_t stream) {
  check_upsample(n, h, w, c);
  const int64_t elements = int64_t(n) * 4 * h * w * c;  // of y
  if (elements == 0) return;
  constexpr int W = detail::kPackWidth<T>;
  if (c % W == 0 && detail::aligned16(x) && detail::aligned16(y)) {
    upsample_forward_kernel<T, W><<<detail::grid_for(elements / W), kThreads, 0, stream>>>(
        elements / W, h, w, c / W, x, y);
  } else {
    upsample_forward_kernel<T, 1>
        <<<detail::grid_for(elements), kThreads, 0, stream>>>(elements, h, w, c, x, y);
  }
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void upsample_nearest2x_backward(int n, int h, int w, int c, const T* dy, T* dx,
                                 cudaStream_t stream) {
  check_upsample(n, h, w, c);
  const int64_t elements = int64_t(n) * h * w * c;  // of dx
  if (elements == 0) return;
  constexpr int W = detail::kPackWidth<T>;
  if (c % W == 0 && detail::aligned16(dy) && detail::aligned16(dx)) {
    upsample_backward_kernel<T, W><<<detail::grid_for(elements / W), kThreads, 0, stream>>>(
        elements / W, h, w, c / W, dy, dx);
  } else {
    upsample_backward_kernel<T, 1>
        <<<detail::grid_for(elements), kThreads, 0, stream>>>(elements, h, w, c, dy, dx);
  }
  LADDER_CUDA_CHECK_LAUNCH();
}

#define LADDER_INSTANTIATE(T)                                                                \
  template void silu_forward<T>(int64_t, const T*, T*, cudaStream_t);                        \
  template void silu_backward<T>(int64_t, const T*, const T*, T*, cudaStream_t);             \
  template void add_forward<T>(int64_t, const T*, const T*, T*, cudaStream_t);               \
  template void add_accumulate<T>(int64_t, const T*, T*, cudaStream_t);                      \
  template void scale_inplace<T>(int64_t, float, T*, cudaStream_t);                          \
  template void upsample_nearest2x_forward<T>(int, int, int, int, const T*, T*, cudaStream_t); \
  template void upsample_nearest2x_backward<T>(int, int, int, int, const T*, T*, cudaStream_t); \
  template void accumulate_to_f32<T>(int64_t, const T*, float*, cudaStream_t);               \
  template void convert<T, T>(int64_t, const T*, T*, cudaStream_t);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(bf16_t)
LADDER_INSTANTIATE(half_t)
#undef LADDER_INSTANTIATE

// Conversions between fp32 and each 16-bit type (bf16 ↔ fp16 directly is not needed: the
// trainer uses one activation type per run).
template void convert<float, bf16_t>(int64_t, const float*, bf16_t*, cudaStream_t);
template void convert<bf16_t, float>(int64_t, const bf16_t*, float*, cudaStream_t);
template void convert<float, half_t>(int64_t, const float*, half_t*, cudaStream_t);
template void convert<half_t, float>(int64_t, const half_t*, float*, cudaStream_t);

}  // namespace ladder::cuda
