// Why this file exists: AdamW with decoupled weight decay (PyTorch's torch.optim.AdamW
// semantics) over the ranges of the flat buffer a rank owns (all of it without ZeRO, its
// shard under ZeRO 1/2). Weight decay applies only where the parameter table says so (conv
// and linear weights; never norms or biases). The fp32 moments are allocated for the owned
// elements only: optimizer memory shrinks as 1/world.
#pragma once

#include <cstdint>
#include <vector>

#include "core/host_buffer.h"
#include "core/params.h"
#include "train/shard_layout.h"

namespace ladder {

struct AdamWSettings {
  double beta1 = 0.9, beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
};

class AdamW {
 public:
  AdamW(const ParamStore& store, std::vector<Range> owned, AdamWSettings settings);

  // params: the flat buffer (updated at the owned ranges); grads: the owned elements'
  // gradients, concatenated in range order (owned_count()).
  void step(float* params, const float* grads, double lr);
  void reset();  // zero moments and the step count (a new rung with reset_optimizer)

  int64_t owned_count() const { return exp_avg_.size(); }
  int64_t steps() const { return steps_; }
  int64_t state_bytes() const { return exp_avg_.bytes() + exp_avg_sq_.bytes(); }

 private:
  struct Segment {  // flat-buffer offsets [begin, end) and where they sit in the owned order
    int64_t begin, end, owned_offset;
    bool decay;
  };
  std::vector<Segment> segments_;
  AdamWSettings settings_;
  HostBuffer<float> exp_avg_, exp_avg_sq_;  // Adam m and v, (owned_count)
  int64_t steps_ = 0;
};

// Σ g² in double, summed in fixed-size blocks so the result does not depend on threads.
double squared_norm(const float* values, int64_t count);
void scale_values(float* values, int64_t count, float factor);

}  // namespace ladder
