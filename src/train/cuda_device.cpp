// Why this file exists: the implementation of CudaDevice, the part both models share.
#ifdef LADDER_WITH_CUDA
#include "train/cuda_device.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <string>
#include <type_traits>

#include "train/cuda_adamw.h"

namespace ladder {

template <class T, class M, class I>
CudaDevice<T, M, I>::CurrentDevice::CurrentDevice(int index) : gpu(index) {
  int count = 0;
  LADDER_CUDA_CHECK(cudaGetDeviceCount(&count));
  LADDER_CHECK_USAGE(count > 0, "run.device = cuda, but no GPU is visible");
  gpu = index % count;  // ranks beyond the GPU count share (the MPI backend stages through host)
  LADDER_CUDA_CHECK(cudaSetDevice(gpu));
}

template <class T, class M, class I>
CudaDevice<T, M, I>::CudaDevice(const Config& config, ParamStore& store, int gpu)
    : device_(gpu), backend_(allocator_, stream_), model_(config.model, store, backend_) {}

template <class T, class M, class I>
std::string CudaDevice<T, M, I>::name() const {
  return "cuda:" + std::to_string(device_.gpu);
}

template <class T, class M, class I>
std::string CudaDevice<T, M, I>::precision() const {
  if constexpr (std::is_same_v<T, float>) return "fp32";
  if constexpr (std::is_same_v<T, __nv_bfloat16>) return "bf16";
  return "fp16";
}

template <class T, class M, class I>
void CudaDevice<T, M, I>::attach_parameters(ParamStore& store) {
  params_ = std::make_unique<DeviceParameters<T>>(allocator_, store, stream_);
  backend_.set_parameters(params_->values(), params_->working(), params_->grads());
  memory_ = std::make_unique<DeviceFlatMemory>(allocator_, stream_, params_->values(),
                                               params_->grads());
}

template <class T, class M, class I>
std::unique_ptr<Optimizer> CudaDevice<T, M, I>::make_optimizer(const ParamStore& /*store*/,
                                                               std::vector<Range> owned,
                                                               AdamWSettings settings) {
  LADDER_CHECK(params_ != nullptr, "CudaDevice: make_optimizer before attach_parameters");
  return std::make_unique<CudaAdamW>(allocator_, stream_, std::move(owned), settings,
                                     params_->decay_mask());
}

template <class T, class M, class I>
void CudaDevice<T, M, I>::download_parameters(ParamStore& store) {
  params_->download_values(store.values(), stream_);
}

template <class T, class M, class I>
data::BufferPinner CudaDevice<T, M, I>::buffer_pinner() {
  return [](void* data, int64_t bytes) -> std::shared_ptr<void> {
    LADDER_CUDA_CHECK(cudaHostRegister(data, static_cast<size_t>(bytes), cudaHostRegisterPortable));
    return std::shared_ptr<void>(data, [](void* pinned) {
      // A destructor reports nothing; clear the error so the next launch check does not see it.
      if (cudaHostUnregister(pinned) != cudaSuccess) (void)cudaGetLastError();
    });
  };
}

template <class T, class M, class I>
typename CudaDevice<T, M, I>::Inputs& CudaDevice<T, M, I>::bring_inputs(const void* raw,
                                                                         int64_t raw_count,
                                                                         const float* floats,
                                                                         int64_t float_count) {
  Inputs& in = inputs_[next_inputs_];
  next_inputs_ ^= 1;
  if (in.raw.size() < raw_count || in.floats.size() < float_count) {  // a new rung
    LADDER_CUDA_CHECK(cudaDeviceSynchronize());  // nothing reads the old buffers any more
    cuda::grow_to(in.raw, allocator_, raw_count);
    cuda::grow_to(in.floats, allocator_, float_count);
  }
  copy_stream_.wait(in.consumed);  // the compute stream has finished reading this slot
  in.raw.copy_from_host_async(static_cast<const uint8_t*>(raw), raw_count, copy_stream_);  // DMA
  in.floats.copy_from_host_async(floats, float_count, copy_stream_);
  in.copied.record(copy_stream_);
  stream_.wait(in.copied);
  // The caller may refill its buffers once the copies have read them (not the compute).
  in.copied.synchronize();
  return in;
}

template <class T, class M, class I>
void CudaDevice<T, M, I>::inputs_consumed(Inputs& in) {
  in.consumed.record(stream_);
}

template <class T, class M, class I>
const typename CudaDevice<T, M, I>::Tensor& CudaDevice<T, M, I>::upload(const TensorF& host) {
  backend_.load_values(host.data(), host.shape(), evaluation_input_);
  return evaluation_input_;
}

template <class T, class M, class I>
int64_t CudaDevice<T, M, I>::memory_capacity() const {
  size_t free_bytes = 0, total_bytes = 0;
  LADDER_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  return static_cast<int64_t>(total_bytes);
}

#define LADDER_INSTANTIATE(T)                                                  \
  template class CudaDevice<T, AutoencoderKL<CudaBackend<T>>, AutoencoderDevice>; \
  template class CudaDevice<T, DiffusionUNet<CudaBackend<T>>, UNetDevice>;
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(__nv_bfloat16)
LADDER_INSTANTIATE(__half)
#undef LADDER_INSTANTIATE

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
