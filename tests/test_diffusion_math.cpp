// Why this file exists: stage 2's arithmetic (diffusion/): the three schedules against the
// reference's and MONAI's ᾱ values, the sampling timestep convention, the forward process and
// targets (a predicted target turns back into x0 and ε exactly), Min-SNR-γ, and one reverse
// step of DDIM (η = 0 and 0.7) and DDPM for every prediction type against MONAI 1.6.1's
// schedulers on the same inputs and noise (tests/fixtures/schedulers_golden.safetensors).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "core/check.h"
#include "core/rng.h"
#include "diffusion/diffusion_math.h"
#include "diffusion/sampler.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace ladder {
namespace {

TEST(NoiseSchedule, AlphaBarsEqualTheReference) {
  struct Case {
    ScheduleSettings settings;
    double first, middle, last;
  };
  const Case cases[] = {
      {{"linear_beta", 1000, 0.0015, 0.0195}, 0.9985, 0.049367, 2.5692e-5},
      {{"scaled_linear_beta", 1000, 0.0015, 0.0195}, 0.9985, 0.115844, 1.4230e-4},
      {{"linear_beta", 1000, 1e-4, 2e-2}, 0.9999, 0.078587, 4.0358e-5},  // MONAI defaults
      {{"cosine", 1000, 0, 0}, 0.99996, 0.49384, 2.4289e-9},  // printed by MONAI 1.6.1
  };
  for (const Case& c : cases) {
    const NoiseSchedule schedule(c.settings);
    EXPECT_NEAR(schedule.alpha_bar(0), c.first, 2e-5) << c.settings.kind;
    EXPECT_NEAR(schedule.alpha_bar(499) / c.middle, 1.0, 1e-4) << c.settings.kind;
    EXPECT_NEAR(schedule.alpha_bar(999) / c.last, 1.0, 1e-4) << c.settings.kind;
  }
  EXPECT_THROW(NoiseSchedule({"quadratic", 1000, 1e-4, 2e-2}), UsageError);
  EXPECT_THROW(NoiseSchedule({"linear_beta", 1000, 0.5, 0.1}), UsageError);
}

TEST(DiffusionMath, SamplingVisitsEveryStrideAndEndsAtTheFinalStep) {
  const std::vector<int> fifty = sampling_timesteps(1000, 50);
  ASSERT_EQ(fifty.size(), 50u);
  EXPECT_EQ(fifty.front(), 999);
  EXPECT_EQ(fifty[1], 979);
  EXPECT_EQ(fifty.back(), 19);
  const std::vector<int> all = sampling_timesteps(1000, 1000);
  EXPECT_EQ(all.front(), 999);
  EXPECT_EQ(all.back(), 0);
  EXPECT_THROW(sampling_timesteps(1000, 0), UsageError);
}

TEST(DiffusionMath, TargetsTurnBackIntoTheSampleAndTheNoise) {
  const NoiseSchedule schedule({"cosine", 1000, 0, 0});
  Rng rng(3, 0);
  std::vector<float> x0(64), noise(64), x_t(64), target(64);
  for (int i = 0; i < 64; ++i) {
    x0[i] = static_cast<float>(rng.uniform(-1, 1));
    noise[i] = static_cast<float>(rng.normal());
  }
  for (int t : {0, 250, 700}) {  // (near T, x0 from a float x_t is ill-conditioned: 1/√ᾱ ≈ 2·10⁴)
    add_noise(schedule, t, 64, x0.data(), noise.data(), x_t.data());
    for (Prediction p : {Prediction::kEpsilon, Prediction::kVelocity, Prediction::kSample}) {
      prediction_target(schedule, p, t, 64, x0.data(), noise.data(), target.data());
      // A perfect prediction: DDIM to "before the first step" (ᾱ = 1) gives x0 back.
      std::vector<float> x = x_t;
      ddim_step(schedule, {p, /*clip=*/false, 0.0}, t, -1, 64, target.data(), nullptr, x.data());
      for (int i = 0; i < 64; ++i) ASSERT_NEAR(x[i], x0[i], 2e-4 * (1 + std::abs(x0[i]))) << t;
    }
  }
  EXPECT_EQ(min_snr_weight(schedule, Prediction::kEpsilon, 500, 0), 1.0);
  const double snr = schedule.snr(10);  // large: the weights clip it to γ
  EXPECT_GT(snr, 5);
  EXPECT_NEAR(min_snr_weight(schedule, Prediction::kEpsilon, 10, 5), 5 / snr, 1e-12);
  EXPECT_NEAR(min_snr_weight(schedule, Prediction::kVelocity, 10, 5), 5 / (snr + 1), 1e-12);
  EXPECT_NEAR(min_snr_weight(schedule, Prediction::kSample, 10, 5), 5, 1e-12);
}

std::vector<float> tensor(const io::SafetensorsHeader& file, const std::string& name) {
  return testing::safetensor_floats(file, name);
}

double relative_l2(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
}

TEST(DiffusionMath, ReverseStepsEqualMonais) {
  const io::SafetensorsHeader golden =
      io::read_safetensors_header(std::string(LADDER_TEST_FIXTURES) + "/schedulers_golden.safetensors");
  const NoiseSchedule schedule({"scaled_linear_beta", 1000, 0.0015, 0.0195});
  const std::vector<float> x = tensor(golden, "x"), out = tensor(golden, "model_out");
  const int64_t n = static_cast<int64_t>(x.size());
  const struct {
    const char* name;
    Prediction prediction;
  } predictions[] = {{"epsilon", Prediction::kEpsilon}, {"v_prediction", Prediction::kVelocity},
                     {"sample", Prediction::kSample}};
  for (const auto& p : predictions) {
    const StepSettings deterministic{p.prediction, true, 0.0}, stochastic{p.prediction, true, 0.7};
    std::vector<float> step = x;
    ddim_step(schedule, deterministic, 979, 959, n, out.data(), nullptr, step.data());
    EXPECT_LT(relative_l2(step, tensor(golden, std::string("ddim_") + p.name + "_979")), 1e-5) << p.name;
    step = x;
    const std::vector<float> ddim_noise = tensor(golden, "ddim_noise");
    ddim_step(schedule, stochastic, 979, 959, n, out.data(), ddim_noise.data(), step.data());
    EXPECT_LT(relative_l2(step, tensor(golden, std::string("ddim_eta_") + p.name + "_979")), 1e-5) << p.name;
    for (int t : {999, 500, 0}) {
      step = x;
      const std::vector<float> noise = tensor(golden, "ddpm_noise_" + std::to_string(t));
      ddpm_step(schedule, deterministic, t, t - 1, n, out.data(), noise.data(), step.data());
      EXPECT_LT(relative_l2(step, tensor(golden, std::string("ddpm_") + p.name + "_" + std::to_string(t))), 1e-5)
          << p.name << " t " << t;
    }
  }
}

// Ranks that share a set of samples generate their own images' indices: image i's noise (and
// DDPM's step noise) is keyed by i, so images 1 and 3 alone are images 1 and 3 of all four.
TEST(Sampler, IndicesKeyTheNoiseSoASubsetIsThoseImagesOfTheWhole) {
  const NoiseSchedule schedule({"linear_beta", 1000, 1e-4, 2e-2});
  const Predictor predict = [](const TensorF& x, const std::vector<float>& t, TensorF& out) {
    out.reshape_or_allocate(x.shape());
    for (int64_t k = 0; k < x.numel(); ++k) out[k] = 0.5f * x[k] + 1e-4f * t[0];
  };
  for (const char* sampler : {"ddim", "ddpm"}) {
    SamplerSettings settings;
    settings.sampler = sampler, settings.steps = 5, settings.seed = 9, settings.chunk = 1;
    const Samples all = generate(schedule, Prediction::kEpsilon, {4, 4, 4, 2}, settings, predict);
    settings.indices = {1, 3};
    const Samples some = generate(schedule, Prediction::kEpsilon, {2, 4, 4, 2}, settings, predict);
    const int64_t per_image = 4 * 4 * 2;
    for (int64_t k = 0; k < 2; ++k)
      for (int64_t e = 0; e < per_image; ++e) {
        ASSERT_EQ(some.latents[k * per_image + e], all.latents[(2 * k + 1) * per_image + e]) << sampler;
        ASSERT_EQ(some.noise[k * per_image + e], all.noise[(2 * k + 1) * per_image + e]) << sampler;
      }
    settings.indices = {1, 2};  // another subset: other images
    const Samples other = generate(schedule, Prediction::kEpsilon, {2, 4, 4, 2}, settings, predict);
    EXPECT_NE(other.latents[per_image], some.latents[per_image]) << sampler;
  }
}

}  // namespace
}  // namespace ladder
