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
#include "data/intensity.h"
#include "data/pixel_type.h"

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
  PixelType type = PixelType::kUint8;  // of the stored values (latents: float32)
  bool latents = false;  // the records are latent distributions, not images
  // How the images' values become model inputs in [−1, 1] (data.intensity; unused for latents).
  IntensityTransform intensity{IntensitySpec{}, PixelType::kUint8};
  std::vector<int64_t> indices;  // the global index of each held image
  HostBuffer<uint8_t> pixels;    // (count, side, side, channels) values of `type`

  int64_t count() const { return static_cast<int64_t>(indices.size()); }
  int64_t pixel_bytes() const { return int64_t(channels) * pixel_type_bytes(type); }
  int64_t image_values() const { return int64_t(resolution) * resolution * channels; }
  int64_t image_bytes() const { return int64_t(resolution) * resolution * pixel_bytes(); }
  const uint8_t* image(int64_t local) const { return pixels.data() + local * image_bytes(); }
};

// Whether global image `index` is mirrored in epoch `epoch`.
bool flip_image(uint64_t seed, int64_t epoch, int64_t index);

// Copies record `local` into out (side, side, channels), mirrored left-right when `flip`.
void copy_image(const ImageShard& shard, int64_t local, bool flip, uint8_t* out);

// Record `local` as model input, mirrored when `flip`: an image through the shard's intensity
// transform into [−1, 1], a latent record's floats as they are. out: (side, side, channels).
void record_to_floats(const ImageShard& shard, int64_t local, bool flip, float* out);

// Held images [first, first + count) as model inputs in [−1, 1], not flipped: (count, R, R, C).
void images_to_tensor(const ImageShard& shard, int64_t first, int64_t count, TensorF& out);

// Held images [first, first + count) as bytes through the same transform (as a grid shows them
// and FID reads them; a uint8 store's auto transform gives its bytes back): (count, R, R, C).
std::vector<uint8_t> images_as_bytes(const ImageShard& shard, int64_t first, int64_t count);

}  // namespace ladder::data
