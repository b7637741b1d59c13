// Why this file exists: the collective calls of each ZeRO stage.
#include "train/gradient_sync.h"

#include <chrono>
#include <cstring>

#include "core/check.h"
#include "train/adamw.h"

namespace ladder {
namespace {

// Adds the wall time of its scope to a counter.
class ScopedTimer {
 public:
  explicit ScopedTimer(double& total) : total_(total), start_(std::chrono::steady_clock::now()) {}
  ~ScopedTimer() {
    total_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  double& total_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

GradientSync::GradientSync(ParamStore& store, const ShardLayout& layout, int stage,
                           Communicator& comm)
    : store_(store), layout_(layout), stage_(stage), comm_(comm) {
  LADDER_CHECK(stage >= 0 && stage <= 2, "ZeRO stage ", stage);
  LADDER_CHECK(store.padded_count() == layout.padded_count(), "flat buffer ", store.padded_count(),
               " vs layout ", layout.padded_count());
  LADDER_CHECK(comm.world() == layout.world(), "layout world ", layout.world());
  if (stage_ >= 1) shard_ = HostBuffer<float>(layout.owned_count());
  if (stage_ == 2) {
    int64_t largest = 0;
    for (const Range& bucket : layout.buckets()) largest = std::max(largest, bucket.size());
    scratch_ = HostBuffer<float>(largest / layout.world());
  }
}

void GradientSync::begin_step() {
  store_.zero_grads();
  if (shard_.size() > 0) std::memset(shard_.data(), 0, shard_.bytes());
}

void GradientSync::begin_micro_step() {
  if (stage_ != 2) return;
  store_.zero_grads();  // each micro-step's gradients leave through the buckets
  next_bucket_ = static_cast<int>(layout_.buckets().size());
}

void GradientSync::reduce_bucket(int bucket) {
  const Range& range = layout_.buckets()[static_cast<size_t>(bucket)];
  const int64_t part = range.size() / layout_.world();
  {
    ScopedTimer timer(comm_seconds_);
    comm_.reduce_scatter_sum(store_.grads() + range.begin, scratch_.data(), part, DType::kF32);
  }
  float* accumulated = shard_.data() + range.begin / layout_.world();
  for (int64_t i = 0; i < part; ++i) accumulated[i] += scratch_.data()[i];
}

void GradientSync::gradients_ready_from(int64_t offset) {
  if (stage_ != 2) return;
  // The backward completes the flat buffer from the top down: every bucket that starts at or
  // above `offset` is final for this micro-step.
  while (next_bucket_ > 0 && layout_.buckets()[static_cast<size_t>(next_bucket_ - 1)].begin >= offset)
    reduce_bucket(--next_bucket_);
}

void GradientSync::end_micro_step() {
  if (stage_ == 2) gradients_ready_from(0);
}

void GradientSync::end_step() {
  ScopedTimer timer(comm_seconds_);
  if (stage_ == 0) {
    for (const Range& bucket : layout_.buckets())
      comm_.all_reduce_sum(store_.grads() + bucket.begin, bucket.size(), DType::kF32);
  } else if (stage_ == 1) {
    for (const Range& bucket : layout_.buckets())
      comm_.reduce_scatter_sum(store_.grads() + bucket.begin, shard_.data() + bucket.begin / layout_.world(),
                               bucket.size() / layout_.world(), DType::kF32);
  }
}

std::vector<Range> GradientSync::optimizer_ranges() const {
  if (stage_ == 0) return {Range{0, layout_.padded_count()}};
  return layout_.owned_ranges(comm_.rank());
}

float* GradientSync::optimizer_grads() { return stage_ == 0 ? store_.grads() : shard_.data(); }

int64_t GradientSync::optimizer_grad_count() const {
  return stage_ == 0 ? layout_.padded_count() : layout_.owned_count();
}

double GradientSync::global_squared_norm() {
  double sum = squared_norm(optimizer_grads(), optimizer_grad_count());
  if (stage_ == 0) return sum;  // every rank holds the same full gradient
  ScopedTimer timer(comm_seconds_);
  comm_.all_reduce_sum(&sum, 1, DType::kF64);
  return sum;
}

void GradientSync::gather_parameters() {
  if (stage_ == 0) return;
  ScopedTimer timer(comm_seconds_);
  for (int b = 0; b < static_cast<int>(layout_.buckets().size()); ++b) {
    const Range& bucket = layout_.buckets()[static_cast<size_t>(b)];
    const Range mine = layout_.owned_slice(b, comm_.rank());
    comm_.all_gather(store_.values() + mine.begin, store_.values() + bucket.begin, mine.size(),
                     DType::kF32);
  }
}

}  // namespace ladder
