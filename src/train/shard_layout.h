// Why this file exists: how the flat buffer is cut for ZeRO (BRIEF §3). The buffer is split
// into buckets of about train.bucket_mb, each padded to a multiple of the world size; rank r
// owns the r-th equal slice of every bucket. So a bucket can be reduce-scattered (and its
// parameters all-gathered) as soon as it is complete, and every rank owns the same number of
// elements. The owned ranges are global offsets of the flat buffer: checkpoints can be read
// back on any world size.
#pragma once

#include <cstdint>
#include <vector>

namespace ladder {

struct Range {
  int64_t begin = 0, end = 0;  // [begin, end) of the flat buffer
  int64_t size() const { return end - begin; }
};

// Σ sizes: how many elements a rank owns over `ranges`.
int64_t total_size(const std::vector<Range>& ranges);

class ShardLayout {
 public:
  // count: real parameters; bucket_elements: target bucket size (rounded up to the world).
  ShardLayout(int64_t count, int world, int64_t bucket_elements);

  int world() const { return world_; }
  int64_t padded_count() const { return padded_count_; }
  const std::vector<Range>& buckets() const { return buckets_; }
  // The slice of `bucket` owned by `rank`.
  Range owned_slice(int bucket, int rank) const;
  // Every slice `rank` owns, in bucket order; their sizes add up to owned_count().
  std::vector<Range> owned_ranges(int rank) const;
  int64_t owned_count() const { return padded_count_ / world_; }

 private:
  int world_;
  int64_t padded_count_ = 0;
  std::vector<Range> buckets_;
};

}  // namespace ladder
