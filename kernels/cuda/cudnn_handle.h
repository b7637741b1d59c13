// Why this file exists: RAII for the cuDNN objects the CUDA backend uses (the library handle
// and the tensor, filter and convolution descriptors) and one throwing check for cuDNN calls,
// in the style of core/cuda_check.h. Every object is move-only; destructors never throw (a
// failed destroy, e.g. at process teardown, is ignored).
//
// A CudnnHandle belongs to one owner of a device and its streams (the trainer, a test); it is
// not thread-safe. Work goes to the stream set with set_stream().
//
// Plain C++ header (no CUDA syntax): host code compiled by g++ includes it.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cuda_runtime.h>
#include <cudnn.h>

#include <utility>

#include "core/check.h"

namespace ladder::detail {

// Throws ladder::Error naming the rank, the call as written, cudnnGetErrorString and cuDNN's
// last detailed message (cudnnGetLastErrorString) when it has one.
[[noreturn]] void throw_cudnn_failure(cudnnStatus_t code, const char* call, const char* file,
                                      int line);

}  // namespace ladder::detail

#define LADDER_CUDNN_CHECK(call)                                                          \
  do {                                                                                    \
    cudnnStatus_t ladder_cudnn_code_ = (call);                                            \
    if (ladder_cudnn_code_ != CUDNN_STATUS_SUCCESS)                                       \
      ::ladder::detail::throw_cudnn_failure(ladder_cudnn_code_, #call, __FILE__, __LINE__); \
  } while (0)

namespace ladder::cuda {

// cudnnHandle_t on the device current at construction.
class CudnnHandle {
 public:
  CudnnHandle();
  explicit CudnnHandle(cudaStream_t stream);
  ~CudnnHandle();
  CudnnHandle(const CudnnHandle&) = delete;
  CudnnHandle& operator=(const CudnnHandle&) = delete;
  CudnnHandle(CudnnHandle&& other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)),
        stream_(std::exchange(other.stream_, nullptr)) {}
  CudnnHandle& operator=(CudnnHandle&& other) noexcept;

  cudnnHandle_t get() const { return handle_; }
  cudaStream_t stream() const { return stream_; }
  // cudnnSetStream, skipped when the stream is already the handle's.
  void set_stream(cudaStream_t stream);

 private:
  cudnnHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
};

// A 4-d activation tensor, NHWC, fully packed.
class TensorDescriptor {
 public:
  TensorDescriptor();
  ~TensorDescriptor();
  TensorDescriptor(const TensorDescriptor&) = delete;
  TensorDescriptor& operator=(const TensorDescriptor&) = delete;
  TensorDescriptor(TensorDescriptor&& other) noexcept
      : desc_(std::exchange(other.desc_, nullptr)) {}
  TensorDescriptor& operator=(TensorDescriptor&& other) noexcept;

  void set_nhwc(cudnnDataType_t type, int n, int h, int w, int c);
  cudnnTensorDescriptor_t get() const { return desc_; }

 private:
  cudnnTensorDescriptor_t desc_ = nullptr;
};

// A 4-d filter in cuDNN's NHWC filter format, i.e. memory layout (K, R, S, C) =
// (Cout, kernel rows, kernel columns, Cin): ladder's (Cout, K, K, Cin).
class FilterDescriptor {
 public:
  FilterDescriptor();
  ~FilterDescriptor();
  FilterDescriptor(const FilterDescriptor&) = delete;
  FilterDescriptor& operator=(const FilterDescriptor&) = delete;
  FilterDescriptor(FilterDescriptor&& other) noexcept
      : desc_(std::exchange(other.desc_, nullptr)) {}
  FilterDescriptor& operator=(FilterDescriptor&& other) noexcept;

  void set_krsc(cudnnDataType_t type, int cout, int rows, int cols, int cin);
  cudnnFilterDescriptor_t get() const { return desc_; }

 private:
  cudnnFilterDescriptor_t desc_ = nullptr;
};

// A 2-d cross-correlation (ladder's convolution) with symmetric padding, no dilation.
class ConvolutionDescriptor {
 public:
  ConvolutionDescriptor();
  ~ConvolutionDescriptor();
  ConvolutionDescriptor(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor& operator=(const ConvolutionDescriptor&) = delete;
  ConvolutionDescriptor(ConvolutionDescriptor&& other) noexcept
      : desc_(std::exchange(other.desc_, nullptr)) {}
  ConvolutionDescriptor& operator=(ConvolutionDescriptor&& other) noexcept;

  void set_2d(int pad_h, int pad_w, int stride_h, int stride_w, cudnnDataType_t compute_type);
  void set_math_type(cudnnMathType_t math);
  cudnnConvolutionDescriptor_t get() const { return desc_; }

 private:
  cudnnConvolutionDescriptor_t desc_ = nullptr;
};

}  // namespace ladder::cuda

#endif  // LADDER_WITH_CUDA
