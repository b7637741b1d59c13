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

// The optimizer as the trainer sees it, wherever its state lives: AdamW below (host) and
// CudaAdamW (train/cuda_adamw.h, device).
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  // params: the flat buffer (updated at the owned ranges); grads: the owned elements'
  // gradients, concatenated in range order (owned_count()). Both in the optimizer's memory.
  virtual void step(float* params, const float* grads, double lr) = 0;
  virtual void reset() = 0;  // zero moments and the step count (a new rung with reset_optimizer)
  virtual int64_t owned_count() const = 0;
  virtual int64_t steps() const = 0;
  virtual int64_t state_bytes() const = 0;  // the moments' bytes

  // Checkpoints: the global flat-buffer ranges whose moments this optimizer holds, and the
  // moments of `ranges` (global offsets inside those), concatenated, to or from host memory.
  virtual const std::vector<Range>& owned_ranges() const = 0;
  virtual void download_moments(const std::vector<Range>& ranges, float* exp_avg,
                                float* exp_avg_sq) const = 0;
  virtual void upload_moments(const std::vector<Range>& ranges, const float* exp_avg,
                              const float* exp_avg_sq) = 0;
  virtual void set_steps(int64_t steps) = 0;  // a resumed run's bias-correction count
};

// Where global offset `at` sits in the concatenation of `ranges` (at must lie inside one of
// them and `count` elements from there must too; throws otherwise).
int64_t concatenated_offset(const std::vector<Range>& ranges, int64_t at, int64_t count);

class AdamW final : public Optimizer {
 public:
  AdamW(const ParamStore& store, std::vector<Range> owned, AdamWSettings settings);

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
  struct Segment {  // flat-buffer offsets [begin, end) and where they sit in the owned order
    int64_t begin, end, owned_offset;
    bool decay;
  };
  std::vector<Range> owned_;
  std::vector<Segment> segments_;
  AdamWSettings settings_;
  HostBuffer<float> exp_avg_, exp_avg_sq_;  // Adam m and v, (owned_count)
  int64_t steps_ = 0;
};

// Σ g² in double, summed in fixed-size blocks so the result does not depend on threads.
double squared_norm(const float* values, int64_t count);
void scale_values(float* values, int64_t count, float factor);

}  // namespace ladder
