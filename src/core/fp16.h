// Why this file exists: IEEE half precision on the CPU, for weights exported as F16 and read
// back (the GPU computes in __half; files carry the same bits). The conversions are the
// F16C instructions that x86-64-v3 (our build target) guarantees: round to nearest even,
// NaN and infinities preserved, subnormals exact.
#pragma once

#include <immintrin.h>

#include <cstdint>

namespace ladder {

inline uint16_t float_to_half_bits(float value) {
  return static_cast<uint16_t>(_cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT));
}

inline float half_bits_to_float(uint16_t bits) { return _cvtsh_ss(bits); }

}  // namespace ladder
