// Why this file exists: the implementation of the weights' moving average.
#include "train/weight_average.h"

#include "core/check.h"

namespace ladder {

WeightAverage::WeightAverage(FlatMemory& memory, std::vector<Range> owned, double decay)
    : memory_(memory), owned_(std::move(owned)), decay_(decay) {
  LADDER_CHECK(decay > 0 && decay < 1, "ema.decay must be in (0, 1), got ", decay);
  average_ = memory_.allocate(total_size(owned_));
  reset_to_values();
}

void WeightAverage::update() {
  int64_t at = 0;
  for (const Range& range : owned_) {
    memory_.lerp(memory_.values() + range.begin, average_.data() + at, range.size(),
                 static_cast<float>(1.0 - decay_));
    at += range.size();
  }
}

void WeightAverage::reset_to_values() {
  int64_t at = 0;
  for (const Range& range : owned_) {
    memory_.zero(average_.data() + at, range.size());  // then 0 + w: exactly w
    memory_.add(memory_.values() + range.begin, average_.data() + at, range.size());
    at += range.size();
  }
}

void WeightAverage::download(float* host) { memory_.download(average_.data(), host, average_.size()); }

void WeightAverage::upload(const float* host) { memory_.upload(host, average_.data(), average_.size()); }

}  // namespace ladder
