// Why this file exists: the CPU reference backend. Every op of the engine, forward and
// backward, on raw NHWC host pointers, templated on float (training) and double (the
// finite-difference gradient tests). The CUDA backend implements the same list and is tested
// against these functions.
//
// Conventions (BRIEF §3):
//   - forward writes its outputs (=);
//   - backward writes activation gradients (=) and accumulates parameter gradients (+=);
//   - functions whose name ends in `_accumulate` add into their output instead.
// All ops are deterministic: the same inputs and thread count give the same bits (our own
// loops never split a reduction across threads; GEMM blocking may depend on the thread count).
#pragma once

#include <cstdint>

#include "kernels/common/adversarial_criterion.h"

namespace ladder::cpu {

// ---------------------------------------------------------------------------------------
// Convolution. x (N, H, W, Cin), w (Cout, KH, KW, Cin), b (Cout), y (N, Ho, Wo, Cout).
// Padding is given per side, so the Downsample's right/bottom-only padding is one case;
// kernels may be rectangular (InceptionV3's 1×7 and 7×1).
struct Conv2dDims {
  int n = 1, h = 1, w = 1, cin = 1, cout = 1;
  int kernel_h = 3, kernel_w = 3, stride = 1;
  int pad_top = 1, pad_left = 1, pad_bottom = 1, pad_right = 1;

  // A square kernel × kernel.
  static Conv2dDims make(int n, int h, int w, int cin, int cout, int kernel, int stride, int top,
                         int left, int bottom, int right) {
    return make_rectangular(n, h, w, cin, cout, kernel, kernel, stride, top, left, bottom, right);
  }
  static Conv2dDims make_rectangular(int n, int h, int w, int cin, int cout, int kernel_h, int kernel_w,
                                     int stride, int top, int left, int bottom, int right) {
    Conv2dDims d;
    d.n = n, d.h = h, d.w = w, d.cin = cin, d.cout = cout, d.kernel_h = kernel_h, d.kernel_w = kernel_w;
    d.stride = stride;
    d.pad_top = top, d.pad_left = left, d.pad_bottom = bottom, d.pad_right = right;
    return d;
  }

  int out_h() const { return (h + pad_top + pad_bottom - kernel_h) / stride + 1; }
  int out_w() const { return (w + pad_left + pad_right - kernel_w) / stride + 1; }
  int64_t x_size() const { return int64_t(n) * h * w * cin; }                  // elements of x
  int64_t y_size() const { return int64_t(n) * out_h() * out_w() * cout; }      // elements of y
  int64_t w_size() const { return int64_t(cout) * kernel_h * kernel_w * cin; }  // elements of w
  // Multiply-accumulates of one forward pass (FLOPs = 2 × this).
  int64_t macs() const {
    return int64_t(n) * out_h() * out_w() * cout * int64_t(kernel_h) * kernel_w * cin;
  }
};

template <class T>
void conv2d_forward(const Conv2dDims& d, const T* x, const T* w, const T* b, T* y);
// dx = conv2d_transpose(dy, w)
template <class T>
void conv2d_backward_data(const Conv2dDims& d, const T* dy, const T* w, T* dx);
// dw += correlation(x, dy); db += sum(dy) (db may be null).
template <class T>
void conv2d_backward_filter(const Conv2dDims& d, const T* x, const T* dy, T* dw, T* db);

// ---------------------------------------------------------------------------------------
// GroupNorm over (H·W, C/G) per image and group. x, y (N, HW, C); gamma, beta (C);
// mean, rstd (N, G) saved for the backward.
struct GroupNormDims {
  int n = 1, hw = 1, c = 1, groups = 1;
  double eps = 1e-6;
};

template <class T>
void group_norm_forward(const GroupNormDims& d, const T* x, const T* gamma, const T* beta,
                        T* y, T* mean, T* rstd);
// dx = ...; dgamma += ...; dbeta += ...
template <class T>
void group_norm_backward(const GroupNormDims& d, const T* x, const T* gamma, const T* mean,
                         const T* rstd, const T* dy, T* dx, T* dgamma, T* dbeta);

// The fast path the CPU backend trains with (kernels/cpu/group_norm_silu.cpp): GroupNorm, then
// SiLU when `silu`, in one pass; the backward takes dy of the output (after the SiLU) and
// needs no saved pre-SiLU tensor. Compared with group_norm_* + silu_* in the tests.
void group_norm_silu_forward(const GroupNormDims& d, bool silu, const float* x, const float* gamma,
                             const float* beta, float* y, float* mean, float* rstd);
void group_norm_silu_backward(const GroupNormDims& d, bool silu, const float* x, const float* gamma,
                              const float* beta, const float* mean, const float* rstd, const float* dy, float* dx,
                              float* dgamma, float* dbeta);

// ---------------------------------------------------------------------------------------
// Elementwise. n = number of elements.
template <class T>
void silu_forward(int64_t n, const T* x, T* y);  // y = x·σ(x)
template <class T>
void silu_backward(int64_t n, const T* x, const T* dy, T* dx);
template <class T>
void add_forward(int64_t n, const T* a, const T* b, T* y);  // y = a + b
template <class T>
void add_accumulate(int64_t n, const T* x, T* y);  // y += x (where two gradient paths meet)
template <class T>
void scale_inplace(int64_t n, T alpha, T* x);  // x *= alpha
template <class T>
void copy(int64_t n, const T* x, T* y);  // y = x, on every thread (checkpoint staging)
template <class T>
void lerp_inplace(int64_t n, const T* x, T t, T* y);  // y += t·(x − y) (EMA of the weights)

// Channel concatenation of NHWC tensors over m = N·H·W pixels: y (m, ca + cb) = [a | b];
// split writes da (m, ca) and db (m, cb).
template <class T>
void concat_channels(int64_t m, int ca, int cb, const T* a, const T* b, T* y);
template <class T>
void split_channels(int64_t m, int ca, int cb, const T* dy, T* da, T* db);
// A per-image channel vector broadcast over the pixels: y (n, hw, c) = x + v (n, c) (y may
// be x); its gradient dv (n, c) = Σ_pixels dy (written).
template <class T>
void add_per_channel(int n, int64_t hw, int c, const T* x, const T* v, T* y);
template <class T>
void sum_per_channel(int n, int64_t hw, int c, const T* dy, T* dv);

// ---------------------------------------------------------------------------------------
// LeakyReLU (kernels/cpu/leaky_relu.cpp): y = x for x > 0, slope·x otherwise (slope ≥ 0;
// slope 0 is ReLU, LPIPS's feature networks).
template <class T>
void leaky_relu_forward(int64_t n, T slope, const T* x, T* y);
// dx = dy for x > 0, slope·dy otherwise (so 0 at x = 0 for ReLU, as PyTorch).
template <class T>
void leaky_relu_backward(int64_t n, T slope, const T* x, const T* dy, T* dx);

// ---------------------------------------------------------------------------------------
// Max pooling without padding, floor mode (kernels/cpu/max_pool.cpp; LPIPS's AlexNet 3×3
// stride 2, VGG16 2×2 stride 2). x (N, H, W, C) → y (N, Ho, Wo, C), Ho = (H − K)/S + 1.
// Ties go to the first maximum in row-major window order, as PyTorch's.
struct MaxPoolDims {
  int n = 1, h = 1, w = 1, c = 1;
  int kernel = 2, stride = 2;
  int out_h() const { return (h - kernel) / stride + 1; }
  int out_w() const { return (w - kernel) / stride + 1; }
};
template <class T>
void max_pool2d_forward(const MaxPoolDims& d, const T* x, T* y);
// dx (written) = dy routed to each window's argmax (recomputed from x), summed where windows
// overlap.
template <class T>
void max_pool2d_backward(const MaxPoolDims& d, const T* x, const T* dy, T* dx);

// ---------------------------------------------------------------------------------------
// The LPIPS head (kernels/cpu/lpips_head.cpp) over m pixels of c channels, x (m, c).
// The ScalingLayer: x (m, cin), cin 1 or 3 → y (m, 3) = (x − shift)/scale per channel, one
// gray channel broadcast to all three (as PyTorch broadcasts lpips' (1, 3, 1, 1) buffers);
// dx (m, cin) = dy/scale, summed over the three for cin 1.
template <class T>
void channel_standardize_forward(int64_t m, int cin, const T* shift, const T* scale, const T* x, T* y);
template <class T>
void channel_standardize_backward(int64_t m, int cin, const T* scale, const T* dy, T* dx);
// lpips.normalize_tensor: y = x/(‖x‖ + eps) per pixel (‖·‖ over the channels; eps 1e-10 in
// lpips); norm (m) = ‖x‖ saved for the backward.
template <class T>
void channel_unit_norm_forward(int64_t m, int c, double eps, const T* x, T* y, T* norm);
// dx = dy/(r + eps) − x·(x·dy)/(r·(r + eps)²), r = norm (the second term 0 where r = 0).
template <class T>
void channel_unit_norm_backward(int64_t m, int c, double eps, const T* x, const T* norm, const T* dy, T* dx);
// One layer's calibrated distance per image: d[i] += (1/hw)·Σ_pixels Σ_c w_c·(a − b)², with
// a, b (n, hw, c) unit-normalised features and w (c) the NetLinLayer's 1×1 conv (no bias).
template <class T>
void weighted_distance_accumulate(int n, int64_t hw, int c, const T* a, const T* b, const T* w, double* d);
// Its gradient for a only: da = (2·ddist[i]/hw)·w_c·(a − b) (written).
template <class T>
void weighted_distance_backward(int n, int64_t hw, int c, const T* a, const T* b, const T* w,
                                const double* ddist, T* da);

// ---------------------------------------------------------------------------------------
// BatchNorm2d with PyTorch semantics (kernels/cpu/batch_norm.cpp) over x (rows, C), rows =
// N·H·W pixels of an NHWC tensor. Training mode is split into passes so that the per-channel
// sums can be all-reduced between them (synchronised statistics over ranks); `count` is the
// number of rows those sums cover (all ranks). Per-channel vectors are (C).
struct BatchNormDims {
  int64_t rows = 1;
  int c = 1;
  double eps = 1e-5;
};
// sum = Σ_rows x (written).
template <class T>
void batch_norm_channel_sums(const BatchNormDims& d, const T* x, T* sum);
// sq = Σ_rows (x − sum/count)² (written): the centred second pass, no cancellation.
template <class T>
void batch_norm_centered_squares(const BatchNormDims& d, double count, const T* x, const T* sum,
                                 T* sq);
// mean = sum/count, rstd = 1/√(sq/count + eps) (biased variance), saved for the backward;
// y = (x − mean)·rstd·γ + β.
template <class T>
void batch_norm_normalize(const BatchNormDims& d, double count, const T* x, const T* sum,
                          const T* sq, const T* gamma, const T* beta, T* y, T* mean, T* rstd);
// running_mean ← (1 − m)·running_mean + m·sum/count; running_var ← (1 − m)·running_var +
// m·sq/(count − 1) (unbiased, as PyTorch; count 1 leaves running_var's share at sq = 0).
template <class T>
void batch_norm_update_running(int c, double count, double momentum, const T* sum, const T* sq,
                               T* running_mean, T* running_var);
// Eval mode: y = (x − running_mean)/√(running_var + eps)·γ + β.
template <class T>
void batch_norm_eval_forward(const BatchNormDims& d, const T* x, const T* running_mean,
                             const T* running_var, const T* gamma, const T* beta, T* y);
// The backward's reductions over this call's rows: dsum = Σ dy, dsum_xhat = Σ dy·x̂ (written),
// with x̂ = (x − mean)·rstd; the same local values are added into dbeta and dgamma (+=), each
// when not null.
template <class T>
void batch_norm_backward_reduce(const BatchNormDims& d, const T* x, const T* mean, const T* rstd,
                                const T* dy, T* dsum, T* dsum_xhat, T* dgamma, T* dbeta);
// dx = γ·rstd·(dy − dsum/count − x̂·dsum_xhat/count) with the (all-reduced) sums (written).
template <class T>
void batch_norm_backward_data(const BatchNormDims& d, double count, const T* x, const T* mean,
                              const T* rstd, const T* gamma, const T* dy, const T* dsum,
                              const T* dsum_xhat, T* dx);

// ---------------------------------------------------------------------------------------
// Nearest-neighbour ×2 upsampling. x (N, H, W, C) → y (N, 2H, 2W, C).
template <class T>
void upsample_nearest2x_forward(int n, int h, int w, int c, const T* x, T* y);
// dx (N, H, W, C) = sum of the four dy values each x fed.
template <class T>
void upsample_nearest2x_backward(int n, int h, int w, int c, const T* dy, T* dx);

// ---------------------------------------------------------------------------------------
// Linear over rows. x (M, Cin), w (Cout, Cin), b (Cout), y (M, Cout): y = x·wᵀ + b.
template <class T>
void linear_forward(int64_t m, int cin, int cout, const T* x, const T* w, const T* b, T* y);
// dx = dy·w (=); dw += dyᵀ·x; db += Σ dy (db may be null).
template <class T>
void linear_backward(int64_t m, int cin, int cout, const T* x, const T* w, const T* dy, T* dx,
                     T* dw, T* db);

// ---------------------------------------------------------------------------------------
// Multi-head scaled dot-product attention. q, k, v, o (N, L, C) with C = heads × d;
// head h uses channels [h·d, (h+1)·d). o = softmax(q·kᵀ/√d)·v per head.
// probs (N, heads, L, L) is saved by the forward for the backward.
struct AttentionDims {
  int n = 1, tokens = 1, channels = 1, heads = 1;
  int head_dim() const { return channels / heads; }
};

template <class T>
void attention_forward(const AttentionDims& d, const T* q, const T* k, const T* v, T* probs,
                       T* o);
template <class T>
void attention_backward(const AttentionDims& d, const T* q, const T* k, const T* v,
                        const T* probs, const T* dout, T* dq, T* dk, T* dv);

// ---------------------------------------------------------------------------------------
// Losses. They return sums; the caller divides (so that the loss can be normalised by the
// global number of images in an optimizer step).
template <class T>
double l1_forward(int64_t n, const T* x, const T* target);  // Σ |x − target|
// dx = scale · sign(x − target) (sign(0) = 0).
template <class T>
void l1_backward(int64_t n, const T* x, const T* target, T scale, T* dx);
template <class T>
double mse_forward(int64_t n, const T* x, const T* target);  // Σ (x − target)²
// dx = scale · 2 (x − target).
template <class T>
void mse_backward(int64_t n, const T* x, const T* target, T scale, T* dx);

// The PatchGAN adversarial loss (kernels/cpu/adversarial_loss.cpp): Σ over n logits of
// MONAI's per-logit term for the target `real` (kernels/common/adversarial_criterion.h).
template <class T>
double adversarial_loss_forward(AdversarialCriterion criterion, bool real, int64_t n, const T* logits);
// dlogits = scale · dℓ/dx (written).
template <class T>
void adversarial_loss_backward(AdversarialCriterion criterion, bool real, int64_t n, const T* logits, T scale,
                               T* dlogits);

// Latent sampling. mu, logvar, eps, z (n elements). logvar is clamped to [−30, 20]:
//   z = mu + eps · exp(½ · clamp(logvar)).
constexpr double kLogvarMin = -30.0;
constexpr double kLogvarMax = 20.0;
template <class T>
void reparameterize_forward(int64_t n, const T* mu, const T* logvar, const T* eps, T* z);
// dmu = dz; dlogvar = dz · eps · ½ · exp(½ lv) inside the clamp, 0 outside.
template <class T>
void reparameterize_backward(int64_t n, const T* logvar, const T* eps, const T* dz, T* dmu,
                             T* dlogvar);
// Σ ½ (mu² + exp(lv) − lv − 1) with lv = clamp(logvar).
template <class T>
double kl_forward(int64_t n, const T* mu, const T* logvar);
// dmu += scale · mu; dlogvar += scale · ½ (exp(lv) − 1) inside the clamp.
template <class T>
void kl_backward_accumulate(int64_t n, const T* mu, const T* logvar, T scale, T* dmu,
                            T* dlogvar);

}  // namespace ladder::cpu
