// Why this file exists: the stage-2 model against MONAI 1.6.1's DiffusionModelUNet
// (shared/reference/monai-diffusion-unet.md): parameter counts of the reference's five
// configurations, the tiny configuration's names and shapes key for key, a fresh model's
// output of exactly zero (zero-initialised conv2s and output conv), the CPU forward against
// golden outputs MONAI computed with random non-zero weights (tests/fixtures/, made by
// make_unet_golden.py), and the backward against directional derivatives of the whole model.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "config/config.h"
#include "core/context.h"
#include "core/rng.h"
#include "io/safetensors.h"
#include "model/cpu_backend.h"
#include "model/diffusion_unet.h"
#include "model/torch_layout.h"
#include "test_support.h"

namespace ladder {
namespace {

const std::string kFixtures = LADDER_TEST_FIXTURES;

ModelConfig unet_config(int in, int blocks, const std::string& channels, const std::string& attention,
                        const std::string& heads, int groups) {
  return load_config("", {"--model.in_channels", std::to_string(in), "--model.res_blocks", std::to_string(blocks),
                          "--model.channels", channels, "--model.attention_levels", attention,
                          "--model.head_channels", heads, "--model.norm_groups", std::to_string(groups),
                          "--stages.resolutions", "64"})
      .model;
}

ModelConfig tiny() { return unet_config(4, 1, "32,64", "0,1", "0,32", 16); }

TEST(DiffusionUNet, ParameterCountsEqualMonais) {
  struct Case {
    const char* what;
    ModelConfig config;
    int64_t params, tensors;
  };
  const Case cases[] = {
      {"a", unet_config(4, 2, "128,256,512,768", "0,1,1,1", "0,256,512,768", 32), 169525764, 432},
      {"b", unet_config(4, 2, "128,256,512,768", "0,0,1,1", "0,0,512,768", 32), 168207364, 382},
      {"c", unet_config(3, 2, "128,256,512", "0,1,1", "0,256,512", 32), 64143619, 320},
      {"c'", unet_config(1, 2, "32,64,128,256", "0,1,1,1", "0,32,32,32", 32), 15890753, 432},
      {"d", tiny(), 703076, 144},
  };
  for (const Case& c : cases) {
    ParamStore store;
    CpuBackend backend;
    DiffusionUNet<CpuBackend> model(c.config, store, backend);
    EXPECT_EQ(store.count(), c.params) << c.what;
    EXPECT_EQ(static_cast<int64_t>(store.entries().size()), c.tensors) << c.what;
  }
}

TEST(DiffusionUNet, NamesAndShapesAreMonaisKeyForKey) {
  std::map<std::string, std::string> expected;  // key → "[a, b, c, d]"
  std::ifstream in(kFixtures + "/monai-diffusion-unet-tiny-keys.txt");
  ASSERT_TRUE(in.good());
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream fields(line);
    std::string key, shape;
    std::getline(fields, key, '\t');
    std::getline(fields, shape, '\t');
    expected[key] = shape;
  }
  ParamStore store;
  CpuBackend backend;
  DiffusionUNet<CpuBackend> model(tiny(), store, backend);
  ASSERT_EQ(store.entries().size(), expected.size());
  for (const ParamEntry& entry : store.entries()) {
    std::string shape = "[";
    for (int64_t d : torch_shape(entry.shape)) shape += (shape.size() > 1 ? ", " : "") + std::to_string(d);
    shape += "]";
    auto found = expected.find(entry.name);
    ASSERT_NE(found, expected.end()) << "not a MONAI key: " << entry.name;
    EXPECT_EQ(shape, found->second) << entry.name;
  }
}

TEST(DiffusionUNet, AFreshModelPredictsExactlyZero) {
  ParamStore store;
  CpuBackend backend;
  DiffusionUNet<CpuBackend> model(tiny(), store, backend);
  store.allocate();
  store.initialize(5);
  TensorF x({2, 8, 8, 4});
  Rng rng(1, 0);
  for (int64_t i = 0; i < x.numel(); ++i) x[i] = static_cast<float>(rng.normal());
  const TensorF& y = model.forward(x, {10.f, 900.f});
  for (int64_t i = 0; i < y.numel(); ++i) ASSERT_EQ(y[i], 0.f) << i;
}

TEST(DiffusionUNet, ForwardEqualsMonaisOnGoldenOutputs) {
  ParamStore store;
  CpuBackend backend;
  DiffusionUNet<CpuBackend> model(tiny(), store, backend);
  store.allocate();
  load_torch_weights(io::read_safetensors_header(kFixtures + "/unet_tiny_weights.safetensors"), store);
  const io::SafetensorsHeader golden = io::read_safetensors_header(kFixtures + "/unet_tiny_golden.safetensors");
  const std::vector<float> x_values = testing::safetensor_floats(golden, "x"), want = testing::safetensor_floats(golden, "y");
  const std::vector<float> timesteps = testing::safetensor_floats(golden, "timesteps");
  TensorF x({3, 16, 16, 4});
  ASSERT_EQ(static_cast<int64_t>(x_values.size()), x.numel());
  std::copy(x_values.begin(), x_values.end(), x.data());
  const TensorF& y = model.forward(x, timesteps);
  const int64_t per_image = 16 * 16 * 4;
  for (int b = 0; b < 3; ++b) {  // one image per timestep (0, 537, 999)
    double diff = 0, norm = 0;
    for (int64_t i = b * per_image; i < (b + 1) * per_image; ++i) {
      diff += (double(y[i]) - want[i]) * (double(y[i]) - want[i]);
      norm += double(want[i]) * want[i];
    }
    EXPECT_LT(std::sqrt(diff / norm), 1e-5) << "image " << b << " (t = " << timesteps[b] << ")";
  }
}

TEST(DiffusionUNet, BackwardMatchesDirectionalDerivatives) {
  // L = Σ y·r for a fixed random r: ∂L/∂y = r. Along random directions of all parameters
  // and of the input: analytic g·d against (L(θ+hd) − L(θ−hd)) / 2h.
  ParamStore store;
  CpuBackend backend;
  DiffusionUNet<CpuBackend> model(unet_config(4, 1, "8,16", "0,1", "0,8", 4), store, backend);
  store.allocate();
  store.initialize(3);
  Rng rng(7, 0);
  for (int64_t i = 0; i < store.count(); ++i)  // the zero-initialised convs too
    store.values()[i] += static_cast<float>(0.05 * rng.normal());
  TensorF x({2, 8, 8, 4}), r({2, 8, 8, 4});
  for (int64_t i = 0; i < x.numel(); ++i) {
    x[i] = static_cast<float>(rng.normal());
    r[i] = static_cast<float>(rng.normal());
  }
  const std::vector<float> timesteps = {3.f, 700.f};
  auto loss = [&]() {
    const TensorF& y = model.forward(x, timesteps);
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
  const float h = 1e-3f;
  EXPECT_NEAR(analytic, testing::central_difference(store.values(), direction, h, loss), 0.01 * std::abs(analytic))
      << "parameters";
  EXPECT_NEAR(analytic_x, testing::central_difference(x.data(), x_direction, h, loss), 0.01 * std::abs(analytic_x))
      << "input";
}

TEST(DiffusionUNet, RecomputeGivesTheSameGradientBitsWithLessMemory) {
  ParamStore store;
  CpuBackend backend;
  DiffusionUNet<CpuBackend> model(unet_config(4, 2, "16,32", "0,1", "0,16", 8), store, backend);
  store.allocate();
  store.initialize(6);
  Rng rng(8, 0);
  for (int64_t i = 0; i < store.count(); ++i) store.values()[i] += static_cast<float>(0.05 * rng.normal());
  TensorF x({4, 32, 32, 4}), r({4, 32, 32, 4});
  for (int64_t i = 0; i < x.numel(); ++i) {
    x[i] = static_cast<float>(rng.normal());
    r[i] = static_cast<float>(rng.normal());
  }
  auto run = [&](bool recompute) {
    model.set_recompute(recompute);
    store.zero_grads();
    ProcessContext::get().host_memory().reset_peak();
    model.forward(x, {5.f, 50.f, 500.f, 950.f});
    model.backward(r);
    return std::make_pair(std::vector<float>(store.grads(), store.grads() + store.count()),
                          ProcessContext::get().host_memory().peak());
  };
  run(false);  // warm-up: every tensor at its size
  const auto [plain, plain_peak] = run(false);
  const auto [recomputed, recompute_peak] = run(true);
  ASSERT_EQ(plain.size(), recomputed.size());
  for (size_t i = 0; i < plain.size(); ++i) ASSERT_EQ(plain[i], recomputed[i]) << "gradient element " << i;
  EXPECT_LT(recompute_peak, plain_peak);
}

}  // namespace
}  // namespace ladder
