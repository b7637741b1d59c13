// Why this file exists: forward and backward of the composite blocks, built from the ops and
// the simple layers. Where two gradient paths meet (the residual skips) they are added.
#include "model/blocks.h"

#include "kernels/cpu/ops.h"

namespace ladder {

// ---- ResBlock ---------------------------------------------------------------------------

ResBlock::ResBlock(ParamStore& store, const std::string& name, int cin, int cout,
                   NormSettings norm)
    : norm1_(store, name + ".norm1", cin, norm.groups, norm.eps, /*silu=*/true),
      conv1_(store, name + ".conv1.conv", cin, cout, 3, 1, Padding::same(3)),
      norm2_(store, name + ".norm2", cout, norm.groups, norm.eps, /*silu=*/true),
      conv2_(store, name + ".conv2.conv", cout, cout, 3, 1, Padding::same(3)) {
  if (cin != cout)
    shortcut_ = std::make_unique<Conv2d>(store, name + ".nin_shortcut.conv", cin, cout, 1, 1,
                                         Padding{0, 0, 0, 0});
}

const TensorF& ResBlock::forward_main(const TensorF& x) {
  return conv2_.forward(norm2_.forward(conv1_.forward(norm1_.forward(x))));
}

const TensorF& ResBlock::forward(const TensorF& x) {
  input_ = &x;
  const TensorF& h = forward_main(x);
  const TensorF& skip = shortcut_ ? shortcut_->forward(x) : x;
  output_.reshape_or_allocate(h.shape());
  cpu::add_forward(h.numel(), h.data(), skip.data(), output_.data());
  if (recompute_) release_inner_activations();
  return output_;
}

const TensorF& ResBlock::backward(const TensorF& dy) {
  if (recompute_) {  // the same ops on the same input: the same bits as the first forward
    forward_main(*input_);
    if (shortcut_) shortcut_->forward(*input_);
  }
  const TensorF& dx_main = norm1_.backward(conv1_.backward(norm2_.backward(conv2_.backward(dy))));
  const TensorF& dx_skip = shortcut_ ? shortcut_->backward(dy) : dy;
  grad_input_.reshape_or_allocate(input_->shape());
  cpu::add_forward(dx_main.numel(), dx_main.data(), dx_skip.data(), grad_input_.data());
  if (recompute_) release_inner_activations();
  return grad_input_;
}

void ResBlock::release_inner_activations() {
  for (Layer* layer : {static_cast<Layer*>(&norm1_), static_cast<Layer*>(&conv1_),
                       static_cast<Layer*>(&norm2_), static_cast<Layer*>(&conv2_)})
    layer->release_activations();
  if (shortcut_) shortcut_->release_activations();
}

void ResBlock::release_activations() {
  release_inner_activations();
  output_.release();
  grad_input_.release();
}

// ---- AttentionBlock ---------------------------------------------------------------------

int attention_heads(int channels) {
  int heads = (channels + 127) / 128;
  while (channels % heads != 0) ++heads;
  return heads;
}

AttentionBlock::Linear AttentionBlock::add_linear(ParamStore& store, const std::string& name) {
  Linear linear;
  linear.weight = store.add(name + ".weight", {channels_, channels_}, ParamInit::kFanInUniform,
                            channels_, /*decay=*/true);
  linear.bias = store.add(name + ".bias", {channels_}, ParamInit::kFanInUniform, channels_,
                          /*decay=*/false);
  return linear;
}

AttentionBlock::AttentionBlock(ParamStore& store, const std::string& name, int channels,
                               NormSettings norm)
    : channels_(channels),
      heads_(attention_heads(channels)),
      norm_(store, name + ".norm", channels, norm.groups, norm.eps, /*silu=*/false) {
  to_q_ = add_linear(store, name + ".attn.to_q");
  to_k_ = add_linear(store, name + ".attn.to_k");
  to_v_ = add_linear(store, name + ".attn.to_v");
  out_proj_ = add_linear(store, name + ".attn.out_proj");
}

const TensorF& AttentionBlock::forward(const TensorF& x) {
  input_ = &x;
  const Shape shape = x.shape();
  const int64_t rows = shape.n * shape.pixels();  // tokens of all images
  const int c = channels_;
  normalized_ = &norm_.forward(x);
  const TensorF& normalized = *normalized_;
  for (TensorF* t : {&q_, &k_, &v_, &attended_, &output_}) t->reshape_or_allocate(shape);
  cpu::linear_forward(rows, c, c, normalized.data(), to_q_.weight.value(), to_q_.bias.value(), q_.data());
  cpu::linear_forward(rows, c, c, normalized.data(), to_k_.weight.value(), to_k_.bias.value(), k_.data());
  cpu::linear_forward(rows, c, c, normalized.data(), to_v_.weight.value(), to_v_.bias.value(), v_.data());
  cpu::AttentionDims d{static_cast<int>(shape.n), static_cast<int>(shape.pixels()), c, heads_};
  probs_.reshape_or_allocate({shape.n, heads_, shape.pixels(), shape.pixels()});
  cpu::attention_forward(d, q_.data(), k_.data(), v_.data(), probs_.data(), attended_.data());
  cpu::linear_forward(rows, c, c, attended_.data(), out_proj_.weight.value(), out_proj_.bias.value(),
                      output_.data());
  cpu::add_accumulate(x.numel(), x.data(), output_.data());  // residual
  return output_;
}

const TensorF& AttentionBlock::backward(const TensorF& dy) {
  const Shape shape = input_->shape();
  const int64_t rows = shape.n * shape.pixels();
  const int c = channels_;
  for (TensorF* t : {&grad_attended_, &grad_q_, &grad_k_, &grad_v_, &grad_normalized_,
                     &grad_scratch_, &grad_input_})
    t->reshape_or_allocate(shape);
  cpu::linear_backward(rows, c, c, attended_.data(), out_proj_.weight.value(), dy.data(),
                       grad_attended_.data(), out_proj_.weight.grad(), out_proj_.bias.grad());
  cpu::AttentionDims d{static_cast<int>(shape.n), static_cast<int>(shape.pixels()), c, heads_};
  cpu::attention_backward(d, q_.data(), k_.data(), v_.data(), probs_.data(), grad_attended_.data(),
                          grad_q_.data(), grad_k_.data(), grad_v_.data());
  // q, k and v all read the normalised input: their input gradients add.
  const float* normalized = normalized_->data();
  cpu::linear_backward(rows, c, c, normalized, to_q_.weight.value(), grad_q_.data(),
                       grad_normalized_.data(), to_q_.weight.grad(), to_q_.bias.grad());
  cpu::linear_backward(rows, c, c, normalized, to_k_.weight.value(), grad_k_.data(),
                       grad_scratch_.data(), to_k_.weight.grad(), to_k_.bias.grad());
  cpu::add_accumulate(grad_scratch_.numel(), grad_scratch_.data(), grad_normalized_.data());
  cpu::linear_backward(rows, c, c, normalized, to_v_.weight.value(), grad_v_.data(),
                       grad_scratch_.data(), to_v_.weight.grad(), to_v_.bias.grad());
  cpu::add_accumulate(grad_scratch_.numel(), grad_scratch_.data(), grad_normalized_.data());
  const TensorF& dx_norm = norm_.backward(grad_normalized_);
  cpu::add_forward(dy.numel(), dx_norm.data(), dy.data(), grad_input_.data());  // + residual
  return grad_input_;
}

// ---- Upsample ---------------------------------------------------------------------------

Upsample::Upsample(ParamStore& store, const std::string& name, int channels)
    : conv_(store, name + ".conv.conv", channels, channels, 3, 1, Padding::same(3)) {}

const TensorF& Upsample::forward(const TensorF& x) {
  input_ = &x;
  const Shape s = x.shape();
  upsampled_.reshape_or_allocate({s.n, 2 * s.h, 2 * s.w, s.c});
  cpu::upsample_nearest2x_forward(static_cast<int>(s.n), static_cast<int>(s.h),
                                  static_cast<int>(s.w), static_cast<int>(s.c), x.data(),
                                  upsampled_.data());
  return conv_.forward(upsampled_);
}

const TensorF& Upsample::backward(const TensorF& dy) {
  const TensorF& grad_upsampled = conv_.backward(dy);
  const Shape s = input_->shape();
  grad_input_.reshape_or_allocate(s);
  cpu::upsample_nearest2x_backward(static_cast<int>(s.n), static_cast<int>(s.h),
                                   static_cast<int>(s.w), static_cast<int>(s.c),
                                   grad_upsampled.data(), grad_input_.data());
  return grad_input_;
}

}  // namespace ladder
