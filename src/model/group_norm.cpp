// Why this file exists: binds a backend's group-norm (+SiLU) op to the layer interface.
#include "model/group_norm.h"

#include "model/backends.h"

namespace ladder {

template <class B>
GroupNorm<B>::GroupNorm(B& backend, ParamStore& store, const std::string& name, int channels,
                        int groups, double eps, bool silu)
    : backend_(backend), channels_(channels), groups_(groups), eps_(eps), silu_(silu) {
  LADDER_CHECK(channels % groups == 0, name, ": ", channels, " channels, ", groups, " groups");
  gamma_ = store.add(name + ".weight", {channels}, ParamInit::kOnes, 1, /*decay=*/false);
  beta_ = store.add(name + ".bias", {channels}, ParamInit::kZeros, 1, /*decay=*/false);
}

template <class B>
const typename B::Tensor& GroupNorm<B>::forward(const Tensor& x) {
  LADDER_CHECK(x.shape().c == channels_, "group norm ", gamma_.entry().name, " got ",
               x.shape().str());
  input_ = &x;
  cpu::GroupNormDims d{static_cast<int>(x.shape().n), static_cast<int>(x.shape().pixels()),
                       channels_, groups_, eps_};
  backend_.resize(output_, x.shape());
  backend_.resize(mean_, {d.n, 1, 1, groups_});
  backend_.resize(rstd_, {d.n, 1, 1, groups_});
  backend_.group_norm_forward(d, silu_, x.data(), gamma_, beta_, output_.data(), mean_.data(),
                              rstd_.data());
  return output_;
}

template <class B>
const typename B::Tensor& GroupNorm<B>::backward(const Tensor& dy) {
  LADDER_CHECK(input_ != nullptr && dy.shape() == input_->shape(), "group norm backward");
  cpu::GroupNormDims d{static_cast<int>(dy.shape().n), static_cast<int>(dy.shape().pixels()),
                       channels_, groups_, eps_};
  backend_.resize(grad_input_, dy.shape());
  backend_.group_norm_backward(d, silu_, input_->data(), gamma_, beta_, mean_.data(),
                               rstd_.data(), dy.data(), grad_input_.data());
  return grad_input_;
}

LADDER_INSTANTIATE_FOR_BACKENDS(GroupNorm)

}  // namespace ladder
