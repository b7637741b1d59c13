// Why this file exists: the adversarial loss's discriminator against MONAI 1.6.1's
// PatchDiscriminator (docs/reference-patch-discriminator.md): parameter counts of the
// tutorial's configuration and of others (tests/fixtures/monai-patch-discriminator-counts.txt),
// MONAI's names and shapes (the strict loader), MONAI's initialisation statistics, the CPU
// forward in eval and training mode and the running statistics a training forward leaves,
// against golden values MONAI computed (make_patch_discriminator_golden.py), and the backward
// against directional derivatives of the whole model.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/safetensors.h"
#include "model/cpu_backend.h"
#include "model/patch_discriminator.h"
#include "model/torch_layout.h"
#include "test_support.h"

namespace ladder {
namespace {

const std::string kFixtures = LADDER_TEST_FIXTURES;

PatchDiscriminatorConfig config(int layers, int channels, int in_channels) {
  PatchDiscriminatorConfig c;
  c.num_layers_d = layers, c.channels = channels, c.in_channels = in_channels, c.out_channels = 1;
  return c;
}

PatchDiscriminatorConfig tiny() { return config(2, 8, 3); }

// max |got − want| / max |want|.
double relative_max_error(const float* got, const std::vector<float>& want) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < want.size(); ++i) {
    err = std::max(err, std::abs(double(got[i]) - want[i]));
    scale = std::max(scale, std::abs(double(want[i])));
  }
  return err / scale;
}

TEST(PatchDiscriminator, ParameterCountsEqualMonais) {
  std::ifstream in(kFixtures + "/monai-patch-discriminator-counts.txt");
  ASSERT_TRUE(in.good());
  int rows = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    int layers, channels, cin;
    int64_t params, tensors;
    std::string norm;
    fields >> layers >> channels >> cin >> params >> tensors >> norm;
    ParamStore store;
    CpuBackend backend;
    PatchDiscriminatorConfig c = config(layers, channels, cin);
    ASSERT_TRUE(norm == "BATCH" || norm == "INSTANCE") << line;
    c.norm = norm == "INSTANCE" ? DiscriminatorNorm::kInstance : DiscriminatorNorm::kBatch;
    PatchDiscriminator<CpuBackend> model(c, store, backend);
    EXPECT_EQ(store.count(), params) << line;
    EXPECT_EQ(static_cast<int64_t>(store.entries().size()), tensors) << line;
    ++rows;
  }
  EXPECT_EQ(rows, 6);
  // The tutorial's configuration, also without the table.
  ParamStore store;
  CpuBackend backend;
  PatchDiscriminator<CpuBackend> tutorial(config(3, 64, 1), store, backend);
  EXPECT_EQ(store.count(), 2763585);
}

TEST(PatchDiscriminator, NamesAndShapesAreMonais) {
  ParamStore store;
  CpuBackend backend;
  PatchDiscriminator<CpuBackend> model(tiny(), store, backend);
  const io::SafetensorsHeader file = io::read_safetensors_header(kFixtures + "/patch_disc_tiny_weights.safetensors");
  ASSERT_EQ(file.tensors.size(), store.entries().size());
  for (const io::SafetensorEntry& tensor : file.tensors) {
    bool found = false;
    for (const ParamEntry& entry : store.entries())
      if (entry.name == tensor.name) {
        found = true;
        EXPECT_EQ(torch_shape(entry.shape), tensor.shape) << tensor.name;
      }
    EXPECT_TRUE(found) << "MONAI's " << tensor.name << " is not a parameter";
  }
  ASSERT_EQ(model.batch_norms().size(), 2u);
  EXPECT_EQ(model.batch_norms()[1]->name(), "1.adn.N");
}

// MONAI's normal_init: conv weights N(0, 0.02²), BatchNorm scales N(1, 0.02²), biases 0.
TEST(PatchDiscriminator, InitialisationIsMonais) {
  ParamStore store;
  CpuBackend backend;
  PatchDiscriminator<CpuBackend> model(config(3, 64, 1), store, backend);
  store.allocate();
  store.initialize(11);
  for (const ParamEntry& entry : store.entries()) {
    const float* v = store.values() + entry.offset;
    double sum = 0, sq = 0;
    for (int64_t i = 0; i < entry.numel; ++i) sum += v[i];
    const double mean = sum / double(entry.numel);
    for (int64_t i = 0; i < entry.numel; ++i) sq += (v[i] - mean) * (v[i] - mean);
    const double std = std::sqrt(sq / double(entry.numel));
    const bool bias = entry.name.size() > 5 && entry.name.compare(entry.name.size() - 5, 5, ".bias") == 0;
    if (bias) {
      EXPECT_EQ(sum, 0.0) << entry.name;
      EXPECT_EQ(sq, 0.0) << entry.name;
    } else if (entry.numel >= 512) {  // enough values for the moments to be close
      const double want_mean = entry.name.find(".adn.N.") != std::string::npos ? 1.0 : 0.0;
      EXPECT_NEAR(mean, want_mean, 5 * 0.02 / std::sqrt(double(entry.numel))) << entry.name;
      EXPECT_NEAR(std, 0.02, 0.1 * 0.02) << entry.name;
    }
  }
}

TEST(PatchDiscriminator, ForwardEqualsMonaisInEvalAndTrainingMode) {
  ParamStore store;
  CpuBackend backend;
  PatchDiscriminator<CpuBackend> model(tiny(), store, backend);
  store.allocate();
  load_torch_weights(io::read_safetensors_header(kFixtures + "/patch_disc_tiny_weights.safetensors"), store);
  const io::SafetensorsHeader golden = io::read_safetensors_header(kFixtures + "/patch_disc_tiny_golden.safetensors");
  for (BatchNorm2d<CpuBackend>* norm : model.batch_norms()) {
    const std::vector<float> mean = testing::safetensor_floats(golden, "before." + norm->name() + ".running_mean");
    const std::vector<float> var = testing::safetensor_floats(golden, "before." + norm->name() + ".running_var");
    ASSERT_EQ(static_cast<int64_t>(mean.size()), norm->channels());
    std::copy(mean.begin(), mean.end(), norm->running_mean().data());
    std::copy(var.begin(), var.end(), norm->running_var().data());
  }
  const std::vector<float> x_values = testing::safetensor_floats(golden, "x");
  TensorF x({2, 32, 32, 3});
  ASSERT_EQ(static_cast<int64_t>(x_values.size()), x.numel());
  std::copy(x_values.begin(), x_values.end(), x.data());
  EXPECT_EQ(model.output_shape(x.shape()), (Shape{2, 6, 6, 1}));

  model.set_training(false);
  const std::vector<float> want_eval = testing::safetensor_floats(golden, "y_eval");
  const TensorF& y_eval = model.forward(x);
  ASSERT_EQ(y_eval.shape(), (Shape{2, 6, 6, 1}));
  EXPECT_LT(relative_max_error(y_eval.data(), want_eval), 1e-5) << "eval mode";
  EXPECT_EQ(model.batch_norms()[0]->num_batches_tracked(), 0);

  model.set_training(true);
  const std::vector<float> want_train = testing::safetensor_floats(golden, "y_train");
  const TensorF& y_train = model.forward(x);
  EXPECT_LT(relative_max_error(y_train.data(), want_train), 1e-5) << "training mode";
  for (BatchNorm2d<CpuBackend>* norm : model.batch_norms()) {
    EXPECT_EQ(norm->num_batches_tracked(), 1);
    EXPECT_LT(relative_max_error(norm->running_mean().data(),
                                 testing::safetensor_floats(golden, "after." + norm->name() + ".running_mean")),
              1e-5)
        << norm->name();
    EXPECT_LT(relative_max_error(norm->running_var().data(),
                                 testing::safetensor_floats(golden, "after." + norm->name() + ".running_var")),
              1e-5)
        << norm->name();
  }
}

// norm INSTANCE: the forward equals MONAI's within 1e-5, and it has no norm parameters.
TEST(PatchDiscriminator, InstanceNormForwardEqualsMonais) {
  ParamStore store;
  CpuBackend backend;
  PatchDiscriminatorConfig c = tiny();
  c.norm = DiscriminatorNorm::kInstance;
  PatchDiscriminator<CpuBackend> model(c, store, backend);
  store.allocate();
  load_torch_weights(io::read_safetensors_header(kFixtures + "/patch_disc_tiny_instance_weights.safetensors"), store);
  const io::SafetensorsHeader golden = io::read_safetensors_header(kFixtures + "/patch_disc_tiny_instance_golden.safetensors");
  const std::vector<float> x_values = testing::safetensor_floats(golden, "x");
  TensorF x({2, 32, 32, 3});
  ASSERT_EQ(static_cast<int64_t>(x_values.size()), x.numel());
  std::copy(x_values.begin(), x_values.end(), x.data());
  const TensorF& y = model.forward(x);
  const std::vector<float> want = testing::safetensor_floats(golden, "y");
  ASSERT_EQ(y.numel(), static_cast<int64_t>(want.size()));
  const double err = relative_max_error(y.data(), want);
  std::printf("instance norm forward: max relative error %.3g\n", err);
  EXPECT_LT(err, 1e-5);
  EXPECT_TRUE(model.batch_norms().empty());
}

// Training mode (batch statistics). L = Σ y·r for a fixed random r: ∂L/∂y = r. Along random
// directions of all parameters and of the input: analytic g·d against (L(θ+hd) − L(θ−hd)) / 2h,
// within `tolerance` relative.
void check_directional_derivatives(double negative_slope, float h, double tolerance,
                                   DiscriminatorNorm norm = DiscriminatorNorm::kBatch) {
  ParamStore store;
  CpuBackend backend;
  PatchDiscriminatorConfig c = config(2, 4, 2);
  c.negative_slope = negative_slope;
  c.norm = norm;
  PatchDiscriminator<CpuBackend> model(c, store, backend);
  store.allocate();
  store.initialize(3);
  Rng rng(7, 0);
  for (int64_t i = 0; i < store.count(); ++i) store.values()[i] += static_cast<float>(0.2 * rng.normal());
  TensorF x({2, 24, 20, 2});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng.normal());
  const Shape out = model.output_shape(x.shape());
  ASSERT_EQ(out, (Shape{2, 4, 3, 1}));
  TensorF r(out);
  for (int64_t i = 0; i < r.numel(); ++i) r[i] = static_cast<float>(rng.normal());
  auto loss = [&]() {
    const TensorF& y = model.forward(x);
    double sum = 0;
    for (int64_t i = 0; i < y.numel(); ++i) sum += double(y[i]) * r[i];
    return sum;
  };
  loss();
  store.zero_grads();
  const TensorF dx = model.backward(r);
  const std::vector<float> direction = testing::random_direction(store.count(), rng);
  const std::vector<float> x_direction = testing::random_direction(x.numel(), rng);
  const double analytic = testing::dot(store.grads(), direction), analytic_x = testing::dot(dx.data(), x_direction);
  EXPECT_NEAR(analytic, testing::central_difference(store.values(), direction, h, loss), tolerance * std::abs(analytic))
      << "parameters, slope " << negative_slope;
  EXPECT_NEAR(analytic_x, testing::central_difference(x.data(), x_direction, h, loss),
              tolerance * std::abs(analytic_x))
      << "input, slope " << negative_slope;
}

// With slope 1 the activations are linear: the model is smooth and the central difference is
// O(h²). With MONAI's 0.2 each LeakyReLU unit whose input the perturbation moves across 0 adds
// an O(h) error (measured: 30% at h = 1e-3 along all parameters), so a smaller h and a looser
// bound; the op itself is checked exactly in tests/kernels/test_ops_grad.cpp (LeakyReluGrad).
TEST(PatchDiscriminator, BackwardMatchesDirectionalDerivatives) {
  check_directional_derivatives(1.0, 1e-3f, 0.01);
  check_directional_derivatives(0.2, 1e-4f, 0.03);
  check_directional_derivatives(1.0, 1e-3f, 0.01, DiscriminatorNorm::kInstance);
}

// Without parameter gradients (the generator's adversarial term) the backward leaves every
// parameter gradient as it was and gives the images the same gradient bit for bit.
TEST(PatchDiscriminator, BackwardWithoutParameterGradientsOnlyPassesTheGradient) {
  ParamStore store;
  CpuBackend backend;
  PatchDiscriminator<CpuBackend> model(tiny(), store, backend);
  store.allocate();
  store.initialize(4);
  Rng rng(9, 0);
  TensorF x({2, 16, 16, 3});
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng.normal());
  TensorF r(model.output_shape(x.shape()));
  for (int64_t i = 0; i < r.numel(); ++i) r[i] = static_cast<float>(rng.normal());
  model.forward(x);
  store.zero_grads();
  const TensorF learning = model.backward(r);
  double moved = 0;
  for (int64_t i = 0; i < store.count(); ++i) moved += std::abs(store.grads()[i]);
  ASSERT_GT(moved, 0);  // the usual backward does accumulate
  for (int64_t i = 0; i < store.count(); ++i) store.grads()[i] = 0.25f;
  model.set_parameter_gradients(false);
  model.forward(x);
  const TensorF& passing = model.backward(r);
  for (int64_t i = 0; i < store.count(); ++i) ASSERT_EQ(store.grads()[i], 0.25f) << i;
  for (int64_t i = 0; i < x.numel(); ++i) ASSERT_EQ(passing[i], learning[i]) << i;
}

TEST(PatchDiscriminator, EvalModeHasNoBackwardAndSmallImagesAreRefused) {
  ParamStore store;
  CpuBackend backend;
  PatchDiscriminator<CpuBackend> model(tiny(), store, backend);
  store.allocate();
  store.initialize(1);
  TensorF x({1, 16, 16, 3}), small({1, 8, 8, 3});
  model.set_training(false);
  const TensorF& y = model.forward(x);
  EXPECT_THROW(model.backward(y), Error);
  EXPECT_THROW(model.forward(small), Error);
}

}  // namespace
}  // namespace ladder
