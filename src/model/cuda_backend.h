// Why this file exists: the GPU backend of the model layers, the twin of model/cpu_backend.h
// (same members, same contracts) on device memory: cuDNN convolutions, cuBLAS linear and
// attention, and our kernels (kernels/cuda), all enqueued on one compute stream.
//
// T is the compute precision of activations and of the working copy of the parameters
// (float, __nv_bfloat16 or __half). Statistics, attention probabilities, the fp32 parameter
// values and the fp32 gradient buffer stay fp32 whatever T is (BRIEF §3):
//   - convolutions and linears read weights from the working copy (T);
//   - GroupNorm reads γ and β from the fp32 values;
//   - every parameter gradient is accumulated into the fp32 gradient buffer: for T = float
//     directly; otherwise cuDNN/cuBLAS write the layer's gradient in T into a scratch, which
//     is then added into fp32 (so micro-batches accumulate in fp32, never in bf16).
// The parameter buffers belong to the caller (the trainer or a test), which points the
// backend at them with set_parameters() before the first op.
//
// Only in CUDA builds. Not thread-safe: one backend per stream.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "core/params.h"
#include "core/tensor.h"
#include "kernels/cpu/feature_ops.h"
#include "kernels/cpu/ops.h"
#include "kernels/cuda/conv2d.h"
#include "kernels/cuda/cublas_handle.h"
#include "kernels/cuda/cudnn_handle.h"
#include "kernels/cuda/device_memory.h"
#include "kernels/cuda/device_tensor.h"

namespace ladder {

template <class T>
class CudaBackend {
 public:
  using Value = T;
  using Tensor = cuda::DeviceTensor<T>;
  using FloatTensor = cuda::DeviceTensor<float>;

  static const char* name();  // "cuda-fp32", "cuda-bf16", "cuda-fp16"

  // `allocator` (every device allocation) and `stream` must outlive the backend.
  CudaBackend(cuda::DeviceAllocator& allocator, cudaStream_t stream);

  // Device pointers to the flat buffers, each (padded_count) elements at the ParamStore's
  // offsets: fp32 values, the compute-precision working copy (for T = float, pass `values`
  // again) and the fp32 gradients (null for a frozen network, which asks for none).
  void set_parameters(const float* values, const T* working, float* grads);

  cuda::DeviceAllocator& allocator() { return allocator_; }
  cudaStream_t stream() const { return stream_; }

  template <class U>
  void resize(cuda::DeviceTensor<U>& t, Shape shape) {
    t.resize(allocator_, shape);
  }

  // ---- The ops (contracts as in model/cpu_backend.h and kernels/cpu/ops.h).
  void conv2d_forward(const cpu::Conv2dDims& d, const T* x, const ParamView& weight,
                      const ParamView& bias, T* y);
  void conv2d_backward_data(const cpu::Conv2dDims& d, const T* dy, const ParamView& weight,
                            T* dx);
  void conv2d_backward_filter(const cpu::Conv2dDims& d, const T* x, const T* dy,
                              const ParamView& weight, const ParamView& bias);

  void group_norm_forward(const cpu::GroupNormDims& d, bool silu, const T* x,
                          const ParamView& gamma, const ParamView& beta, T* y, float* mean,
                          float* rstd);
  void group_norm_backward(const cpu::GroupNormDims& d, bool silu, const T* x,
                           const ParamView& gamma, const ParamView& beta, const float* mean,
                           const float* rstd, const T* dy, T* dx);

  // LeakyReLU and BatchNorm2d (the PatchDiscriminator); statistics, sums, running buffers fp32.
  // InstanceNorm2d without affine parameters: GroupNorm with groups = c, γ = 1, β = 0.
  void instance_norm_forward(const cpu::GroupNormDims& d, const T* x, T* y, float* mean, float* rstd);
  void instance_norm_backward(const cpu::GroupNormDims& d, const T* x, const float* mean, const float* rstd,
                              const T* dy, T* dx);
  void leaky_relu_forward(int64_t n, double slope, const T* x, T* y);
  void leaky_relu_backward(int64_t n, double slope, const T* x, const T* dy, T* dx);
  // ---- LPIPS (model/lpips.h): max pooling and the per-pixel head, as CpuBackend's. shift,
  // scale (3) host constants; norm (m) in T; the distances d, ddist (N) host doubles
  // (weighted_distance_accumulate waits for the stream). `w` is read from the fp32 values.
  void max_pool2d_forward(const cpu::MaxPoolDims& d, const T* x, T* y);
  void max_pool2d_backward(const cpu::MaxPoolDims& d, const T* x, const T* dy, T* dx);
  void channel_standardize_forward(int64_t m, int cin, const float* shift, const float* scale, const T* x, T* y);
  void channel_standardize_backward(int64_t m, int cin, const float* scale, const T* dy, T* dx);
  void channel_unit_norm_forward(int64_t m, int c, double eps, const T* x, T* y, T* norm);
  void channel_unit_norm_backward(int64_t m, int c, double eps, const T* x, const T* norm, const T* dy, T* dx);
  void weighted_distance_accumulate(int n, int64_t hw, int c, const T* a, const T* b, const ParamView& w, double* d);
  void weighted_distance_backward(int n, int64_t hw, int c, const T* a, const T* b, const ParamView& w,
                                  const double* ddist, T* da);
  void batch_norm_channel_sums(const cpu::BatchNormDims& d, const T* x, float* sum);
  void batch_norm_centered_squares(const cpu::BatchNormDims& d, double count, const T* x, const float* sum,
                                   float* sq);
  void batch_norm_normalize(const cpu::BatchNormDims& d, double count, const T* x, const float* sum,
                            const float* sq, const ParamView& gamma, const ParamView& beta, T* y, float* mean,
                            float* rstd);
  void batch_norm_update_running(int c, double count, double momentum, const float* sum, const float* sq,
                                 float* running_mean, float* running_var);
  void batch_norm_reset_running(int c, float* running_mean, float* running_var);
  void batch_norm_eval_forward(const cpu::BatchNormDims& d, const T* x, const float* running_mean,
                               const float* running_var, const ParamView& gamma, const ParamView& beta, T* y);
  void batch_norm_backward_reduce(const cpu::BatchNormDims& d, const T* x, const float* mean, const float* rstd,
                                  const T* dy, float* dsum, float* dsum_xhat, const ParamView& gamma,
                                  const ParamView& beta);
  void batch_norm_backward_data(const cpu::BatchNormDims& d, double count, const T* x, const float* mean,
                                const float* rstd, const ParamView& gamma, const T* dy, const float* dsum,
                                const float* dsum_xhat, T* dx);

  void add_forward(int64_t n, const T* a, const T* b, T* y);
  void add_accumulate(int64_t n, const T* x, T* y);
  void silu_forward(int64_t n, const T* x, T* y);
  void silu_backward(int64_t n, const T* x, const T* dy, T* dx);
  void concat_channels(int64_t m, int ca, int cb, const T* a, const T* b, T* y);
  void split_channels(int64_t m, int ca, int cb, const T* dy, T* da, T* db);
  void add_per_channel(int n, int64_t hw, int c, const T* x, const T* v, T* y);
  void sum_per_channel(int n, int64_t hw, int c, const T* dy, T* dv);
  void upsample_forward(int n, int h, int w, int c, const T* x, T* y);
  void upsample_backward(int n, int h, int w, int c, const T* dy, T* dx);

  void linear_forward(int64_t m, int cin, int cout, const T* x, const ParamView& weight,
                      const ParamView& bias, T* y);
  void linear_backward(int64_t m, int cin, int cout, const T* x, const ParamView& weight,
                       const ParamView& bias, const T* dy, T* dx);
  void attention_forward(const cpu::AttentionDims& d, const T* q, const T* k, const T* v,
                         FloatTensor& probs, T* o);
  void attention_backward(const cpu::AttentionDims& d, const T* q, const T* k, const T* v,
                          const FloatTensor& probs, const T* dout, T* dq, T* dk, T* dv);

  void reparameterize_forward(int64_t n, const T* mu, const T* logvar, const T* eps, T* z);
  void reparameterize_backward(int64_t n, const T* logvar, const T* eps, const T* dz, T* dmu,
                               T* dlogvar);
  // The loss sums wait for the stream (they return host values).
  double l1_forward(int64_t n, const T* x, const T* target);
  void l1_backward(int64_t n, const T* x, const T* target, double scale, T* dx);
  double adversarial_loss_forward(AdversarialCriterion criterion, bool real, int64_t n, const T* logits);
  void adversarial_loss_backward(AdversarialCriterion criterion, bool real, int64_t n, const T* logits,
                                 double scale, T* dlogits);
  double mse_forward(int64_t n, const T* x, const T* target);
  void mse_backward(int64_t n, const T* x, const T* target, double scale, T* dx);
  double kl_forward(int64_t n, const T* mu, const T* logvar);
  void kl_backward_accumulate(int64_t n, const T* mu, const T* logvar, double scale, T* dmu,
                              T* dlogvar);

  // ---- Forward-only ops of the feature networks (InceptionV3), fp32 whatever T is
  // (kernels/cpu/feature_ops.h).
  void channel_affine(int64_t m, int c, const float* x, const float* scale, const float* shift, bool relu,
                      float* y);
  void pool3x3_same(cpu::SamePool kind, int n, int h, int w, int c, const float* x, float* y);
  void global_average_pool(int n, int64_t pixels, int c, const float* x, float* y);
  void copy_channels(int64_t m, int c_src, const float* src, int c_dst, int offset, float* dst);
  void resize_bilinear(cpu::BilinearMode mode, int n, int h, int w, int c, const float* x, int out_h, int out_w,
                       float* y);

  // ---- Host boundary. host fp32 → T on the device (images in [−1, 1], the latent noise).
  void load_values(const float* host, Shape shape, Tensor& out);
  // Device → host fp32 (samples); waits for the stream.
  void to_host(const Tensor& t, TensorF& host);
  // fp32 side tensors (BatchNorm's running statistics) to and from t.numel() host floats;
  // both wait for the stream.
  void floats_to_host(const FloatTensor& t, float* host);
  void floats_from_host(const float* host, FloatTensor& t);

 private:
  const T* weights(const ParamView& p) const;
  float* grads(const ParamView& p) const;
  const float* values_f32(const ParamView& p) const;
  // Adds a layer's gradient of `count` elements, produced in T in grad_scratch_, into the
  // fp32 gradient of `p`.
  void add_scratch_gradient(const T* scratch, int64_t count, const ParamView& p);

  cuda::DeviceAllocator& allocator_;
  cudaStream_t stream_;
  cuda::CudnnHandle cudnn_;
  cuda::CublasHandle cublas_;
  cuda::CudnnConv2d conv_;
  const float* values_ = nullptr;
  const T* working_ = nullptr;
  float* grads_ = nullptr;
  cuda::DeviceBuffer<T> grad_scratch_;          // weight + bias gradients in T (T ≠ float)
  cuda::DeviceBuffer<float> float_scratch_;     // GroupNorm / linear-bias reductions
  // Instance norm's fixed affine: (2, unit_channels_) ones then zeros, and a sink of the same
  // size for their gradients; the host copy stays alive for the asynchronous upload.
  const float* unit_affine(int c);
  cuda::DeviceBuffer<float> unit_affine_, discarded_;
  std::vector<float> unit_affine_host_;
  int unit_channels_ = 0;
  cuda::DeviceBuffer<unsigned char> attention_scratch_;
  cuda::DeviceBuffer<double> reduction_scratch_;  // loss sums, BatchNorm partial sums
  cuda::DeviceBuffer<float> staging_;           // fp32 values on their way in or out
};

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
