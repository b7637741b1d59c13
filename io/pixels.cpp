// Why this file exists: the two pixel routines that the store writer, the store reader and
// the packer must agree on bit for bit: the per-image checksum and the integer box filter.
#include <algorithm>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "io/image_store.h"

namespace ladder::io {

uint64_t store_checksum(const uint8_t* bytes, int64_t count) {
  // 8 bytes per round, multiply-xorshift mixing (in the spirit of splitmix64/wyhash); the
  // length is mixed in so that a truncated image never matches.
  constexpr uint64_t kMul = 0x9e3779b97f4a7c15ull;
  uint64_t hash = 0x243f6a8885a308d3ull ^ static_cast<uint64_t>(count);
  int64_t i = 0;
  for (; i + 8 <= count; i += 8) {
    uint64_t word;
    std::memcpy(&word, bytes + i, 8);
    hash = (hash ^ word) * kMul;
    hash ^= hash >> 29;
  }
  uint64_t tail = 0;
  for (int64_t shift = 0; i < count; ++i, shift += 8) tail |= static_cast<uint64_t>(bytes[i]) << shift;
  hash = (hash ^ tail) * kMul;
  hash ^= hash >> 32;
  hash *= 0xbf58476d1ce4e5b9ull;
  return hash ^ (hash >> 31);
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

}  // namespace ladder::io
