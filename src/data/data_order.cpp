// Why this file exists: the partitions and slots of the world-invariant data order
// (data/data_order.h).
#include "data/data_order.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

#include "core/check.h"
#include "core/rng.h"

namespace ladder::data {
namespace {

std::string list(const std::vector<int>& values) {
  std::string text;
  for (int v : values) text += (text.empty() ? "" : ", ") + std::to_string(v);
  return text;
}

}  // namespace

DataOrder::DataOrder(int64_t images, int64_t partitions, int64_t batch)
    : images_(images), partitions_(partitions), batch_(batch), automatic_(partitions == 0) {
  LADDER_CHECK(images >= 1 && partitions >= 0 && batch >= 1, "data order of ", images, " images, ", partitions,
               " partitions, batch ", batch);
  if (automatic_) {  // the batch, or its largest divisor not above the images
    for (partitions_ = std::min(batch, images); batch % partitions_ != 0;) --partitions_;
    return;
  }
  LADDER_CHECK_USAGE(batch % partitions == 0, "config: data.partitions = ", partitions,
                     " must divide train.batch = ", batch, " (every global batch draws alike from every partition)");
  LADDER_CHECK_USAGE(partitions <= images, "config: data.partitions = ", partitions, " is more than the ", images,
                     " training images (every partition needs one)");
}

std::vector<int> DataOrder::world_sizes() const {
  std::vector<int> worlds;
  for (int64_t w = 1; w <= partitions_; ++w)
    if (partitions_ % w == 0) worlds.push_back(static_cast<int>(w));
  return worlds;
}

void DataOrder::check_world(int world) const {
  if (fits(world)) return;
  const std::string which = automatic_
      ? detail::concat("auto, here ", partitions_, ": the largest divisor of train.batch = ", batch_,
                       " not above the ", images_, " training images")
      : std::to_string(partitions_);
  throw UsageError(detail::concat("world size ", world, " does not divide data.partitions (", which,
                                  "), which keeps the same global batches on every world size; world sizes that "
                                  "work: ", list(world_sizes())));
}

PartitionDraw DataOrder::slot(int64_t global_batch, int64_t j) const {
  LADDER_CHECK(j >= 0 && j < batch_, "slot ", j, " of a batch of ", batch_);
  return {j % partitions_, global_batch * (batch_ / partitions_) + j / partitions_};
}

int64_t DataOrder::rank_slot(int64_t position, int rank, int world) const {
  return rank + (position % (batch_ / world)) * world;
}

std::vector<int64_t> partition_permutation(int64_t count, uint64_t seed, int64_t epoch, int64_t partition) {
  std::vector<int64_t> order(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  Rng rng(seed ^ splitmix64(0x5eed0000ull + static_cast<uint64_t>(epoch)), static_cast<uint64_t>(partition));
  for (int64_t i = count - 1; i > 0; --i) std::swap(order[i], order[rng.below(static_cast<uint64_t>(i) + 1)]);
  return order;
}

std::string describe_order(const DataOrder& order, int world) {
  const int64_t n = order.images(), p = order.partitions();
  const int64_t most = (n + world - 1) / world, least = n / world;  // rank r holds images i ≡ r (mod W)
  const int64_t smallest = order.partition_size(p - 1), largest = order.partition_size(0);
  char balance[32];
  std::snprintf(balance, sizeof balance, "%.3f", static_cast<double>(most) * world / static_cast<double>(n));
  return detail::concat("data order: ", n, " images in ", p, " partitions of ", smallest,
                        largest != smallest ? detail::concat("-", largest) : std::string(), ", ", order.batch() / p,
                        " of each per global batch; ", world, world == 1 ? " rank holds " : " ranks hold ",
                        p / world, " partitions, ", least != most ? detail::concat(least, "-") : std::string(), most,
                        " images each (fullest / mean ", balance, "); world sizes with the same order: ",
                        list(order.world_sizes()));
}

}  // namespace ladder::data
