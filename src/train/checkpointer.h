// Why this file exists: when and how the trainer saves (issue: "never lose a run"). At each
// optimizer-step boundary the ranks agree, in one small all-reduce, on three things: whether
// any rank was asked to stop (a signal), whether checkpoint.every_minutes has passed (rank 0's
// clock), and whether every rank has finished writing the checkpoint in flight. A checkpoint
// is then:
//   1. staged: the rank's owned ranges of the fp32 master weights and Adam moments (and the
//      weights' moving average, when ema.decay is on) are copied
//      into a host staging buffer, and rank 0 takes the model's buffers (BatchNorm's running
//      statistics) for the manifest. On GPU ranks the training loop does it at once (device →
//      page-locked host). On CPU ranks the background thread does it while the next step's
//      forward and backward run (they read the weights but change neither them nor the
//      moments); the loop waits, in wait_until_staged(), only if the copy is not done when the
//      next update is about to change them. This is the only time the loop waits;
//   2. written by the background thread into checkpoints/.tmp-step-N/shard-R-of-W.h5,
//      fsynced, hashed (XXH3-64), while training goes on;
//   3. committed at the first step boundary where every rank has finished: the sizes and
//      checksums are all-gathered and rank 0 writes the manifest, renames the directory into
//      place and replaces `latest` (io/checkpoint_files.h).
// At most one checkpoint is in flight: a checkpoint due while one is in flight first
// completes it. A stop request, and the end of the run, write synchronously, and every rank
// returns only after rank 0 has committed.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "comm/communicator.h"
#include "config/config.h"
#include "core/host_buffer.h"
#include "core/model_buffers.h"
#include "core/params.h"
#include "data/prefetcher.h"
#include "io/checkpoint_files.h"
#include "train/adamw.h"
#include "train/flat_memory.h"
#include "train/shard_layout.h"
#include "train/weight_average.h"

namespace ladder {

class Checkpointer {
 public:
  // memory, optimizer: where the rank's state lives; layout: which ranges rank r saves (its
  // owned slices at every ZeRO stage, so no element is written twice); pin: how the staging
  // buffer is page-locked (GPU ranks), may be empty.
  // average: the moving average of the owned ranges (saved as /ema), or null when off.
  // buffers: the model's buffers (BatchNorm's running statistics), which rank 0 takes when a
  // checkpoint starts, for the manifest; may be empty (none).
  using BufferSource = std::function<std::vector<ModelBuffer>()>;
  Checkpointer(const Config& config, Communicator& comm, const ParamStore& params,
               const ShardLayout& layout, FlatMemory& memory, Optimizer& optimizer,
               WeightAverage* average, data::BufferPinner pin, BufferSource buffers);
  ~Checkpointer();  // joins the writer (a checkpoint not committed stays a temporary)
  Checkpointer(const Checkpointer&) = delete;
  Checkpointer& operator=(const Checkpointer&) = delete;

  // After every optimizer step, on every rank with the same `state` and `scheduled`
  // (checkpoint.every, or the last step of a rung). Returns true when the run must stop: a
  // stop signal reached some rank, and this step's checkpoint is committed.
  bool after_step(const io::TrainingState& state, bool scheduled);
  // Before anything changes the master weights or moments (the optimizer step, a reset):
  // returns once the checkpoint in flight has its copy of them.
  void wait_until_staged();
  // The end of the run, at `state`: completes the checkpoint in flight, and writes one of
  // `state` when run.dir has none at its step (a run resumed from another directory, or on
  // another world size, with nothing left to train: the loaded state saved in this run's
  // layout).
  void finish(const io::TrainingState& state);

  // Seconds the training loop waited for the last checkpoint's staging (inline on GPU ranks,
  // in wait_until_staged() on CPU ranks), and the background write of the last committed one
  // took (for the log and bench/).
  double last_stall_seconds() const { return last_stall_s_; }
  double last_write_seconds() const { return last_write_s_; }

 private:
  void start(const io::TrainingState& state);  // stage, then write in the background
  void stage();  // the copy into staging_ (the writer thread's on host memory)
  void complete();                             // every rank: wait, gather, rank 0 commits
  io::Manifest manifest_for(const io::TrainingState& state,
                            const std::vector<io::WrittenFile>& files) const;

  const Config& config_;
  Communicator& comm_;
  const ParamStore& params_;
  const ShardLayout& layout_;
  FlatMemory& memory_;
  Optimizer& optimizer_;
  WeightAverage* average_;
  BufferSource buffers_;
  io::CheckpointDirectory directory_;
  std::vector<Range> ranges_;  // this rank's owned ranges
  HostBuffer<float> staging_;  // (3 or 4, owned_count): master, exp_avg, exp_avg_sq[, ema]
  std::shared_ptr<void> staging_pin_;
  double pause_s_ = 0;  // LADDER_TEST_CHECKPOINT_PAUSE_S: the writer waits before reporting

  // The checkpoint in flight.
  bool in_flight_ = false;
  io::TrainingState pending_;
  std::vector<ModelBuffer> pending_buffers_;  // rank 0's, taken with pending_
  std::thread writer_;
  std::mutex staged_mutex_;
  std::condition_variable staged_signal_;
  bool staged_ = false;  // under staged_mutex_
  std::atomic<bool> written_{false};
  std::exception_ptr write_error_;
  io::WrittenFile written_file_;
  double write_seconds_ = 0;

  double last_start_time_ = 0;  // rank 0's clock, for checkpoint.every_minutes
  double last_stall_s_ = 0, last_write_s_ = 0;
};

}  // namespace ladder
