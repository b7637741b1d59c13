// Why this file exists: FlatMemory on a GPU: the flat fp32 buffers of DeviceParameters and the
// vector ops GradientSync needs, as kernels on the rank's compute stream. Only in CUDA builds.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cuda_runtime.h>

#include "kernels/cuda/device_memory.h"
#include "train/flat_memory.h"

namespace ladder {

class DeviceFlatMemory final : public FlatMemory {
 public:
  // values, grads: (padded) device buffers owned elsewhere (DeviceParameters).
  DeviceFlatMemory(cuda::DeviceAllocator& allocator, cudaStream_t stream, float* values,
                   float* grads);

  bool on_device() const override { return true; }
  float* values() override { return values_; }
  float* grads() override { return grads_; }
  FloatArray allocate(int64_t count) override;
  void zero(float* data, int64_t count) override;
  void add(const float* x, float* y, int64_t count) override;
  void scale(float* data, int64_t count, float factor) override;
  double squared_norm(const float* data, int64_t count) override;
  void synchronize() override;
  void* stream() override { return stream_; }
  void download(const float* data, float* host, int64_t count) override;
  void upload(const float* host, float* data, int64_t count) override;
  void lerp(const float* x, float* y, int64_t count, float t) override;

 private:
  cuda::DeviceAllocator& allocator_;
  cudaStream_t stream_;
  float* values_;
  float* grads_;
  cuda::DeviceBuffer<double> norm_scratch_;  // grow-only
};

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
