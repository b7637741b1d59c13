// Why this file exists: `ladder plan`'s arithmetic (BRIEF §5), before any GPU is touched: per
// rung, the bytes one rank holds — the model's activations, counted by running its own
// forward and backward on PlanBackend (model/plan_backend.h), plus the parameters, gradients,
// master weights, moments, gradient shard, checkpoint staging, EMA, the rank's share of the
// records, the prefetcher ring and the micro-step inputs — for each micro-batch (a divisor of
// the per-rank batch) with and without recompute, and which fit a memory budget. On the CPU
// the count is exact for ladder's allocations (the test holds it to a real run's
// mem_peak_bytes); for a GPU it is the same tensors at bf16 width plus a stated allowance for
// cuDNN workspaces and fragmentation: an estimate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace ladder {

struct PlanTarget {
  int world = 1;
  bool gpu = false;
  int64_t gpu_memory = 0;  // bytes per GPU (gpu only)
  double gpu_tflops = 989;  // dense bf16 peak of the GPU, for the step-time estimate
  double mfu = 0.35;        // the share of it assumed (stated with the estimate)
};

// The allowance a GPU plan adds to the counted bytes (cuDNN workspaces, the caching
// allocator's fragmentation, the CUDA context): 10% of the counted bytes plus 1 GiB.
int64_t gpu_allowance(int64_t counted_bytes);

struct MicroBatchPlan {
  int micro = 1;
  bool recompute = false;
  int64_t activation_bytes = 0;  // the model's micro-step peak (inputs, activations, scratch)
  int64_t total_bytes = 0;       // + the rung's fixed bytes (+ the GPU allowance)
  bool fits = true;              // within the budget (always on the CPU)
};

struct RungMemoryPlan {
  int rung = 0, resolution = 0;
  int64_t per_rank_batch = 0;
  // The fixed part, per rank.
  int64_t parameters = 0, gradients = 0, master_weights = 0, moments = 0, gradient_shard = 0;
  int64_t checkpoint_staging = 0, ema = 0, records = 0, prefetch_ring = 0;
  // FID evaluation (eval.count > 0): InceptionV3's fp32 weights, held from the first
  // evaluation on, and the peak of scoring one image, which comes between steps while the
  // model still holds its activation tensors (so it adds to a micro-step's total).
  int64_t evaluation_weights = 0, evaluation_activations = 0;
  int64_t fixed_bytes() const {
    return parameters + gradients + master_weights + moments + gradient_shard + checkpoint_staging + ema +
           records + prefetch_ring + evaluation_weights;
  }
  std::vector<MicroBatchPlan> options;  // every divisor micro-batch, without then with recompute
  double training_flops_per_image = 0;  // 3 × forward (4 × with recompute), counted from the layers
};

class MemoryPlanner {
 public:
  // config: the run's (model, data, train, stages); the data store is opened for its counts.
  MemoryPlanner(Config config, PlanTarget target);
  RungMemoryPlan plan_rung(int rung) const;
  // The peak bytes of one micro-step of `micro` records at `rung` with `recompute`, the fixed
  // bytes included: what a CPU run's mem_peak_bytes reports.
  int64_t step_peak(int rung, int micro, bool recompute) const;
  const PlanTarget& target() const { return target_; }

 private:
  struct Activations {
    int64_t peak = 0;
    double forward_flops_per_image = 0;
  };
  Activations activations(int rung, int micro, bool recompute) const;
  RungMemoryPlan fixed(int rung) const;
  // InceptionV3 on PlanBackend: its weights and the peak of one image at `resolution`, plus on
  // the CPU the rank's share of the scored images and the gathered features.
  void count_evaluation(RungMemoryPlan& plan) const;

  Config config_;
  PlanTarget target_;
  int64_t parameters_ = 0;  // the model's parameter count (unpadded)
  int64_t records_ = 0;   // images in the store (training share)
  int64_t val_records_ = 0;
  int downsampling_ = 1;  // latents: the autoencoder's
  int value_bytes_ = 1;   // images: bytes per stored value (the store's pixel type)
};

}  // namespace ladder
