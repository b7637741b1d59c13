// Why this file exists: RAII for the cuBLAS handle the CUDA linear and attention ops use, one
// throwing check for cuBLAS calls (in the style of core/cuda_check.h and cudnn_handle.h), and
// the dtype/compute-type choices shared by every GEMM of the backend.
//
// A CublasHandle belongs to one owner of a device and its streams (the trainer, a test); it
// is not thread-safe. It is configured once:
//   - math mode CUBLAS_DEFAULT_MATH | CUBLAS_MATH_DISALLOW_REDUCED_PRECISION_REDUCTION (no
//     TF32 for fp32 inputs; bf16 and fp16 GEMMs on tensor cores with any split-K reduction in
//     fp32, never in the 16-bit output type);
//   - pointer mode host (alpha and beta are host floats), atomics not allowed (deterministic);
//   - optionally a workspace from the caller's DeviceAllocator (counted in mem_peak_bytes;
//     32 MiB is NVIDIA's recommendation for Hopper). Without one, cuBLAS uses its own pool.
// cublasSetStream resets the workspace to cuBLAS's default pool, so set_stream() sets ours
// again after every stream change. The one workspace serves every stream the handle is
// switched to: calls issued on different streams must be ordered by the caller (as the
// scratch of CudnnConv2d).
//
// Plain C++ header (no CUDA syntax): host code compiled by g++ includes it.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "core/check.h"
#include "kernels/cuda/device_memory.h"

namespace ladder::detail {

// Throws ladder::Error naming the rank, the call as written, cuBLAS's status name and text.
[[noreturn]] void throw_cublas_failure(cublasStatus_t code, const char* call, const char* file,
                                       int line);

}  // namespace ladder::detail

#define LADDER_CUBLAS_CHECK(call)                                                            \
  do {                                                                                       \
    cublasStatus_t ladder_cublas_code_ = (call);                                             \
    if (ladder_cublas_code_ != CUBLAS_STATUS_SUCCESS)                                        \
      ::ladder::detail::throw_cublas_failure(ladder_cublas_code_, #call, __FILE__, __LINE__); \
  } while (0)

namespace ladder::cuda {

class CublasHandle {
 public:
  // NVIDIA's recommended cuBLAS workspace on Hopper (4 MiB suffices on older GPUs).
  static constexpr int64_t kDefaultWorkspaceBytes = int64_t(32) << 20;

  // cublasHandle_t on the device current at construction, on the legacy default stream,
  // with cuBLAS's own workspace pool.
  CublasHandle();
  explicit CublasHandle(cudaStream_t stream);
  // The same with a workspace of `workspace_bytes` (> 0) allocated from `allocator`, which
  // must outlive the handle.
  CublasHandle(DeviceAllocator& allocator, cudaStream_t stream,
               int64_t workspace_bytes = kDefaultWorkspaceBytes);
  ~CublasHandle();
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  CublasHandle(CublasHandle&& other) noexcept;
  CublasHandle& operator=(CublasHandle&& other) noexcept;

  cublasHandle_t get() const { return handle_; }
  cudaStream_t stream() const { return stream_; }
  // cublasSetStream (and our workspace again), skipped when the stream is already the handle's.
  void set_stream(cudaStream_t stream);
  int64_t workspace_bytes() const { return workspace_.bytes(); }

 private:
  void configure();        // math mode, pointer mode, atomics mode
  void attach_workspace();  // cublasSetWorkspace with workspace_ (when there is one)

  cublasHandle_t handle_ = nullptr;
  cudaStream_t stream_ = nullptr;
  DeviceBuffer<unsigned char> workspace_;
};

// ---- The GEMM types of the backend ------------------------------------------------------
template <class T>
constexpr bool is_gemm_type_v = std::is_same_v<T, float> || std::is_same_v<T, __nv_bfloat16> ||
                                std::is_same_v<T, __half>;

// Storage type of T for cublas*Ex calls.
template <class T>
constexpr cudaDataType cublas_data_type() {
  static_assert(is_gemm_type_v<T>, "cuBLAS GEMMs: T is float, __nv_bfloat16 or __half");
  if constexpr (std::is_same_v<T, float>) return CUDA_R_32F;
  else if constexpr (std::is_same_v<T, __nv_bfloat16>) return CUDA_R_16BF;
  else return CUDA_R_16F;
}

// Compute type for inputs of type T; always fp32 accumulation with float alpha/beta:
//   float:      CUBLAS_COMPUTE_32F_PEDANTIC, i.e. CUBLAS_COMPUTE_32F with the prescribed fp32
//               arithmetic whatever the environment says (no TF32, no BF16x9 emulation), so
//               results match the CPU reference to ~1e-6;
//   bf16, fp16: CUBLAS_COMPUTE_32F (tensor cores, fp32 accumulation; for fp16 not
//               CUBLAS_COMPUTE_16F, whose fp16 sums would overflow or lose the small terms).
template <class T>
constexpr cublasComputeType_t cublas_compute_type() {
  static_assert(is_gemm_type_v<T>, "cuBLAS GEMMs: T is float, __nv_bfloat16 or __half");
  return std::is_same_v<T, float> ? CUBLAS_COMPUTE_32F_PEDANTIC : CUBLAS_COMPUTE_32F;
}

}  // namespace ladder::cuda

#endif  // LADDER_WITH_CUDA
