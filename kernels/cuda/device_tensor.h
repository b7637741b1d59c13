// Why this file exists: the GPU twin of ladder::Tensor: an NHWC shape over a DeviceBuffer.
// Allocation needs the allocator, so tensors are sized through resize(allocator, shape)
// (the CUDA model backend does it); like the host tensor, the memory is only reallocated when
// the element count changes, and release() frees it (activation recompute).
//
// Plain C++ header (no CUDA syntax). Only in CUDA builds.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cstdint>

#include "core/tensor.h"
#include "kernels/cuda/device_memory.h"

namespace ladder::cuda {

template <class T>
class DeviceTensor {
 public:
  const Shape& shape() const { return shape_; }
  int64_t numel() const { return shape_.numel(); }
  T* data() { return storage_.data(); }
  const T* data() const { return storage_.data(); }

  // Gives the tensor `shape`; contents are uninitialised after a reallocation.
  void resize(DeviceAllocator& allocator, Shape shape) {
    if (shape.numel() != storage_.size()) {
      storage_.reset();  // free first: the peak holds one copy, not two
      storage_ = DeviceBuffer<T>(allocator, shape.numel());
    }
    shape_ = shape;
  }
  void release() {
    storage_.reset();
    shape_ = Shape{0, 0, 0, 0};
  }

 private:
  Shape shape_{0, 0, 0, 0};
  DeviceBuffer<T> storage_;
};

}  // namespace ladder::cuda

#endif  // LADDER_WITH_CUDA
