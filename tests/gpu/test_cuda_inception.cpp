// Why this file exists: InceptionV3 (FID's feature network) on the GPU against the CPU
// reference: each op of kernels/cuda/feature_ops.cu (the BatchNorm+ReLU affine and the plain
// affine, both 'same' pools on odd sizes, the global average pool, channel copies into a
// wider tensor, both bilinear resizes up to 299 from odd sizes), then the whole network with
// seeded random weights (eval/inception_network.h), in both input modes, on 1- and 3-channel
// images.
//
// Bounds: the ops compute in the CPU's order with separate roundings, so they should equal
// the CPU's bits; they are held to 1e-6 relative (the resize's division and the pool's
// average may differ by one rounding). The whole network differs by summation order through
// 94 convolutions (cuDNN, FMA, no TF32): 1e-4 relative on the features, the bound the FID
// tools' own parity tests use, an estimate to be confirmed on the first GPU run.
// Every test skips itself when no CUDA device is visible (CTest label `gpu`).
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "eval/inception_network.h"
#include "gpu_compare.h"
#include "kernels/cpu/feature_ops.h"

namespace ladder::cuda::gpu_test {
namespace {

#define LADDER_SKIP_WITHOUT_GPU()     \
  if (!cuda::cuda_device_available()) \
  GTEST_SKIP() << "no CUDA device: " << cuda::cuda_device_problem()

constexpr double kOpBound = 1e-6;

TEST(CudaFeatureOps, EachOpEqualsTheCpu) {
  LADDER_SKIP_WITHOUT_GPU();
  Gpu gpu;
  Rng rng(3, 0);
  const int n = 2, h = 7, w = 5, c = 6;
  const int64_t m = int64_t(n) * h * w;
  const Floats x = random_floats(size_t(m * c), rng), scale = random_floats(c, rng), shift = random_floats(c, rng);
  DeviceBuffer<float> dx = gpu.upload<float>(x), dscale = gpu.upload<float>(scale), dshift = gpu.upload<float>(shift);
  for (bool relu : {true, false}) {
    Floats want(x.size());
    cpu::channel_affine(m, c, x.data(), scale.data(), shift.data(), relu, want.data());
    DeviceBuffer<float> y = gpu.garbage<float>(x.size());
    channel_affine(m, c, dx.data(), dscale.data(), dshift.data(), relu, y.data(), gpu.stream);
    expect_close(relu ? "channel_affine relu" : "channel_affine", gpu.download(y), want, kOpBound);
  }
  for (cpu::SamePool kind : {cpu::SamePool::kAverageInImage, cpu::SamePool::kMax}) {
    Floats want(x.size());
    cpu::pool3x3_same(kind, n, h, w, c, x.data(), want.data());
    DeviceBuffer<float> y = gpu.garbage<float>(x.size());
    pool3x3_same(kind, n, h, w, c, dx.data(), y.data(), gpu.stream);
    expect_close(kind == cpu::SamePool::kMax ? "pool3x3_same max" : "pool3x3_same average", gpu.download(y), want,
                 kOpBound);
  }
  {
    Floats want(size_t(n) * c);
    cpu::global_average_pool(n, int64_t(h) * w, c, x.data(), want.data());
    DeviceBuffer<float> y = gpu.garbage<float>(want.size());
    global_average_pool(n, int64_t(h) * w, c, dx.data(), y.data(), gpu.stream);
    expect_close("global_average_pool", gpu.download(y), want, kOpBound);
  }
  {
    const int wide = c + 3;
    Floats want(size_t(m * wide), -7.f);
    cpu::copy_channels(m, c, x.data(), wide, 2, want.data());
    DeviceBuffer<float> y = gpu.upload<float>(Floats(size_t(m * wide), -7.f));
    copy_channels(m, c, dx.data(), wide, 2, y.data(), gpu.stream);
    expect_close("copy_channels", gpu.download(y), want, 1e-30);  // copies: exact
  }
  for (cpu::BilinearMode mode : {cpu::BilinearMode::kHalfPixel, cpu::BilinearMode::kTf1}) {
    const int oh = 299, ow = 299;
    Floats want(size_t(n) * oh * ow * c);
    cpu::resize_bilinear(mode, n, h, w, c, x.data(), oh, ow, want.data());
    DeviceBuffer<float> y = gpu.garbage<float>(want.size());
    resize_bilinear(mode, n, h, w, c, dx.data(), oh, ow, y.data(), gpu.stream);
    expect_close(mode == cpu::BilinearMode::kTf1 ? "resize_bilinear tf1" : "resize_bilinear half-pixel",
                 gpu.download(y), want, kOpBound);
  }
}

TEST(CudaInception, FeaturesFollowTheCpu) {
  LADDER_SKIP_WITHOUT_GPU();
  const std::unique_ptr<eval::InceptionNetwork> cpu_network = eval::make_inception_network("random:5", false);
  const std::unique_ptr<eval::InceptionNetwork> gpu_network = eval::make_inception_network("random:5", true);
  Rng rng(9, 0);
  for (int channels : {3, 1}) {
    std::vector<uint8_t> images(size_t(2) * 45 * 37 * channels);
    for (uint8_t& v : images) v = static_cast<uint8_t>(rng.below(256));
    for (InceptionInput mode : {InceptionInput::kPytorchFid, InceptionInput::kTf1}) {
      std::vector<float> want, got;
      cpu_network->features(images.data(), 2, 45, 37, channels, mode, want);
      gpu_network->features(images.data(), 2, 45, 37, channels, mode, got);
      expect_close(std::string("InceptionV3 features, ") + inception_input_name(mode) + ", " +
                       std::to_string(channels) + " channels",
                   got, want, 1e-4);
      std::vector<float> again;  // deterministic: the same bits a second time
      gpu_network->features(images.data(), 2, 45, 37, channels, mode, again);
      EXPECT_TRUE(again == got) << "the GPU's features changed between two runs";
    }
  }
}

}  // namespace
}  // namespace ladder::cuda::gpu_test
