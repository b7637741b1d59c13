// Why this file exists: `ladder plan` counts the memory a training step needs by running the
// model's own forward and backward code on a backend that allocates nothing and computes
// nothing: PlanTensor holds a shape and charges its bytes to the backend's counter with the
// same rules as the real tensors (reallocation only when the element count changes, the new
// buffer made before the old is freed), and every op charges the scratch the CPU backend's op
// allocates (attention's dS per call; the growth of the convolutions' workspaces). The peak of
// the counter over a micro-step is then the CPU run's activation peak (test_plan: equal, or
// 1.6% above for the autoencoder without recompute); for a GPU it is the same tensors at the
// activation width (`value_bytes`), an estimate. Data pointers are a stand-in address nothing dereferences.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "core/context.h"
#include "core/params.h"
#include "core/tensor.h"
#include "kernels/cpu/feature_ops.h"
#include "kernels/cpu/onednn_conv.h"
#include "kernels/cpu/ops.h"

namespace ladder {

class PlanTensor {
 public:
  PlanTensor() = default;
  PlanTensor(const PlanTensor& other) { *this = other; }
  PlanTensor& operator=(const PlanTensor& other) {
    if (this == &other) return *this;
    resize(other.counter_, other.value_bytes_, other.shape_);
    return *this;
  }
  ~PlanTensor() { release(); }

  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_.numel(); }
  bool empty() const { return numel() == 0 || elements_ == 0; }
  float* data() const { return stand_in(); }
  void release() {
    if (counter_ != nullptr) counter_->sub(elements_ * value_bytes_);
    elements_ = 0;
    shape_ = Shape{0, 0, 0, 0};
  }
  // As Tensor::reshape_or_allocate, charging `counter` (value_bytes per element).
  void resize(MemoryCounter* counter, int value_bytes, Shape shape) {
    if (shape.numel() != elements_ || counter != counter_) {
      if (counter != nullptr && shape.numel() > 0) counter->add(shape.numel() * value_bytes);  // new first
      if (counter_ != nullptr) counter_->sub(elements_ * value_bytes_);
      elements_ = shape.numel();
      counter_ = counter;
      value_bytes_ = value_bytes;
    }
    shape_ = shape;
  }

 private:
  static float* stand_in() {
    static float nothing[16];
    return nothing;
  }
  Shape shape_{0, 0, 0, 0};
  int64_t elements_ = 0;
  MemoryCounter* counter_ = nullptr;
  int value_bytes_ = 4;
};

class PlanBackend {
 public:
  using Tensor = PlanTensor;
  using FloatTensor = PlanTensor;
  using Value = float;

  // value_bytes: 4 (the CPU's fp32) or 2 (a GPU's bf16/fp16 activations; side tensors stay
  // fp32). cpu_scratch: charge the CPU ops' own scratch (exact for a CPU run).
  PlanBackend(int value_bytes, bool cpu_scratch) : value_bytes_(value_bytes), cpu_scratch_(cpu_scratch) {}

  MemoryCounter& counter() { return counter_; }
  // Whether this plan is for a GPU (activations at 2 bytes, no CPU scratch) or the CPU.
  bool plans_gpu() const { return !cpu_scratch_; }
  int value_bytes() const { return value_bytes_; }
  // FLOPs of the forward ops run so far (convolutions, linears, attention; 2 per multiply-add).
  double forward_flops() const { return forward_flops_; }

  void resize(Tensor& t, Shape shape) { t.resize(&counter_, value_bytes_, shape); }
  void resize_float(Tensor& t, Shape shape) { t.resize(&counter_, 4, shape); }

  void conv2d_forward(const cpu::Conv2dDims& d, const float*, const ParamView&, const ParamView& bias, float*) {
    forward_flops_ += 2.0 * static_cast<double>(d.macs());
    grow_workspaces(d, cpu::OneDnnConvolutions::Pass::kForward, bias.valid());
  }
  void conv2d_backward_data(const cpu::Conv2dDims& d, const float*, const ParamView&, float*) {
    grow_workspaces(d, cpu::OneDnnConvolutions::Pass::kBackwardData, true);
  }
  void conv2d_backward_filter(const cpu::Conv2dDims& d, const float*, const float*, const ParamView&,
                              const ParamView&) {
    grow_workspaces(d, cpu::OneDnnConvolutions::Pass::kBackwardFilter, true);  // oneDNN's always has one
  }
  void group_norm_forward(const cpu::GroupNormDims&, bool, const float*, const ParamView&, const ParamView&, float*,
                          float*, float*) {}
  void group_norm_backward(const cpu::GroupNormDims&, bool, const float*, const ParamView&, const ParamView&,
                           const float*, const float*, const float*, float*) {}
  void leaky_relu_forward(int64_t, double, const float*, float*) {}
  void leaky_relu_backward(int64_t, double, const float*, const float*, float*) {}
  // LPIPS's own ops keep nothing: its tensors are the layer's (model/lpips.h).
  void max_pool2d_forward(const cpu::MaxPoolDims&, const float*, float*) {}
  void max_pool2d_backward(const cpu::MaxPoolDims&, const float*, const float*, float*) {}
  void channel_standardize_forward(int64_t, int, const float*, const float*, const float*, float*) {}
  void channel_standardize_backward(int64_t, int, const float*, const float*, float*) {}
  void channel_unit_norm_forward(int64_t, int, double, const float*, float*, float*) {}
  void channel_unit_norm_backward(int64_t, int, double, const float*, const float*, const float*, float*) {}
  void weighted_distance_accumulate(int, int64_t, int, const float*, const float*, const ParamView&, double*) {}
  void weighted_distance_backward(int, int64_t, int, const float*, const float*, const ParamView&, const double*,
                                  float*) {}
  // The BatchNorm passes keep nothing: their per-block partial sums are small uncounted
  // vectors (as GroupNorm's), so a plan charges only the layer's tensors.
  void batch_norm_channel_sums(const cpu::BatchNormDims&, const float*, float*) {}
  void batch_norm_centered_squares(const cpu::BatchNormDims&, double, const float*, const float*, float*) {}
  void batch_norm_normalize(const cpu::BatchNormDims&, double, const float*, const float*, const float*,
                            const ParamView&, const ParamView&, float*, float*, float*) {}
  void batch_norm_update_running(int, double, double, const float*, const float*, float*, float*) {}
  void batch_norm_reset_running(int, float*, float*) {}
  void batch_norm_eval_forward(const cpu::BatchNormDims&, const float*, const float*, const float*, const ParamView&,
                               const ParamView&, float*) {}
  void batch_norm_backward_reduce(const cpu::BatchNormDims&, const float*, const float*, const float*, const float*,
                                  float*, float*, const ParamView&, const ParamView&) {}
  void batch_norm_backward_data(const cpu::BatchNormDims&, double, const float*, const float*, const float*,
                                const ParamView&, const float*, const float*, const float*, float*) {}
  void add_forward(int64_t, const float*, const float*, float*) {}
  void add_accumulate(int64_t, const float*, float*) {}
  void silu_forward(int64_t, const float*, float*) {}
  void silu_backward(int64_t, const float*, const float*, float*) {}
  void concat_channels(int64_t, int, int, const float*, const float*, float*) {}
  void split_channels(int64_t, int, int, const float*, float*, float*) {}
  void add_per_channel(int, int64_t, int, const float*, const float*, float*) {}
  void sum_per_channel(int, int64_t, int, const float*, float*) {}
  void upsample_forward(int, int, int, int, const float*, float*) {}
  void upsample_backward(int, int, int, int, const float*, float*) {}
  void linear_forward(int64_t m, int cin, int cout, const float*, const ParamView&, const ParamView&, float*) {
    forward_flops_ += 2.0 * static_cast<double>(m) * cin * cout;
  }
  void linear_backward(int64_t, int, int, const float*, const ParamView&, const ParamView&, const float*, float*) {}
  void attention_forward(const cpu::AttentionDims& d, const float*, const float*, const float*, FloatTensor& probs,
                         float*) {
    resize_float(probs, {d.n, d.heads, d.tokens, d.tokens});
    forward_flops_ += 4.0 * d.n * static_cast<double>(d.tokens) * d.tokens * d.channels;  // QKᵀ and PV
  }
  void attention_backward(const cpu::AttentionDims& d, const float*, const float*, const float*, const FloatTensor&,
                          const float*, float*, float*, float*) {
    if (cpu_scratch_) transient(int64_t(d.tokens) * d.tokens * 4);  // dS (L, L)
  }
  void reparameterize_forward(int64_t, const float*, const float*, const float*, float*) {}
  void reparameterize_backward(int64_t, const float*, const float*, const float*, float*, float*) {}
  double l1_forward(int64_t, const float*, const float*) { return 0; }
  double adversarial_loss_forward(AdversarialCriterion, bool, int64_t, const float*) { return 0; }
  void instance_norm_forward(const cpu::GroupNormDims&, const float*, float*, float*, float*) {}
  void instance_norm_backward(const cpu::GroupNormDims&, const float*, const float*, const float*, const float*,
                              float*) {}
  void adversarial_loss_backward(AdversarialCriterion, bool, int64_t, const float*, double, float*) {}
  void l1_backward(int64_t, const float*, const float*, double, float*) {}
  double mse_forward(int64_t, const float*, const float*) { return 0; }
  void mse_backward(int64_t, const float*, const float*, double, float*) {}
  double kl_forward(int64_t, const float*, const float*) { return 0; }
  void kl_backward_accumulate(int64_t, const float*, const float*, double, float*, float*) {}
  void channel_affine(int64_t, int, const float*, const float*, const float*, bool, float*) {}
  void pool3x3_same(cpu::SamePool, int, int, int, int, const float*, float*) {}
  void global_average_pool(int, int64_t, int, const float*, float*) {}
  void copy_channels(int64_t, int, const float*, int, int, float*) {}
  void resize_bilinear(cpu::BilinearMode, int, int, int, int, const float*, int, int, float*) {}
  void load_values(const float*, Shape shape, Tensor& out) { resize(out, shape); }
  void to_host(const Tensor&, TensorF&) {}
  void floats_to_host(const FloatTensor& t, float* host) { std::fill_n(host, t.numel(), 0.0f); }
  void floats_from_host(const float*, FloatTensor&) {}

 private:
  // A buffer allocated and freed within the call.
  void transient(int64_t bytes) {
    counter_.add(bytes);
    counter_.sub(bytes);
  }
  // The CPU convolutions' grow-only workspaces, grown as OneDnnConvolutions grows them (the
  // new buffer made before the old is freed). A
  // plan starts them empty at its rung; a run keeps them from the rungs before (smaller
  // images: their scratch is not larger). `bias`: whether the pass's primitive has a bias (only
  // the forward of a bias-free convolution has none).
  void grow_workspaces(const cpu::Conv2dDims& d, cpu::OneDnnConvolutions::Pass pass, bool bias) {
    if (!cpu_scratch_) return;
    const cpu::OneDnnConvolutions::WorkspaceBytes bytes = convolutions_.workspace_bytes(d, bias, pass);
    grow(held_floats_[0], bytes.weights);
    grow(held_floats_[1], bytes.scratch);
    grow(held_floats_[2], bytes.bias);
    grow(held_floats_[3], bytes.source);
    grow(held_floats_[4], bytes.result);
  }
  void grow(int64_t& held, size_t bytes) {
    const int64_t floats = cpu::OneDnnConvolutions::workspace_floats(bytes);
    if (floats <= held) return;
    counter_.add(floats * 4);
    counter_.sub(held * 4);
    held = floats;
  }

  int value_bytes_;
  bool cpu_scratch_;
  MemoryCounter counter_;
  double forward_flops_ = 0;
  cpu::OneDnnConvolutions convolutions_;  // asked for its workspace bytes only
  int64_t held_floats_[5] = {0, 0, 0, 0, 0};  // weights, scratch, bias, source, result
};

}  // namespace ladder
