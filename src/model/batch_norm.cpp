// Why this file exists: binds a backend's BatchNorm passes to the layer interface, in the order
// a synchronised-statistics trainer needs (the all-reduce points are marked).
#include "model/batch_norm.h"

#include "model/backends.h"

namespace ladder {

template <class B>
BatchNorm2d<B>::BatchNorm2d(B& backend, ParamStore& store, const std::string& name, int channels,
                            double eps, double momentum, ParamInit gamma_init)
    : backend_(backend), name_(name), channels_(channels), eps_(eps), momentum_(momentum) {
  LADDER_CHECK(channels > 0 && eps > 0 && momentum >= 0 && momentum <= 1, name,
               ": bad BatchNorm settings (channels ", channels, ", eps ", eps, ", momentum ", momentum, ")");
  gamma_ = store.add(name + ".weight", {channels}, gamma_init, 1, /*decay=*/false);
  beta_ = store.add(name + ".bias", {channels}, ParamInit::kZeros, 1, /*decay=*/false);
  backend_.resize(running_mean_, {1, 1, 1, channels});
  backend_.resize(running_var_, {1, 1, 1, channels});
  backend_.batch_norm_reset_running(channels, running_mean_.data(), running_var_.data());
}

template <class B>
const typename B::Tensor& BatchNorm2d<B>::forward(const Tensor& x) {
  LADDER_CHECK(x.shape().c == channels_, "batch norm ", name_, " got ", x.shape().str());
  input_ = &x;
  const cpu::BatchNormDims d{x.shape().n * x.shape().pixels(), channels_, eps_};
  backend_.resize(output_, x.shape());
  if (!training_) {
    count_ = 0;  // no statistics for a backward
    backend_.batch_norm_eval_forward(d, x.data(), running_mean_.data(), running_var_.data(), gamma_, beta_,
                                     output_.data());
    return output_;
  }
  for (FloatTensor* t : {&sum_, &sq_, &mean_, &rstd_}) backend_.resize(*t, {1, 1, 1, channels_});
  count_ = static_cast<double>(d.rows);  // synchronised statistics: the rows of all ranks
  backend_.batch_norm_channel_sums(d, x.data(), sum_.data());
  // (synchronised statistics: all-reduce sum_ here)
  backend_.batch_norm_centered_squares(d, count_, x.data(), sum_.data(), sq_.data());
  // (and sq_ here)
  backend_.batch_norm_normalize(d, count_, x.data(), sum_.data(), sq_.data(), gamma_, beta_, output_.data(),
                                mean_.data(), rstd_.data());
  backend_.batch_norm_update_running(channels_, count_, momentum_, sum_.data(), sq_.data(), running_mean_.data(),
                                     running_var_.data());
  ++batches_tracked_;
  return output_;
}

template <class B>
const typename B::Tensor& BatchNorm2d<B>::backward(const Tensor& dy) {
  LADDER_CHECK(input_ != nullptr && dy.shape() == input_->shape(), "batch norm ", name_, " backward: shape ",
               dy.shape().str());
  LADDER_CHECK(training_ && count_ > 0, "batch norm ", name_, ": backward needs a training-mode forward");
  const cpu::BatchNormDims d{dy.shape().n * dy.shape().pixels(), channels_, eps_};
  backend_.resize(grad_sums_, {1, 1, 2, channels_});
  backend_.resize(grad_input_, dy.shape());
  float* dsum = grad_sums_.data();
  float* dsum_xhat = dsum + channels_;
  backend_.batch_norm_backward_reduce(d, input_->data(), mean_.data(), rstd_.data(), dy.data(), dsum, dsum_xhat,
                                      parameter_gradients_ ? gamma_ : ParamView(),
                                      parameter_gradients_ ? beta_ : ParamView());
  // (synchronised statistics: all-reduce grad_sums_ here; dγ, dβ took the local sums)
  backend_.batch_norm_backward_data(d, count_, input_->data(), mean_.data(), rstd_.data(), gamma_, dy.data(), dsum,
                                    dsum_xhat, grad_input_.data());
  return grad_input_;
}

template <class B>
std::vector<ModelBuffer> BatchNorm2d<B>::buffers() {
  std::vector<float> mean(static_cast<size_t>(channels_)), var(mean.size());
  backend_.floats_to_host(running_mean_, mean.data());
  backend_.floats_to_host(running_var_, var.data());
  const std::vector<int64_t> shape{channels_};
  return {{name_ + ".running_mean", ModelBuffer::Type::kF32, shape, {mean.begin(), mean.end()}},
          {name_ + ".running_var", ModelBuffer::Type::kF32, shape, {var.begin(), var.end()}},
          {name_ + ".num_batches_tracked", ModelBuffer::Type::kI64, {}, {static_cast<double>(batches_tracked_)}}};
}

template <class B>
void BatchNorm2d<B>::load_buffers(const ModelBuffer* three) {
  const char* suffixes[] = {".running_mean", ".running_var", ".num_batches_tracked"};
  for (int i = 0; i < 3; ++i)
    LADDER_CHECK(three[i].name == name_ + suffixes[i] && three[i].values.size() == (i < 2 ? size_t(channels_) : 1u),
                 "batch norm ", name_, ": cannot load buffer ", three[i].name);
  for (int i = 0; i < 2; ++i) {
    const std::vector<float> values(three[i].values.begin(), three[i].values.end());
    backend_.floats_from_host(values.data(), i == 0 ? running_mean_ : running_var_);
  }
  batches_tracked_ = static_cast<int64_t>(three[2].values[0]);
}

LADDER_INSTANTIATE_FOR_BACKENDS(BatchNorm2d)

}  // namespace ladder
