// RAII for the cuBLAS handle; see cublas_handle.h.
#include "kernels/cuda/cublas_handle.h"

#include <utility>

#include "core/context.h"

namespace ladder::detail {

void throw_cublas_failure(cublasStatus_t code, const char* call, const char* file, int line) {
  throw Error(concat("rank ", ProcessContext::get().rank(), ": cuBLAS call ", call, " failed: ",
                     cublasGetStatusName(code), " (", cublasGetStatusString(code), ") [", file,
                     ":", line, "]"));
}

}  // namespace ladder::detail

namespace ladder::cuda {

CublasHandle::CublasHandle() {
  LADDER_CUBLAS_CHECK(cublasCreate(&handle_));
  try {
    configure();
  } catch (...) {
    cublasDestroy(handle_);
    handle_ = nullptr;
    throw;
  }
}

CublasHandle::CublasHandle(cudaStream_t stream) : CublasHandle() { set_stream(stream); }

CublasHandle::CublasHandle(DeviceAllocator& allocator, cudaStream_t stream,
                           int64_t workspace_bytes)
    : CublasHandle() {
  LADDER_CHECK(workspace_bytes > 0, "CublasHandle: workspace of ", workspace_bytes, " bytes");
  workspace_ = DeviceBuffer<unsigned char>(allocator, workspace_bytes);
  attach_workspace();
  set_stream(stream);
}

CublasHandle::~CublasHandle() {
  // cuBLAS waits for its work before releasing; workspace_ is freed after (member order).
  if (handle_ != nullptr) cublasDestroy(handle_);
}

CublasHandle::CublasHandle(CublasHandle&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)),
      stream_(std::exchange(other.stream_, nullptr)),
      workspace_(std::move(other.workspace_)) {}

CublasHandle& CublasHandle::operator=(CublasHandle&& other) noexcept {
  if (this != &other) {
    if (handle_ != nullptr) cublasDestroy(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    stream_ = std::exchange(other.stream_, nullptr);
    workspace_ = std::move(other.workspace_);  // the device memory stays where it was
  }
  return *this;
}

void CublasHandle::configure() {
  LADDER_CUBLAS_CHECK(cublasSetMathMode(
      handle_, static_cast<cublasMath_t>(CUBLAS_DEFAULT_MATH |
                                         CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION)));
  LADDER_CUBLAS_CHECK(cublasSetPointerMode(handle_, CUBLAS_POINTER_MODE_HOST));
  LADDER_CUBLAS_CHECK(cublasSetAtomicsMode(handle_, CUBLAS_ATOMICS_NOT_ALLOWED));
}

void CublasHandle::attach_workspace() {
  if (!workspace_.empty())
    LADDER_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace_.data(),
                                           static_cast<size_t>(workspace_.bytes())));
}

void CublasHandle::set_stream(cudaStream_t stream) {
  LADDER_CHECK(handle_ != nullptr, "CublasHandle: used after move");
  // A fresh handle runs on the legacy default stream (nullptr), which stream_ starts as.
  if (stream == stream_) return;
  LADDER_CUBLAS_CHECK(cublasSetStream(handle_, stream));
  stream_ = stream;
  attach_workspace();  // cublasSetStream went back to cuBLAS's default workspace pool
}

}  // namespace ladder::cuda
