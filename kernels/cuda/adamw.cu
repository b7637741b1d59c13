// Why this file exists: the optimizer step on the GPU: fused AdamW over a rank's fp32 shard
// (master weights, Adam m and v, fp32 gradients) that also writes the bf16 working copy of
// the updated weights, and the deterministic squared norm used for gradient clipping.
// Same arithmetic as ladder::AdamW::step (src/train/adamw.cpp), element for element.
#include <cmath>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace ladder::cuda {
namespace {

using detail::kThreads;

__global__ void adamw_kernel(int64_t n, AdamWScalars s, float* __restrict__ params,
                             const float* __restrict__ grads, float* __restrict__ m,
                             float* __restrict__ v, const uint8_t* __restrict__ decay_mask,
                             bf16_t* __restrict__ params_bf16) {
  for (int64_t i = detail::global_thread(); i < n; i += detail::grid_stride()) {
    const float g = grads[i];
    const float mi = s.beta1 * m[i] + s.one_minus_beta1 * g;
    const float vi = s.beta2 * v[i] + s.one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    const float denom = sqrtf(vi) * s.inv_sqrt_correction2 + s.eps;
    const float decay = (decay_mask != nullptr && decay_mask[i] != 0) ? s.decay_factor : 1.0f;
    const float p = params[i] * decay - s.step_size * mi / denom;
    params[i] = p;
    if (params_bf16 != nullptr) params_bf16[i] = __float2bfloat16_rn(p);
  }
}

struct SquareTerm {
  const float* values;
  __device__ double operator()(int64_t i) const {
    const double x = values[i];
    return x * x;
  }
};

}  // namespace

AdamWScalars adamw_scalars(double beta1, double beta2, double eps, double weight_decay,
                           double lr, int64_t step) {
  LADDER_CHECK(step >= 1, "adamw_scalars: step ", step, " (the first step is 1)");
  AdamWScalars s;
  s.beta1 = static_cast<float>(beta1);
  s.beta2 = static_cast<float>(beta2);
  s.one_minus_beta1 = 1.0f - s.beta1;
  s.one_minus_beta2 = 1.0f - s.beta2;
  s.eps = static_cast<float>(eps);
  const double correction1 = 1.0 - std::pow(beta1, static_cast<double>(step));
  const double correction2 = 1.0 - std::pow(beta2, static_cast<double>(step));
  s.step_size = static_cast<float>(lr / correction1);
  s.inv_sqrt_correction2 = static_cast<float>(1.0 / std::sqrt(correction2));
  s.decay_factor = static_cast<float>(1.0 - lr * weight_decay);
  return s;
}

void adamw_step(int64_t n, const AdamWScalars& scalars, float* params, const float* grads,
                float* exp_avg, float* exp_avg_sq, const uint8_t* decay_mask,
                bf16_t* params_bf16, cudaStream_t stream) {
  LADDER_CHECK(n >= 0, "adamw_step: negative size ", n);
  if (n == 0) return;
  adamw_kernel<<<detail::grid_for(n), kThreads, 0, stream>>>(
      n, scalars, params, grads, exp_avg, exp_avg_sq, decay_mask, params_bf16);
  LADDER_CUDA_CHECK_LAUNCH();
}

void squared_norm_async(int64_t n, const float* values, double* result, double* scratch,
                        cudaStream_t stream) {
  detail::launch_sum(n, SquareTerm{values}, result, scratch, stream);
}

double squared_norm(int64_t n, const float* values, double* scratch, cudaStream_t stream) {
  return detail::sum_now(n, SquareTerm{values}, scratch, stream);
}

}  // namespace ladder::cuda
