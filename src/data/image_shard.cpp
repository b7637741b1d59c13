// Why this file exists: the flips and image copies over a rank's shard.
#include "data/image_shard.h"

#include <cstring>

#include "core/check.h"
#include "core/rng.h"
#include "kernels/cpu/ops.h"

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

void images_to_tensor(const ImageShard& shard, int64_t first, int64_t count, TensorF& out) {
  LADDER_CHECK(shard.value_bytes == 1, "images_to_tensor: the shard holds latents, not images");
  out.reshape_or_allocate({count, shard.resolution, shard.resolution, shard.channels});
  cpu::normalize_images(count * shard.image_bytes(), shard.image(first), out.data());
}

}  // namespace ladder::data
