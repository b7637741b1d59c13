// Why this file exists: the implementation of CudaDevice.
#ifdef LADDER_WITH_CUDA
#include "train/cuda_device.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>
#include <type_traits>

#include "kernels/cuda/ops.h"
#include "train/cuda_adamw.h"

namespace ladder {

template <class T>
CudaDevice<T>::CurrentDevice::CurrentDevice(int index) : gpu(index) {
  int count = 0;
  LADDER_CUDA_CHECK(cudaGetDeviceCount(&count));
  LADDER_CHECK_USAGE(count > 0, "run.device = cuda, but no GPU is visible");
  gpu = index % count;  // ranks beyond the GPU count share (the MPI backend stages through host)
  LADDER_CUDA_CHECK(cudaSetDevice(gpu));
}

template <class T>
CudaDevice<T>::CudaDevice(const ModelConfig& config, ParamStore& store, int gpu)
    : device_(gpu), backend_(allocator_, stream_), model_(config, store, backend_) {}

template <class T>
std::string CudaDevice<T>::name() const {
  return "cuda:" + std::to_string(device_.gpu);
}

template <class T>
std::string CudaDevice<T>::precision() const {
  if constexpr (std::is_same_v<T, float>) return "fp32";
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return "bf16";
  return "fp16";
}

template <class T>
void CudaDevice<T>::attach_parameters(ParamStore& store) {
  params_ = std::make_unique<DeviceParameters<T>>(allocator_, store, stream_);
  backend_.set_parameters(params_->values(), params_->working(), params_->grads());
  memory_ = std::make_unique<DeviceFlatMemory>(allocator_, stream_, params_->values(),
                                               params_->grads());
}

template <class T>
std::unique_ptr<Optimizer> CudaDevice<T>::make_optimizer(const ParamStore& /*store*/,
                                                         std::vector<Range> owned,
                                                         AdamWSettings settings) {
  LADDER_CHECK(params_ != nullptr, "CudaDevice: make_optimizer before attach_parameters");
  return std::make_unique<CudaAdamW>(allocator_, stream_, std::move(owned), settings,
                                     params_->decay_mask());
}

template <class T>
void CudaDevice<T>::download_parameters(ParamStore& store) {
  params_->download_values(store.values(), stream_);
}

template <class T>
data::BufferPinner CudaDevice<T>::buffer_pinner() {
  return [](void* data, int64_t bytes) -> std::shared_ptr<void> {
    LADDER_CUDA_CHECK(cudaHostRegister(data, static_cast<size_t>(bytes), cudaHostRegisterPortable));
    return std::shared_ptr<void>(data, [](void* pinned) {
      // A destructor reports nothing; clear the error so the next launch check does not see it.
      if (cudaHostUnregister(pinned) != cudaSuccess) (void)cudaGetLastError();
    });
  };
}

template <class T>
void CudaDevice<T>::copy_inputs(int slot, const uint8_t* pixels, int64_t pixel_count,
                                const float* noise, int64_t noise_count) {
  Inputs& in = inputs_[slot];
  if (in.pixels.size() < pixel_count || in.noise.size() < noise_count) {  // a new rung
    LADDER_CUDA_CHECK(cudaDeviceSynchronize());  // nothing reads the old buffers any more
    cuda::grow_to(in.pixels, allocator_, pixel_count);
    cuda::grow_to(in.noise, allocator_, noise_count);
  }
  copy_stream_.wait(in.consumed);  // the compute stream has finished reading this slot
  in.pixels.copy_from_host_async(pixels, pixel_count, copy_stream_);  // DMA from the pinned ring
  in.noise.copy_from_host_async(noise, noise_count, copy_stream_);
  in.copied.record(copy_stream_);
}

template <class T>
AutoencoderLossSums CudaDevice<T>::micro_step(const uint8_t* pixels, const Shape& images,
                                              const float* noise, double grad_scale,
                                              double kl_weight) {
  const int slot = next_inputs_;
  next_inputs_ ^= 1;
  const Shape latent = model_.latent_shape(images);
  copy_inputs(slot, pixels, images.numel(), noise, latent.numel());
  Inputs& in = inputs_[slot];
  stream_.wait(in.copied);
  backend_.resize(images_, images);
  backend_.resize(noise_, latent);
  cuda::normalize_images(images.numel(), in.pixels.data(), images_.data(), stream_);
  cuda::convert(latent.numel(), in.noise.data(), noise_.data(), stream_);
  in.consumed.record(stream_);
  // The caller may refill its buffers once the copies have read them (not the compute).
  in.copied.synchronize();
  return model_.forward_backward(images_, noise_, grad_scale, kl_weight);
}

template <class T>
const typename CudaBackend<T>::Tensor& CudaDevice<T>::upload(const TensorF& host) {
  backend_.load_values(host.data(), host.shape(), evaluation_input_);
  return evaluation_input_;
}

template <class T>
void CudaDevice<T>::reconstruct(const TensorF& images, TensorF& out) {
  backend_.to_host(model_.reconstruct(upload(images)), out);
}

template <class T>
void CudaDevice<T>::encode(const TensorF& images, TensorF& mu, TensorF& logvar) {
  const auto [m, v] = model_.encode(upload(images));
  backend_.to_host(*m, mu);
  backend_.to_host(*v, logvar);
}

template <class T>
void CudaDevice<T>::decode(const TensorF& latents, TensorF& images) {
  backend_.to_host(model_.decode(upload(latents)), images);
}

template <class T>
int64_t CudaDevice<T>::memory_capacity() const {
  size_t free_bytes = 0, total_bytes = 0;
  LADDER_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return static_cast<int64_t>(total_bytes);
}

template class CudaDevice<float>;
template class CudaDevice<__nv_bfloat16>;
template class CudaDevice<__half>;

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
