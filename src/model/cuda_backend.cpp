// Why this file exists: the GPU backend's ops (model/cuda_backend.h): parameter lookup in the
// flat device buffers, scratch management, and the calls into kernels/cuda.
#ifdef LADDER_WITH_CUDA
#include "model/cuda_backend.h"

#include <algorithm>

#include <type_traits>

#include "kernels/cuda/attention.h"
#include "kernels/cuda/linear.h"
#include "kernels/cuda/ops.h"

namespace ladder {

template <class T>
const char* CudaBackend<T>::name() {
  if constexpr (std::is_same_v<T, float>) return "cuda-fp32";
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return "cuda-bf16";
  return "cuda-fp16";
}

template <class T>
CudaBackend<T>::CudaBackend(cuda::DeviceAllocator& allocator, cudaStream_t stream)
    : allocator_(allocator),
      stream_(stream),
      cudnn_(stream),
      cublas_(allocator, stream),
      conv_(cudnn_, allocator) {}

template <class T>
void CudaBackend<T>::set_parameters(const float* values, const T* working, float* grads) {
  LADDER_CHECK(values != nullptr && working != nullptr, "CudaBackend::set_parameters: null buffer");
  values_ = values;
  working_ = working;
  grads_ = grads;
}

template <class T>
const T* CudaBackend<T>::weights(const ParamView& p) const {
  if (!p.valid()) return nullptr;  // no such parameter (a convolution without bias)
  LADDER_CHECK(working_ != nullptr, "CudaBackend: set_parameters() was not called");
  return working_ + p.entry().offset;
}

template <class T>
float* CudaBackend<T>::grads(const ParamView& p) const {
  if (!p.valid()) return nullptr;
  LADDER_CHECK(grads_ != nullptr, "CudaBackend: a parameter gradient of a frozen network, or set_parameters() "
               "was not called");
  return grads_ + p.entry().offset;
}

template <class T>
const float* CudaBackend<T>::values_f32(const ParamView& p) const {
  LADDER_CHECK(values_ != nullptr, "CudaBackend: set_parameters() was not called");
  return values_ + p.entry().offset;
}

template <class T>
void CudaBackend<T>::add_scratch_gradient(const T* gradient, int64_t count, const ParamView& p) {
  cuda::accumulate_to_f32(count, gradient, grads(p), stream_);
}

// ---- Convolution ------------------------------------------------------------------------

template <class T>
void CudaBackend<T>::conv2d_forward(const cpu::Conv2dDims& d, const T* x, const ParamView& weight,
                                    const ParamView& bias, T* y) {
  conv_.forward(d, x, weights(weight), weights(bias), y, stream_);
}

template <class T>
void CudaBackend<T>::conv2d_backward_data(const cpu::Conv2dDims& d, const T* dy,
                                          const ParamView& weight, T* dx) {
  conv_.backward_data(d, dy, weights(weight), dx, stream_);
}

template <class T>
void CudaBackend<T>::conv2d_backward_filter(const cpu::Conv2dDims& d, const T* x, const T* dy,
                                            const ParamView& weight, const ParamView& bias) {
  if constexpr (std::is_same_v<T, float>) {
    conv_.backward_filter(d, x, dy, grads(weight), grads(bias), stream_);
  } else {
    // (w_size) weight then (cout) bias gradients in T, zeroed: cuDNN accumulates into them.
    T* dw = cuda::grow_to(grad_scratch_, allocator_, d.w_size() + d.cout);
    T* db = bias.valid() ? dw + d.w_size() : nullptr;
    LADDER_CUDA_CHECK(cudaMemsetAsync(dw, 0, (d.w_size() + d.cout) * sizeof(T), stream_));
    conv_.backward_filter(d, x, dy, dw, db, stream_);
    add_scratch_gradient(dw, d.w_size(), weight);
    if (db != nullptr) add_scratch_gradient(db, d.cout, bias);
  }
}

// ---- GroupNorm (+ SiLU) -----------------------------------------------------------------

template <class T>
void CudaBackend<T>::group_norm_forward(const cpu::GroupNormDims& d, bool silu, const T* x,
                                        const ParamView& gamma, const ParamView& beta, T* y,
                                        float* mean, float* rstd) {
  cuda::group_norm_forward(d, silu, x, values_f32(gamma), values_f32(beta), y, mean, rstd,
                           stream_);
}

template <class T>
void CudaBackend<T>::group_norm_backward(const cpu::GroupNormDims& d, bool silu, const T* x,
                                         const ParamView& gamma, const ParamView& beta,
                                         const float* mean, const float* rstd, const T* dy,
                                         T* dx) {
  float* reduction = 
      cuda::grow_to(float_scratch_, allocator_, cuda::group_norm_backward_scratch_floats(d));
  cuda::group_norm_backward(d, silu, x, values_f32(gamma), values_f32(beta), mean, rstd, dy, dx,
                            grads(gamma), grads(beta), reduction, stream_);
}

// ---- InstanceNorm2d, LeakyReLU and BatchNorm2d ------------------------------------------

template <class T>
const float* CudaBackend<T>::unit_affine(int c) {
  if (c > unit_channels_) {
    unit_channels_ = c;
    unit_affine_host_.assign(2 * static_cast<size_t>(c), 0.0f);
    std::fill(unit_affine_host_.begin(), unit_affine_host_.begin() + c, 1.0f);
    cuda::grow_to(unit_affine_, allocator_, 2 * int64_t(c));
    cuda::grow_to(discarded_, allocator_, 2 * int64_t(c));
    unit_affine_.copy_from_host_async(unit_affine_host_.data(), 2 * int64_t(c), stream_);
    discarded_.zero_async(stream_);  // written with += and never read
  }
  return unit_affine_.data();
}

template <class T>
void CudaBackend<T>::instance_norm_forward(const cpu::GroupNormDims& d, const T* x, T* y, float* mean,
                                           float* rstd) {
  const float* ones = unit_affine(d.c);
  cuda::group_norm_forward(d, false, x, ones, ones + unit_channels_, y, mean, rstd, stream_);
}

template <class T>
void CudaBackend<T>::instance_norm_backward(const cpu::GroupNormDims& d, const T* x, const float* mean,
                                            const float* rstd, const T* dy, T* dx) {
  const float* ones = unit_affine(d.c);
  float* reduction = cuda::grow_to(float_scratch_, allocator_, cuda::group_norm_backward_scratch_floats(d));
  cuda::group_norm_backward(d, false, x, ones, ones + unit_channels_, mean, rstd, dy, dx, discarded_.data(),
                            discarded_.data() + unit_channels_, reduction, stream_);
}

template <class T>
void CudaBackend<T>::leaky_relu_forward(int64_t n, double slope, const T* x, T* y) {
  cuda::leaky_relu_forward(n, static_cast<float>(slope), x, y, stream_);
}
template <class T>
void CudaBackend<T>::leaky_relu_backward(int64_t n, double slope, const T* x, const T* dy, T* dx) {
  cuda::leaky_relu_backward(n, static_cast<float>(slope), x, dy, dx, stream_);
}
template <class T>
void CudaBackend<T>::batch_norm_channel_sums(const cpu::BatchNormDims& d, const T* x, float* sum) {
  double* work = cuda::grow_to(reduction_scratch_, allocator_, cuda::batch_norm_scratch_doubles(d));
  cuda::batch_norm_channel_sums(d, x, sum, work, stream_);
}
template <class T>
void CudaBackend<T>::batch_norm_centered_squares(const cpu::BatchNormDims& d, double count, const T* x,
                                                 const float* sum, float* sq) {
  double* work = cuda::grow_to(reduction_scratch_, allocator_, cuda::batch_norm_scratch_doubles(d));
  cuda::batch_norm_centered_squares(d, count, x, sum, sq, work, stream_);
}
template <class T>
void CudaBackend<T>::batch_norm_normalize(const cpu::BatchNormDims& d, double count, const T* x, const float* sum,
                                          const float* sq, const ParamView& gamma, const ParamView& beta, T* y,
                                          float* mean, float* rstd) {
  cuda::batch_norm_normalize(d, count, x, sum, sq, values_f32(gamma), values_f32(beta), y, mean, rstd, stream_);
}
template <class T>
void CudaBackend<T>::batch_norm_update_running(int c, double count, double momentum, const float* sum,
                                               const float* sq, float* running_mean, float* running_var) {
  cuda::batch_norm_update_running(c, count, momentum, sum, sq, running_mean, running_var, stream_);
}
template <class T>
void CudaBackend<T>::batch_norm_reset_running(int c, float* running_mean, float* running_var) {
  cuda::batch_norm_reset_running(c, running_mean, running_var, stream_);
}
template <class T>
void CudaBackend<T>::batch_norm_eval_forward(const cpu::BatchNormDims& d, const T* x, const float* running_mean,
                                             const float* running_var, const ParamView& gamma,
                                             const ParamView& beta, T* y) {
  cuda::batch_norm_eval_forward(d, x, running_mean, running_var, values_f32(gamma), values_f32(beta), y, stream_);
}
template <class T>
void CudaBackend<T>::batch_norm_backward_reduce(const cpu::BatchNormDims& d, const T* x, const float* mean,
                                                const float* rstd, const T* dy, float* dsum, float* dsum_xhat,
                                                const ParamView& gamma, const ParamView& beta) {
  double* work = cuda::grow_to(reduction_scratch_, allocator_, cuda::batch_norm_scratch_doubles(d));
  cuda::batch_norm_backward_reduce(d, x, mean, rstd, dy, dsum, dsum_xhat, grads(gamma), grads(beta), work, stream_);
}
template <class T>
void CudaBackend<T>::batch_norm_backward_data(const cpu::BatchNormDims& d, double count, const T* x,
                                              const float* mean, const float* rstd, const ParamView& gamma,
                                              const T* dy, const float* dsum, const float* dsum_xhat, T* dx) {
  cuda::batch_norm_backward_data(d, count, x, mean, rstd, values_f32(gamma), dy, dsum, dsum_xhat, dx, stream_);
}

// ---- Elementwise ------------------------------------------------------------------------

template <class T>
void CudaBackend<T>::add_forward(int64_t n, const T* a, const T* b, T* y) {
  cuda::add_forward(n, a, b, y, stream_);
}

template <class T>
void CudaBackend<T>::silu_forward(int64_t n, const T* x, T* y) {
  cuda::silu_forward(n, x, y, stream_);
}
template <class T>
void CudaBackend<T>::silu_backward(int64_t n, const T* x, const T* dy, T* dx) {
  cuda::silu_backward(n, x, dy, dx, stream_);
}
template <class T>
void CudaBackend<T>::concat_channels(int64_t m, int ca, int cb, const T* a, const T* b, T* y) {
  cuda::concat_channels(m, ca, cb, a, b, y, stream_);
}
template <class T>
void CudaBackend<T>::split_channels(int64_t m, int ca, int cb, const T* dy, T* da, T* db) {
  cuda::split_channels(m, ca, cb, dy, da, db, stream_);
}
template <class T>
void CudaBackend<T>::add_per_channel(int n, int64_t hw, int c, const T* x, const T* v, T* y) {
  cuda::add_per_channel(n, hw, c, x, v, y, stream_);
}
template <class T>
void CudaBackend<T>::sum_per_channel(int n, int64_t hw, int c, const T* dy, T* dv) {
  cuda::sum_per_channel(n, hw, c, dy, dv, stream_);
}

template <class T>
void CudaBackend<T>::add_accumulate(int64_t n, const T* x, T* y) {
  cuda::add_accumulate(n, x, y, stream_);
}

template <class T>
void CudaBackend<T>::upsample_forward(int n, int h, int w, int c, const T* x, T* y) {
  cuda::upsample_nearest2x_forward(n, h, w, c, x, y, stream_);
}

template <class T>
void CudaBackend<T>::upsample_backward(int n, int h, int w, int c, const T* dy, T* dx) {
  cuda::upsample_nearest2x_backward(n, h, w, c, dy, dx, stream_);
}

// ---- Linear and attention ---------------------------------------------------------------

template <class T>
void CudaBackend<T>::linear_forward(int64_t m, int cin, int cout, const T* x,
                                    const ParamView& weight, const ParamView& bias, T* y) {
  cuda::linear_forward(cublas_, m, cin, cout, x, weights(weight), weights(bias), y, stream_);
}

template <class T>
void CudaBackend<T>::linear_backward(int64_t m, int cin, int cout, const T* x,
                                     const ParamView& weight, const ParamView& bias, const T* dy,
                                     T* dx) {
  float* reduction = 
      cuda::grow_to(float_scratch_, allocator_, cuda::linear_backward_scratch_floats(m, cout));
  if constexpr (std::is_same_v<T, float>) {
    cuda::linear_backward(cublas_, m, cin, cout, x, weights(weight), dy, dx, grads(weight),
                          grads(bias), reduction, stream_);
  } else {
    const int64_t w_size = int64_t(cout) * cin;
    T* dw = cuda::grow_to(grad_scratch_, allocator_, w_size + cout);
    T* db = dw + w_size;
    LADDER_CUDA_CHECK(cudaMemsetAsync(dw, 0, (w_size + cout) * sizeof(T), stream_));
    cuda::linear_backward(cublas_, m, cin, cout, x, weights(weight), dy, dx, dw, db, reduction,
                          stream_);
    add_scratch_gradient(dw, w_size, weight);
    add_scratch_gradient(db, cout, bias);
  }
}

template <class T>
void CudaBackend<T>::attention_forward(const cpu::AttentionDims& d, const T* q, const T* k,
                                       const T* v, FloatTensor& probs, T* o) {
  resize(probs, {d.n, d.heads, d.tokens, d.tokens});
  void* work = 
      cuda::grow_to(attention_scratch_, allocator_, cuda::attention_forward_scratch_bytes<T>(d));
  cuda::attention_forward(cublas_, d, q, k, v, probs.data(), o, work, stream_);
}

template <class T>
void CudaBackend<T>::attention_backward(const cpu::AttentionDims& d, const T* q, const T* k,
                                        const T* v, const FloatTensor& probs, const T* dout,
                                        T* dq, T* dk, T* dv) {
  void* work = 
      cuda::grow_to(attention_scratch_, allocator_, cuda::attention_backward_scratch_bytes<T>(d));
  cuda::attention_backward(cublas_, d, q, k, v, probs.data(), dout, dq, dk, dv, work, stream_);
}

// ---- Latent sampling and losses ---------------------------------------------------------

template <class T>
void CudaBackend<T>::reparameterize_forward(int64_t n, const T* mu, const T* logvar,
                                            const T* eps, T* z) {
  cuda::reparameterize_forward(n, mu, logvar, eps, z, stream_);
}

template <class T>
void CudaBackend<T>::reparameterize_backward(int64_t n, const T* logvar, const T* eps,
                                             const T* dz, T* dmu, T* dlogvar) {
  cuda::reparameterize_backward(n, logvar, eps, dz, dmu, dlogvar, stream_);
}

template <class T>
double CudaBackend<T>::l1_forward(int64_t n, const T* x, const T* target) {
  double* work = cuda::grow_to(reduction_scratch_, allocator_, cuda::reduction_scratch_doubles(n));
  return cuda::l1_forward(n, x, target, work, stream_);
}

template <class T>
void CudaBackend<T>::l1_backward(int64_t n, const T* x, const T* target, double scale, T* dx) {
  cuda::l1_backward(n, x, target, static_cast<float>(scale), dx, stream_);
}

template <class T>
void CudaBackend<T>::max_pool2d_forward(const cpu::MaxPoolDims& d, const T* x, T* y) {
  cuda::max_pool2d_forward(d, x, y, stream_);
}

template <class T>
void CudaBackend<T>::max_pool2d_backward(const cpu::MaxPoolDims& d, const T* x, const T* dy, T* dx) {
  cuda::max_pool2d_backward(d, x, dy, dx, stream_);
}

template <class T>
void CudaBackend<T>::channel_standardize_forward(int64_t m, int cin, const float* shift, const float* scale,
                                                 const T* x, T* y) {
  cuda::channel_standardize_forward(m, cin, shift, scale, x, y, stream_);
}

template <class T>
void CudaBackend<T>::channel_standardize_backward(int64_t m, int cin, const float* scale, const T* dy, T* dx) {
  cuda::channel_standardize_backward(m, cin, scale, dy, dx, stream_);
}

template <class T>
void CudaBackend<T>::channel_unit_norm_forward(int64_t m, int c, double eps, const T* x, T* y, T* norm) {
  cuda::channel_unit_norm_forward(m, c, eps, x, y, norm, stream_);
}

template <class T>
void CudaBackend<T>::channel_unit_norm_backward(int64_t m, int c, double eps, const T* x, const T* norm,
                                                const T* dy, T* dx) {
  cuda::channel_unit_norm_backward(m, c, eps, x, norm, dy, dx, stream_);
}

template <class T>
void CudaBackend<T>::weighted_distance_accumulate(int n, int64_t hw, int c, const T* a, const T* b,
                                                  const ParamView& w, double* d) {
  double* work = cuda::grow_to(reduction_scratch_, allocator_, cuda::weighted_distance_scratch_doubles(n, hw, c));
  cuda::weighted_distance_accumulate(n, hw, c, a, b, values_f32(w), d, work, stream_);
}

template <class T>
void CudaBackend<T>::weighted_distance_backward(int n, int64_t hw, int c, const T* a, const T* b,
                                                const ParamView& w, const double* ddist, T* da) {
  cuda::weighted_distance_backward(n, hw, c, a, b, values_f32(w), ddist, da, stream_);
}

template <class T>
double CudaBackend<T>::adversarial_loss_forward(AdversarialCriterion criterion, bool real, int64_t n,
                                                const T* logits) {
  double* work = cuda::grow_to(reduction_scratch_, allocator_, cuda::reduction_scratch_doubles(n));
  return cuda::adversarial_loss_forward(criterion, real, n, logits, work, stream_);
}

template <class T>
void CudaBackend<T>::adversarial_loss_backward(AdversarialCriterion criterion, bool real, int64_t n,
                                               const T* logits, double scale, T* dlogits) {
  cuda::adversarial_loss_backward(criterion, real, n, logits, static_cast<float>(scale), dlogits, stream_);
}

template <class T>
double CudaBackend<T>::mse_forward(int64_t n, const T* x, const T* target) {
  double* work = cuda::grow_to(reduction_scratch_, allocator_, cuda::reduction_scratch_doubles(n));
  return cuda::mse_forward(n, x, target, work, stream_);
}

template <class T>
void CudaBackend<T>::mse_backward(int64_t n, const T* x, const T* target, double scale, T* dx) {
  cuda::mse_backward(n, x, target, static_cast<float>(scale), dx, stream_);
}

template <class T>
double CudaBackend<T>::kl_forward(int64_t n, const T* mu, const T* logvar) {
  double* work = cuda::grow_to(reduction_scratch_, allocator_, cuda::reduction_scratch_doubles(n));
  return cuda::kl_forward(n, mu, logvar, work, stream_);
}

template <class T>
void CudaBackend<T>::kl_backward_accumulate(int64_t n, const T* mu, const T* logvar,
                                            double scale, T* dmu, T* dlogvar) {
  cuda::kl_backward_accumulate(n, mu, logvar, static_cast<float>(scale), dmu, dlogvar, stream_);
}

// ---- Host boundary ----------------------------------------------------------------------

template <class T>
void CudaBackend<T>::channel_affine(int64_t m, int c, const float* x, const float* scale, const float* shift,
                                   bool relu, float* y) {
  cuda::channel_affine(m, c, x, scale, shift, relu, y, stream_);
}

template <class T>
void CudaBackend<T>::pool3x3_same(cpu::SamePool kind, int n, int h, int w, int c, const float* x, float* y) {
  cuda::pool3x3_same(kind, n, h, w, c, x, y, stream_);
}

template <class T>
void CudaBackend<T>::global_average_pool(int n, int64_t pixels, int c, const float* x, float* y) {
  cuda::global_average_pool(n, pixels, c, x, y, stream_);
}

template <class T>
void CudaBackend<T>::copy_channels(int64_t m, int c_src, const float* src, int c_dst, int offset, float* dst) {
  cuda::copy_channels(m, c_src, src, c_dst, offset, dst, stream_);
}

template <class T>
void CudaBackend<T>::resize_bilinear(cpu::BilinearMode mode, int n, int h, int w, int c, const float* x, int out_h,
                                    int out_w, float* y) {
  cuda::resize_bilinear(mode, n, h, w, c, x, out_h, out_w, y, stream_);
}

template <class T>
void CudaBackend<T>::load_values(const float* host, Shape shape, Tensor& out) {
  const int64_t n = shape.numel();
  float* device_values = cuda::grow_to(staging_, allocator_, n);
  LADDER_CUDA_CHECK(cudaMemcpyAsync(device_values, host, n * sizeof(float),
                                    cudaMemcpyHostToDevice, stream_));
  resize(out, shape);
  cuda::convert(n, device_values, out.data(), stream_);
}

template <class T>
void CudaBackend<T>::to_host(const Tensor& t, TensorF& host) {
  const int64_t n = t.numel();
  float* device_values = cuda::grow_to(staging_, allocator_, n);
  cuda::convert(n, t.data(), device_values, stream_);
  host.reshape_or_allocate(t.shape());
  LADDER_CUDA_CHECK(cudaMemcpyAsync(host.data(), device_values, n * sizeof(float),
                                    cudaMemcpyDeviceToHost, stream_));
  LADDER_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

template <class T>
void CudaBackend<T>::floats_to_host(const FloatTensor& t, float* host) {
  LADDER_CUDA_CHECK(cudaMemcpyAsync(host, t.data(), t.numel() * sizeof(float), cudaMemcpyDeviceToHost, stream_));
  LADDER_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

template <class T>
void CudaBackend<T>::floats_from_host(const float* host, FloatTensor& t) {
  LADDER_CUDA_CHECK(cudaMemcpyAsync(t.data(), host, t.numel() * sizeof(float), cudaMemcpyHostToDevice, stream_));
  LADDER_CUDA_CHECK(cudaStreamSynchronize(stream_));  // `host` may be pageable and short-lived
}

template class CudaBackend<float>;
template class CudaBackend<__nv_bfloat16>;
template class CudaBackend<__half>;

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
