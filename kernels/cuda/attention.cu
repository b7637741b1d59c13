// Multi-head attention on cuBLAS strided-batched GEMMs plus our fp32 softmax kernels; see
// attention.h.
//
// Row-major on column-major cuBLAS (as in linear.cpp): a row-major (r × c) matrix with leading
// dimension ld is the column-major (c × r) matrix with that ld, so a row-major C = A·B runs as
// the column-major Cᵀ = Bᵀ·Aᵀ. Per (image n, head h) the operands are
//   Q, K, V, dO, O, dQ, dK, dV: (L × d) row-major views into (N, L, C) at n·L·C + h·d, ld = C
//                               (cuBLAS sees their transposes, d × L, ld C);
//   S, P, dP, dS:               (L × L) row-major at (n·heads + h)·L², ld = L (cuBLAS sees Pᵀ…)
// and the products are (op for cuBLAS's A, op for B; m, n, k; A, B, C):
//   S  = s·Q·Kᵀ   Sᵀ  = s·K·Qᵀ    gemm(T, N; L, L, d; K,  Q,  S)   (s = 1/√d)
//   O  = P·V      Oᵀ  = Vᵀ·Pᵀ     gemm(N, N; d, L, L; V,  P,  O)
//   dP = dO·Vᵀ    dPᵀ = V·dOᵀ     gemm(T, N; L, L, d; V,  dO, dP)
//   dV = Pᵀ·dO    dVᵀ = dOᵀ·P     gemm(N, T; d, L, L; dO, P,  dV)
//   dQ = s·dS·K   dQᵀ = s·Kᵀ·dSᵀ  gemm(N, N; d, L, L; K,  dS, dQ)
//   dK = s·dSᵀ·Q  dKᵀ = s·Qᵀ·dS   gemm(N, T; d, L, L; Q,  dS, dK)
//
// Batching: the offset of (n, h) is n·L·C + h·d in the activations and n·heads·L² + h·L² in
// the (N, heads, L, L) buffers, which is not one stride over a flat index n·heads + h. So one
// index is the cuBLAS batch (a constant stride) and the other a loop of calls: batch over the
// images (strides L·C and heads·L²) and loop over the heads when N ≥ heads, else batch over
// the heads (strides d and L²) and loop over the images. Either way the fewest calls.
#include "kernels/cuda/attention.h"

#include <cmath>
#include <type_traits>

#include "kernels/cuda/common.cuh"

namespace ladder::cuda {
namespace {

using detail::from_float;
using detail::to_float;

constexpr int kRowThreads = 128;       // threads per softmax row
constexpr int64_t kScratchAlign = 256;  // bytes; sub-buffers of the scratch start aligned

int64_t align_up(int64_t bytes) { return (bytes + kScratchAlign - 1) / kScratchAlign * kScratchAlign; }

void check_dims(const char* op, const AttentionDims& d) {
  LADDER_CHECK(d.n > 0 && d.tokens > 0 && d.channels > 0 && d.heads > 0, op, ": bad size ",
               d.n, "x", d.tokens, "x", d.channels, " with ", d.heads, " heads");
  LADDER_CHECK(d.channels % d.heads == 0, op, ": ", d.channels,
               " channels not divisible into ", d.heads, " heads");
  LADDER_CHECK(int64_t(d.n) * d.heads * d.tokens < (int64_t(1) << 31), op, ": ",
               int64_t(d.n) * d.heads * d.tokens, " softmax rows is too many");
}

// Elements of one (N, heads, L, L) buffer.
int64_t prob_elements(const AttentionDims& d) {
  return int64_t(d.n) * d.heads * d.tokens * d.tokens;
}

// ---- Kernels: one block of kRowThreads per row of an (rows, cols) fp32 matrix. Thread t
// takes columns t, t + kRowThreads, ... in every pass, so each thread re-reads only what it
// wrote itself; the reductions are fixed trees (deterministic).

struct MaxOp {
  __device__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct SumOp {
  __device__ float operator()(float a, float b) const { return a + b; }
};

// op over the block's values, returned to every thread. All threads must call.
template <class Op>
__device__ float block_all_reduce(float v, Op op, float identity) {
  constexpr int kWarps = kRowThreads / 32;
  __shared__ float warp_values[kWarps];
  __shared__ float result;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1)
    v = op(v, __shfl_down_sync(0xffffffffu, v, offset));
  if (lane == 0) warp_values[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < kWarps ? warp_values[lane] : identity;
#pragma unroll
    for (int offset = 16; offset > 0; offset >>= 1)
      v = op(v, __shfl_down_sync(0xffffffffu, v, offset));
    if (lane == 0) result = v;
  }
  __syncthreads();
  return result;  // a following call writes `result` only after its first barrier
}

// p (rows, cols) ← softmax of each row (max subtracted first), in place; `copy` (may be
// null) receives the result rounded to T.
template <class T>
__global__ void __launch_bounds__(kRowThreads)
    softmax_rows_kernel(int cols, float* __restrict__ p, T* __restrict__ copy) {
  const int64_t base = int64_t(blockIdx.x) * cols;
  float* row = p + base;
  float top = -INFINITY;
  for (int j = threadIdx.x; j < cols; j += kRowThreads) top = fmaxf(top, row[j]);
  top = block_all_reduce(top, MaxOp{}, -INFINITY);
  float sum = 0.0f;
  for (int j = threadIdx.x; j < cols; j += kRowThreads) {
    const float e = expf(row[j] - top);
    row[j] = e;
    sum += e;
  }
  sum = block_all_reduce(sum, SumOp{}, 0.0f);
  const float inv = 1.0f / sum;
  for (int j = threadIdx.x; j < cols; j += kRowThreads) {
    const float value = row[j] * inv;
    row[j] = value;
    if (copy != nullptr) copy[base + j] = from_float<T>(value);
  }
}

// ds = p ⊙ (dp − Σ_j dp·p) per row, written as T. `ds` may alias `dp` (T = float: in place;
// every element is read by the thread that writes it, before the barrier of the reduction).
// `p_copy` (may be null) receives p rounded to T.
template <class T>
__global__ void __launch_bounds__(kRowThreads)
    softmax_backward_kernel(int cols, const float* __restrict__ p, const float* dp, T* ds,
                            T* __restrict__ p_copy) {
  const int64_t base = int64_t(blockIdx.x) * cols;
  float dot = 0.0f;
  for (int j = threadIdx.x; j < cols; j += kRowThreads) dot += dp[base + j] * p[base + j];
  dot = block_all_reduce(dot, SumOp{}, 0.0f);
  for (int j = threadIdx.x; j < cols; j += kRowThreads) {
    const float pj = p[base + j];
    const float g = dp[base + j];
    ds[base + j] = from_float<T>(pj * (g - dot));
    if (p_copy != nullptr) p_copy[base + j] = from_float<T>(pj);
  }
}

// ---- GEMMs ------------------------------------------------------------------------------

// Which index is cuBLAS's batch, and the element offsets of the outer loop and the batch.
struct Batching {
  int calls = 1, batch = 1;
  int64_t act_call = 0, act_stride = 0;    // (N, L, C) tensors
  int64_t prob_call = 0, prob_stride = 0;  // (N, heads, L, L) buffers
};

Batching batching(const AttentionDims& d) {
  const int64_t lc = int64_t(d.tokens) * d.channels, ll = int64_t(d.tokens) * d.tokens;
  Batching b;
  if (d.n >= d.heads) {  // loop over heads, batch over images
    b.calls = d.heads, b.batch = d.n;
    b.act_call = d.head_dim(), b.act_stride = lc;
    b.prob_call = ll, b.prob_stride = d.heads * ll;
  } else {  // loop over images, batch over heads
    b.calls = d.n, b.batch = d.heads;
    b.act_call = lc, b.act_stride = d.head_dim();
    b.prob_call = d.heads * ll, b.prob_stride = ll;
  }
  return b;
}

// One strided-batched operand: pointer of batch 0, type, leading dimension, batch stride.
struct Operand {
  const void* data;
  cudaDataType type;
  int ld;
  long long stride;
};

template <class T>
Operand activation(const T* p, const AttentionDims& d, const Batching& b) {
  return {p, cublas_data_type<T>(), d.channels, b.act_stride};
}
template <class P>
Operand square(const P* p, const AttentionDims& d, const Batching& b) {
  return {p, cublas_data_type<P>(), d.tokens, b.prob_stride};
}

// C = alpha·op(A)·op(B) (beta = 0: C is not read), column-major terms, `batch` instances.
// `c` is the output (its pointer is written through).
void gemm(CublasHandle& cublas, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
          float alpha, const Operand& a, const Operand& b, const Operand& c, int batch,
          cublasComputeType_t compute) {
  const float beta = 0.0f;
  LADDER_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
      cublas.get(), ta, tb, m, n, k, &alpha, a.data, a.type, a.ld, a.stride, b.data, b.type,
      b.ld, b.stride, &beta, const_cast<void*>(c.data), c.type, c.ld, c.stride, batch, compute,
      CUBLAS_GEMM_DEFAULT));
}

void check_scratch(const char* op, int64_t bytes, const void* scratch) {
  if (bytes == 0) return;
  LADDER_CHECK(scratch != nullptr, op, ": needs a scratch of ", bytes, " bytes");
  LADDER_CHECK(reinterpret_cast<uintptr_t>(scratch) % 16 == 0, op,
               ": scratch must be 16-byte aligned");
}

}  // namespace

template <class T>
int64_t attention_forward_scratch_bytes(const AttentionDims& d) {
  if (std::is_same_v<T, float>) return 0;
  return align_up(prob_elements(d) * int64_t(sizeof(T)));
}

template <class T>
int64_t attention_backward_scratch_bytes(const AttentionDims& d) {
  const int64_t e = prob_elements(d);
  if (std::is_same_v<T, float>) return align_up(e * int64_t(sizeof(float)));
  return align_up(e * int64_t(sizeof(float))) + 2 * align_up(e * int64_t(sizeof(T)));
}

template <class T>
void attention_forward(CublasHandle& cublas, const AttentionDims& d, const T* q, const T* k,
                       const T* v, float* probs, T* o, void* scratch, cudaStream_t stream) {
  check_dims("attention_forward", d);
  check_scratch("attention_forward", attention_forward_scratch_bytes<T>(d), scratch);
  cublas.set_stream(stream);
  const int l = d.tokens, hd = d.head_dim();
  const float scale = static_cast<float>(1.0 / std::sqrt(double(hd)));
  const cublasComputeType_t compute = cublas_compute_type<T>();
  const Batching b = batching(d);
  constexpr bool kFloat = std::is_same_v<T, float>;
  // P as the P·v GEMM reads it: the fp32 probs themselves, or their rounding to bf16/fp16.
  T* p_copy = kFloat ? nullptr : static_cast<T*>(scratch);
  const T* p_gemm = kFloat ? reinterpret_cast<const T*>(probs) : p_copy;

  for (int call = 0; call < b.calls; ++call) {  // S = s·q·kᵀ into probs
    const int64_t at = call * b.act_call, pt = call * b.prob_call;
    gemm(cublas, CUBLAS_OP_T, CUBLAS_OP_N, l, l, hd, scale, activation(k + at, d, b),
         activation(q + at, d, b), square(probs + pt, d, b), b.batch, compute);
  }
  const int64_t rows = int64_t(d.n) * d.heads * l;
  softmax_rows_kernel<T><<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(l, probs,
                                                                                  p_copy);
  LADDER_CUDA_CHECK_LAUNCH();
  for (int call = 0; call < b.calls; ++call) {  // o = P·v
    const int64_t at = call * b.act_call, pt = call * b.prob_call;
    gemm(cublas, CUBLAS_OP_N, CUBLAS_OP_N, hd, l, l, 1.0f, activation(v + at, d, b),
         square(p_gemm + pt, d, b), activation(o + at, d, b), b.batch, compute);
  }
}

template <class T>
void attention_backward(CublasHandle& cublas, const AttentionDims& d, const T* q, const T* k,
                        const T* v, const float* probs, const T* dout, T* dq, T* dk, T* dv,
                        void* scratch, cudaStream_t stream) {
  check_dims("attention_backward", d);
  check_scratch("attention_backward", attention_backward_scratch_bytes<T>(d), scratch);
  cublas.set_stream(stream);
  const int l = d.tokens, hd = d.head_dim();
  const float scale = static_cast<float>(1.0 / std::sqrt(double(hd)));
  const cublasComputeType_t compute = cublas_compute_type<T>();
  const Batching b = batching(d);
  constexpr bool kFloat = std::is_same_v<T, float>;
  const int64_t e = prob_elements(d);
  // Scratch: dP (fp32); for bf16/fp16 also dS and P rounded to T (fp32: dS overwrites dP).
  auto* bytes = static_cast<unsigned char*>(scratch);
  float* dp = reinterpret_cast<float*>(bytes);
  T* ds = kFloat ? reinterpret_cast<T*>(dp)
                 : reinterpret_cast<T*>(bytes + align_up(e * int64_t(sizeof(float))));
  T* p_copy = kFloat ? nullptr
                     : reinterpret_cast<T*>(bytes + align_up(e * int64_t(sizeof(float))) +
                                            align_up(e * int64_t(sizeof(T))));
  const T* p_gemm = kFloat ? reinterpret_cast<const T*>(probs) : p_copy;

  for (int call = 0; call < b.calls; ++call) {  // dP = do·vᵀ
    const int64_t at = call * b.act_call, pt = call * b.prob_call;
    gemm(cublas, CUBLAS_OP_T, CUBLAS_OP_N, l, l, hd, 1.0f, activation(v + at, d, b),
         activation(dout + at, d, b), square(dp + pt, d, b), b.batch, compute);
  }
  const int64_t rows = int64_t(d.n) * d.heads * l;
  softmax_backward_kernel<T><<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(
      l, probs, dp, ds, p_copy);
  LADDER_CUDA_CHECK_LAUNCH();
  for (int call = 0; call < b.calls; ++call) {
    const int64_t at = call * b.act_call, pt = call * b.prob_call;
    // dv = Pᵀ·do
    gemm(cublas, CUBLAS_OP_N, CUBLAS_OP_T, hd, l, l, 1.0f, activation(dout + at, d, b),
         square(p_gemm + pt, d, b), activation(dv + at, d, b), b.batch, compute);
    // dq = s·dS·k
    gemm(cublas, CUBLAS_OP_N, CUBLAS_OP_N, hd, l, l, scale, activation(k + at, d, b),
         square(ds + pt, d, b), activation(dq + at, d, b), b.batch, compute);
    // dk = s·dSᵀ·q
    gemm(cublas, CUBLAS_OP_N, CUBLAS_OP_T, hd, l, l, scale, activation(q + at, d, b),
         square(ds + pt, d, b), activation(dk + at, d, b), b.batch, compute);
  }
}

#define LADDER_INSTANTIATE(T)                                                                 \
  template int64_t attention_forward_scratch_bytes<T>(const AttentionDims&);                  \
  template int64_t attention_backward_scratch_bytes<T>(const AttentionDims&);                 \
  template void attention_forward<T>(CublasHandle&, const AttentionDims&, const T*, const T*, \
                                     const T*, float*, T*, void*, cudaStream_t);              \
  template void attention_backward<T>(CublasHandle&, const AttentionDims&, const T*,          \
                                      const T*, const T*, const float*, const T*, T*, T*, T*, \
                                      void*, cudaStream_t);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(__nv_bfloat16)
LADDER_INSTANTIATE(__half)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cuda
