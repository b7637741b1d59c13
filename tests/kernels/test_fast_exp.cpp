// Why this file exists: fast_exp and fast_sigmoid (kernels/cpu/fast_exp.h) against std::exp
// in double over their whole domain, and the sigmoid's behaviour at its clamps.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "kernels/cpu/fast_exp.h"

namespace ladder::cpu {
namespace {

TEST(FastExp, WithinThreeTenthsOfAMillionthOverTheWholeRange) {
  double worst = 0;
  for (float x = -87.0f; x <= 88.0f; x += 1.0f / 1024) {
    const double exact = std::exp(double(x));
    worst = std::max(worst, std::fabs(fast_exp(x) - exact) / exact);
  }
  EXPECT_LT(worst, 3e-7);
  EXPECT_EQ(fast_exp(0.0f), 1.0f);
}

TEST(FastSigmoid, MatchesTheLogisticAndSaturatesToNormalFloats) {
  double worst = 0;
  for (float u = -80.0f; u <= 100.0f; u += 1.0f / 256) {
    const double exact = 1.0 / (1.0 + std::exp(-double(u)));
    worst = std::max(worst, std::fabs(fast_sigmoid(u) - exact) / exact);
  }
  EXPECT_LT(worst, 1e-6);
  for (float u = -100.0f; u < -80.0f; u += 1.0f / 256) EXPECT_EQ(fast_sigmoid(u), fast_sigmoid(-80.0f));
  EXPECT_LT(fast_sigmoid(-80.0f), 2e-35f);
  EXPECT_EQ(fast_sigmoid(std::numeric_limits<float>::infinity()), 1.0f);
  const float low = fast_sigmoid(-std::numeric_limits<float>::infinity());
  EXPECT_GT(low, 0.0f);
  EXPECT_EQ(std::fpclassify(low), FP_NORMAL);
  EXPECT_TRUE(std::isnan(fast_sigmoid(std::numeric_limits<float>::quiet_NaN())));
}

}  // namespace
}  // namespace ladder::cpu
