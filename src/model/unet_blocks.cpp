// Why this file exists: the forward and backward of the UNet's timestep embedding and
// ResBlock.
#include "model/unet_blocks.h"

#include <cmath>

#include "model/backends.h"

namespace ladder {

std::vector<float> timestep_embedding(const std::vector<float>& timesteps, int dim) {
  const int half = dim / 2;
  std::vector<float> out(timesteps.size() * static_cast<size_t>(dim), 0.f);
  for (size_t b = 0; b < timesteps.size(); ++b)
    for (int k = 0; k < half; ++k) {
      // As MONAI computes it: fp32 frequencies, fp32 arguments.
      const float frequency = std::exp(static_cast<float>(-std::log(10000.0) * k) / static_cast<float>(half));
      const float argument = timesteps[b] * frequency;
      out[b * dim + k] = std::cos(argument);
      out[b * dim + half + k] = std::sin(argument);
    }
  return out;
}

// ---- TimeEmbedding ----------------------------------------------------------------------

template <class B>
TimeEmbedding<B>::TimeEmbedding(B& backend, ParamStore& store, int channels)
    : backend_(backend), channels_(channels) {
  const int dim = 4 * channels;
  first_.weight = store.add("time_embed.0.weight", {dim, channels}, ParamInit::kFanInUniform, channels, true);
  first_.bias = store.add("time_embed.0.bias", {dim}, ParamInit::kFanInUniform, channels, false);
  second_.weight = store.add("time_embed.2.weight", {dim, dim}, ParamInit::kFanInUniform, dim, true);
  second_.bias = store.add("time_embed.2.bias", {dim}, ParamInit::kFanInUniform, dim, false);
}

template <class B>
const typename B::Tensor& TimeEmbedding<B>::forward(const std::vector<float>& timesteps) {
  const int n = static_cast<int>(timesteps.size()), dim = 4 * channels_;
  backend_.load_values(timestep_embedding(timesteps, channels_).data(), {n, 1, 1, channels_}, sinusoid_);
  for (Tensor* t : {&hidden_, &hidden_silu_, &emb_, &emb_silu_}) backend_.resize(*t, {n, 1, 1, dim});
  backend_.linear_forward(n, channels_, dim, sinusoid_.data(), first_.weight, first_.bias, hidden_.data());
  backend_.silu_forward(hidden_.numel(), hidden_.data(), hidden_silu_.data());
  backend_.linear_forward(n, dim, dim, hidden_silu_.data(), second_.weight, second_.bias, emb_.data());
  backend_.silu_forward(emb_.numel(), emb_.data(), emb_silu_.data());
  return emb_silu_;
}

template <class B>
void TimeEmbedding<B>::backward(const Tensor& grad) {
  const int n = static_cast<int>(emb_.shape().n), dim = 4 * channels_;
  for (Tensor* t : {&grad_emb_, &grad_hidden_silu_, &grad_hidden_}) backend_.resize(*t, emb_.shape());
  backend_.resize(grad_sinusoid_, sinusoid_.shape());
  backend_.silu_backward(emb_.numel(), emb_.data(), grad.data(), grad_emb_.data());
  backend_.linear_backward(n, dim, dim, hidden_silu_.data(), second_.weight, second_.bias,
                           grad_emb_.data(), grad_hidden_silu_.data());
  backend_.silu_backward(hidden_.numel(), hidden_.data(), grad_hidden_silu_.data(), grad_hidden_.data());
  backend_.linear_backward(n, channels_, dim, sinusoid_.data(), first_.weight, first_.bias,
                           grad_hidden_.data(), grad_sinusoid_.data());
}

// ---- UNetResBlock -----------------------------------------------------------------------

template <class B>
UNetResBlock<B>::UNetResBlock(B& backend, ParamStore& store, const std::string& name, int cin,
                              int cout, int time_dim, NormSettings norm)
    : backend_(backend),
      cout_(cout),
      time_dim_(time_dim),
      norm1_(backend, store, name + ".norm1", cin, norm.groups, norm.eps, /*silu=*/true),
      conv1_(backend, store, name + ".conv1.conv", cin, cout, 3, 1, Padding::same(3)),
      proj_weight_(store.add(name + ".time_emb_proj.weight", {cout, time_dim}, ParamInit::kFanInUniform,
                             time_dim, true)),
      proj_bias_(store.add(name + ".time_emb_proj.bias", {cout}, ParamInit::kFanInUniform, time_dim, false)),
      norm2_(backend, store, name + ".norm2", cout, norm.groups, norm.eps, /*silu=*/true),
      conv2_(backend, store, name + ".conv2.conv", cout, cout, 3, 1, Padding::same(3),
             /*zero_initialized=*/true) {
  if (cin != cout)
    skip_ = std::make_unique<Conv2d<B>>(backend, store, name + ".skip_connection.conv", cin, cout, 1,
                                        1, Padding::same(1));
}

template <class B>
const typename B::Tensor& UNetResBlock<B>::forward_main(const Tensor& x) {
  const Shape shape = x.shape();
  const int n = static_cast<int>(shape.n);
  const Tensor& convolved = conv1_.forward(norm1_.forward(x));
  backend_.resize(projection_, {n, 1, 1, cout_});
  backend_.linear_forward(n, time_dim_, cout_, time_->data(), proj_weight_, proj_bias_, projection_.data());
  backend_.resize(hidden_, convolved.shape());
  backend_.add_per_channel(n, shape.pixels(), cout_, convolved.data(), projection_.data(), hidden_.data());
  return conv2_.forward(norm2_.forward(hidden_));
}

template <class B>
const typename B::Tensor& UNetResBlock<B>::forward(const Tensor& x) {
  LADDER_CHECK(time_ != nullptr, "UNetResBlock: forward without the time embedding");
  input_ = &x;
  const Tensor& residual = forward_main(x);
  backend_.resize(output_, residual.shape());
  backend_.add_forward(residual.numel(), skip_ ? skip_->forward(x).data() : x.data(), residual.data(),
                       output_.data());
  if (recompute_) release_inner_activations();
  return output_;
}

template <class B>
void UNetResBlock<B>::release_inner_activations() {
  for (Layer<B>* layer : {static_cast<Layer<B>*>(&norm1_), static_cast<Layer<B>*>(&conv1_),
                          static_cast<Layer<B>*>(&norm2_), static_cast<Layer<B>*>(&conv2_)})
    layer->release_activations();
  if (skip_) skip_->release_activations();
  hidden_.release();
}

template <class B>
void UNetResBlock<B>::release_activations() {
  release_inner_activations();
  output_.release();
  grad_input_.release();
}

template <class B>
const typename B::Tensor& UNetResBlock<B>::backward(const Tensor& dy) {
  if (recompute_) {  // the same ops on the same input: the same bits as the first forward
    forward_main(*input_);
    if (skip_) skip_->forward(*input_);
  }
  const Shape shape = input_->shape();
  const int n = static_cast<int>(shape.n);
  const Tensor& grad_hidden = norm2_.backward(conv2_.backward(dy));
  backend_.resize(grad_projection_, {n, 1, 1, cout_});
  backend_.resize(grad_time_, {n, 1, 1, time_dim_});
  backend_.sum_per_channel(n, shape.pixels(), cout_, grad_hidden.data(), grad_projection_.data());
  backend_.linear_backward(n, time_dim_, cout_, time_->data(), proj_weight_, proj_bias_,
                           grad_projection_.data(), grad_time_.data());
  const Tensor& grad_main = norm1_.backward(conv1_.backward(grad_hidden));
  backend_.resize(grad_input_, shape);
  backend_.add_forward(grad_input_.numel(), grad_main.data(), skip_ ? skip_->backward(dy).data() : dy.data(),
                       grad_input_.data());
  if (recompute_) release_inner_activations();
  return grad_input_;
}

LADDER_INSTANTIATE_FOR_BACKENDS(TimeEmbedding)
LADDER_INSTANTIATE_FOR_BACKENDS(UNetResBlock)

}  // namespace ladder
