// Why this file exists: the CPU backend of the model layers (model/layer.h): fp32 host
// tensors and the reference ops of kernels/cpu. Parameters are read from and their gradients
// accumulated into the ParamStore's flat buffers, through the layers' ParamViews.
//
// A backend B gives the layers:
//   B::Value, B::Tensor        activation element type and tensor (NHWC);
//   B::FloatTensor             fp32 side tensors (GroupNorm statistics, attention probabilities);
//   resize(t, shape)           give t that shape (reallocating only when the size changes);
//   the ops below, with the contract of kernels/cpu/ops.h: forward writes, backward writes
//   activation gradients and ACCUMULATES parameter gradients into the fp32 gradient buffer.
// The CUDA backend (model/cuda_backend.h) has the same members on device memory.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/params.h"
#include "core/tensor.h"
#include "kernels/cpu/feature_ops.h"
#include "kernels/cpu/onednn_conv.h"
#include "kernels/cpu/ops.h"

namespace ladder {

class CpuBackend {
 public:
  using Value = float;
  using Tensor = TensorF;
  using FloatTensor = TensorF;

  static const char* name() { return "cpu"; }

  void resize(TensorF& t, Shape shape) { t.reshape_or_allocate(shape); }

  // ---- Convolution: x (N, H, W, Cin), weight (Cout, K, K, Cin), bias (Cout).
  // Through oneDNN (kernels/cpu/onednn_conv.h); kernels/cpu/conv2d.cpp is the reference the
  // tests compare it with.
  void conv2d_forward(const cpu::Conv2dDims& d, const float* x, const ParamView& weight,
                      const ParamView& bias, float* y) {
    convolutions_.forward(d, x, weight.value(), bias.valid() ? bias.value() : nullptr, y);
  }
  void conv2d_backward_data(const cpu::Conv2dDims& d, const float* dy, const ParamView& weight,
                            float* dx) {
    convolutions_.backward_data(d, dy, weight.value(), dx);
  }
  void conv2d_backward_filter(const cpu::Conv2dDims& d, const float* x, const float* dy,
                              const ParamView& weight, const ParamView& bias) {
    convolutions_.backward_filter(d, x, dy, weight.grad(), bias.valid() ? bias.grad() : nullptr);
  }

  // ---- GroupNorm, optionally followed by SiLU: y = silu(x̂·γ + β). mean, rstd (N, G).
  // One fused pass (kernels/cpu/group_norm_silu.cpp; group_norm_* + silu_* are its
  // reference); the backward rebuilds the pre-SiLU values from x and the saved mean and rstd,
  // so the layer keeps no extra tensor for the SiLU.
  void group_norm_forward(const cpu::GroupNormDims& d, bool silu, const float* x,
                          const ParamView& gamma, const ParamView& beta, float* y, float* mean,
                          float* rstd) {
    cpu::group_norm_silu_forward(d, silu, x, gamma.value(), beta.value(), y, mean, rstd);
  }
  void group_norm_backward(const cpu::GroupNormDims& d, bool silu, const float* x,
                           const ParamView& gamma, const ParamView& beta, const float* mean,
                           const float* rstd, const float* dy, float* dx) {
    cpu::group_norm_silu_backward(d, silu, x, gamma.value(), beta.value(), mean, rstd, dy, dx, gamma.grad(),
                                  beta.grad());
  }

  // ---- InstanceNorm2d without affine parameters (MONAI's "INSTANCE" norm): GroupNorm with one
  // channel per group (d.groups = d.c), γ = 1, β = 0. mean, rstd (N, C).
  void instance_norm_forward(const cpu::GroupNormDims& d, const float* x, float* y, float* mean, float* rstd) {
    unit_affine(d.c);
    cpu::group_norm_silu_forward(d, false, x, ones_.data(), zeros_.data(), y, mean, rstd);
  }
  void instance_norm_backward(const cpu::GroupNormDims& d, const float* x, const float* mean, const float* rstd,
                              const float* dy, float* dx) {
    unit_affine(d.c);
    cpu::group_norm_silu_backward(d, false, x, ones_.data(), zeros_.data(), mean, rstd, dy, dx, discarded_.data(),
                                  discarded_.data() + d.c);
  }

  // ---- LeakyReLU and BatchNorm2d (the PatchDiscriminator; contracts in kernels/cpu/ops.h).
  // x, y (rows, C) activations; sums, statistics and running buffers (C) fp32 side tensors.
  void leaky_relu_forward(int64_t n, double slope, const float* x, float* y) {
    cpu::leaky_relu_forward(n, static_cast<float>(slope), x, y);
  }
  void leaky_relu_backward(int64_t n, double slope, const float* x, const float* dy, float* dx) {
    cpu::leaky_relu_backward(n, static_cast<float>(slope), x, dy, dx);
  }
  // ---- LPIPS (model/lpips.h): max pooling and the per-pixel head. shift, scale (3) host
  // constants; norm (m) side values; the distances d, ddist (N) host doubles.
  void max_pool2d_forward(const cpu::MaxPoolDims& d, const float* x, float* y) { cpu::max_pool2d_forward(d, x, y); }

  // ---- Forward-only ops of the feature networks (InceptionV3; kernels/cpu/feature_ops.h).
  void channel_affine(int64_t m, int c, const float* x, const float* scale, const float* shift, bool relu,
                      float* y) {
    cpu::channel_affine(m, c, x, scale, shift, relu, y);
  }
  void pool3x3_same(cpu::SamePool kind, int n, int h, int w, int c, const float* x, float* y) {
    cpu::pool3x3_same(kind, n, h, w, c, x, y);
  }
  void global_average_pool(int n, int64_t pixels, int c, const float* x, float* y) {
    cpu::global_average_pool(n, pixels, c, x, y);
  }
  void copy_channels(int64_t m, int c_src, const float* src, int c_dst, int offset, float* dst) {
    cpu::copy_channels(m, c_src, src, c_dst, offset, dst);
  }
  void resize_bilinear(cpu::BilinearMode mode, int n, int h, int w, int c, const float* x, int out_h, int out_w,
                       float* y) {
    cpu::resize_bilinear(mode, n, h, w, c, x, out_h, out_w, y);
  }
  void max_pool2d_backward(const cpu::MaxPoolDims& d, const float* x, const float* dy, float* dx) {
    cpu::max_pool2d_backward(d, x, dy, dx);
  }
  void channel_standardize_forward(int64_t m, int cin, const float* shift, const float* scale, const float* x,
                                   float* y) {
    cpu::channel_standardize_forward(m, cin, shift, scale, x, y);
  }
  void channel_standardize_backward(int64_t m, int cin, const float* scale, const float* dy, float* dx) {
    cpu::channel_standardize_backward(m, cin, scale, dy, dx);
  }
  void channel_unit_norm_forward(int64_t m, int c, double eps, const float* x, float* y, float* norm) {
    cpu::channel_unit_norm_forward(m, c, eps, x, y, norm);
  }
  void channel_unit_norm_backward(int64_t m, int c, double eps, const float* x, const float* norm, const float* dy,
                                  float* dx) {
    cpu::channel_unit_norm_backward(m, c, eps, x, norm, dy, dx);
  }
  void weighted_distance_accumulate(int n, int64_t hw, int c, const float* a, const float* b, const ParamView& w,
                                    double* d) {
    cpu::weighted_distance_accumulate(n, hw, c, a, b, w.value(), d);
  }
  void weighted_distance_backward(int n, int64_t hw, int c, const float* a, const float* b, const ParamView& w,
                                  const double* ddist, float* da) {
    cpu::weighted_distance_backward(n, hw, c, a, b, w.value(), ddist, da);
  }
  void batch_norm_channel_sums(const cpu::BatchNormDims& d, const float* x, float* sum) {
    cpu::batch_norm_channel_sums(d, x, sum);
  }
  void batch_norm_centered_squares(const cpu::BatchNormDims& d, double count, const float* x,
                                   const float* sum, float* sq) {
    cpu::batch_norm_centered_squares(d, count, x, sum, sq);
  }
  void batch_norm_normalize(const cpu::BatchNormDims& d, double count, const float* x, const float* sum,
                            const float* sq, const ParamView& gamma, const ParamView& beta, float* y,
                            float* mean, float* rstd) {
    cpu::batch_norm_normalize(d, count, x, sum, sq, gamma.value(), beta.value(), y, mean, rstd);
  }
  void batch_norm_update_running(int c, double count, double momentum, const float* sum,
                                 const float* sq, float* running_mean, float* running_var) {
    cpu::batch_norm_update_running(c, count, momentum, sum, sq, running_mean, running_var);
  }
  void batch_norm_reset_running(int c, float* running_mean, float* running_var) {
    std::fill(running_mean, running_mean + c, 0.0f);
    std::fill(running_var, running_var + c, 1.0f);
  }
  void batch_norm_eval_forward(const cpu::BatchNormDims& d, const float* x, const float* running_mean,
                               const float* running_var, const ParamView& gamma, const ParamView& beta,
                               float* y) {
    cpu::batch_norm_eval_forward(d, x, running_mean, running_var, gamma.value(), beta.value(), y);
  }
  void batch_norm_backward_reduce(const cpu::BatchNormDims& d, const float* x, const float* mean,
                                  const float* rstd, const float* dy, float* dsum, float* dsum_xhat,
                                  const ParamView& gamma, const ParamView& beta) {
    cpu::batch_norm_backward_reduce(d, x, mean, rstd, dy, dsum, dsum_xhat, gamma.valid() ? gamma.grad() : nullptr,
                                    beta.valid() ? beta.grad() : nullptr);
  }
  void batch_norm_backward_data(const cpu::BatchNormDims& d, double count, const float* x, const float* mean,
                                const float* rstd, const ParamView& gamma, const float* dy, const float* dsum,
                                const float* dsum_xhat, float* dx) {
    cpu::batch_norm_backward_data(d, count, x, mean, rstd, gamma.value(), dy, dsum, dsum_xhat, dx);
  }

  // ---- Elementwise.
  void add_forward(int64_t n, const float* a, const float* b, float* y) {
    cpu::add_forward(n, a, b, y);
  }
  void add_accumulate(int64_t n, const float* x, float* y) { cpu::add_accumulate(n, x, y); }
  void silu_forward(int64_t n, const float* x, float* y) { cpu::silu_forward(n, x, y); }
  void silu_backward(int64_t n, const float* x, const float* dy, float* dx) {
    cpu::silu_backward(n, x, dy, dx);
  }
  void concat_channels(int64_t m, int ca, int cb, const float* a, const float* b, float* y) {
    cpu::concat_channels(m, ca, cb, a, b, y);
  }
  void split_channels(int64_t m, int ca, int cb, const float* dy, float* da, float* db) {
    cpu::split_channels(m, ca, cb, dy, da, db);
  }
  void add_per_channel(int n, int64_t hw, int c, const float* x, const float* v, float* y) {
    cpu::add_per_channel(n, hw, c, x, v, y);
  }
  void sum_per_channel(int n, int64_t hw, int c, const float* dy, float* dv) {
    cpu::sum_per_channel(n, hw, c, dy, dv);
  }
  void upsample_forward(int n, int h, int w, int c, const float* x, float* y) {
    cpu::upsample_nearest2x_forward(n, h, w, c, x, y);
  }
  void upsample_backward(int n, int h, int w, int c, const float* dy, float* dx) {
    cpu::upsample_nearest2x_backward(n, h, w, c, dy, dx);
  }

  // ---- Linear over rows and attention. x (M, Cin), weight (Cout, Cin), bias (Cout).
  void linear_forward(int64_t m, int cin, int cout, const float* x, const ParamView& weight,
                      const ParamView& bias, float* y) {
    cpu::linear_forward(m, cin, cout, x, weight.value(), bias.value(), y);
  }
  void linear_backward(int64_t m, int cin, int cout, const float* x, const ParamView& weight,
                       const ParamView& bias, const float* dy, float* dx) {
    cpu::linear_backward(m, cin, cout, x, weight.value(), dy, dx, weight.grad(), bias.grad());
  }
  // probs (N, heads, L, L) is resized here and kept for the backward.
  void attention_forward(const cpu::AttentionDims& d, const float* q, const float* k,
                         const float* v, FloatTensor& probs, float* o) {
    resize(probs, {d.n, d.heads, d.tokens, d.tokens});
    cpu::attention_forward(d, q, k, v, probs.data(), o);
  }
  void attention_backward(const cpu::AttentionDims& d, const float* q, const float* k,
                          const float* v, const FloatTensor& probs, const float* dout, float* dq,
                          float* dk, float* dv) {
    cpu::attention_backward(d, q, k, v, probs.data(), dout, dq, dk, dv);
  }

  // ---- Latent sampling and losses (sums; the caller normalises).
  void reparameterize_forward(int64_t n, const float* mu, const float* logvar, const float* eps,
                              float* z) {
    cpu::reparameterize_forward(n, mu, logvar, eps, z);
  }
  void reparameterize_backward(int64_t n, const float* logvar, const float* eps, const float* dz,
                               float* dmu, float* dlogvar) {
    cpu::reparameterize_backward(n, logvar, eps, dz, dmu, dlogvar);
  }
  double l1_forward(int64_t n, const float* x, const float* target) {
    return cpu::l1_forward(n, x, target);
  }
  void l1_backward(int64_t n, const float* x, const float* target, double scale, float* dx) {
    cpu::l1_backward(n, x, target, static_cast<float>(scale), dx);
  }
  double adversarial_loss_forward(AdversarialCriterion criterion, bool real, int64_t n, const float* logits) {
    return cpu::adversarial_loss_forward(criterion, real, n, logits);
  }
  void adversarial_loss_backward(AdversarialCriterion criterion, bool real, int64_t n, const float* logits,
                                 double scale, float* dlogits) {
    cpu::adversarial_loss_backward(criterion, real, n, logits, static_cast<float>(scale), dlogits);
  }
  double mse_forward(int64_t n, const float* x, const float* target) {
    return cpu::mse_forward(n, x, target);
  }
  void mse_backward(int64_t n, const float* x, const float* target, double scale, float* dx) {
    cpu::mse_backward(n, x, target, static_cast<float>(scale), dx);
  }
  double kl_forward(int64_t n, const float* mu, const float* logvar) {
    return cpu::kl_forward(n, mu, logvar);
  }
  void kl_backward_accumulate(int64_t n, const float* mu, const float* logvar, double scale,
                              float* dmu, float* dlogvar) {
    cpu::kl_backward_accumulate(n, mu, logvar, static_cast<float>(scale), dmu, dlogvar);
  }

  // ---- Host boundary: batches in, samples out.
  void load_values(const float* host, Shape shape, Tensor& out) {
    resize(out, shape);
    std::copy(host, host + shape.numel(), out.data());
  }
  void to_host(const Tensor& t, TensorF& host) {
    host.reshape_or_allocate(t.shape());
    std::copy(t.data(), t.data() + t.numel(), host.data());
  }
  // fp32 side tensors (BatchNorm's running statistics) to and from t.numel() host floats.
  void floats_to_host(const FloatTensor& t, float* host) { std::copy_n(t.data(), t.numel(), host); }
  void floats_from_host(const float* host, FloatTensor& t) { std::copy_n(host, t.numel(), t.data()); }

 private:
  void unit_affine(int c) {  // γ = 1, β = 0 and a sink for their gradients, c channels
    if (static_cast<int>(ones_.size()) >= c) return;
    ones_.assign(static_cast<size_t>(c), 1.0f);
    zeros_.assign(static_cast<size_t>(c), 0.0f);
    discarded_.assign(2 * static_cast<size_t>(c), 0.0f);
  }

  cpu::OneDnnConvolutions convolutions_;
  std::vector<float> ones_, zeros_, discarded_;  // instance norm's fixed affine
};

}  // namespace ladder
