// Why this file exists: the device implementation of FlatMemory.
#ifdef LADDER_WITH_CUDA
#include "train/device_flat_memory.h"

#include "core/cuda_check.h"
#include "kernels/cuda/ops.h"

namespace ladder {

DeviceFlatMemory::DeviceFlatMemory(cuda::DeviceAllocator& allocator, cudaStream_t stream,
                                   float* values, float* grads)
    : allocator_(allocator), stream_(stream), values_(values), grads_(grads) {}

FloatArray DeviceFlatMemory::allocate(int64_t count) {
  auto* buffer = new cuda::DeviceBuffer<float>(allocator_, count);
  buffer->zero_async(stream_);
  return FloatArray(buffer->data(), count, [buffer] { delete buffer; });
}

void DeviceFlatMemory::zero(float* data, int64_t count) {
  if (count > 0) LADDER_CUDA_CHECK(cudaMemsetAsync(data, 0, count * sizeof(float), stream_));
}

void DeviceFlatMemory::add(const float* x, float* y, int64_t count) {
  if (count > 0) cuda::accumulate_to_f32(count, x, y, stream_);
}

void DeviceFlatMemory::scale(float* data, int64_t count, float factor) {
  if (count > 0) cuda::scale_inplace(count, factor, data, stream_);
}

double DeviceFlatMemory::squared_norm(const float* data, int64_t count) {
  if (count == 0) return 0;
  double* scratch = 
      cuda::grow_to(norm_scratch_, allocator_, cuda::reduction_scratch_doubles(count));
  return cuda::squared_norm(count, data, scratch, stream_);
}

void DeviceFlatMemory::synchronize() { LADDER_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

void DeviceFlatMemory::download(const float* data, float* host, int64_t count) {
  if (count == 0) return;
  LADDER_CUDA_CHECK(cudaMemcpyAsync(host, data, static_cast<size_t>(count) * sizeof(float),
                                    cudaMemcpyDeviceToHost, stream_));
  synchronize();
}

void DeviceFlatMemory::upload(const float* host, float* data, int64_t count) {
  if (count == 0) return;
  LADDER_CUDA_CHECK(cudaMemcpyAsync(data, host, static_cast<size_t>(count) * sizeof(float),
                                    cudaMemcpyHostToDevice, stream_));
  synchronize();
}

void DeviceFlatMemory::lerp(const float* x, float* y, int64_t count, float t) {
  if (count > 0) cuda::lerp_inplace(count, x, t, y, stream_);
}

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
