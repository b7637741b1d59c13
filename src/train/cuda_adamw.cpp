// Why this file exists: the device AdamW's step over the owned ranges.
#ifdef LADDER_WITH_CUDA
#include "train/cuda_adamw.h"

#include "core/cuda_check.h"
#include "kernels/cuda/ops.h"

namespace ladder {
CudaAdamW::CudaAdamW(cuda::DeviceAllocator& allocator, cudaStream_t stream,
                     std::vector<Range> owned, AdamWSettings settings, const uint8_t* decay_mask)
    : stream_(stream),
      owned_(std::move(owned)),
      settings_(settings),
      decay_mask_(decay_mask),
      exp_avg_(allocator, total_size(owned_)),
      exp_avg_sq_(allocator, total_size(owned_)) {
  reset();
}

void CudaAdamW::download_moments(const std::vector<Range>& ranges, float* exp_avg,
                                 float* exp_avg_sq) const {
  int64_t out = 0;
  for (const Range& range : ranges) {
    const int64_t from = concatenated_offset(owned_, range.begin, range.size());
    const size_t bytes = static_cast<size_t>(range.size()) * sizeof(float);
    LADDER_CUDA_CHECK(cudaMemcpyAsync(exp_avg + out, exp_avg_.data() + from, bytes,
                                      cudaMemcpyDeviceToHost, stream_));
    LADDER_CUDA_CHECK(cudaMemcpyAsync(exp_avg_sq + out, exp_avg_sq_.data() + from, bytes,
                                      cudaMemcpyDeviceToHost, stream_));
    out += range.size();
  }
  LADDER_CUDA_CHECK(cudaStreamSynchronize(stream_));
}

void CudaAdamW::upload_moments(const std::vector<Range>& ranges, const float* exp_avg,
                               const float* exp_avg_sq) {
  int64_t in = 0;
  for (const Range& range : ranges) {
    const int64_t to = concatenated_offset(owned_, range.begin, range.size());
    const size_t bytes = static_cast<size_t>(range.size()) * sizeof(float);
    LADDER_CUDA_CHECK(cudaMemcpyAsync(exp_avg_.data() + to, exp_avg + in, bytes,
                                      cudaMemcpyHostToDevice, stream_));
    LADDER_CUDA_CHECK(cudaMemcpyAsync(exp_avg_sq_.data() + to, exp_avg_sq + in, bytes,
                                      cudaMemcpyHostToDevice, stream_));
    in += range.size();
  }
  LADDER_CUDA_CHECK(cudaStreamSynchronize(stream_));  // the host buffers may go right after
}

void CudaAdamW::reset() {
  exp_avg_.zero_async(stream_);
  exp_avg_sq_.zero_async(stream_);
  steps_ = 0;
}

void CudaAdamW::step(float* params, const float* grads, double lr) {
  ++steps_;
  const cuda::AdamWScalars scalars = cuda::adamw_scalars(
      settings_.beta1, settings_.beta2, settings_.eps, settings_.weight_decay, lr, steps_);
  int64_t owned_offset = 0;
  for (const Range& range : owned_) {
    if (range.size() > 0)
      cuda::adamw_step(range.size(), scalars, params + range.begin, grads + owned_offset,
                       exp_avg_.data() + owned_offset, exp_avg_sq_.data() + owned_offset,
                       decay_mask_ + range.begin, nullptr, stream_);
    owned_offset += range.size();
  }
}

}  // namespace ladder

#endif  // LADDER_WITH_CUDA
