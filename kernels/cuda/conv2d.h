// Why this file exists: the convolutions of the CUDA backend, through cuDNN. Same contract as
// ladder::cpu::conv2d_* (kernels/cpu/ops.h), on device pointers:
//   x (N, H, W, Cin), w (Cout, K, K, Cin), b (Cout), y (N, Ho, Wo, Cout), all NHWC / KRSC;
//   forward writes y (= conv + bias); backward_data writes dx (=); backward_filter
//   ACCUMULATES dw (+=) and db (+=, db may be null).
// T is float, __nv_bfloat16 or __half (activations and weights in the same type); cuDNN
// computes in fp32 (CUDNN_DATA_FLOAT compute type, also for fp16: cuDNN's "pseudo half"
// configuration). fp32 runs with CUDNN_FMA_MATH, i.e. without TF32, so that it matches the CPU
// to ~1e-6; bf16 and fp16 may use tensor cores. For bf16/fp16, dw and db are in that type too
// and the accumulation dw = round_T(dw + Σ) happens in that dtype: accumulating many
// micro-batches in fp32 master gradients is the trainer's business (accumulate_to_f32 in
// ops.h adds a 16-bit gradient into fp32).
//
// CudnnConv2d is the per-stream-owner context: it caches one plan per (shape, dtype) with
// the cuDNN descriptors and, per pass, the algorithm picked once (cudnnGet*Algorithm_v7
// heuristics, the first candidate whose workspace fits the limit; deterministic candidates
// preferred) and owns a grow-only scratch buffer from the caller's DeviceAllocator. No
// globals. Not thread-safe; the scratch is reused by successive calls, so calls issued on
// different streams must be ordered by the caller.
//
// Padding is per side. The legacy cuDNN convolution only pads symmetrically, so an asymmetric
// padding (the Downsample's top 0, left 0, bottom 1, right 1) is run as the equivalent
// symmetric convolution with a zero-embedded kernel: see docs/CUDA.md (Convolutions) and conv2d.cpp. No copy
// of any activation is made; the only extra memory is one filter-sized scratch.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <memory>

#include "kernels/cpu/ops.h"
#include "kernels/cuda/cudnn_handle.h"
#include "kernels/cuda/device_memory.h"

namespace ladder::cuda {

using Conv2dDims = ::ladder::cpu::Conv2dDims;

class CudnnConv2d {
 public:
  struct Options {
    // Largest cuDNN workspace an algorithm may ask for; candidates needing more are skipped.
    int64_t workspace_limit_bytes = int64_t(256) << 20;
    // Prefer algorithms marked CUDNN_DETERMINISTIC when one fits (bitwise-reproducible
    // backward filter); otherwise the heuristics' first choice that fits.
    bool prefer_deterministic = true;
  };

  // `handle` and `allocator` must outlive this object.
  CudnnConv2d(CudnnHandle& handle, DeviceAllocator& allocator);
  CudnnConv2d(CudnnHandle& handle, DeviceAllocator& allocator, Options options);
  ~CudnnConv2d();
  CudnnConv2d(const CudnnConv2d&) = delete;
  CudnnConv2d& operator=(const CudnnConv2d&) = delete;
  CudnnConv2d(CudnnConv2d&&) noexcept;
  CudnnConv2d& operator=(CudnnConv2d&&) noexcept;

  // y = conv(x, w) + b (b may be null). Enqueued on `stream`.
  template <class T>
  void forward(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y,
               cudaStream_t stream);
  // dx = conv_transpose(dy, w) (written, never read).
  template <class T>
  void backward_data(const Conv2dDims& d, const T* dy, const T* w, T* dx, cudaStream_t stream);
  // dw += correlation(x, dy); db += Σ dy over pixels (db may be null).
  template <class T>
  void backward_filter(const Conv2dDims& d, const T* x, const T* dy, T* dw, T* db,
                       cudaStream_t stream);

  // Introspection (tests, logs).
  int64_t cached_plans() const;
  int64_t scratch_bytes() const;  // current size of the owned scratch buffer

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ladder::cuda

#endif  // LADDER_WITH_CUDA
