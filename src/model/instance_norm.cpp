// Why this file exists: binds a backend's instance norm (GroupNorm with one channel per group
// and a fixed unit affine) to the layer interface.
#include "model/instance_norm.h"

#include "core/check.h"
#include "model/backends.h"

namespace ladder {

template <class B>
InstanceNorm2d<B>::InstanceNorm2d(B& backend, int channels, double eps)
    : backend_(backend), channels_(channels), eps_(eps) {
  LADDER_CHECK(channels > 0 && eps > 0, "InstanceNorm2d: channels ", channels, ", eps ", eps);
}

template <class B>
const typename B::Tensor& InstanceNorm2d<B>::forward(const Tensor& x) {
  const Shape& s = x.shape();
  LADDER_CHECK(s.c == channels_, "InstanceNorm2d of ", channels_, " channels got ", s.str());
  LADDER_CHECK(s.h * s.w > 1, "InstanceNorm2d needs more than one pixel per channel, got ", s.str());
  input_ = &x;
  backend_.resize(output_, s);
  backend_.resize(mean_, {s.n, 1, 1, channels_});
  backend_.resize(rstd_, {s.n, 1, 1, channels_});
  const cpu::GroupNormDims d{static_cast<int>(s.n), static_cast<int>(s.h * s.w), channels_, channels_, eps_};
  backend_.instance_norm_forward(d, x.data(), output_.data(), mean_.data(), rstd_.data());
  return output_;
}

template <class B>
const typename B::Tensor& InstanceNorm2d<B>::backward(const Tensor& dy) {
  LADDER_CHECK(input_ != nullptr && dy.shape() == input_->shape(), "InstanceNorm2d backward: gradient shape ",
               dy.shape().str());
  const Shape& s = dy.shape();
  backend_.resize(grad_input_, s);
  const cpu::GroupNormDims d{static_cast<int>(s.n), static_cast<int>(s.h * s.w), channels_, channels_, eps_};
  backend_.instance_norm_backward(d, input_->data(), mean_.data(), rstd_.data(), dy.data(), grad_input_.data());
  return grad_input_;
}

LADDER_INSTANTIATE_FOR_BACKENDS(InstanceNorm2d)

}  // namespace ladder
