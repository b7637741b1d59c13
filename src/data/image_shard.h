// Why this file exists: the rank's share of one rung's records, held in host RAM (BRIEF §5:
// rank r holds the whole partitions ≡ r (mod world) of data/data_order.h, which are the images
// i ≡ r (mod world)): images as uint8 (stage 1), or an image's latent distribution as float
// μ | log σ² per pixel (stage 2), and the flips over them, a pure function of (seed, epoch,
// image), so a micro-batch's content depends only on its position in the run, never on the
// world size, threads, batch split or timing — which is what makes runs reproducible and
// resumable.
#pragma once

#include <cstdint>
#include <vector>

#include "core/host_buffer.h"
#include "core/tensor.h"

namespace ladder::data {

// Images [begin, end) of a store (end < 0: to its last): a rank loads those ≡ rank (mod world)
// counted from begin.
struct ImageRange {
  int64_t begin = 0;
  int64_t end = -1;
};

struct ImageShard {
  int resolution = 0;   // the records' side: R for images, R / downsampling for latents
  int channels = 0;     // values per pixel (latents: 2 × latent channels, μ then log σ²)
  int value_bytes = 1;  // bytes per value: 1 (uint8 images) or 4 (float latents)
  std::vector<int64_t> indices;  // the global index of each held image
  HostBuffer<uint8_t> pixels;    // (count, side, side, channels) values of value_bytes each

  int64_t count() const { return static_cast<int64_t>(indices.size()); }
  int64_t pixel_bytes() const { return int64_t(channels) * value_bytes; }
  int64_t image_bytes() const { return int64_t(resolution) * resolution * pixel_bytes(); }
  const uint8_t* image(int64_t local) const { return pixels.data() + local * image_bytes(); }
};

// Whether global image `index` is mirrored in epoch `epoch`.
bool flip_image(uint64_t seed, int64_t epoch, int64_t index);

// Copies record `local` into out (side, side, channels), mirrored left-right when `flip`.
void copy_image(const ImageShard& shard, int64_t local, bool flip, uint8_t* out);

// Held uint8 images [first, first + count) as floats in [−1, 1], not flipped: (count, R, R, C).
void images_to_tensor(const ImageShard& shard, int64_t first, int64_t count, TensorF& out);

}  // namespace ladder::data
