// Why this file exists: the small device-side toolkit the .cu files share (nvcc only, never
// included by host code): float conversion of the activation types, 16-byte packs for
// vectorised loads, launch sizing, the elementwise map kernel, and the deterministic
// block/grid sums used by the losses and the gradient norm.
//
// Determinism: every reduction here has a fixed shape (fixed threads per block, fixed
// elements per block, a fixed tree in each block, partials summed in index order), so the
// result depends only on the inputs and their count, never on the GPU or on scheduling.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "core/check.h"
#include "core/cuda_check.h"

// After every kernel launch: a bad configuration fails here, naming the kernel's caller.
#define LADDER_CUDA_CHECK_LAUNCH() LADDER_CUDA_CHECK(cudaGetLastError())

namespace ladder::cuda::detail {

using bf16_t = __nv_bfloat16;
using half_t = __half;

// ---- Conversions: every op computes in fp32 whatever the storage type. Both 16-bit types
// widen exactly to fp32; narrowing rounds to nearest even (overflow gives ±Inf in fp16, whose
// largest finite value is 65504: that is what the trainer's loss scaling watches for).
__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(bf16_t v) { return __bfloat162float(v); }
__device__ __forceinline__ float to_float(half_t v) { return __half2float(v); }
__device__ __forceinline__ float to_float(uint8_t v) { return static_cast<float>(v); }

template <class T>
__device__ __forceinline__ T from_float(float v);
template <>
__device__ __forceinline__ float from_float<float>(float v) {
  return v;
}
template <>
__device__ __forceinline__ bf16_t from_float<bf16_t>(float v) {
  return __float2bfloat16_rn(v);  // round to nearest even, like ladder::bf16
}
template <>
__device__ __forceinline__ half_t from_float<half_t>(float v) {
  return __float2half_rn(v);  // round to nearest even (IEEE binary16)
}

// σ(x) = 1 / (1 + e^−x), as the CPU reference writes it.
__device__ __forceinline__ float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// ---- Packs: W consecutive elements moved as one aligned 16-byte (or smaller) access.
template <class T, int W>
struct alignas(sizeof(T) * W) Pack {
  T v[W];
};
// Elements per 16-byte pack: 4 floats, 8 bf16 or fp16.
template <class T>
constexpr int kPackWidth = static_cast<int>(16 / sizeof(T));

inline bool aligned16(const void* pointer) {
  return reinterpret_cast<uintptr_t>(pointer) % 16 == 0;
}

// ---- Launch sizing: grid-stride loops, at most kMaxBlocks blocks.
constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t(1) << 16;

inline unsigned grid_for(int64_t work, int threads = kThreads) {
  int64_t blocks = (work + threads - 1) / threads;
  return static_cast<unsigned>(std::max<int64_t>(1, std::min(blocks, kMaxBlocks)));
}

__device__ __forceinline__ int64_t global_thread() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t grid_stride() {
  return static_cast<int64_t>(gridDim.x) * blockDim.x;
}

// ---- Elementwise map: out[i] = op(in_0[i], ..., in_{K−1}[i]) computed in fp32.
// `Op` has `__device__ float operator()(const float* args) const` (args has K entries).
// `out` may alias an input (each element is read before it is written by the same thread).
template <class T, int K>
struct Inputs {
  const T* p[K];
};

template <class T, int K, int W, class Op>
__global__ void map_kernel(int64_t n, Op op, Inputs<T, K> in, T* out) {
  const int64_t packs = n / W;
  for (int64_t k = global_thread(); k < packs; k += grid_stride()) {
    Pack<T, W> loaded[K];
#pragma unroll
    for (int q = 0; q < K; ++q) loaded[q] = reinterpret_cast<const Pack<T, W>*>(in.p[q])[k];
    Pack<T, W> result;
#pragma unroll
    for (int e = 0; e < W; ++e) {
      float args[K];
#pragma unroll
      for (int q = 0; q < K; ++q) args[q] = to_float(loaded[q].v[e]);
      result.v[e] = from_float<T>(op(args));
    }
    reinterpret_cast<Pack<T, W>*>(out)[k] = result;
  }
  // The tail that does not fill a pack (W > 1 only).
  for (int64_t i = packs * W + global_thread(); i < n; i += grid_stride()) {
    float args[K];
#pragma unroll
    for (int q = 0; q < K; ++q) args[q] = to_float(in.p[q][i]);
    out[i] = from_float<T>(op(args));
  }
}

template <class T, int K, class Op>
void launch_map(int64_t n, Op op, Inputs<T, K> in, T* out, cudaStream_t stream) {
  LADDER_CHECK(n >= 0, "CUDA elementwise op: negative size ", n);
  if (n == 0) return;
  constexpr int W = kPackWidth<T>;
  bool vector = aligned16(out);
  for (int q = 0; q < K; ++q) vector = vector && aligned16(in.p[q]);
  if (vector) {
    map_kernel<T, K, W, Op><<<grid_for((n + W - 1) / W), kThreads, 0, stream>>>(n, op, in, out);
  } else {
    map_kernel<T, K, 1, Op><<<grid_for(n), kThreads, 0, stream>>>(n, op, in, out);
  }
  LADDER_CUDA_CHECK_LAUNCH();
}

// ---- Deterministic block sums. All threads of the block must call; the result is valid in
// thread 0. kBlock is the block size (a multiple of 32, at most 1024).
template <class V>
__device__ __forceinline__ V warp_sum(V v) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
  return v;
}

template <class V, int kBlock>
__device__ V block_sum(V v) {
  static_assert(kBlock % 32 == 0 && kBlock <= 1024, "block_sum: block size");
  __shared__ V warp_sums[kBlock / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  v = warp_sum(v);
  if (lane == 0) warp_sums[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kBlock / 32 ? warp_sums[lane] : V(0);
    v = warp_sum(v);
  }
  __syncthreads();  // warp_sums may be reused by a following call
  return v;
}

// ---- Deterministic sum of op(i) over i < n, in double: fixed-size chunks of kSumChunk
// elements per block (thread t takes i = base + k·kThreads + t, k < kSumPerThread), one
// partial per block, then one block sums the partials in index order.
constexpr int kSumPerThread = 16;
constexpr int64_t kSumChunk = int64_t(kThreads) * kSumPerThread;

inline int64_t sum_partials(int64_t n) { return (n + kSumChunk - 1) / kSumChunk; }

// `Op` has `__device__ double operator()(int64_t i) const`.
template <class Op>
__global__ void __launch_bounds__(kThreads) partial_sum_kernel(int64_t n, Op op, double* partials) {
  const int64_t base = static_cast<int64_t>(blockIdx.x) * kSumChunk;
  double acc = 0;
#pragma unroll 4
  for (int k = 0; k < kSumPerThread; ++k) {
    const int64_t i = base + int64_t(k) * kThreads + threadIdx.x;
    if (i < n) acc += op(i);
  }
  acc = block_sum<double, kThreads>(acc);
  if (threadIdx.x == 0) partials[blockIdx.x] = acc;
}

// *result = Σ partials[0..count) (one block, fixed order; count may be 0). In reduce.cu.
void launch_final_sum(int64_t count, const double* partials, double* result, cudaStream_t stream);

// result: one device double; scratch: at least sum_partials(n) doubles (may not overlap it).
template <class Op>
void launch_sum(int64_t n, Op op, double* result, double* scratch, cudaStream_t stream) {
  LADDER_CHECK(n >= 0, "CUDA reduction: negative size ", n);
  const int64_t partials = sum_partials(n);
  LADDER_CHECK(partials < (int64_t(1) << 31), "CUDA reduction: ", n, " elements is too many");
  if (partials > 0) {
    partial_sum_kernel<Op><<<static_cast<unsigned>(partials), kThreads, 0, stream>>>(n, op, scratch);
    LADDER_CUDA_CHECK_LAUNCH();
  }
  launch_final_sum(partials, scratch, result, stream);
}

// Copies a device double to the host, waiting for the stream.
double read_result(const double* device_value, cudaStream_t stream);

// launch_sum, then waits for the value: scratch holds sum_partials(n) + 1 doubles (the result
// after the partials).
template <class Op>
double sum_now(int64_t n, Op op, double* scratch, cudaStream_t stream) {
  double* result = scratch + sum_partials(n);
  launch_sum(n, op, result, scratch, stream);
  return read_result(result, stream);
}

}  // namespace ladder::cuda::detail
