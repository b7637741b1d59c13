// Why this file exists: the two pixel routines that the store writer, the store reader and
// the packer must agree on bit for bit: the per-image checksum (XXH3-64, libxxhash) and the integer box filter.
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "io/image_store.h"

namespace ladder::io {

uint64_t store_checksum(const uint8_t* bytes, int64_t count) {
  return XXH3_64bits(bytes, static_cast<size_t>(count));
}

void box_downsample(const uint8_t* in, int height, int width, int channels, int factor,
                    uint8_t* out) {
  LADDER_CHECK(factor >= 1 && height % factor == 0 && width % factor == 0, "box filter ", height,
               "x", width, " by ", factor);
  const int out_h = height / factor, out_w = width / factor;
  const uint32_t area = static_cast<uint32_t>(factor) * factor;
  const int block = factor * channels;  // input bytes of one output pixel within a row
  std::vector<uint32_t> sums(static_cast<size_t>(out_w) * channels);  // (out_w, C)
  for (int y = 0; y < out_h; ++y) {
    std::fill(sums.begin(), sums.end(), 0u);
    for (int dy = 0; dy < factor; ++dy) {
      const uint8_t* row = in + int64_t(y * factor + dy) * width * channels;
      for (int x = 0; x < out_w; ++x) {
        const uint8_t* pixels = row + int64_t(x) * block;
        uint32_t* sum = sums.data() + int64_t(x) * channels;
        for (int i = 0; i < block; ++i) sum[i % channels] += pixels[i];
      }
    }
    uint8_t* out_row = out + int64_t(y) * out_w * channels;
    for (size_t i = 0; i < sums.size(); ++i)
      out_row[i] = static_cast<uint8_t>((sums[i] + area / 2) / area);
  }
}

void box_downsample_values(data::PixelType type, const uint8_t* in, int height, int width, int channels, int factor,
                           uint8_t* out) {
  if (type == data::PixelType::kUint8) {
    box_downsample(in, height, width, channels, factor, out);
    return;
  }
  LADDER_CHECK(factor >= 1 && height % factor == 0 && width % factor == 0, "box filter ", height, "x", width, " by ",
               factor);
  const int out_h = height / factor, out_w = width / factor;
  const int64_t area = int64_t(factor) * factor;
  for (int y = 0; y < out_h; ++y)
    for (int x = 0; x < out_w; ++x)
      for (int c = 0; c < channels; ++c) {
        double sum = 0;  // exact for uint16 (< 2^53), the mean's best for floats
        for (int dy = 0; dy < factor; ++dy)
          for (int dx = 0; dx < factor; ++dx)
            sum += data::pixel_value(type, in, (int64_t(y * factor + dy) * width + x * factor + dx) * channels + c);
        const int64_t at = (int64_t(y) * out_w + x) * channels + c;
        if (type == data::PixelType::kUint16) {
          const auto mean = static_cast<uint16_t>((static_cast<int64_t>(sum) + area / 2) / area);
          std::memcpy(out + 2 * at, &mean, 2);
        } else if (type == data::PixelType::kFloat16) {
          const uint16_t bits = float_to_half_bits(static_cast<float>(sum / static_cast<double>(area)));
          std::memcpy(out + 2 * at, &bits, 2);
        } else {
          const auto mean = static_cast<float>(sum / static_cast<double>(area));
          std::memcpy(out + 4 * at, &mean, 4);
        }
      }
}

}  // namespace ladder::io
