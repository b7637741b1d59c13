// Why this file exists: AdamW with decoupled weight decay (PyTorch's torch.optim.AdamW
// semantics) over a contiguous range of the flat buffer, so that under ZeRO each rank can
// run it on its own shard. Weight decay applies only where the parameter table says so
// (conv and linear weights; never norms or biases).
#pragma once

#include <cstdint>
#include <vector>

#include "core/host_buffer.h"
#include "core/params.h"

namespace ladder {

struct AdamWSettings {
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  // Owns fp32 moments for elements [begin, end) of `store`'s flat buffer.
  AdamW(const ParamStore& store, int64_t begin, int64_t end, AdamWSettings settings);

  // params and grads point at element `begin` of the flat buffers.
  void step(float* params, const float* grads, double lr);
  void reset();  // zero moments and the step count (a new rung with reset_optimizer)

  int64_t steps() const { return steps_; }
  int64_t state_bytes() const { return exp_avg_.bytes() + exp_avg_sq_.bytes(); }

 private:
  struct Segment {  // [begin, end) relative to the owned range
    int64_t begin, end;
    bool decay;
  };
  std::vector<Segment> segments_;
  AdamWSettings settings_;
  HostBuffer<float> exp_avg_, exp_avg_sq_;  // Adam m and v
  int64_t steps_ = 0;
};

// Σ g² in double, summed in fixed-size blocks so the result does not depend on threads.
double squared_norm(const float* values, int64_t count);
void scale_values(float* values, int64_t count, float factor);

}  // namespace ladder
