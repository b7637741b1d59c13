// Why this file exists: the implementation of the optimizer groups.
#include "train/optimizer_groups.h"

#include <algorithm>

#include "core/check.h"

namespace ladder {

std::vector<GroupSlice> slice_groups(const std::vector<Range>& ranges, const std::vector<int64_t>& boundaries) {
  std::vector<GroupSlice> slices(boundaries.size() + 1);
  int64_t concatenated = 0, previous_end = 0;
  for (const Range& range : ranges) {
    LADDER_CHECK(range.begin >= previous_end, "optimizer ranges are not ascending");
    previous_end = range.end;
    int64_t begin = range.begin;
    for (size_t g = 0; g < slices.size() && begin < range.end; ++g) {
      const int64_t group_end = g < boundaries.size() ? boundaries[g] : range.end;
      const int64_t end = std::min(range.end, group_end);
      if (end <= begin) continue;
      GroupSlice& slice = slices[g];
      if (slice.ranges.empty()) slice.grad_offset = concatenated + (begin - range.begin);
      LADDER_CHECK(slice.grad_offset + slice.count == concatenated + (begin - range.begin),
                   "optimizer group ", g, ": its ranges are not contiguous in the gradients");
      slice.ranges.push_back({begin, end});
      slice.count += end - begin;
      begin = end;
    }
    concatenated += range.size();
  }
  for (size_t g = 1; g < slices.size(); ++g)
    if (slices[g].ranges.empty()) slices[g].grad_offset = slices[g - 1].grad_offset + slices[g - 1].count;
  return slices;
}

OptimizerGroups::OptimizerGroups(std::vector<Range> owned, const std::vector<int64_t>& boundaries,
                                 std::vector<std::unique_ptr<Optimizer>> optimizers)
    : owned_(std::move(owned)), slices_(slice_groups(owned_, boundaries)), optimizers_(std::move(optimizers)) {
  LADDER_CHECK(optimizers_.size() == slices_.size(), "optimizer groups: ", optimizers_.size(), " optimizers for ",
               slices_.size(), " groups");
  group_begin_.push_back(0);
  group_begin_.insert(group_begin_.end(), boundaries.begin(), boundaries.end());
}

std::vector<std::pair<int, Range>> OptimizerGroups::pieces(const Range& range) const {
  std::vector<std::pair<int, Range>> out;
  int64_t begin = range.begin;
  for (int g = 0; g < groups() && begin < range.end; ++g) {
    const int64_t end = g + 1 < groups() ? std::min(range.end, group_begin_[static_cast<size_t>(g) + 1]) : range.end;
    if (end > begin) {
      out.emplace_back(g, Range{begin, end});
      begin = end;
    }
  }
  return out;
}

void OptimizerGroups::step(float* params, const float* grads, double lr) {
  for (int g = 0; g < groups(); ++g) group(g).step(params, grads + slice(g).grad_offset, lr);
}

void OptimizerGroups::reset() {
  for (auto& optimizer : optimizers_) optimizer->reset();
}

int64_t OptimizerGroups::owned_count() const {
  int64_t count = 0;
  for (const auto& optimizer : optimizers_) count += optimizer->owned_count();
  return count;
}

int64_t OptimizerGroups::state_bytes() const {
  int64_t bytes = 0;
  for (const auto& optimizer : optimizers_) bytes += optimizer->state_bytes();
  return bytes;
}

void OptimizerGroups::download_moments(const std::vector<Range>& ranges, float* exp_avg, float* exp_avg_sq) const {
  int64_t out = 0;
  for (const Range& range : ranges)
    for (const auto& [g, piece] : pieces(range)) {
      optimizers_[static_cast<size_t>(g)]->download_moments({piece}, exp_avg + out, exp_avg_sq + out);
      out += piece.size();
    }
}

void OptimizerGroups::upload_moments(const std::vector<Range>& ranges, const float* exp_avg, const float* exp_avg_sq) {
  int64_t in = 0;
  for (const Range& range : ranges)
    for (const auto& [g, piece] : pieces(range)) {
      optimizers_[static_cast<size_t>(g)]->upload_moments({piece}, exp_avg + in, exp_avg_sq + in);
      in += piece.size();
    }
}

}  // namespace ladder
