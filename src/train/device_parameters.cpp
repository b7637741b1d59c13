// Why this file exists: allocation, upload and refresh of a GPU rank's flat buffers.
#ifdef LADDER_WITH_CUDA
#include "train/device_parameters.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <vector>

#include "kernels/cuda/ops.h"

namespace ladder {

template <class T>
DeviceParameters<T>::DeviceParameters(cuda::DeviceAllocator& allocator, const ParamStore& store,
                                      cudaStream_t stream)
    : values_(allocator, store.padded_count()) {
  LADDER_CHECK(store.allocated() && store.padded_count() > 0,
               "DeviceParameters: the parameter store is not allocated");
  values_.copy_from_host_async(store.values(), store.padded_count(), stream);
  std::vector<uint8_t> decay;
  if (!store.frozen()) {  // what training needs: gradients and the decay mask
    grads_ = cuda::DeviceBuffer<float>(allocator, store.padded_count());
    decay_ = cuda::DeviceBuffer<uint8_t>(allocator, store.padded_count());
    decay.assign(static_cast<size_t>(store.padded_count()), 0);  // padding: 0
    for (const ParamEntry& entry : store.entries())
      if (entry.decay)
        std::fill(decay.begin() + entry.offset, decay.begin() + entry.offset + entry.numel, 1);
    decay_.copy_from_host_async(decay.data(), store.padded_count(), stream);
    grads_.zero_async(stream);
  }
  if constexpr (!std::is_same_v<T, float>) {
    working_ = cuda::DeviceBuffer<T>(allocator, store.padded_count());
    refresh_working(stream);
  }
  LADDER_CUDA_CHECK(cudaStreamSynchronize(stream));  // `decay` and the host values may go
}

template <class T>
const T* DeviceParameters<T>::working() const {
  if constexpr (std::is_same_v<T, float>)
    return values_.data();
  else
    return working_.data();
}

template <class T>
void DeviceParameters<T>::refresh_working(cudaStream_t stream) {
  if constexpr (!std::is_same_v<T, float>)
    cuda::convert(values_.size(), values_.data(), working_.data(), stream);
}

template <class T>
void DeviceParameters<T>::download_values(float* host, cudaStream_t stream) const {
  values_.copy_to_host_async(host, values_.size(), stream);
  LADDER_CUDA_CHECK(cudaStreamSynchronize(stream));
}

template <class T>
void DeviceParameters<T>::download_grads(float* host, cudaStream_t stream) const {
  grads_.copy_to_host_async(host, grads_.size(), stream);
  LADDER_CUDA_CHECK(cudaStreamSynchronize(stream));
}

template class DeviceParameters<float>;
template class DeviceParameters<__nv_bfloat16>;
template class DeviceParameters<__half>;

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
