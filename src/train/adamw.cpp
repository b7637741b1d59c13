// Why this file exists: the AdamW update and the gradient-norm helpers used for clipping.
#include "train/adamw.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/check.h"
#include "kernels/cpu/ops.h"

namespace ladder {

AdamW::AdamW(const ParamStore& store, std::vector<Range> owned, AdamWSettings settings)
    : owned_(owned), settings_(settings), exp_avg_(total_size(owned)), exp_avg_sq_(total_size(owned)) {
  int64_t owned_offset = 0;
  for (const Range& range : owned) {
    LADDER_CHECK(0 <= range.begin && range.begin <= range.end && range.end <= store.padded_count(),
                 "AdamW range [", range.begin, ", ", range.end, ")");
    // Split the range at parameter boundaries (padding counts as not decayed).
    int64_t cursor = range.begin;
    for (const ParamEntry& entry : store.entries()) {
      int64_t lo = std::max(cursor, entry.offset);
      int64_t hi = std::min(range.end, entry.offset + entry.numel);
      if (lo >= hi) continue;
      if (lo > cursor) segments_.push_back({cursor, lo, owned_offset + cursor - range.begin, false});
      segments_.push_back({lo, hi, owned_offset + lo - range.begin, entry.decay});
      cursor = hi;
    }
    if (cursor < range.end)
      segments_.push_back({cursor, range.end, owned_offset + cursor - range.begin, false});
    owned_offset += range.size();
  }
}

int64_t concatenated_offset(const std::vector<Range>& ranges, int64_t at, int64_t count) {
  int64_t offset = 0;
  for (const Range& range : ranges) {
    if (range.begin <= at && at + count <= range.end) return offset + at - range.begin;
    offset += range.size();
  }
  LADDER_FAIL("flat range [", at, ", ", at + count, ") is not inside the optimizer's ranges");
}

void AdamW::download_moments(const std::vector<Range>& ranges, float* exp_avg,
                             float* exp_avg_sq) const {
  int64_t out = 0;
  for (const Range& range : ranges) {
    const int64_t from = concatenated_offset(owned_, range.begin, range.size());
    cpu::copy(range.size(), exp_avg_.data() + from, exp_avg + out);
    cpu::copy(range.size(), exp_avg_sq_.data() + from, exp_avg_sq + out);
    out += range.size();
  }
}

void AdamW::upload_moments(const std::vector<Range>& ranges, const float* exp_avg,
                           const float* exp_avg_sq) {
  int64_t in = 0;
  for (const Range& range : ranges) {
    const int64_t to = concatenated_offset(owned_, range.begin, range.size());
    cpu::copy(range.size(), exp_avg + in, exp_avg_.data() + to);
    cpu::copy(range.size(), exp_avg_sq + in, exp_avg_sq_.data() + to);
    in += range.size();
  }
}

void AdamW::reset() {
  if (exp_avg_.size() > 0) {
    std::memset(exp_avg_.data(), 0, exp_avg_.bytes());
    std::memset(exp_avg_sq_.data(), 0, exp_avg_sq_.bytes());
  }
  steps_ = 0;
}

void AdamW::step(float* params, const float* grads, double lr) {
  ++steps_;
  const float beta1 = static_cast<float>(settings_.beta1);
  const float beta2 = static_cast<float>(settings_.beta2);
  const double correction1 = 1.0 - std::pow(settings_.beta1, static_cast<double>(steps_));
  const double correction2 = 1.0 - std::pow(settings_.beta2, static_cast<double>(steps_));
  const float step_size = static_cast<float>(lr / correction1);
  const float inv_sqrt_correction2 = static_cast<float>(1.0 / std::sqrt(correction2));
  const float eps = static_cast<float>(settings_.eps);
  float* m = exp_avg_.data();
  float* v = exp_avg_sq_.data();
  for (const Segment& segment : segments_) {
    const float decay_factor =
        segment.decay ? static_cast<float>(1.0 - lr * settings_.weight_decay) : 1.0f;
    const int64_t shift = segment.owned_offset - segment.begin;  // flat offset → owned offset
#pragma omp parallel for schedule(static)
    for (int64_t i = segment.begin; i < segment.end; ++i) {
      const int64_t o = i + shift;
      const float g = grads[o];
      m[o] = beta1 * m[o] + (1.0f - beta1) * g;
      v[o] = beta2 * v[o] + (1.0f - beta2) * g * g;
      const float denom = std::sqrt(v[o]) * inv_sqrt_correction2 + eps;
      params[i] = params[i] * decay_factor - step_size * m[o] / denom;
    }
  }
}

double squared_norm(const float* values, int64_t count) {
  constexpr int64_t kBlock = 1 << 16;
  const int64_t blocks = (count + kBlock - 1) / kBlock;
  std::vector<double> partial(blocks, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    double sum = 0;
    for (int64_t i = b * kBlock; i < std::min(count, (b + 1) * kBlock); ++i)
      sum += static_cast<double>(values[i]) * values[i];
    partial[b] = sum;
  }
  double total = 0;
  for (double p : partial) total += p;
  return total;
}

void scale_values(float* values, int64_t count, float factor) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < count; ++i) values[i] *= factor;
}

}  // namespace ladder
