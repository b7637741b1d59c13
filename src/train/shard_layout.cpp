// Why this file exists: the bucket and shard arithmetic of ShardLayout.
#include "train/shard_layout.h"

#include <algorithm>

#include "core/check.h"

namespace ladder {

int64_t total_size(const std::vector<Range>& ranges) {
  int64_t total = 0;
  for (const Range& range : ranges) total += range.size();
  return total;
}

ShardLayout::ShardLayout(int64_t count, int world, int64_t bucket_elements) : world_(world) {
  LADDER_CHECK(world >= 1 && count >= 1 && bucket_elements >= 1, "shard layout of ", count,
               " over ", world);
  const int64_t bucket = (bucket_elements + world - 1) / world * world;
  for (int64_t begin = 0; begin < count; begin += bucket) {
    int64_t size = std::min(bucket, count - begin);
    size = (size + world - 1) / world * world;  // the last bucket is padded
    buckets_.push_back({begin, begin + size});
    padded_count_ = begin + size;
  }
}

Range ShardLayout::owned_slice(int bucket, int rank) const {
  const Range& b = buckets_.at(static_cast<size_t>(bucket));
  const int64_t part = b.size() / world_;
  return {b.begin + rank * part, b.begin + (rank + 1) * part};
}

std::vector<Range> ShardLayout::owned_ranges(int rank) const {
  std::vector<Range> ranges;
  for (int b = 0; b < static_cast<int>(buckets_.size()); ++b) ranges.push_back(owned_slice(b, rank));
  return ranges;
}

}  // namespace ladder
