// Why this file exists: the prefetcher's ring and its worker threads.
#include "data/prefetcher.h"

#include "core/check.h"

namespace ladder::data {

Prefetcher::Prefetcher(const ImageShard& shard, PrefetchSettings settings)
    : shard_(shard),
      settings_(settings),
      slots_(static_cast<size_t>(settings.depth)),
      next_to_claim_(settings.first_batch),
      next_to_consume_(settings.first_batch) {
  LADDER_CHECK(shard.count() > 0, "rank ", settings.rank, " holds no images");
  LADDER_CHECK(settings.depth >= 1 && settings.threads >= 1 && settings.micro_batch >= 1,
               "prefetch settings");
  for (Slot& slot : slots_) {
    slot.batch.pixels = HostBuffer<uint8_t>(settings.micro_batch * shard.image_bytes());
    slot.batch.indices.resize(static_cast<size_t>(settings.micro_batch));
    if (settings.pin_buffers)
      pins_.push_back(settings.pin_buffers(slot.batch.pixels.data(), slot.batch.pixels.bytes()));
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

const std::vector<int64_t>& Prefetcher::order_for_epoch(int64_t epoch) {
  auto found = orders_.find(epoch);
  if (found != orders_.end()) return found->second;
  // Workers are at most depth batches apart, so a few epochs cover them all.
  while (orders_.size() > 4) orders_.erase(orders_.begin());
  return orders_[epoch] = epoch_order(shard_.count(), settings_.seed, epoch, settings_.rank);
}

void Prefetcher::fill(MicroBatch& batch, int64_t number) {
  const int64_t count = shard_.count();
  const int micro = settings_.micro_batch;
  batch.number = number;
  batch.epoch = number * micro / count;
  for (int b = 0; b < micro; ++b) {
    const int64_t position = number * micro + b;
    const int64_t epoch = position / count;
    int64_t local;
    {
      std::lock_guard<std::mutex> lock(orders_mutex_);
      local = order_for_epoch(epoch)[position % count];
    }
    const int64_t index = shard_.indices[local];
    batch.indices[b] = index;
    const bool flip = settings_.flip && flip_image(settings_.seed, epoch, index);
    copy_image(shard_, local, flip, batch.pixels.data() + b * shard_.image_bytes());
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
  if (next_to_consume_ > settings_.first_batch) {
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
