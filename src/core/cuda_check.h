// Why this file exists: one throwing check for CUDA runtime calls (in the tiny-cuda-nn style),
// shared by the CUDA backend and the NCCL communicator. A failed call becomes a ladder::Error
// naming the rank, the call as written and CUDA's error text. Only in CUDA builds.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cuda_runtime.h>

#include "core/check.h"
#include "core/context.h"

namespace ladder::detail {

[[noreturn]] inline void throw_cuda_failure(cudaError_t code, const char* call, const char* file,
                                            int line) {
  throw Error(concat("rank ", ProcessContext::get().rank(), ": CUDA call ", call, " failed: ",
                     cudaGetErrorName(code), " (", cudaGetErrorString(code), ") [", file, ":",
                     line, "]"));
}

}  // namespace ladder::detail

#define LADDER_CUDA_CHECK(call)                                                        \
  do {                                                                                 \
    cudaError_t ladder_cuda_code_ = (call);                                            \
    if (ladder_cuda_code_ != cudaSuccess)                                              \
      ::ladder::detail::throw_cuda_failure(ladder_cuda_code_, #call, __FILE__, __LINE__); \
  } while (0)

#endif  // LADDER_WITH_CUDA
