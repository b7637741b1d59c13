// Why this file exists: filling a rank's shard and sampling micro-batches from it.
#include "data/image_shard.h"

#include <numeric>

#include "core/rng.h"

namespace ladder::data {

ImageShard shard_synthetic(const SyntheticImageSource& source, int resolution, int rank,
                           int world) {
  ImageShard shard;
  shard.resolution = resolution;
  shard.channels = source.channels();
  for (int64_t index = rank; index < source.size(); index += world) shard.indices.push_back(index);
  shard.pixels = HostBuffer<uint8_t>(shard.count() * shard.image_bytes());
#pragma omp parallel for schedule(dynamic)
  for (int64_t local = 0; local < shard.count(); ++local)
    source.render(shard.indices[local], resolution,
                  shard.pixels.data() + local * shard.image_bytes());
  return shard;
}

namespace {

// One image to floats in [−1, 1], mirrored left-right when `flip`.
void convert_image(const ImageShard& shard, int64_t local, bool flip, float* out) {
  const int r = shard.resolution, c = shard.channels;
  const uint8_t* in = shard.image(local);
  for (int y = 0; y < r; ++y)
    for (int x = 0; x < r; ++x) {
      const uint8_t* pixel = in + (int64_t(y) * r + (flip ? r - 1 - x : x)) * c;
      float* target = out + (int64_t(y) * r + x) * c;
      for (int ch = 0; ch < c; ++ch) target[ch] = pixel[ch] * (2.0f / 255.0f) - 1.0f;
    }
}

}  // namespace

void images_to_tensor(const ImageShard& shard, int64_t first, int64_t count, TensorF& out) {
  out.reshape_or_allocate({count, shard.resolution, shard.resolution, shard.channels});
  for (int64_t i = 0; i < count; ++i)
    convert_image(shard, first + i, false, out.data() + i * shard.image_bytes());
}

BatchSampler::BatchSampler(const ImageShard& shard, uint64_t seed, int rank, bool flip)
    : shard_(shard), seed_(seed), rank_(rank), flip_(flip) {
  LADDER_CHECK(shard.count() > 0, "rank ", rank, " holds no images");
  start_epoch(0);
}

void BatchSampler::start_epoch(int64_t epoch) {
  epoch_ = epoch;
  cursor_ = 0;
  order_.resize(shard_.count());
  std::iota(order_.begin(), order_.end(), 0);
  Rng rng(seed_ ^ splitmix64(0x5eed0000ull + static_cast<uint64_t>(epoch)), rank_);
  for (int64_t i = static_cast<int64_t>(order_.size()) - 1; i > 0; --i)
    std::swap(order_[i], order_[rng.below(static_cast<uint64_t>(i) + 1)]);
}

void BatchSampler::next(int micro, TensorF& batch, std::vector<int64_t>& indices) {
  batch.reshape_or_allocate({micro, shard_.resolution, shard_.resolution, shard_.channels});
  indices.clear();
  for (int b = 0; b < micro; ++b) {
    if (cursor_ == static_cast<int64_t>(order_.size())) start_epoch(epoch_ + 1);
    const int64_t local = order_[cursor_++];
    indices.push_back(shard_.indices[local]);
    const uint64_t draw = splitmix64(seed_ ^ splitmix64(static_cast<uint64_t>(epoch_) * 0x10001ull +
                                                        static_cast<uint64_t>(shard_.indices[local])));
    convert_image(shard_, local, flip_ && (draw & 1u), batch.data() + b * shard_.image_bytes());
  }
}

}  // namespace ladder::data
