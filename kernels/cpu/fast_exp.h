// Why this file exists: an exp for the CPU fast paths that the compiler can vectorise. std::exp
// is a call into libm per element, which keeps every loop around it scalar (the fused
// GroupNorm+SiLU spent a third of its time there). This one is straight-line float arithmetic:
// e^x = 2^n · e^r with n = round(x / ln 2) and r = x − n·ln 2 (ln 2 in two parts, so r is exact
// to a few ulp), e^r by its Taylor series to r⁶ (|r| ≤ ln 2 / 2: truncation < 2e-7 relative),
// 2^n built in the exponent bits. The caller keeps x in [−87, 88], where float e^x is normal
// (fast_exp does not clamp: see fast_sigmoid). The reference ops keep std::exp and stay the
// oracle.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

namespace ladder::cpu {

inline float fast_exp(float x) {
  const float n = std::floor(x * 1.44269504f + 0.5f);
  const float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;  // ln 2 = 0.693359375 − 2.12194440e-4
  const float p =
      1.0f + r * (1.0f + r * (0.5f + r * (1.0f / 6 + r * (1.0f / 24 + r * (1.0f / 120 + r * (1.0f / 720))))));
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// σ(u) = 1 / (1 + e^−u), with u clamped to ±80 first (a NaN stays NaN): past that σ is 1 or
// below 2e-35. The bound matters for speed: GCC folds σ of the clamped lanes into constants
// and blends them in, and with a bound of 88 that constant was a denormal: every vector
// multiplied by it took a microcode assist (the SiLU ran 10× slower).
inline float fast_sigmoid(float u) {
  u = u < -80.0f ? -80.0f : (u > 80.0f ? 80.0f : u);
  return 1.0f / (1.0f + fast_exp(-u));
}

}  // namespace ladder::cpu
