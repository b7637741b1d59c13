// Why this file exists: the loss terms and latent sampling on the GPU: L1 reconstruction,
// the squared error of the diffusion objective, the reparameterisation z = mu + eps·σ, and the KL divergence to N(0, 1),
// with exactly the CPU's semantics (kernels/cpu/loss.cpp), including the logvar clamp and
// NaN behaviour. The loss sums are deterministic (common.cuh) and per element in double.
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace ladder::cuda {
namespace {

using detail::from_float;
using detail::Inputs;
using detail::kThreads;
using detail::to_float;

// As std::clamp(lv, lo, hi): NaN passes through.
__device__ __forceinline__ float clamp_logvar(float lv) {
  const float lo = static_cast<float>(kLogvarMin), hi = static_cast<float>(kLogvarMax);
  return lv < lo ? lo : (hi < lv ? hi : lv);
}
__device__ __forceinline__ double clamp_logvar(double lv) {
  return lv < kLogvarMin ? kLogvarMin : (kLogvarMax < lv ? kLogvarMax : lv);
}
// NaN is outside.
__device__ __forceinline__ bool inside_clamp(float lv) {
  return lv >= static_cast<float>(kLogvarMin) && lv <= static_cast<float>(kLogvarMax);
}

template <class T>
struct L1Term {
  const T* x;
  const T* target;
  __device__ double operator()(int64_t i) const {
    return fabs(double(to_float(x[i])) - double(to_float(target[i])));
  }
};

template <class T>
struct SquaredTerm {
  const T* x;
  const T* target;
  __device__ double operator()(int64_t i) const {
    const double diff = double(to_float(x[i])) - double(to_float(target[i]));
    return diff * diff;
  }
};

template <class T>
struct KlTerm {
  const T* mu;
  const T* logvar;
  __device__ double operator()(int64_t i) const {
    const double m = to_float(mu[i]), lv = clamp_logvar(double(to_float(logvar[i])));
    return 0.5 * (m * m + exp(lv) - lv - 1.0);
  }
};

// args: x, target.
struct L1BackwardOp {
  float scale;
  __device__ float operator()(const float* a) const {
    const float diff = a[0] - a[1];
    return diff > 0.0f ? scale : (diff < 0.0f ? -scale : 0.0f);
  }
};

// args: x, target.
struct SquaredBackwardOp {
  float scale;
  __device__ float operator()(const float* a) const { return 2.0f * scale * (a[0] - a[1]); }
};

// args: mu, logvar, eps.
struct ReparameterizeOp {
  __device__ float operator()(const float* a) const {
    return a[0] + a[2] * expf(0.5f * clamp_logvar(a[1]));
  }
};

template <class T>
__global__ void reparameterize_backward_kernel(int64_t n, const T* logvar, const T* eps,
                                               const T* dz, T* dmu, T* dlogvar) {
  for (int64_t i = detail::global_thread(); i < n; i += detail::grid_stride()) {
    const float lv = to_float(logvar[i]), g = to_float(dz[i]);
    dmu[i] = dz[i];
    dlogvar[i] =
        from_float<T>(inside_clamp(lv) ? g * to_float(eps[i]) * (0.5f * expf(0.5f * lv)) : 0.0f);
  }
}

template <class T>
__global__ void kl_backward_accumulate_kernel(int64_t n, const T* mu, const T* logvar,
                                              float scale, T* dmu, T* dlogvar) {
  for (int64_t i = detail::global_thread(); i < n; i += detail::grid_stride()) {
    dmu[i] = from_float<T>(to_float(dmu[i]) + scale * to_float(mu[i]));
    const float lv = to_float(logvar[i]);
    if (inside_clamp(lv))
      dlogvar[i] = from_float<T>(to_float(dlogvar[i]) + scale * (0.5f * (expf(lv) - 1.0f)));
  }
}

void check_size(int64_t n, const char* op) {
  LADDER_CHECK(n >= 0, op, ": negative size ", n);
}

}  // namespace

template <class T>
void l1_forward_async(int64_t n, const T* x, const T* target, double* result, double* scratch,
                      cudaStream_t stream) {
  detail::launch_sum(n, L1Term<T>{x, target}, result, scratch, stream);
}

template <class T>
double l1_forward(int64_t n, const T* x, const T* target, double* scratch, cudaStream_t stream) {
  return detail::sum_now(n, L1Term<T>{x, target}, scratch, stream);
}

template <class T>
void l1_backward(int64_t n, const T* x, const T* target, float scale, T* dx,
                 cudaStream_t stream) {
  detail::launch_map<T, 2>(n, L1BackwardOp{scale}, Inputs<T, 2>{{x, target}}, dx, stream);
}

template <class T>
void mse_forward_async(int64_t n, const T* x, const T* target, double* result, double* scratch,
                       cudaStream_t stream) {
  detail::launch_sum(n, SquaredTerm<T>{x, target}, result, scratch, stream);
}

template <class T>
double mse_forward(int64_t n, const T* x, const T* target, double* scratch, cudaStream_t stream) {
  return detail::sum_now(n, SquaredTerm<T>{x, target}, scratch, stream);
}

template <class T>
void mse_backward(int64_t n, const T* x, const T* target, float scale, T* dx,
                  cudaStream_t stream) {
  detail::launch_map<T, 2>(n, SquaredBackwardOp{scale}, Inputs<T, 2>{{x, target}}, dx, stream);
}

template <class T>
void reparameterize_forward(int64_t n, const T* mu, const T* logvar, const T* eps, T* z,
                            cudaStream_t stream) {
  detail::launch_map<T, 3>(n, ReparameterizeOp{}, Inputs<T, 3>{{mu, logvar, eps}}, z, stream);
}

template <class T>
void reparameterize_backward(int64_t n, const T* logvar, const T* eps, const T* dz, T* dmu,
                             T* dlogvar, cudaStream_t stream) {
  check_size(n, "reparameterize_backward");
  if (n == 0) return;
  reparameterize_backward_kernel<T>
      <<<detail::grid_for(n), kThreads, 0, stream>>>(n, logvar, eps, dz, dmu, dlogvar);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void kl_forward_async(int64_t n, const T* mu, const T* logvar, double* result, double* scratch,
                      cudaStream_t stream) {
  detail::launch_sum(n, KlTerm<T>{mu, logvar}, result, scratch, stream);
}

template <class T>
double kl_forward(int64_t n, const T* mu, const T* logvar, double* scratch, cudaStream_t stream) {
  return detail::sum_now(n, KlTerm<T>{mu, logvar}, scratch, stream);
}

template <class T>
void kl_backward_accumulate(int64_t n, const T* mu, const T* logvar, float scale, T* dmu,
                            T* dlogvar, cudaStream_t stream) {
  check_size(n, "kl_backward_accumulate");
  if (n == 0) return;
  kl_backward_accumulate_kernel<T>
      <<<detail::grid_for(n), kThreads, 0, stream>>>(n, mu, logvar, scale, dmu, dlogvar);
  LADDER_CUDA_CHECK_LAUNCH();
}

#define LADDER_INSTANTIATE(T)                                                                  \
  template void l1_forward_async<T>(int64_t, const T*, const T*, double*, double*,             \
                                    cudaStream_t);                                             \
  template double l1_forward<T>(int64_t, const T*, const T*, double*, cudaStream_t);           \
  template void l1_backward<T>(int64_t, const T*, const T*, float, T*, cudaStream_t);          \
  template void mse_forward_async<T>(int64_t, const T*, const T*, double*, double*,            \
                                     cudaStream_t);                                            \
  template double mse_forward<T>(int64_t, const T*, const T*, double*, cudaStream_t);          \
  template void mse_backward<T>(int64_t, const T*, const T*, float, T*, cudaStream_t);         \
  template void reparameterize_forward<T>(int64_t, const T*, const T*, const T*, T*,           \
                                          cudaStream_t);                                       \
  template void reparameterize_backward<T>(int64_t, const T*, const T*, const T*, T*, T*,      \
                                           cudaStream_t);                                      \
  template void kl_forward_async<T>(int64_t, const T*, const T*, double*, double*,             \
                                    cudaStream_t);                                             \
  template double kl_forward<T>(int64_t, const T*, const T*, double*, cudaStream_t);           \
  template void kl_backward_accumulate<T>(int64_t, const T*, const T*, float, T*, T*,          \
                                          cudaStream_t);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(bf16_t)
LADDER_INSTANTIATE(half_t)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cuda
