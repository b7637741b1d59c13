// Why this file exists: the fully connected layer over rows on the GPU (the attention block's
// q, k, v and output projections), through cuBLAS. Same contract as ladder::cpu::linear_*
// (kernels/cpu/ops.h), on device pointers:
//   x (M, Cin), w (Cout, Cin), b (Cout), y (M, Cout), all row-major;
//   forward:  y = x·wᵀ + b (written; b may be null);
//   backward: dx = dy·w (written, never read); dw += dyᵀ·x (accumulated, beta = 1);
//             db += Σ_rows dy (accumulated; db may be null).
// T is float, __nv_bfloat16 or __half (activations, weights and gradients in the same type);
// every GEMM accumulates in fp32 (cublas_compute_type<T>(): fp32 without TF32, bf16 and fp16
// on tensor cores). The bias add and the bias gradient are our own kernels
// (conv2d_kernels.h), in fp32: db is summed per chunk of rows into a scratch and then over
// chunks in index order (deterministic, no atomics) and added to db once. For bf16/fp16, y is
// rounded twice (GEMM output, then + b) and dw = round_T(dw + Σ), as for the convolutions
// (docs/CUDA.md).
//
// Every call is asynchronous on `stream` (the handle is switched to it) and throws
// ladder::Error on a bad size or a failed cuBLAS/CUDA call. M, Cin, Cout < 2^31.
//
// Plain C++ header (no CUDA syntax). Only in CUDA builds.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/cublas_handle.h"

namespace ladder::cuda {

// y = x·wᵀ + b.
template <class T>
void linear_forward(CublasHandle& cublas, int64_t m, int cin, int cout, const T* x, const T* w,
                    const T* b, T* y, cudaStream_t stream);

// fp32 elements of the scratch linear_backward needs for db (≤ 512·Cout); 0 is enough when
// db is null.
int64_t linear_backward_scratch_floats(int64_t m, int cout);

// dx = dy·w; dw += dyᵀ·x; db += Σ dy. `scratch`: linear_backward_scratch_floats(m, cout)
// floats (null allowed when db is null), no contents needed, overlapping nothing else.
template <class T>
void linear_backward(CublasHandle& cublas, int64_t m, int cin, int cout, const T* x,
                     const T* w, const T* dy, T* dx, T* dw, T* db, float* scratch,
                     cudaStream_t stream);

}  // namespace ladder::cuda

#endif  // LADDER_WITH_CUDA
