// Why this file exists: the exponential moving average of the weights (`ema.decay`, the
// average diffusion models sample with). Under ZeRO each rank keeps the average of the ranges
// it owns only (the optimizer's), in the memory the master weights live in (host or device):
// after every optimizer step ema += (1 − decay)·(w − ema), so it costs one owned-shard copy of
// fp32 per rank. It starts equal to the weights; checkpoints save it beside the moments.
#pragma once

#include <vector>

#include "core/params.h"
#include "train/flat_memory.h"
#include "train/shard_layout.h"

namespace ladder {

class WeightAverage {
 public:
  // owned: the global ranges of the flat buffer this rank updates. Starts as their values.
  WeightAverage(FlatMemory& memory, std::vector<Range> owned, double decay);

  void update();  // after the optimizer step changed the owned values
  void reset_to_values();
  // host (Σ owned sizes) ↔ the average, in range order (checkpoints, resume).
  void download(float* host);
  void upload(const float* host);
  double decay() const { return decay_; }
  int64_t bytes() const { return average_.bytes(); }

 private:
  FlatMemory& memory_;
  std::vector<Range> owned_;
  double decay_;
  FloatArray average_;  // (Σ owned sizes)
};

}  // namespace ladder
