// Why this file exists: AdamW with its moments on the GPU (the fused kernel of kernels/cuda,
// PyTorch AdamW semantics, the same float arithmetic as the host AdamW), over the ranges of the
// flat buffer the rank owns. Only in CUDA builds.
#pragma once
#ifdef LADDER_WITH_CUDA

#include <cuda_runtime.h>

#include <vector>

#include "kernels/cuda/device_memory.h"
#include "train/adamw.h"

namespace ladder {

class CudaAdamW final : public Optimizer {
 public:
  // decay_mask: (padded) device bytes, 1 where weight decay applies (DeviceParameters).
  CudaAdamW(cuda::DeviceAllocator& allocator, cudaStream_t stream, std::vector<Range> owned,
            AdamWSettings settings, const uint8_t* decay_mask);

  void step(float* params, const float* grads, double lr) override;
  void reset() override;
  int64_t owned_count() const override { return exp_avg_.size(); }
  int64_t steps() const override { return steps_; }
  int64_t state_bytes() const override { return exp_avg_.bytes() + exp_avg_sq_.bytes(); }
  const std::vector<Range>& owned_ranges() const override { return owned_; }
  void download_moments(const std::vector<Range>& ranges, float* exp_avg,
                        float* exp_avg_sq) const override;
  void upload_moments(const std::vector<Range>& ranges, const float* exp_avg,
                      const float* exp_avg_sq) override;
  void set_steps(int64_t steps) override { steps_ = steps; }

 private:
  cudaStream_t stream_;
  std::vector<Range> owned_;
  AdamWSettings settings_;
  const uint8_t* decay_mask_;
  cuda::DeviceBuffer<float> exp_avg_, exp_avg_sq_;  // (owned_count)
  int64_t steps_ = 0;
};

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
