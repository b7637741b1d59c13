// Why this file exists: binds the convolution ops of a backend to the flat buffer and the
// layer interface.
#include "model/conv2d.h"

#include "model/backends.h"

namespace ladder {

template <class B>
Conv2d<B>::Conv2d(B& backend, ParamStore& store, const std::string& name, int cin, int cout,
                  int kernel, int stride, Padding padding, bool zero_initialized)
    : Conv2d(backend, store, name, cin, cout, kernel, stride, padding,
             ConvOptions{zero_initialized ? ParamInit::kZeros : ParamInit::kFanInUniform, true}) {}

template <class B>
Conv2d<B>::Conv2d(B& backend, ParamStore& store, const std::string& name, int cin, int cout,
                  int kernel, int stride, Padding padding, ConvOptions options)
    : backend_(backend), cin_(cin), cout_(cout), kernel_(kernel), stride_(stride), padding_(padding) {
  int64_t fan_in = int64_t(cin) * kernel * kernel;
  weight_ = store.add(name + ".weight", {cout, kernel, kernel, cin}, options.weight_init, fan_in,
                      /*decay=*/true);
  const ParamInit bias_init =
      options.weight_init == ParamInit::kFanInUniform ? ParamInit::kFanInUniform : ParamInit::kZeros;
  if (options.bias) bias_ = store.add(name + ".bias", {cout}, bias_init, fan_in, /*decay=*/false);
}

template <class B>
cpu::Conv2dDims Conv2d<B>::dims_for(const Shape& input) const {
  LADDER_CHECK(input.c == cin_, "conv ", weight_.entry().name, " expects ", cin_,
               " input channels, got ", input.str());
  return cpu::Conv2dDims::make(static_cast<int>(input.n), static_cast<int>(input.h),
                               static_cast<int>(input.w), cin_, cout_, kernel_, stride_,
                               padding_.top, padding_.left, padding_.bottom, padding_.right);
}

template <class B>
const typename B::Tensor& Conv2d<B>::forward(const Tensor& x) {
  input_ = &x;
  cpu::Conv2dDims d = dims_for(x.shape());
  backend_.resize(output_, {d.n, d.out_h(), d.out_w(), d.cout});
  backend_.conv2d_forward(d, x.data(), weight_, bias_, output_.data());
  return output_;
}

template <class B>
const typename B::Tensor& Conv2d<B>::backward(const Tensor& dy) {
  LADDER_CHECK(input_ != nullptr, "backward before forward");
  LADDER_CHECK(dy.shape() == output_.shape(), "conv gradient shape ", dy.shape().str());
  cpu::Conv2dDims d = dims_for(input_->shape());
  if (compute_param_grad_) backend_.conv2d_backward_filter(d, input_->data(), dy.data(), weight_, bias_);
  if (compute_input_grad_) {
    backend_.resize(grad_input_, input_->shape());
    backend_.conv2d_backward_data(d, dy.data(), weight_, grad_input_.data());
  }
  return grad_input_;
}

LADDER_INSTANTIATE_FOR_BACKENDS(Conv2d)

}  // namespace ladder
