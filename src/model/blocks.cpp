// Why this file exists: forward and backward of the composite blocks, built from a backend's
// ops and the simple layers. Where two gradient paths meet (the residual skips) they are added.
#include "model/blocks.h"

#include "model/backends.h"

namespace ladder {

// ---- ResBlock ---------------------------------------------------------------------------

template <class B>
ResBlock<B>::ResBlock(B& backend, ParamStore& store, const std::string& name, int cin, int cout,
                      NormSettings norm)
    : backend_(backend),
      norm1_(backend, store, name + ".norm1", cin, norm.groups, norm.eps, /*silu=*/true),
      conv1_(backend, store, name + ".conv1.conv", cin, cout, 3, 1, Padding::same(3)),
      norm2_(backend, store, name + ".norm2", cout, norm.groups, norm.eps, /*silu=*/true),
      conv2_(backend, store, name + ".conv2.conv", cout, cout, 3, 1, Padding::same(3)) {
  if (cin != cout)
    shortcut_ = std::make_unique<Conv2d<B>>(backend, store, name + ".nin_shortcut.conv", cin,
                                            cout, 1, 1, Padding{0, 0, 0, 0});
}

template <class B>
const typename B::Tensor& ResBlock<B>::forward_main(const Tensor& x) {
  return conv2_.forward(norm2_.forward(conv1_.forward(norm1_.forward(x))));
}

template <class B>
const typename B::Tensor& ResBlock<B>::forward(const Tensor& x) {
  input_ = &x;
  const Tensor& h = forward_main(x);
  const Tensor& skip = shortcut_ ? shortcut_->forward(x) : x;
  backend_.resize(output_, h.shape());
  backend_.add_forward(h.numel(), h.data(), skip.data(), output_.data());
  if (recompute_) release_inner_activations();
  return output_;
}

template <class B>
const typename B::Tensor& ResBlock<B>::backward(const Tensor& dy) {
  if (recompute_) {  // the same ops on the same input: the same bits as the first forward
    forward_main(*input_);
    if (shortcut_) shortcut_->forward(*input_);
  }
  const Tensor& dx_main = norm1_.backward(conv1_.backward(norm2_.backward(conv2_.backward(dy))));
  const Tensor& dx_skip = shortcut_ ? shortcut_->backward(dy) : dy;
  backend_.resize(grad_input_, input_->shape());
  backend_.add_forward(dx_main.numel(), dx_main.data(), dx_skip.data(), grad_input_.data());
  if (recompute_) release_inner_activations();
  return grad_input_;
}

template <class B>
void ResBlock<B>::release_inner_activations() {
  for (Layer<B>* layer : {static_cast<Layer<B>*>(&norm1_), static_cast<Layer<B>*>(&conv1_),
                          static_cast<Layer<B>*>(&norm2_), static_cast<Layer<B>*>(&conv2_)})
    layer->release_activations();
  if (shortcut_) shortcut_->release_activations();
}

template <class B>
void ResBlock<B>::release_activations() {
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

template <class B>
typename AttentionBlock<B>::Linear AttentionBlock<B>::add_linear(ParamStore& store,
                                                                 const std::string& name) {
  Linear linear;
  linear.weight = store.add(name + ".weight", {channels_, channels_}, ParamInit::kFanInUniform,
                            channels_, /*decay=*/true);
  linear.bias = store.add(name + ".bias", {channels_}, ParamInit::kFanInUniform, channels_,
                          /*decay=*/false);
  return linear;
}

template <class B>
AttentionBlock<B>::AttentionBlock(B& backend, ParamStore& store, const std::string& name,
                                  int channels, NormSettings norm, int heads)
    : backend_(backend),
      channels_(channels),
      heads_(heads > 0 ? heads : attention_heads(channels)),
      norm_(backend, store, name + ".norm", channels, norm.groups, norm.eps, /*silu=*/false) {
  to_q_ = add_linear(store, name + ".attn.to_q");
  to_k_ = add_linear(store, name + ".attn.to_k");
  to_v_ = add_linear(store, name + ".attn.to_v");
  out_proj_ = add_linear(store, name + ".attn.out_proj");
}

template <class B>
const typename B::Tensor& AttentionBlock<B>::forward(const Tensor& x) {
  input_ = &x;
  const Shape shape = x.shape();
  const int64_t rows = shape.n * shape.pixels();  // tokens of all images
  const int c = channels_;
  normalized_ = &norm_.forward(x);
  const auto* normalized = normalized_->data();
  for (Tensor* t : {&q_, &k_, &v_, &attended_, &output_}) backend_.resize(*t, shape);
  backend_.linear_forward(rows, c, c, normalized, to_q_.weight, to_q_.bias, q_.data());
  backend_.linear_forward(rows, c, c, normalized, to_k_.weight, to_k_.bias, k_.data());
  backend_.linear_forward(rows, c, c, normalized, to_v_.weight, to_v_.bias, v_.data());
  cpu::AttentionDims d{static_cast<int>(shape.n), static_cast<int>(shape.pixels()), c, heads_};
  backend_.attention_forward(d, q_.data(), k_.data(), v_.data(), probs_, attended_.data());
  backend_.linear_forward(rows, c, c, attended_.data(), out_proj_.weight, out_proj_.bias,
                          output_.data());
  backend_.add_accumulate(x.numel(), x.data(), output_.data());  // residual
  return output_;
}

template <class B>
const typename B::Tensor& AttentionBlock<B>::backward(const Tensor& dy) {
  const Shape shape = input_->shape();
  const int64_t rows = shape.n * shape.pixels();
  const int c = channels_;
  for (Tensor* t : {&grad_attended_, &grad_q_, &grad_k_, &grad_v_, &grad_normalized_,
                    &grad_scratch_, &grad_input_})
    backend_.resize(*t, shape);
  backend_.linear_backward(rows, c, c, attended_.data(), out_proj_.weight, out_proj_.bias,
                           dy.data(), grad_attended_.data());
  cpu::AttentionDims d{static_cast<int>(shape.n), static_cast<int>(shape.pixels()), c, heads_};
  backend_.attention_backward(d, q_.data(), k_.data(), v_.data(), probs_, grad_attended_.data(),
                              grad_q_.data(), grad_k_.data(), grad_v_.data());
  // q, k and v all read the normalised input: their input gradients add.
  const auto* normalized = normalized_->data();
  backend_.linear_backward(rows, c, c, normalized, to_q_.weight, to_q_.bias, grad_q_.data(),
                           grad_normalized_.data());
  backend_.linear_backward(rows, c, c, normalized, to_k_.weight, to_k_.bias, grad_k_.data(),
                           grad_scratch_.data());
  backend_.add_accumulate(grad_scratch_.numel(), grad_scratch_.data(), grad_normalized_.data());
  backend_.linear_backward(rows, c, c, normalized, to_v_.weight, to_v_.bias, grad_v_.data(),
                           grad_scratch_.data());
  backend_.add_accumulate(grad_scratch_.numel(), grad_scratch_.data(), grad_normalized_.data());
  const Tensor& dx_norm = norm_.backward(grad_normalized_);
  backend_.add_forward(dy.numel(), dx_norm.data(), dy.data(), grad_input_.data());  // + residual
  return grad_input_;
}

// ---- Upsample ---------------------------------------------------------------------------

template <class B>
Upsample<B>::Upsample(B& backend, ParamStore& store, const std::string& name, int channels)
    : backend_(backend),
      conv_(backend, store, name + ".postconv.conv", channels, channels, 3, 1, Padding::same(3)) {}

template <class B>
const typename B::Tensor& Upsample<B>::forward(const Tensor& x) {
  input_ = &x;
  const Shape s = x.shape();
  backend_.resize(upsampled_, {s.n, 2 * s.h, 2 * s.w, s.c});
  backend_.upsample_forward(static_cast<int>(s.n), static_cast<int>(s.h), static_cast<int>(s.w),
                            static_cast<int>(s.c), x.data(), upsampled_.data());
  return conv_.forward(upsampled_);
}

template <class B>
const typename B::Tensor& Upsample<B>::backward(const Tensor& dy) {
  const Tensor& grad_upsampled = conv_.backward(dy);
  const Shape s = input_->shape();
  backend_.resize(grad_input_, s);
  backend_.upsample_backward(static_cast<int>(s.n), static_cast<int>(s.h), static_cast<int>(s.w),
                             static_cast<int>(s.c), grad_upsampled.data(), grad_input_.data());
  return grad_input_;
}

LADDER_INSTANTIATE_FOR_BACKENDS(ResBlock)
LADDER_INSTANTIATE_FOR_BACKENDS(AttentionBlock)
LADDER_INSTANTIATE_FOR_BACKENDS(Upsample)

}  // namespace ladder
