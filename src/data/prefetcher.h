// Why this file exists: keeps the trainer from waiting on data. Background threads
// (`data.loader_threads`) assemble micro-batches — drawn in the rung's world-invariant order
// (data/data_order.h), flipped, through the shard's intensity transform — from the rank's shard
// into a ring of `data.prefetch` reusable float buffers; the trainer takes them in order. Micro-batch k of a rung is always positions
// [k·micro, (k+1)·micro) of the rank's endless sequence (its slots of global batch 0, then of
// global batch 1, ...), whatever the thread count or timing.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "data/data_order.h"
#include "data/image_shard.h"

namespace ladder::data {

struct MicroBatch {
  int64_t number = 0;            // k: the micro-batch's position in the rung
  HostBuffer<float> values;      // (micro, R, R, C): images in [−1, 1] (data.intensity), or latent records
  std::vector<int64_t> indices;  // global image indices, (micro)
  std::vector<int64_t> slots;    // each image's slot in its global batch, (micro)
};

// Called once for each ring slot's pixel buffer when the ring is made: GPU ranks page-lock the
// buffers (cudaHostRegister) so that batches reach the device by DMA without a staging copy.
// The returned handle lives as long as the ring and is released before the buffer is freed.
using BufferPinner = std::function<std::shared_ptr<void>(void* data, int64_t bytes)>;

struct PrefetchSettings {
  int micro_batch = 1;
  int depth = 4;         // ring slots
  int threads = 1;       // loader threads
  bool flip = true;
  uint64_t seed = 0;
  int rank = 0;
  int world = 1;
  int64_t first_global_batch = 0;  // the data cursor: where the rung's sequence starts (resume)
  BufferPinner pin_buffers;  // empty: ordinary host memory
};

class Prefetcher {
 public:
  // shard: this rank's images of `order` (those i ≡ rank mod world of its range); the order
  // must fit the world and its per-rank batch be a multiple of the micro-batch.
  Prefetcher(const ImageShard& shard, const DataOrder& order, PrefetchSettings settings);
  ~Prefetcher();  // stops and joins the threads
  Prefetcher(const Prefetcher&) = delete;
  Prefetcher& operator=(const Prefetcher&) = delete;

  // Blocks until the next micro-batch is ready. The batch stays valid until the next call.
  const MicroBatch& next();
  // Global batches whose micro-batches this rank has all taken, counted from the rung's start
  // (first_global_batch included): the data cursor a checkpoint saves. Called from the thread
  // that calls next().
  int64_t global_batches_consumed() const { return next_to_consume_ / micro_batches_per_global_; }

 private:
  enum class SlotState { kFree, kFilling, kReady };
  struct Slot {
    SlotState state = SlotState::kFree;
    MicroBatch batch;
  };

  void worker();
  void fill(MicroBatch& batch, int64_t number);
  int64_t partition_member(int64_t partition, int64_t epoch, int64_t at);  // member `at` of its epoch

  const ImageShard& shard_;
  const DataOrder& order_;
  const PrefetchSettings settings_;
  const int64_t micro_batches_per_global_;  // the accumulation: (batch / world) / micro
  std::vector<Slot> slots_;
  std::vector<std::shared_ptr<void>> pins_;  // released before slots_ (declared after it)
  std::mutex mutex_;
  std::condition_variable slot_ready_, slot_free_;
  int64_t next_to_claim_;    // next micro-batch a worker will build
  int64_t next_to_consume_;  // next micro-batch next() returns
  bool stopping_ = false;
  std::exception_ptr failure_;
  std::mutex orders_mutex_;
  std::map<std::pair<int64_t, int64_t>, std::vector<int64_t>> orders_;  // (partition, epoch) → permutation
  std::vector<std::thread> threads_;
};

}  // namespace ladder::data
