// Why this file exists: the model entry points of the two GPU devices: the autoencoder's
// micro-step and evaluation (reconstruct, encode, decode) and the UNet's denoising micro-step
// and prediction.
#ifdef LADDER_WITH_CUDA
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "diffusion/denoising_loss.h"
#include "kernels/cuda/ops.h"
#include "train/cuda_device.h"

namespace ladder {

template <class T>
AutoencoderLossSums CudaAutoencoderDevice<T>::micro_step(const float* images, const Shape& shape,
                                                         const float* noise,
                                                         const AutoencoderObjective& objective) {
  const Shape latent = this->model_.latent_shape(shape);
  const int64_t n = shape.numel();
  auto& in = this->bring_inputs(images, n * static_cast<int64_t>(sizeof(float)), noise, latent.numel());
  this->backend_.resize(images_, shape);
  this->backend_.resize(noise_, latent);
  cuda::convert(n, reinterpret_cast<const float*>(in.raw.data()), images_.data(), this->stream_);
  cuda::convert(latent.numel(), in.floats.data(), noise_.data(), this->stream_);
  this->inputs_consumed(in);
  const auto& terms = this->critics_.terms(objective.adversarial, objective.discriminator_grad_scale);
  AutoencoderLossSums sums =
      this->model_.forward_backward(images_, noise_, objective.grad_scale, objective.kl_weight, terms);
  if (objective.adversarial) sums.discriminator = this->critics_.discriminator_sums();
  return sums;
}

template <class T>
void CudaAutoencoderDevice<T>::reconstruct(const TensorF& images, TensorF& out) {
  this->backend_.to_host(this->model_.reconstruct(this->upload(images)), out);
}

template <class T>
void CudaAutoencoderDevice<T>::encode(const TensorF& images, TensorF& mu, TensorF& logvar) {
  const auto [m, v] = this->model_.encode(this->upload(images));
  this->backend_.to_host(*m, mu);
  this->backend_.to_host(*v, logvar);
}

template <class T>
void CudaAutoencoderDevice<T>::decode(const TensorF& latents, TensorF& images) {
  this->backend_.to_host(this->model_.decode(this->upload(latents)), images);
}

template <class T>
double CudaUNetDevice<T>::micro_step(const float* x_t, const float* target, const Shape& latents,
                                     const std::vector<float>& timesteps,
                                     const std::vector<float>& weights, double grad_scale) {
  const int64_t n = latents.numel();
  auto& in = this->bring_inputs(x_t, n * static_cast<int64_t>(sizeof(float)), target, n);
  this->backend_.resize(x_t_, latents);
  this->backend_.resize(target_, latents);
  cuda::convert(n, reinterpret_cast<const float*>(in.raw.data()), x_t_.data(), this->stream_);
  cuda::convert(n, in.floats.data(), target_.data(), this->stream_);
  this->inputs_consumed(in);
  return denoising_step(this->backend_, this->model_, x_t_, target_, timesteps, weights, grad_scale,
                        grad_);
}

template <class T>
void CudaUNetDevice<T>::predict(const TensorF& x_t, const std::vector<float>& timesteps,
                                TensorF& prediction) {
  this->backend_.to_host(this->model_.forward(this->upload(x_t), timesteps), prediction);
}

template class CudaAutoencoderDevice<float>;
template class CudaAutoencoderDevice<__nv_bfloat16>;
template class CudaAutoencoderDevice<__half>;
template class CudaUNetDevice<float>;
template class CudaUNetDevice<__nv_bfloat16>;
template class CudaUNetDevice<__half>;

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
