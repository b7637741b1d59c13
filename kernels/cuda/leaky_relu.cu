// Why this file exists: LeakyReLU on the GPU (the PatchDiscriminator's activation), the twin of
// kernels/cpu/leaky_relu.cpp, through the shared elementwise map (fp32 math, vector loads).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace ladder::cuda {
namespace {

using detail::Inputs;

struct LeakyReluForwardOp {
  float slope;
  __device__ float operator()(const float* a) const { return a[0] > 0.0f ? a[0] : slope * a[0]; }
};
// args: x, dy.
struct LeakyReluBackwardOp {
  float slope;
  __device__ float operator()(const float* a) const { return a[0] > 0.0f ? a[1] : slope * a[1]; }
};

}  // namespace

template <class T>
void leaky_relu_forward(int64_t n, float slope, const T* x, T* y, cudaStream_t stream) {
  LADDER_CHECK(slope >= 0, "CUDA leaky_relu: the negative slope must be >= 0 (0: ReLU), got ", slope);
  detail::launch_map<T, 1>(n, LeakyReluForwardOp{slope}, Inputs<T, 1>{{x}}, y, stream);
}

template <class T>
void leaky_relu_backward(int64_t n, float slope, const T* x, const T* dy, T* dx, cudaStream_t stream) {
  LADDER_CHECK(slope >= 0, "CUDA leaky_relu: the negative slope must be >= 0 (0: ReLU), got ", slope);
  detail::launch_map<T, 2>(n, LeakyReluBackwardOp{slope}, Inputs<T, 2>{{x, dy}}, dx, stream);
}

#define LADDER_INSTANTIATE(T)                                                          \
  template void leaky_relu_forward<T>(int64_t, float, const T*, T*, cudaStream_t); \
  template void leaky_relu_backward<T>(int64_t, float, const T*, const T*, T*, cudaStream_t);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(bf16_t)
LADDER_INSTANTIATE(half_t)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cuda
