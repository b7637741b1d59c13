// Why this file exists: binds the group-norm and SiLU ops to the layer interface.
#include "model/group_norm.h"

#include "kernels/cpu/ops.h"

namespace ladder {

GroupNorm::GroupNorm(ParamStore& store, const std::string& name, int channels, int groups,
                     double eps, bool silu)
    : channels_(channels), groups_(groups), eps_(eps), silu_(silu) {
  LADDER_CHECK(channels % groups == 0, name, ": ", channels, " channels, ", groups, " groups");
  gamma_ = store.add(name + ".weight", {channels}, ParamInit::kOnes, 1, /*decay=*/false);
  beta_ = store.add(name + ".bias", {channels}, ParamInit::kZeros, 1, /*decay=*/false);
}

const TensorF& GroupNorm::forward(const TensorF& x) {
  LADDER_CHECK(x.shape().c == channels_, "group norm ", gamma_.entry().name, " got ", x.shape().str());
  input_ = &x;
  cpu::GroupNormDims d{static_cast<int>(x.shape().n), static_cast<int>(x.shape().pixels()),
                       channels_, groups_, eps_};
  normalized_.reshape_or_allocate(x.shape());
  mean_.reshape_or_allocate({d.n, 1, 1, groups_});
  rstd_.reshape_or_allocate({d.n, 1, 1, groups_});
  cpu::group_norm_forward(d, x.data(), gamma_.value(), beta_.value(), normalized_.data(),
                          mean_.data(), rstd_.data());
  if (!silu_) return normalized_;
  output_.reshape_or_allocate(x.shape());
  cpu::silu_forward(x.numel(), normalized_.data(), output_.data());
  return output_;
}

const TensorF& GroupNorm::backward(const TensorF& dy) {
  LADDER_CHECK(input_ != nullptr && dy.shape() == input_->shape(), "group norm backward");
  const TensorF* grad_normalized = &dy;
  if (silu_) {
    grad_normalized_.reshape_or_allocate(dy.shape());
    cpu::silu_backward(dy.numel(), normalized_.data(), dy.data(), grad_normalized_.data());
    grad_normalized = &grad_normalized_;
  }
  cpu::GroupNormDims d{static_cast<int>(dy.shape().n), static_cast<int>(dy.shape().pixels()),
                       channels_, groups_, eps_};
  grad_input_.reshape_or_allocate(dy.shape());
  cpu::group_norm_backward(d, input_->data(), gamma_.value(), mean_.data(), rstd_.data(),
                           grad_normalized->data(), grad_input_.data(), gamma_.grad(),
                           beta_.grad());
  return grad_input_;
}

}  // namespace ladder
