// Why this file exists: the collective calls of each ZeRO stage.
#include "train/gradient_sync.h"

#include <algorithm>
#include <chrono>

#include "core/check.h"

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

GradientSync::GradientSync(FlatMemory& memory, const ShardLayout& layout, int stage,
                           Communicator& buffers_comm, Communicator& scalars_comm)
    : memory_(memory), layout_(layout), stage_(stage), comm_(buffers_comm),
      scalars_comm_(scalars_comm) {
  LADDER_CHECK(stage >= 0 && stage <= 2, "ZeRO stage ", stage);
  LADDER_CHECK(buffers_comm.world() == layout.world() && scalars_comm.world() == layout.world(),
               "layout world ", layout.world());
  LADDER_CHECK(buffers_comm.device_buffers() == memory.on_device(), "the ",
               buffers_comm.backend(), " communicator cannot move ",
               memory.on_device() ? "device" : "host", " buffers");
  if (stage_ >= 1) shard_ = memory_.allocate(layout.owned_count());
  if (stage_ == 2 && memory.stream() != nullptr) overlap_ = buffers_comm.stream_ordered();
  if (stage_ == 2) {
    int64_t largest = 0;
    for (const Range& bucket : layout.buckets()) largest = std::max(largest, bucket.size());
    scratch_ = memory_.allocate(overlap_ ? layout.owned_count() : largest / layout.world());
  }
}

float* GradientSync::landing(int bucket) {
  if (!overlap_) return scratch_.data();
  return scratch_.data() + layout_.buckets()[static_cast<size_t>(bucket)].begin / layout_.world();
}

void GradientSync::begin_step() {
  memory_.zero(memory_.grads(), layout_.padded_count());
  memory_.zero(shard_.data(), shard_.size());
}

void GradientSync::begin_micro_step() {
  if (stage_ != 2) return;
  // Each micro-step's gradients leave through the buckets.
  memory_.zero(memory_.grads(), layout_.padded_count());
  next_bucket_ = static_cast<int>(layout_.buckets().size());
}

void GradientSync::reduce_bucket(int bucket) {
  const Range& range = layout_.buckets()[static_cast<size_t>(bucket)];
  const int64_t part = range.size() / layout_.world();
  if (overlap_) {  // after the backward's work queued so far; the host goes on at once
    overlap_->reduce_scatter_sum_after(memory_.stream(), memory_.grads() + range.begin,
                                       landing(bucket), part, DType::kF32);
    return;
  }
  memory_.synchronize();  // the backward has written the bucket (not counted as communication)
  ScopedTimer timer(comm_seconds_);
  comm_.reduce_scatter_sum(memory_.grads() + range.begin, landing(bucket), part, DType::kF32);
  memory_.add(landing(bucket), shard_.data() + range.begin / layout_.world(), part);
}

void GradientSync::gradients_ready_from(int64_t offset) {
  if (stage_ != 2) return;
  // The backward completes the flat buffer from the top down: every bucket that starts at or
  // above `offset` is final for this micro-step.
  while (next_bucket_ > 0 && layout_.buckets()[static_cast<size_t>(next_bucket_ - 1)].begin >= offset)
    reduce_bucket(--next_bucket_);
}

void GradientSync::end_micro_step() {
  if (stage_ != 2) return;
  gradients_ready_from(0);
  if (!overlap_) return;
  // comm_seconds_ counts only the communication the backward did not hide: first the
  // backward's own end (not counted), then what the reductions still need.
  memory_.synchronize();
  {
    ScopedTimer timer(comm_seconds_);
    overlap_->wait_enqueued();  // bounded by comm.timeout_s: a stuck peer fails here
  }
  // The compute stream adds the landing areas after every bucket has arrived, and zeroes the
  // next micro-step's gradients only after the reductions have read them.
  overlap_->order_before(memory_.stream());
  memory_.add(scratch_.data(), shard_.data(), layout_.owned_count());
}

void GradientSync::end_step() {
  if (stage_ == 2) return;
  memory_.synchronize();
  ScopedTimer timer(comm_seconds_);
  for (const Range& bucket : layout_.buckets()) {
    if (stage_ == 0)
      comm_.all_reduce_sum(memory_.grads() + bucket.begin, bucket.size(), DType::kF32);
    else
      comm_.reduce_scatter_sum(memory_.grads() + bucket.begin,
                               shard_.data() + bucket.begin / layout_.world(),
                               bucket.size() / layout_.world(), DType::kF32);
  }
}

std::vector<Range> GradientSync::optimizer_ranges() const {
  if (stage_ == 0) return {Range{0, layout_.padded_count()}};
  return layout_.owned_ranges(comm_.rank());
}

float* GradientSync::optimizer_grads() { return stage_ == 0 ? memory_.grads() : shard_.data(); }

int64_t GradientSync::optimizer_grad_count() const {
  return stage_ == 0 ? layout_.padded_count() : layout_.owned_count();
}

std::vector<double> GradientSync::global_squared_norms(const std::vector<std::pair<int64_t, int64_t>>& parts) {
  std::vector<double> sums;
  for (const auto& [offset, count] : parts) {
    LADDER_CHECK(offset >= 0 && count >= 0 && offset + count <= optimizer_grad_count(), "gradient part [", offset,
                 ", ", offset + count, ") outside the optimizer's ", optimizer_grad_count());
    sums.push_back(memory_.squared_norm(optimizer_grads() + offset, count));
  }
  if (stage_ == 0) return sums;  // every rank holds the same full gradient
  ScopedTimer timer(comm_seconds_);
  scalars_comm_.all_reduce_sum(sums.data(), static_cast<int64_t>(sums.size()), DType::kF64);
  return sums;
}

void GradientSync::gather_parameters() {
  if (stage_ == 0) return;
  memory_.synchronize();  // the optimizer has written the owned slices
  ScopedTimer timer(comm_seconds_);
  for (int b = 0; b < static_cast<int>(layout_.buckets().size()); ++b) {
    const Range& bucket = layout_.buckets()[static_cast<size_t>(b)];
    const Range mine = layout_.owned_slice(b, comm_.rank());
    comm_.all_gather(memory_.values() + mine.begin, memory_.values() + bucket.begin, mine.size(),
                     DType::kF32);
  }
}

}  // namespace ladder
