// Why this file exists: the flips, copies and conversions of a rank's shard's records.
#include "data/image_shard.h"

#include <cstring>
#include <utility>
#include <vector>

#include "core/check.h"
#include "core/rng.h"

namespace ladder::data {

bool flip_image(uint64_t seed, int64_t epoch, int64_t index) {
  uint64_t draw = splitmix64(seed ^ splitmix64(static_cast<uint64_t>(epoch) * 0x10001ull +
                                               static_cast<uint64_t>(index)));
  return (draw & 1u) != 0;
}

void copy_image(const ImageShard& shard, int64_t local, bool flip, uint8_t* out) {
  const uint8_t* in = shard.image(local);
  if (!flip) {
    std::memcpy(out, in, static_cast<size_t>(shard.image_bytes()));
    return;
  }
  const int r = shard.resolution;
  const int64_t c = shard.pixel_bytes();
  for (int y = 0; y < r; ++y) {
    const uint8_t* row = in + int64_t(y) * r * c;
    uint8_t* target = out + int64_t(y) * r * c;
    for (int x = 0; x < r; ++x)
      std::memcpy(target + int64_t(x) * c, row + int64_t(r - 1 - x) * c, static_cast<size_t>(c));
  }
}

void record_to_floats(const ImageShard& shard, int64_t local, bool flip, float* out) {
  if (shard.latents) {  // float records: the bytes are the floats
    copy_image(shard, local, flip, reinterpret_cast<uint8_t*>(out));
    return;
  }
  shard.intensity.apply(shard.image(local), shard.image_values(), out);
  if (!flip) return;
  // Mirrored after the transform, in place: the transform is per value (a window) or uses
  // statistics of the whole image (percentiles), so the order gives the same floats.
  const int64_t side = shard.resolution, c = shard.channels;
  for (int64_t y = 0; y < side; ++y) {
    float* row = out + y * side * c;
    for (int64_t x = 0; x < side / 2; ++x)
      for (int64_t k = 0; k < c; ++k) std::swap(row[x * c + k], row[(side - 1 - x) * c + k]);
  }
}

void images_to_tensor(const ImageShard& shard, int64_t first, int64_t count, TensorF& out) {
  LADDER_CHECK(!shard.latents, "images_to_tensor: the shard holds latents, not images");
  out.reshape_or_allocate({count, shard.resolution, shard.resolution, shard.channels});
#pragma omp parallel for schedule(static) if (count > 1)
  for (int64_t k = 0; k < count; ++k) record_to_floats(shard, first + k, false, out.data() + k * shard.image_values());
}

std::vector<uint8_t> images_as_bytes(const ImageShard& shard, int64_t first, int64_t count) {
  TensorF values;
  if (count > 0) images_to_tensor(shard, first, count, values);
  std::vector<uint8_t> bytes(static_cast<size_t>(count * shard.image_values()));
  for (size_t e = 0; e < bytes.size(); ++e) bytes[e] = unit_to_byte(values[static_cast<int64_t>(e)]);
  return bytes;
}

}  // namespace ladder::data
