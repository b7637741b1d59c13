// Why this file exists: the non-template end of the deterministic sums (common.cuh): the
// one-block final sum over the per-block partials, the scratch size, and the read-back.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace ladder::cuda {
namespace detail {
namespace {

__global__ void __launch_bounds__(kThreads)
    final_sum_kernel(int64_t count, const double* partials, double* result) {
  double acc = 0;
  for (int64_t i = threadIdx.x; i < count; i += kThreads) acc += partials[i];
  acc = block_sum<double, kThreads>(acc);
  if (threadIdx.x == 0) *result = acc;
}

}  // namespace

void launch_final_sum(int64_t count, const double* partials, double* result,
                      cudaStream_t stream) {
  final_sum_kernel<<<1, kThreads, 0, stream>>>(count, partials, result);
  LADDER_CUDA_CHECK_LAUNCH();
}

double read_result(const double* device_value, cudaStream_t stream) {
  double host = 0;
  LADDER_CUDA_CHECK(
      cudaMemcpyAsync(&host, device_value, sizeof host, cudaMemcpyDeviceToHost, stream));
  LADDER_CUDA_CHECK(cudaStreamSynchronize(stream));
  return host;
}

}  // namespace detail

// The partials, plus one slot for the synchronous forms' result.
int64_t reduction_scratch_doubles(int64_t n) {
  LADDER_CHECK(n >= 0, "reduction_scratch_doubles: negative size ", n);
  return detail::sum_partials(n) + 1;
}

}  // namespace ladder::cuda
