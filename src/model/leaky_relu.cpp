// Why this file exists: binds a backend's LeakyReLU op to the layer interface.
#include "model/leaky_relu.h"

#include "model/backends.h"

namespace ladder {

template <class B>
LeakyReLU<B>::LeakyReLU(B& backend, double negative_slope) : backend_(backend), slope_(negative_slope) {
  LADDER_CHECK(negative_slope > 0, "LeakyReLU: the negative slope must be positive, got ", negative_slope);
}

template <class B>
const typename B::Tensor& LeakyReLU<B>::forward(const Tensor& x) {
  input_ = &x;
  backend_.resize(output_, x.shape());
  backend_.leaky_relu_forward(x.numel(), slope_, x.data(), output_.data());
  return output_;
}

template <class B>
const typename B::Tensor& LeakyReLU<B>::backward(const Tensor& dy) {
  LADDER_CHECK(input_ != nullptr && dy.shape() == input_->shape(), "LeakyReLU backward: gradient shape ",
               dy.shape().str());
  backend_.resize(grad_input_, dy.shape());
  backend_.leaky_relu_backward(dy.numel(), slope_, input_->data(), dy.data(), grad_input_.data());
  return grad_input_;
}

LADDER_INSTANTIATE_FOR_BACKENDS(LeakyReLU)

}  // namespace ladder
