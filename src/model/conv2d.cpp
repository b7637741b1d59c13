// Why this file exists: binds the conv2d ops to the flat buffer and the layer interface.
#include "model/conv2d.h"

namespace ladder {

Conv2d::Conv2d(ParamStore& store, const std::string& name, int cin, int cout, int kernel,
               int stride, Padding padding)
    : cin_(cin), cout_(cout), kernel_(kernel), stride_(stride), padding_(padding) {
  int64_t fan_in = int64_t(cin) * kernel * kernel;
  weight_ = store.add(name + ".weight", {cout, kernel, kernel, cin}, ParamInit::kFanInUniform,
                      fan_in, /*decay=*/true);
  bias_ = store.add(name + ".bias", {cout}, ParamInit::kFanInUniform, fan_in, /*decay=*/false);
}

cpu::Conv2dDims Conv2d::dims_for(const Shape& input) const {
  LADDER_CHECK(input.c == cin_, "conv ", weight_.entry().name, " expects ", cin_,
               " input channels, got ", input.str());
  cpu::Conv2dDims d;
  d.n = static_cast<int>(input.n);
  d.h = static_cast<int>(input.h);
  d.w = static_cast<int>(input.w);
  d.cin = cin_;
  d.cout = cout_;
  d.kernel = kernel_;
  d.stride = stride_;
  d.pad_top = padding_.top;
  d.pad_left = padding_.left;
  d.pad_bottom = padding_.bottom;
  d.pad_right = padding_.right;
  return d;
}

const TensorF& Conv2d::forward(const TensorF& x) {
  input_ = &x;
  cpu::Conv2dDims d = dims_for(x.shape());
  output_.reshape_or_allocate({d.n, d.out_h(), d.out_w(), d.cout});
  cpu::conv2d_forward(d, x.data(), weight_.value(), bias_.value(), output_.data());
  return output_;
}

const TensorF& Conv2d::backward(const TensorF& dy) {
  LADDER_CHECK(input_ != nullptr, "backward before forward");
  LADDER_CHECK(dy.shape() == output_.shape(), "conv gradient shape ", dy.shape().str());
  cpu::Conv2dDims d = dims_for(input_->shape());
  cpu::conv2d_backward_filter(d, input_->data(), dy.data(), weight_.grad(), bias_.grad());
  if (compute_input_grad_) {
    grad_input_.reshape_or_allocate(input_->shape());
    cpu::conv2d_backward_data(d, dy.data(), weight_.value(), grad_input_.data());
  }
  return grad_input_;
}

}  // namespace ladder
