// RAII for cuDNN objects; see cudnn_handle.h.
#include "kernels/cuda/cudnn_handle.h"

#include <string>

#include "core/context.h"

namespace ladder::detail {

void throw_cudnn_failure(cudnnStatus_t code, const char* call, const char* file, int line) {
  char last[512] = {0};
  cudnnGetLastErrorString(last, sizeof last);
  std::string detail = last[0] != '\0' ? concat(": ", last) : std::string();
  throw Error(concat("rank ", ProcessContext::get().rank(), ": cuDNN call ", call, " failed: ",
                     cudnnGetErrorString(code), detail, " [", file, ":", line, "]"));
}

}  // namespace ladder::detail

namespace ladder::cuda {

// ---- CudnnHandle -------------------------------------------------------------------------

CudnnHandle::CudnnHandle() { LADDER_CUDNN_CHECK(cudnnCreate(&handle_)); }

CudnnHandle::CudnnHandle(cudaStream_t stream) : CudnnHandle() { set_stream(stream); }

CudnnHandle::~CudnnHandle() {
  if (handle_ != nullptr) cudnnDestroy(handle_);
}

CudnnHandle& CudnnHandle::operator=(CudnnHandle&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) cudnnDestroy(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    stream_ = std::exchange(other.stream_, nullptr);
  }
  return *this;
}

void CudnnHandle::set_stream(cudaStream_t stream) {
  LADDER_CHECK(handle_ != nullptr, "CudnnHandle: used after move");
  // A fresh handle runs on the legacy default stream (nullptr), which stream_ starts as.
  if (stream == stream_) return;
  LADDER_CUDNN_CHECK(cudnnSetStream(handle_, stream));
  stream_ = stream;
}

// ---- TensorDescriptor --------------------------------------------------------------------

TensorDescriptor::TensorDescriptor() { LADDER_CUDNN_CHECK(cudnnCreateTensorDescriptor(&desc_)); }

TensorDescriptor::~TensorDescriptor() {
  if (desc_ != nullptr) cudnnDestroyTensorDescriptor(desc_);
}

TensorDescriptor& TensorDescriptor::operator=(TensorDescriptor&& other) noexcept {
  if (this != &other) {
    if (desc_ != nullptr) cudnnDestroyTensorDescriptor(desc_);
    desc_ = std::exchange(other.desc_, nullptr);
  }
  return *this;
}

void TensorDescriptor::set_nhwc(cudnnDataType_t type, int n, int h, int w, int c) {
  // cudnnSetTensor4dDescriptor takes the logical (n, c, h, w) dims; the format gives memory order.
  LADDER_CUDNN_CHECK(cudnnSetTensor4dDescriptor(desc_, CUDNN_TENSOR_NHWC, type, n, c, h, w));
}

// ---- FilterDescriptor --------------------------------------------------------------------

FilterDescriptor::FilterDescriptor() { LADDER_CUDNN_CHECK(cudnnCreateFilterDescriptor(&desc_)); }

FilterDescriptor::~FilterDescriptor() {
  if (desc_ != nullptr) cudnnDestroyFilterDescriptor(desc_);
}

FilterDescriptor& FilterDescriptor::operator=(FilterDescriptor&& other) noexcept {
  if (this != &other) {
    if (desc_ != nullptr) cudnnDestroyFilterDescriptor(desc_);
    desc_ = std::exchange(other.desc_, nullptr);
  }
  return *this;
}

void FilterDescriptor::set_krsc(cudnnDataType_t type, int cout, int rows, int cols, int cin) {
  // Logical (k, c, h, w); CUDNN_TENSOR_NHWC stores it as (k, h, w, c) = KRSC.
  LADDER_CUDNN_CHECK(
      cudnnSetFilter4dDescriptor(desc_, type, CUDNN_TENSOR_NHWC, cout, cin, rows, cols));
}

// ---- ConvolutionDescriptor ---------------------------------------------------------------

ConvolutionDescriptor::ConvolutionDescriptor() {
  LADDER_CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&desc_));
}

ConvolutionDescriptor::~ConvolutionDescriptor() {
  if (desc_ != nullptr) cudnnDestroyConvolutionDescriptor(desc_);
}

ConvolutionDescriptor& ConvolutionDescriptor::operator=(ConvolutionDescriptor&& other) noexcept {
  if (this != &other) {
    if (desc_ != nullptr) cudnnDestroyConvolutionDescriptor(desc_);
    desc_ = std::exchange(other.desc_, nullptr);
  }
  return *this;
}

void ConvolutionDescriptor::set_2d(int pad_h, int pad_w, int stride_h, int stride_w,
                                   cudnnDataType_t compute_type) {
  LADDER_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(desc_, pad_h, pad_w, stride_h, stride_w,
                                                     /*dilation_h=*/1, /*dilation_w=*/1,
                                                     CUDNN_CROSS_CORRELATION, compute_type));
}

void ConvolutionDescriptor::set_math_type(cudnnMathType_t math) {
  LADDER_CUDNN_CHECK(cudnnSetConvolutionMathType(desc_, math));
}

}  // namespace ladder::cuda
