// Why this file exists: the flat parameter buffers of a GPU rank (BRIEF §3), mirroring the
// host ParamStore at the same offsets:
//   values   (padded) fp32 parameters: what the optimizer updates and GroupNorm reads;
//   working  (padded) the compute-precision copy that convolutions and linears read
//            (for T = float it is `values` itself: no second copy);
//   grads    (padded) fp32 gradients, accumulated over a step's micro-batches;
//   decay    (padded) one byte per element, 1 where AdamW's weight decay applies.
// The CUDA backend (model/cuda_backend.h) is pointed at them; the trainer, the GPU tests and
// bench_train own one.
//
// Memory: 4Ψ (values) + 4Ψ (grads) + 2Ψ (bf16/fp16 working copy) + Ψ (decay mask) bytes per
// rank, replicated: the simple layout (a frozen network: 4Ψ + 2Ψ). ZeRO's sharded master weights, moments and gradient
// shard come on top (train/gradient_sync.h); docs/CUDA.md lists what this costs.
//
// Only in CUDA builds.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "core/params.h"
#include "kernels/cuda/device_memory.h"

namespace ladder {

template <class T>
class DeviceParameters {
 public:
  // Allocates the buffers and uploads the store's values (the store must be allocated and
  // initialised); gradients start at zero. Waits until the upload is complete. A frozen
  // store (ParamStore::allocate_frozen: LPIPS) gets the values and the working copy only:
  // grads() and decay_mask() are null.
  DeviceParameters(cuda::DeviceAllocator& allocator, const ParamStore& store, cudaStream_t stream);

  int64_t count() const { return values_.size(); }  // the padded flat-buffer length
  float* values() { return values_.data(); }
  const T* working() const;
  float* grads() { return grads_.size() > 0 ? grads_.data() : nullptr; }
  const uint8_t* decay_mask() const { return decay_.size() > 0 ? decay_.data() : nullptr; }

  // working ← T(values), after the optimizer changed the values (no-op for T = float).
  void refresh_working(cudaStream_t stream);
  void zero_grads(cudaStream_t stream) { grads_.zero_async(stream); }

  // Copies to the host (count() floats); wait for `stream` first.
  void download_values(float* host, cudaStream_t stream) const;
  void download_grads(float* host, cudaStream_t stream) const;

 private:
  cuda::DeviceBuffer<float> values_, grads_;
  cuda::DeviceBuffer<T> working_;  // empty for T = float
  cuda::DeviceBuffer<uint8_t> decay_;
};

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
