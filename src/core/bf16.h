// Why this file exists: bfloat16 storage for tensors on the CPU (the GPU computes in bf16;
// the CPU keeps the same bits so that checkpoints and comparisons share one format).
#pragma once

#include <cstdint>
#include <cstring>

namespace ladder {

struct bf16 {
  uint16_t bits = 0;

  bf16() = default;
  explicit bf16(float value) : bits(round_to_bits(value)) {}
  explicit operator float() const {
    uint32_t wide = static_cast<uint32_t>(bits) << 16;
    float out;
    std::memcpy(&out, &wide, sizeof out);
    return out;
  }

  // Round to nearest, ties to even; NaN stays NaN.
  static uint16_t round_to_bits(float value) {
    uint32_t wide;
    std::memcpy(&wide, &value, sizeof wide);
    if ((wide & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((wide >> 16) | 0x40u);
    uint32_t rounding = 0x7fffu + ((wide >> 16) & 1u);
    return static_cast<uint16_t>((wide + rounding) >> 16);
  }
};

static_assert(sizeof(bf16) == 2, "bf16 must be two bytes");

}  // namespace ladder
