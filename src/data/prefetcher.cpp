// Why this file exists: the prefetcher's ring and its worker threads.
#include "data/prefetcher.h"

#include <algorithm>
#include <iterator>

#include "core/check.h"

namespace ladder::data {

Prefetcher::Prefetcher(const ImageShard& shard, const DataOrder& order, PrefetchSettings settings)
    : shard_(shard),
      order_(order),
      settings_(settings),
      micro_batches_per_global_(order.batch() / std::max(settings.world, 1) / std::max(settings.micro_batch, 1)),
      slots_(static_cast<size_t>(settings.depth)) {
  LADDER_CHECK(settings.depth >= 1 && settings.threads >= 1 && settings.micro_batch >= 1, "prefetch settings");
  LADDER_CHECK(order.fits(settings.world) && (order.batch() / settings.world) % settings.micro_batch == 0,
               "prefetch: world ", settings.world, " and micro-batch ", settings.micro_batch,
               " do not split the order's batch ", order.batch(), " of ", order.partitions(), " partitions");
  const int64_t expected = (order.images() - settings.rank + settings.world - 1) / settings.world;
  LADDER_CHECK(shard.count() == expected && expected > 0, "rank ", settings.rank, " holds ", shard.count(),
               " images; the data order gives it ", expected, " of ", order.images());
  next_to_claim_ = next_to_consume_ = settings.first_global_batch * micro_batches_per_global_;
  for (Slot& slot : slots_) {
    slot.batch.values = HostBuffer<float>(settings.micro_batch * shard.image_values());
    slot.batch.indices.resize(static_cast<size_t>(settings.micro_batch));
    slot.batch.slots.resize(static_cast<size_t>(settings.micro_batch));
    if (settings.pin_buffers)
      pins_.push_back(settings.pin_buffers(slot.batch.values.data(), slot.batch.values.bytes()));
  }
  for (int t = 0; t < settings.threads; ++t) threads_.emplace_back([this] { worker(); });
}

Prefetcher::~Prefetcher() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  slot_free_.notify_all();
  slot_ready_.notify_all();
  for (std::thread& thread : threads_) thread.join();
}

int64_t Prefetcher::partition_member(int64_t partition, int64_t epoch, int64_t at) {
  std::lock_guard<std::mutex> lock(orders_mutex_);
  const auto key = std::make_pair(partition, epoch);
  auto found = orders_.find(key);
  if (found == orders_.end()) {
    // Workers are at most `depth` micro-batches apart: a partition's two latest epochs cover
    // them (a tiny partition may need an older one again, which is merely recomputed).
    for (auto it = orders_.begin(); it != orders_.end();)
      it = it->first.first == partition && it->first.second < epoch - 1 ? orders_.erase(it) : std::next(it);
    const int64_t size = order_.partition_size(partition);
    found = orders_.emplace(key, partition_permutation(size, settings_.seed, epoch, partition)).first;
  }
  return found->second[static_cast<size_t>(at)];
}

void Prefetcher::fill(MicroBatch& batch, int64_t number) {
  const int micro = settings_.micro_batch;
  const int64_t per_rank = order_.batch() / settings_.world;
  batch.number = number;
  for (int b = 0; b < micro; ++b) {
    const int64_t position = number * micro + b;  // in this rank's endless sequence
    const int64_t slot = order_.rank_slot(position, settings_.rank, settings_.world);
    const PartitionDraw draw = order_.slot(position / per_rank, slot);
    const int64_t size = order_.partition_size(draw.partition);
    const int64_t epoch = draw.draw / size;  // the partition's epoch
    const int64_t image = order_.image(draw.partition, partition_member(draw.partition, epoch, draw.draw % size));
    const int64_t local = (image - settings_.rank) / settings_.world;  // the shard holds i ≡ rank (mod world)
    const int64_t index = shard_.indices[static_cast<size_t>(local)];
    batch.indices[b] = index;
    batch.slots[b] = slot;
    const bool flip = settings_.flip && flip_image(settings_.seed, epoch, index);
    record_to_floats(shard_, local, flip, batch.values.data() + b * shard_.image_values());
  }
}

void Prefetcher::worker() {
  try {
    for (;;) {
      int64_t number;
      Slot* slot;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        number = next_to_claim_++;
        slot = &slots_[static_cast<size_t>(number % settings_.depth)];
        // The slot is free once the consumer has moved past the batch `depth` before.
        slot_free_.wait(lock, [&] {
          return stopping_ || (slot->state == SlotState::kFree &&
                               number < next_to_consume_ + settings_.depth);
        });
        if (stopping_) return;
        slot->state = SlotState::kFilling;
      }
      fill(slot->batch, number);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        slot->state = SlotState::kReady;
      }
      slot_ready_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    failure_ = std::current_exception();
    slot_ready_.notify_all();
  }
}

const MicroBatch& Prefetcher::next() {
  std::unique_lock<std::mutex> lock(mutex_);
  // The batch handed out last time is no longer in use: free its slot.
  if (next_to_consume_ > settings_.first_global_batch * micro_batches_per_global_) {
    slots_[static_cast<size_t>((next_to_consume_ - 1) % settings_.depth)].state = SlotState::kFree;
    slot_free_.notify_all();
  }
  Slot& slot = slots_[static_cast<size_t>(next_to_consume_ % settings_.depth)];
  slot_ready_.wait(lock, [&] {
    return failure_ != nullptr ||
           (slot.state == SlotState::kReady && slot.batch.number == next_to_consume_);
  });
  if (failure_) std::rethrow_exception(failure_);
  ++next_to_consume_;
  return slot.batch;
}

}  // namespace ladder::data
