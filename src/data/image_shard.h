// Why this file exists: the rank's share of one rung's images, held in host RAM as uint8
// (BRIEF §5: rank r holds images i ≡ r (mod world)), and the sampling rules over it: the
// epoch order and the flips. Both are pure functions of (seed, epoch, rank / image), so a
// micro-batch's content depends only on its position in the run, never on threads, batch
// split or timing — which is what makes runs reproducible and resumable.
#pragma once

#include <cstdint>
#include <vector>

#include "core/host_buffer.h"
#include "core/tensor.h"

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

// The local indices of `count` held images in the order of epoch `epoch` on `rank`.
std::vector<int64_t> epoch_order(int64_t count, uint64_t seed, int64_t epoch, int rank);

// Whether global image `index` is mirrored in epoch `epoch`.
bool flip_image(uint64_t seed, int64_t epoch, int64_t index);

// Copies image `local` into out (R, R, C), mirrored left-right when `flip`.
void copy_image(const ImageShard& shard, int64_t local, bool flip, uint8_t* out);

// Held images [first, first + count) as floats in [−1, 1], not flipped: (count, R, R, C).
void images_to_tensor(const ImageShard& shard, int64_t first, int64_t count, TensorF& out);

}  // namespace ladder::data
