// Why this file exists: the CUDA backend's own kernels (everything but the cuDNN
// convolutions and, later, linear/attention), callable from plain C++. Each function mirrors
// the ladder::cpu op of the same name (kernels/cpu/ops.h) and is tested against it
// (tests/gpu/test_cuda_ops.cpp). docs/CUDA.md describes the backend.
//
// Conventions (BRIEF §3, as on the CPU):
//   - layout NHWC; all pointers are device pointers unless said otherwise;
//   - forward writes its outputs (=); backward writes activation gradients (=) and
//     accumulates parameter gradients (+=); `_accumulate` functions add into their output;
//   - every call is asynchronous on the given stream (except the functions that return a
//     host value, which wait for the stream) and throws ladder::Error on a bad argument or a
//     launch failure;
//   - T ∈ {float, __nv_bfloat16, __half} for activations (fp32, bf16, fp16); all arithmetic is
//     fp32 (loads convert up, stores round to nearest even); statistics (GroupNorm mean/rstd), norm parameters and
//     their gradients, optimizer state and loss sums are fp32 or double whatever T is;
//   - deterministic: no floating-point atomics; every reduction has a fixed order that depends
//     only on the sizes, so the same inputs give the same bits on every run and GPU.
// Scalars (scale, alpha) are fp32 host values.
//
// Plain C++ header (no CUDA syntax). Only in CUDA builds.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cpu/feature_ops.h"  // SamePool, BilinearMode
#include "kernels/cpu/ops.h"  // GroupNormDims, kLogvarMin/kLogvarMax: one definition for both

namespace ladder::cuda {

using bf16_t = __nv_bfloat16;
using half_t = __half;
using cpu::BatchNormDims;
using cpu::GroupNormDims;
using cpu::kLogvarMax;
using cpu::kLogvarMin;

// ---------------------------------------------------------------------------------------
// Elementwise (n elements). Outputs may alias inputs of the same type.
template <class T>
void silu_forward(int64_t n, const T* x, T* y, cudaStream_t stream);  // y = x·σ(x)
template <class T>
void silu_backward(int64_t n, const T* x, const T* dy, T* dx, cudaStream_t stream);
template <class T>
void add_forward(int64_t n, const T* a, const T* b, T* y, cudaStream_t stream);  // y = a + b
template <class T>
void add_accumulate(int64_t n, const T* x, T* y, cudaStream_t stream);  // y += x
template <class T>
void scale_inplace(int64_t n, float alpha, T* x, cudaStream_t stream);  // x *= alpha
// y += t·(x − y) on fp32 buffers (EMA of the weights).
void lerp_inplace(int64_t n, const float* x, float t, float* y, cudaStream_t stream);

// The UNet's channel plumbing (kernels/cuda/channels.cu; contracts in kernels/cpu/ops.h).
template <class T>
void concat_channels(int64_t m, int ca, int cb, const T* a, const T* b, T* y, cudaStream_t stream);
template <class T>
void split_channels(int64_t m, int ca, int cb, const T* dy, T* da, T* db, cudaStream_t stream);
template <class T>
void add_per_channel(int n, int64_t hw, int c, const T* x, const T* v, T* y, cudaStream_t stream);
template <class T>
void sum_per_channel(int n, int64_t hw, int c, const T* dy, T* dv, cudaStream_t stream);
// out = in, converted (round to nearest even into bf16/fp16; fp16 overflows to ±Inf beyond
// 65504). Instantiated for float↔bf16, float↔fp16, and each type to itself (a copy).
template <class From, class To>
void convert(int64_t n, const From* in, To* out, cudaStream_t stream);
// y[i] += float(x[i]) into an fp32 buffer (y fp32 whatever From is), one rounding per element.
// The trainer adds a bf16/fp16 weight gradient produced by cuDNN/cuBLAS (into a zeroed scratch)
// to the fp32 gradient buffer with it, so micro-batches accumulate in fp32. From ∈ {float,
// __nv_bfloat16, __half}; no atomics (each element is owned by one thread). x and y must not
// overlap.
template <class From>
void accumulate_to_f32(int64_t n, const From* x, float* y, cudaStream_t stream);

// ---------------------------------------------------------------------------------------
// GroupNorm with optional fused SiLU. x, y, dy, dx (N, HW, C); gamma, beta, dgamma, dbeta (C)
// fp32; mean, rstd (N, G) fp32 saved by the forward. With `silu`:
//   forward  y = silu(u), u = x̂·γ + β, x̂ = (x − mean)·rstd;
//   backward recomputes x̂ and u from x, mean, rstd (no saved pre-SiLU tensor).
// Requirements: C % G == 0, HW·C < 2^31 (per image), N < 65536.
template <class T>
void group_norm_forward(const GroupNormDims& d, bool silu, const T* x, const float* gamma,
                        const float* beta, T* y, float* mean, float* rstd, cudaStream_t stream);
// fp32 elements of the scratch group_norm_backward needs: 2·N·C + 2·N·G.
int64_t group_norm_backward_scratch_floats(const GroupNormDims& d);
// dx = ...; dgamma += Σ_n,p du·x̂; dbeta += Σ_n,p du (du = dy, or dy·silu'(u) with `silu`).
// dgamma/dbeta are summed per (image, channel) into `scratch` and then over images in fixed
// order: deterministic. `scratch`: group_norm_backward_scratch_floats(d) floats, no contents
// needed, must not overlap anything else (it is only used during the call's kernels).
template <class T>
void group_norm_backward(const GroupNormDims& d, bool silu, const T* x, const float* gamma,
                         const float* beta, const float* mean, const float* rstd, const T* dy,
                         T* dx, float* dgamma, float* dbeta, float* scratch,
                         cudaStream_t stream);

// ---------------------------------------------------------------------------------------
// LeakyReLU (kernels/cuda/leaky_relu.cu): y = x for x > 0, slope·x otherwise; dx likewise;
// slope 0 is the ReLU (of LPIPS's networks). y may be x (in place).
template <class T>
void leaky_relu_forward(int64_t n, float slope, const T* x, T* y, cudaStream_t stream);
template <class T>
void leaky_relu_backward(int64_t n, float slope, const T* x, const T* dy, T* dx, cudaStream_t stream);

// ---- LPIPS (kernels/cuda/lpips.cu): the contracts of kernels/cpu/ops.h's max pooling and
// LPIPS head. shift, scale: 3 host floats; norm (m) in T; w (c) fp32 (the NetLinLayer's
// values); d and ddist (n) host doubles; scratch: weighted_distance_scratch_doubles(n, hw, c)
// doubles. weighted_distance_accumulate waits for the stream once (its n sums come back to the
// host together).
template <class T>
void max_pool2d_forward(const cpu::MaxPoolDims& d, const T* x, T* y, cudaStream_t stream);
template <class T>
void max_pool2d_backward(const cpu::MaxPoolDims& d, const T* x, const T* dy, T* dx, cudaStream_t stream);
template <class T>
void channel_standardize_forward(int64_t m, int cin, const float* shift, const float* scale, const T* x, T* y,
                                 cudaStream_t stream);
template <class T>
void channel_standardize_backward(int64_t m, int cin, const float* scale, const T* dy, T* dx, cudaStream_t stream);
template <class T>
void channel_unit_norm_forward(int64_t m, int c, double eps, const T* x, T* y, T* norm, cudaStream_t stream);
template <class T>
void channel_unit_norm_backward(int64_t m, int c, double eps, const T* x, const T* norm, const T* dy, T* dx,
                                cudaStream_t stream);
int64_t weighted_distance_scratch_doubles(int n, int64_t hw, int c);
template <class T>
void weighted_distance_accumulate(int n, int64_t hw, int c, const T* a, const T* b, const float* w, double* d,
                                  double* scratch, cudaStream_t stream);
template <class T>
void weighted_distance_backward(int n, int64_t hw, int c, const T* a, const T* b, const float* w,
                                const double* ddist, T* da, cudaStream_t stream);

// ---------------------------------------------------------------------------------------
// BatchNorm2d (kernels/cuda/batch_norm.cu), the passes of kernels/cpu/ops.h on device memory:
// x, y, dy, dx (rows, C) in T; sums, statistics, γ, β, dγ, dβ, running statistics (C) fp32.
// The reductions need a scratch of batch_norm_scratch_doubles(d) doubles (no contents needed,
// not overlapping anything else); they are deterministic (fixed order, no atomics).
// Requirements: fewer than 65536·256 rows.
int64_t batch_norm_scratch_doubles(const BatchNormDims& d);
template <class T>
void batch_norm_channel_sums(const BatchNormDims& d, const T* x, float* sum, double* scratch, cudaStream_t stream);
template <class T>
void batch_norm_centered_squares(const BatchNormDims& d, double count, const T* x, const float* sum, float* sq,
                                 double* scratch, cudaStream_t stream);
template <class T>
void batch_norm_normalize(const BatchNormDims& d, double count, const T* x, const float* sum, const float* sq,
                          const float* gamma, const float* beta, T* y, float* mean, float* rstd, cudaStream_t stream);
void batch_norm_update_running(int c, double count, double momentum, const float* sum, const float* sq,
                               float* running_mean, float* running_var, cudaStream_t stream);
// running_mean = 0, running_var = 1.
void batch_norm_reset_running(int c, float* running_mean, float* running_var, cudaStream_t stream);
template <class T>
void batch_norm_eval_forward(const BatchNormDims& d, const T* x, const float* running_mean, const float* running_var,
                             const float* gamma, const float* beta, T* y, cudaStream_t stream);
template <class T>
void batch_norm_backward_reduce(const BatchNormDims& d, const T* x, const float* mean, const float* rstd, const T* dy,
                                float* dsum, float* dsum_xhat, float* dgamma, float* dbeta, double* scratch,
                                cudaStream_t stream);
template <class T>
void batch_norm_backward_data(const BatchNormDims& d, double count, const T* x, const float* mean, const float* rstd,
                              const float* gamma, const T* dy, const float* dsum, const float* dsum_xhat, T* dx,
                              cudaStream_t stream);

// ---------------------------------------------------------------------------------------
// Nearest-neighbour ×2 upsampling. x (N, H, W, C) → y (N, 2H, 2W, C).
template <class T>
void upsample_nearest2x_forward(int n, int h, int w, int c, const T* x, T* y,
                                cudaStream_t stream);
// dx (N, H, W, C) = (dy_tl + dy_tr) + (dy_bl + dy_br), summed in fp32, rounded once.
template <class T>
void upsample_nearest2x_backward(int n, int h, int w, int c, const T* dy, T* dx,
                                 cudaStream_t stream);

// ---------------------------------------------------------------------------------------
// Deterministic sums (losses, gradient norm). Each needs a device scratch of
// reduction_scratch_doubles(n) doubles. The `_async` forms write the sum to `result` (one
// device double, outside the scratch) on the stream; the plain forms return it to the host
// (they wait for the stream) and keep it in the scratch's last element.
int64_t reduction_scratch_doubles(int64_t n);

// Σ |x − target| (per element in double).
template <class T>
void l1_forward_async(int64_t n, const T* x, const T* target, double* result, double* scratch,
                      cudaStream_t stream);
template <class T>
double l1_forward(int64_t n, const T* x, const T* target, double* scratch, cudaStream_t stream);
// dx = scale · sign(x − target) (sign(0) = 0).
template <class T>
void l1_backward(int64_t n, const T* x, const T* target, float scale, T* dx,
                 cudaStream_t stream);
// The PatchGAN adversarial loss (kernels/cuda/adversarial_loss.cu): Σ over n logits of MONAI's
// per-logit term for the target `real` (kernels/common/adversarial_criterion.h), per element
// in double; dlogits = scale · dℓ/dx (written).
template <class T>
void adversarial_loss_forward_async(AdversarialCriterion criterion, bool real, int64_t n, const T* logits,
                                    double* result, double* scratch, cudaStream_t stream);
template <class T>
double adversarial_loss_forward(AdversarialCriterion criterion, bool real, int64_t n, const T* logits,
                                double* scratch, cudaStream_t stream);
template <class T>
void adversarial_loss_backward(AdversarialCriterion criterion, bool real, int64_t n, const T* logits, float scale,
                               T* dlogits, cudaStream_t stream);
// Σ (x − target)² (per element in double).
template <class T>
void mse_forward_async(int64_t n, const T* x, const T* target, double* result, double* scratch,
                       cudaStream_t stream);
template <class T>
double mse_forward(int64_t n, const T* x, const T* target, double* scratch, cudaStream_t stream);
// dx = scale · 2 (x − target).
template <class T>
void mse_backward(int64_t n, const T* x, const T* target, float scale, T* dx,
                  cudaStream_t stream);

// Latent sampling: z = mu + eps · exp(½ · clamp(logvar, kLogvarMin, kLogvarMax)).
template <class T>
void reparameterize_forward(int64_t n, const T* mu, const T* logvar, const T* eps, T* z,
                            cudaStream_t stream);
// dmu = dz; dlogvar = dz · eps · ½ · exp(½ lv) inside the clamp [−30, 20], 0 outside.
template <class T>
void reparameterize_backward(int64_t n, const T* logvar, const T* eps, const T* dz, T* dmu,
                             T* dlogvar, cudaStream_t stream);
// Σ ½ (mu² + exp(lv) − lv − 1) with lv = clamp(logvar) (per element in double).
template <class T>
void kl_forward_async(int64_t n, const T* mu, const T* logvar, double* result, double* scratch,
                      cudaStream_t stream);
template <class T>
double kl_forward(int64_t n, const T* mu, const T* logvar, double* scratch, cudaStream_t stream);
// dmu += scale · mu; dlogvar += scale · ½ (exp(lv) − 1) inside the clamp (nothing outside).
template <class T>
void kl_backward_accumulate(int64_t n, const T* mu, const T* logvar, float scale, T* dmu,
                            T* dlogvar, cudaStream_t stream);

// ---------------------------------------------------------------------------------------
// Optimizer: fused AdamW over a contiguous fp32 shard (PyTorch AdamW semantics, the same
// float arithmetic as ladder::AdamW::step in src/train/adamw.cpp):
//   m = β1·m + (1 − β1)·g;  v = β2·v + (1 − β2)·g²;
//   p = p·decay − step_size · m / (√v · inv_sqrt_correction2 + eps)
// with decay = decay_factor where decay_mask[i] != 0, else 1.
struct AdamWScalars {
  float beta1 = 0.9f, beta2 = 0.999f;
  float one_minus_beta1 = 0.1f, one_minus_beta2 = 0.001f;  // computed in float, as the CPU
  float eps = 1e-8f;
  float step_size = 0;             // lr / (1 − β1^t)
  float inv_sqrt_correction2 = 1;  // 1 / √(1 − β2^t)
  float decay_factor = 1;          // 1 − lr · weight_decay
};
// The scalars of step number `step` (1-based, after the increment), computed on the host in
// double and rounded to float exactly as the CPU optimizer does.
AdamWScalars adamw_scalars(double beta1, double beta2, double eps, double weight_decay,
                           double lr, int64_t step);
// Updates n elements: params (fp32 master), exp_avg (m), exp_avg_sq (v) in place from grads.
// decay_mask: one byte per element (non-zero: weight decay applies), or null for no decay
// anywhere; the caller builds it once from the parameter table (padding: 0).
// params_bf16: if not null, receives bf16(updated params) element for element (the
// replicated working copy: pass working_copy + shard_offset).
void adamw_step(int64_t n, const AdamWScalars& scalars, float* params, const float* grads,
                float* exp_avg, float* exp_avg_sq, const uint8_t* decay_mask,
                bf16_t* params_bf16, cudaStream_t stream);

// Σ values² (per element in double): gradient clipping.
void squared_norm_async(int64_t n, const float* values, double* result, double* scratch,
                        cudaStream_t stream);
double squared_norm(int64_t n, const float* values, double* scratch, cudaStream_t stream);

// ---------------------------------------------------------------------------------------
// The feature networks' forward-only ops (kernels/cuda/feature_ops.cu; contracts in
// kernels/cpu/feature_ops.h), fp32 only.
void channel_affine(int64_t m, int c, const float* x, const float* scale, const float* shift, bool relu, float* y,
                    cudaStream_t stream);
void pool3x3_same(cpu::SamePool kind, int n, int h, int w, int c, const float* x, float* y, cudaStream_t stream);
void global_average_pool(int n, int64_t pixels, int c, const float* x, float* y, cudaStream_t stream);
void copy_channels(int64_t m, int c_src, const float* src, int c_dst, int offset, float* dst, cudaStream_t stream);
void resize_bilinear(cpu::BilinearMode mode, int n, int h, int w, int c, const float* x, int out_h, int out_w,
                     float* y, cudaStream_t stream);

}  // namespace ladder::cuda

#endif  // LADDER_WITH_CUDA
