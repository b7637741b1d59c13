// Why this file exists: the autoencoder's further loss terms (model/reconstruction_term.h) on
// the CPU reference: the PatchGAN generator term and the discriminator's step
// (model/patch_adversarial.h) against central differences, the discriminator's parameters
// untouched by the generator's term, the perceptual term against LPIPS itself, and the whole
// autoencoder's gradient with a term on.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/context.h"
#include "core/rng.h"
#include "model/autoencoder_kl.h"
#include "model/cpu_backend.h"
#include "model/patch_adversarial.h"
#include "model/perceptual_term.h"
#include "test_support.h"

namespace ladder {
namespace {

using testing::central_difference;
using testing::dot;
using testing::random_direction;

const std::string kFixtures = LADDER_TEST_FIXTURES;
constexpr AdversarialCriterion kCriteria[] = {AdversarialCriterion::kLeastSquares, AdversarialCriterion::kHinge,
                                              AdversarialCriterion::kBce};

// A small discriminator (2 BatchNorm layers, 4 channels), its parameters initialised and moved
// off MONAI's N(0, 0.02²) so that the logits are O(1). slope 1: LeakyReLU is the identity, so
// that central differences do not cross kinks (the op's own kink is tested in test_ops_grad).
struct SmallDiscriminator {
  explicit SmallDiscriminator(double slope) : model(config(slope), store, backend) {
    store.allocate();
    store.initialize(5);
    Rng rng(21, 0);
    for (int64_t i = 0; i < store.count(); ++i) store.values()[i] += static_cast<float>(0.3 * rng.normal());
  }
  static PatchDiscriminatorConfig config(double slope) {
    PatchDiscriminatorConfig c;
    c.in_channels = 3, c.channels = 4, c.num_layers_d = 2, c.negative_slope = slope;
    return c;
  }
  ParamStore store;
  CpuBackend backend;
  PatchDiscriminator<CpuBackend> model;
};

TensorF random_images(Shape shape, Rng& rng) {
  TensorF t(shape);
  for (int64_t i = 0; i < t.numel(); ++i) t[i] = static_cast<float>(rng.uniform(-1, 1));
  return t;
}

TEST(PatchAdversarial, GeneratorTermIsTheDirectionalDerivativeAndLeavesTheDiscriminatorAlone) {
  for (AdversarialCriterion criterion : kCriteria) {
    SCOPED_TRACE(int(criterion));
    SmallDiscriminator d(1.0);
    PatchAdversarial<CpuBackend> term(d.model, criterion, 0.7, d.backend);
    Rng rng(3, 1);
    const TensorF images = random_images({2, 16, 16, 3}, rng);
    TensorF reconstruction = random_images({2, 16, 16, 3}, rng);
    TensorF grad({2, 16, 16, 3});
    for (int64_t i = 0; i < grad.numel(); ++i) grad[i] = 0.125f;  // it adds to what is there
    d.store.zero_grads();
    const double scale = 0.5;
    const double sum = term.accumulate_gradient(images, reconstruction, scale, grad);
    EXPECT_GT(sum, 0);
    for (int64_t i = 0; i < d.store.count(); ++i) ASSERT_EQ(d.store.grads()[i], 0.f) << "discriminator gradient " << i;
    for (int64_t i = 0; i < grad.numel(); ++i) grad[i] -= 0.125f;
    const std::vector<float> v = random_direction(reconstruction.numel(), rng);
    TensorF scratch({2, 16, 16, 3});
    const double numeric = central_difference(reconstruction.data(), v, 1e-3f, [&] {
      return scale * 0.7 * term.accumulate_gradient(images, reconstruction, 0.0, scratch);
    });
    EXPECT_NEAR(dot(grad.data(), v), numeric, 2e-3 * std::abs(numeric));
  }
}

TEST(PatchAdversarial, DiscriminatorStepIsTheDirectionalDerivative) {
  for (AdversarialCriterion criterion : kCriteria) {
    SCOPED_TRACE(int(criterion));
    SmallDiscriminator d(1.0);
    const double weight = 0.3, scale = 0.25;
    PatchAdversarial<CpuBackend> term(d.model, criterion, weight, d.backend);
    Rng rng(4, 1);
    const TensorF images = random_images({2, 16, 16, 3}, rng);
    const TensorF reconstruction = random_images({2, 16, 16, 3}, rng);
    d.store.zero_grads();
    const DiscriminatorSums sums = term.discriminator_step(images, reconstruction, scale);
    EXPECT_GT(sums.loss, 0);
    const std::vector<float> v = random_direction(d.store.count(), rng);
    const double analytic = dot(d.store.grads(), v);
    const double numeric = central_difference(d.store.values(), v, 1e-3f, [&] {
      return scale * weight * term.discriminator_step(images, reconstruction, 0.0).loss;
    });
    EXPECT_NEAR(analytic, numeric, 2e-3 * std::abs(numeric));

    // The recorded outputs: Σ over images of each image's mean logit.
    for (const auto& [input, recorded] : {std::pair{&images, sums.logits_real}, std::pair{&reconstruction, sums.logits_fake}}) {
      const TensorF& logits = d.model.forward(*input);
      double total = 0;
      for (int64_t i = 0; i < logits.numel(); ++i) total += logits[i];
      EXPECT_NEAR(recorded, total / double(logits.numel() / 2), 1e-6 * (1 + std::abs(recorded)));
    }
  }
}

// BatchNorm's running statistics see a micro-step's three training-mode forwards in MONAI's
// tutorial order: the generator's term on D(x̂), then the discriminator's fake pass (x̂) and its
// real pass (x). A twin discriminator driven in that order by hand ends with the same bits; in
// the other order (fake, real, generator) it does not, so the comparison can tell.
TEST(PatchAdversarial, RunningStatisticsFollowTheTutorialsOrderOfPasses) {
  Rng rng(6, 1);
  const TensorF images = random_images({2, 16, 16, 3}, rng);
  const TensorF reconstruction = random_images({2, 16, 16, 3}, rng);
  SmallDiscriminator d(0.2);
  PatchAdversarial<CpuBackend> term(d.model, AdversarialCriterion::kLeastSquares, 0.5, d.backend);
  TensorF grad({2, 16, 16, 3});
  term.train_discriminator(1.0);
  term.accumulate_gradient(images, reconstruction, 1.0, grad);
  const std::vector<ModelBuffer> stepped = d.model.buffers();
  ASSERT_EQ(stepped.size(), 6u);  // 2 BatchNorm layers × (mean, var, count)
  EXPECT_EQ(stepped[2].values[0], 3.0) << "three training-mode forwards";

  auto by_hand = [&](std::vector<const TensorF*> order) {
    SmallDiscriminator twin(0.2);
    for (const TensorF* input : order) twin.model.forward(*input);
    return twin.model.buffers();
  };
  auto same = [](const std::vector<ModelBuffer>& a, const std::vector<ModelBuffer>& b) {
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i].name != b[i].name || a[i].values != b[i].values) return false;
    return a.size() == b.size();
  };
  EXPECT_TRUE(same(stepped, by_hand({&reconstruction, &reconstruction, &images})));
  EXPECT_FALSE(same(stepped, by_hand({&reconstruction, &images, &reconstruction})));
  // A fresh discriminator loaded with them holds them (the resume path).
  SmallDiscriminator loaded(0.2);
  loaded.model.load_buffers(stepped);
  EXPECT_TRUE(same(loaded.model.buffers(), stepped));
  EXPECT_FALSE(same(SmallDiscriminator(0.2).model.buffers(), stepped));
}

TEST(PerceptualTerm, AddsTheWeightedLpipsGradient) {
  CpuBackend backend;
  Lpips<CpuBackend> lpips(LpipsNetwork::kAlex, backend);
  lpips.load(kFixtures + "/lpips_alex_weights.safetensors");
  Rng rng(5, 1);
  const TensorF images = random_images({2, 32, 32, 3}, rng);
  const TensorF reconstruction = random_images({2, 32, 32, 3}, rng);
  PerceptualTerm<CpuBackend> term(lpips, 0.25, backend);
  TensorF grad({2, 32, 32, 3});
  const double sum = term.accumulate_gradient(images, reconstruction, 0.5, grad);
  term.accumulate_gradient(images, reconstruction, 0.5, grad);  // adds the same again
  const std::vector<double> distance = lpips.forward(reconstruction, images);
  EXPECT_DOUBLE_EQ(sum, distance[0] + distance[1]);
  const TensorF& want = lpips.backward({0.125, 0.125});
  double largest = 0;
  for (int64_t i = 0; i < want.numel(); ++i) largest = std::max(largest, std::abs(double(want[i])));
  ASSERT_GT(largest, 0);
  for (int64_t i = 0; i < grad.numel(); ++i) ASSERT_NEAR(grad[i], 2 * want[i], 1e-6 * largest) << i;
}

// train.recompute = blocks: the terms free their activations after each use and give the same
// bits.
TEST(ReconstructionTerms, RecomputeFreesTheActivationsAndChangesNoValue) {
  CpuBackend backend;
  Lpips<CpuBackend> lpips(LpipsNetwork::kAlex, backend);
  lpips.load(kFixtures + "/lpips_alex_weights.safetensors");
  SmallDiscriminator d(0.2);
  PerceptualTerm<CpuBackend> perceptual(lpips, 0.25, backend);
  PatchAdversarial<CpuBackend> adversarial(d.model, AdversarialCriterion::kHinge, 0.5, d.backend);
  Rng rng(6, 1);
  const TensorF images = random_images({2, 32, 32, 3}, rng);
  const TensorF reconstruction = random_images({2, 32, 32, 3}, rng);
  MemoryCounter& memory = ProcessContext::get().host_memory();
  auto run = [&](bool recompute) {
    perceptual.set_recompute(recompute);
    adversarial.set_recompute(recompute);
    TensorF grad({2, 32, 32, 3});
    d.store.zero_grads();
    adversarial.train_discriminator(0.5);
    const double sums = perceptual.accumulate_gradient(images, reconstruction, 0.5, grad) +
                        adversarial.accumulate_gradient(images, reconstruction, 0.5, grad);
    const int64_t held = memory.current();
    std::vector<float> out(grad.data(), grad.data() + grad.numel());
    out.insert(out.end(), d.store.grads(), d.store.grads() + d.store.count());
    out.push_back(static_cast<float>(sums));
    return std::make_pair(out, held);
  };
  const auto [kept, held_kept] = run(false);
  const auto [recomputed, held_recomputed] = run(true);
  EXPECT_EQ(kept, recomputed);
  EXPECT_GT(held_kept - held_recomputed, 100000);  // AlexNet on two 32² inputs keeps ~0.5 MB
  std::printf("host memory held after the terms: %lld bytes kept, %lld with recompute\n",
              static_cast<long long>(held_kept), static_cast<long long>(held_recomputed));
}

// The autoencoder's whole loss with the generator's adversarial term (weight 0.5, so that it
// matters): the parameter gradient against a central difference, as the L1 + KL test in
// test_training.cpp does.
TEST(AutoencoderKL, GradientWithAnAdversarialTermMatchesFiniteDifferences) {
  Config c = load_config("", {"--model.channels", "8,16", "--model.norm_groups", "4", "--model.latent_channels", "2",
                              "--stages.resolutions", "16"});
  ParamStore store;
  CpuBackend backend;
  AutoencoderKL<CpuBackend> model(c.model, store, backend);
  store.allocate();
  store.initialize(3);
  SmallDiscriminator d(1.0);
  PatchAdversarial<CpuBackend> term(d.model, AdversarialCriterion::kLeastSquares, 0.5, d.backend);
  Rng rng(12, 0);
  const TensorF images = random_images({2, 16, 16, 3}, rng);
  TensorF noise(model.latent_shape(images.shape()));
  for (int64_t i = 0; i < noise.numel(); ++i) noise[i] = static_cast<float>(rng.normal());
  const double kl_weight = 0.05;
  const std::vector<ReconstructionTerm<CpuBackend>*> terms = {&term};
  store.zero_grads();
  const AutoencoderLossSums sums = model.forward_backward(images, noise, 0.5, kl_weight, terms);
  ASSERT_EQ(sums.terms.size(), 1u);
  EXPECT_GT(sums.terms[0], 0);
  const std::vector<float> v = random_direction(store.count(), rng);
  // The discriminator's response is curved at this scale: h = 1e-3 is 9% low, 3e-4 within 0.4%.
  const double numeric = central_difference(store.values(), v, 3e-4f, [&] {
    const AutoencoderLossSums s = model.forward_backward(images, noise, 0.0, kl_weight, terms);
    return (s.reconstruction + kl_weight * s.kl + 0.5 * s.terms[0]) / 2.0;
  });
  EXPECT_NEAR(dot(store.grads(), v), numeric, 0.03 * std::abs(numeric));
}

}  // namespace
}  // namespace ladder
