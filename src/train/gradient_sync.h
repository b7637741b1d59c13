// Why this file exists: ZeRO gradient and parameter traffic (BRIEF §3), one class for the
// three stages over a ShardLayout:
//   stage 0  gradients accumulate in the full buffer; all-reduced once per optimizer step;
//            AdamW runs on the whole buffer on every rank.
//   stage 1  gradients accumulate in the full buffer; reduce-scattered once per step into
//            the rank's fp32 shard; AdamW on the shard; parameters all-gathered.
//   stage 2  each micro-step's gradients are reduce-scattered bucket by bucket as the
//            backward completes them, and accumulated into the rank's fp32 shard (the only
//            gradient state that lives across micro-steps); AdamW on the shard; all-gather.
// The buffers live in a FlatMemory (host on CPU ranks, device on GPU ranks); `buffers_comm`
// moves them (its device_buffers() matches the memory), `scalars_comm` sums host scalars.
// Overlap: when the communicator has stream-ordered collectives (NCCL) and the memory a
// stream, stage 2's buckets are reduce-scattered on the communicator's stream as the backward
// produces them, each into its own landing area, while the compute stream goes on with the
// backward; at the end of the micro-step the compute stream waits for them and adds all the
// landing areas into the shard at once. Otherwise every collective waits for the compute.
#pragma once

#include <vector>

#include "comm/communicator.h"
#include "core/params.h"
#include "train/flat_memory.h"
#include "model/layer.h"
#include "train/shard_layout.h"

namespace ladder {

class GradientSync : public BackwardObserver {
 public:
  GradientSync(FlatMemory& memory, const ShardLayout& layout, int stage,
               Communicator& buffers_comm, Communicator& scalars_comm);

  void begin_step();        // before an optimizer step's first micro-step
  void begin_micro_step();  // before each micro-step's backward
  void gradients_ready_from(int64_t offset) override;  // during the backward (stage 2)
  void end_micro_step();    // after each micro-step's backward
  void end_step();          // after the last micro-step, before the optimizer

  // What AdamW consumes: the ranges the rank updates and their gradients, concatenated.
  std::vector<Range> optimizer_ranges() const;
  float* optimizer_grads();
  int64_t optimizer_grad_count() const;

  // Σ g² over all ranks' optimizer gradients, per part: (offset, count) into optimizer_grads()
  // (the optimizer groups' slices), in one all-reduce.
  std::vector<double> global_squared_norms(const std::vector<std::pair<int64_t, int64_t>>& parts);
  void gather_parameters();      // after the optimizer: every rank gets every update

  // Bytes of gradient state that persists across micro-steps (the fp32 shard under ZeRO-2).
  int64_t gradient_shard_bytes() const { return shard_.bytes(); }
  double comm_seconds() const { return comm_seconds_; }

 private:
  void reduce_bucket(int bucket);  // stage 2: reduce-scatter and accumulate into the shard
  float* landing(int bucket);      // stage 2: where bucket's reduced slice lands

  FlatMemory& memory_;
  const ShardLayout& layout_;
  const int stage_;
  Communicator& comm_;
  Communicator& scalars_comm_;
  FloatArray shard_;    // (owned_count) fp32 gradients of the owned slices (stage 1, 2)
  // Stage 2 reduce-scatter landing: (largest slice), reused bucket after bucket; with overlap
  // (owned_count), one area per bucket at the bucket's place in the shard.
  FloatArray scratch_;
  StreamOrderedCollectives* overlap_ = nullptr;  // stage 2 with NCCL on a GPU: in flight
  int next_bucket_ = 0;        // stage 2: buckets at or above are reduced, descending
  double comm_seconds_ = 0;
};

}  // namespace ladder
