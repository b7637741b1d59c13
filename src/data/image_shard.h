// Why this file exists: the rank's share of one rung's images, held in host RAM as uint8
// (BRIEF §5: rank r holds images i ≡ r (mod world)), and the sampler that turns it into
// shuffled, flipped float micro-batches.
#pragma once

#include <cstdint>
#include <vector>

#include "core/host_buffer.h"
#include "core/tensor.h"
#include "data/synthetic_images.h"

namespace ladder::data {

struct ImageShard {
  int resolution = 0;
  int channels = 0;
  std::vector<int64_t> indices;  // the global index of each held image
  HostBuffer<uint8_t> pixels;    // (count, R, R, C)

  int64_t count() const { return static_cast<int64_t>(indices.size()); }
  int64_t image_bytes() const { return int64_t(resolution) * resolution * channels; }
  const uint8_t* image(int64_t local) const { return pixels.data() + local * image_bytes(); }
};

// Renders images i ≡ rank (mod world) of `source` at `resolution`.
ImageShard shard_synthetic(const SyntheticImageSource& source, int resolution, int rank, int world);

// Converts held images [first, first + count) to floats in [−1, 1], no flip: (count, R, R, C).
void images_to_tensor(const ImageShard& shard, int64_t first, int64_t count, TensorF& out);

// Epoch-shuffled micro-batches. The order of epoch e is a permutation drawn from
// (seed, e, rank); flips are drawn per (seed, epoch, image): both are independent of the
// batch size and reproducible from (epoch, cursor) alone.
class BatchSampler {
 public:
  BatchSampler(const ImageShard& shard, uint64_t seed, int rank, bool flip);

  // batch ← the next `micro` images (micro, R, R, C) in [−1, 1]; indices ← their global
  // indices (which seed per-image randomness such as the latent noise).
  void next(int micro, TensorF& batch, std::vector<int64_t>& indices);

  int64_t epoch() const { return epoch_; }
  int64_t cursor() const { return cursor_; }
  const std::vector<int64_t>& order() const { return order_; }  // local indices of this epoch

 private:
  void start_epoch(int64_t epoch);

  const ImageShard& shard_;
  uint64_t seed_;
  int rank_;
  bool flip_;
  int64_t epoch_ = 0;
  int64_t cursor_ = 0;
  std::vector<int64_t> order_;
};

}  // namespace ladder::data
