// Why this file exists: the model matches MONAI's AutoencoderKL: parameter counts for the
// BRIEF §4 configurations, MONAI parameter names, shapes through the network.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "config/config.h"
#include "model/autoencoder_kl.h"
#include "model/cpu_backend.h"

namespace ladder {
namespace {

int64_t parameter_count(const std::string& channels, const std::string& attention, bool mid) {
  Config c = load_config("", {"--model.channels", channels, "--model.attention_levels", attention,
                              "--model.mid_attention", mid ? "true" : "false",
                              "--stages.resolutions", "256"});
  ParamStore store;
  CpuBackend backend;
  AutoencoderKL<CpuBackend> model(c.model, store, backend);
  return store.count();
}

TEST(AutoencoderKL, ParameterCountsMatchMonai) {
  EXPECT_EQ(parameter_count("128,256,512", "0,0,1", true), 53315523);
  EXPECT_EQ(parameter_count("128,256,512", "0,0,1", false), 32325571);
  EXPECT_EQ(parameter_count("128,256,512,512", "none", false), 51725251);
}

TEST(AutoencoderKL, MonaiParameterNamesAndDecayFlags) {
  Config c = load_config("", {"--model.channels", "32,64", "--model.attention_levels", "0,1",
                              "--stages.resolutions", "16"});
  ParamStore store;
  CpuBackend backend;
  AutoencoderKL<CpuBackend> model(c.model, store, backend);
  std::vector<std::string> names;
  for (const ParamEntry& e : store.entries()) names.push_back(e.name);
  auto has = [&](const std::string& name) {
    return std::find(names.begin(), names.end(), name) != names.end();
  };
  EXPECT_TRUE(has("encoder.blocks.0.conv.weight"));
  EXPECT_TRUE(has("encoder.blocks.1.norm1.weight"));
  EXPECT_TRUE(has("encoder.blocks.1.conv1.conv.weight"));
  EXPECT_TRUE(has("encoder.blocks.3.conv.conv.weight"));           // downsample
  EXPECT_TRUE(has("encoder.blocks.4.nin_shortcut.conv.weight"));   // 32 → 64
  EXPECT_TRUE(has("encoder.blocks.5.attn.to_q.weight"));
  EXPECT_TRUE(has("quant_conv_mu.conv.weight"));
  EXPECT_TRUE(has("quant_conv_log_sigma.conv.bias"));
  EXPECT_TRUE(has("post_quant_conv.conv.weight"));
  EXPECT_TRUE(has("decoder.blocks.0.conv.weight"));
  for (const ParamEntry& e : store.entries()) {
    const bool is_weight_of_conv_or_linear =
        e.name.size() > 7 && e.name.substr(e.name.size() - 7) == ".weight" && e.shape.size() > 1;
    EXPECT_EQ(e.decay, is_weight_of_conv_or_linear) << e.name;
  }
}

TEST(AutoencoderKL, ShapesThroughTheNetwork) {
  Config c = load_config("", {"--model.channels", "8,16,16", "--model.norm_groups", "4",
                              "--model.attention_levels", "0,0,1", "--model.mid_attention", "true",
                              "--model.latent_channels", "3", "--stages.resolutions", "16"});
  ParamStore store;
  CpuBackend backend;
  AutoencoderKL<CpuBackend> model(c.model, store, backend);
  store.allocate();
  store.initialize(1);
  TensorF images({2, 16, 16, 3});
  for (int64_t i = 0; i < images.numel(); ++i) images[i] = static_cast<float>((i % 7) / 7.0 - 0.5);
  EXPECT_EQ(model.latent_shape(images.shape()), (Shape{2, 4, 4, 3}));
  const TensorF& reconstruction = model.reconstruct(images);
  EXPECT_EQ(reconstruction.shape(), images.shape());
  for (int64_t i = 0; i < reconstruction.numel(); ++i) ASSERT_TRUE(std::isfinite(reconstruction[i]));
}

}  // namespace
}  // namespace ladder
