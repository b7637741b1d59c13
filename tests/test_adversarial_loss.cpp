// Why this file exists: ladder's adversarial loss op against MONAI 1.6.1's PatchAdversarialLoss
// (tests/fixtures/make_adversarial_loss_golden.py): for least squares, hinge and BCE, the
// generator's term and the discriminator's real and fake terms, value and gradient by the
// logits, within 1e-5. (The finite-difference check of the op is in tests/kernels/test_ops_grad.cpp.)
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "io/safetensors.h"
#include "kernels/cpu/ops.h"
#include "test_support.h"

namespace ladder {
namespace {

const std::string kFixtures = LADDER_TEST_FIXTURES;

struct Case {
  const char* name;  // the fixture's
  bool real;         // the target: the generator's term and the discriminator's real term are "real"
};

TEST(AdversarialLoss, EqualsMonai) {
  const io::SafetensorsHeader golden = io::read_safetensors_header(kFixtures + "/adversarial_loss_golden.safetensors");
  const std::vector<float> logits = testing::safetensor_floats(golden, "logits");
  const int64_t n = static_cast<int64_t>(logits.size());
  ASSERT_EQ(n, 72);
  const std::pair<const char*, AdversarialCriterion> criteria[] = {
      {"least_squares", AdversarialCriterion::kLeastSquares},
      {"hinge", AdversarialCriterion::kHinge},
      {"bce", AdversarialCriterion::kBce}};
  for (const auto& [criterion_name, criterion] : criteria)
    for (const Case c : {Case{"generator", true}, Case{"real", true}, Case{"fake", false}}) {
      const std::string prefix = std::string(criterion_name) + "." + c.name;
      SCOPED_TRACE(prefix);
      // MONAI's mean over the logits: the op's sum over n.
      const double loss = cpu::adversarial_loss_forward(criterion, c.real, n, logits.data()) / double(n);
      const double want = testing::safetensor_floats(golden, prefix + ".loss").at(0);
      EXPECT_LT(std::abs(loss - want), 1e-5 * std::abs(want)) << loss << " vs " << want;
      std::vector<float> grad(logits.size());
      cpu::adversarial_loss_backward(criterion, c.real, n, logits.data(), 1.0f / float(n), grad.data());
      const std::vector<float> want_grad = testing::safetensor_floats(golden, prefix + ".grad");
      double largest = 0;
      for (float g : want_grad) largest = std::max(largest, std::abs(double(g)));
      ASSERT_GT(largest, 0);
      for (int64_t i = 0; i < n; ++i)
        EXPECT_LE(std::abs(double(grad[i]) - want_grad[i]), 1e-5 * largest) << "logit " << i << " = " << logits[i];
    }
}

// The saturated corners, where torch's formulas decide: BCE's logs floor at −100 and its
// gradient vanishes where sigmoid rounds to 0 or 1; tanh's gradient vanishes at ±1.
TEST(AdversarialLoss, SaturationAsTorch) {
  const float x[2] = {-120.f, 120.f};
  EXPECT_DOUBLE_EQ(cpu::adversarial_loss_forward(AdversarialCriterion::kBce, true, 1, x), 100.0);
  EXPECT_DOUBLE_EQ(cpu::adversarial_loss_forward(AdversarialCriterion::kBce, false, 1, x + 1), 100.0);
  float g[2];
  cpu::adversarial_loss_backward(AdversarialCriterion::kBce, true, 2, x, 1.0f, g);
  EXPECT_EQ(g[0], 0.f);  // sigmoid(−120) rounds to 0 in fp32: torch's gradient is 0 too
  EXPECT_EQ(g[1], 0.f);
  cpu::adversarial_loss_backward(AdversarialCriterion::kHinge, false, 2, x, 1.0f, g);
  EXPECT_EQ(g[0], 0.f);
  EXPECT_EQ(g[1], 0.f);
  EXPECT_DOUBLE_EQ(cpu::adversarial_loss_forward(AdversarialCriterion::kHinge, true, 1, x + 1), 0.0);
}

}  // namespace
}  // namespace ladder
