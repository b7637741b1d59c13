// Why this file exists: the forward-only ops of the feature networks (kernels/cpu/feature_ops.h)
// against values worked out by hand: the in-image average and the max of the 3×3 'same' pools
// at corners, edges and inside; both bilinear resizes on a ramp, whose interpolation is the
// source coordinate itself (PyTorch's half-pixel mapping, TF1's top-left one), and their
// identity at equal size; the global average pool, channel concatenation and the BatchNorm
// affine with ReLU. The whole network is compared with pytorch-fid and torch-fidelity in
// tests/interop/inception_parity.py. Forward only: nothing here is trained.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/cpu/feature_ops.h"

namespace ladder::cpu {
namespace {

TEST(FeatureOps, SamePoolsAverageInImageTapsAndTakeTheMax) {
  const std::vector<float> x = {1, 2, 3, 4, 5, 6, 7, 8, 9};  // (1, 3, 3, 1)
  std::vector<float> y(9);
  pool3x3_same(SamePool::kAverageInImage, 1, 3, 3, 1, x.data(), y.data());
  EXPECT_FLOAT_EQ(y[0], (1 + 2 + 4 + 5) / 4.f);          // corner: 4 taps
  EXPECT_FLOAT_EQ(y[1], (1 + 2 + 3 + 4 + 5 + 6) / 6.f);  // edge: 6 taps
  EXPECT_FLOAT_EQ(y[4], 5.f);                            // inside: 9 taps
  pool3x3_same(SamePool::kMax, 1, 3, 3, 1, x.data(), y.data());
  EXPECT_EQ(y, (std::vector<float>{5, 6, 6, 8, 9, 9, 8, 9, 9}));
}

TEST(FeatureOps, BilinearResizesFollowTheirCoordinateMappings) {
  const int in = 64, out = 299;
  std::vector<float> ramp(in);  // (1, 1, 64, 1): x = column index
  for (int i = 0; i < in; ++i) ramp[i] = float(i);
  std::vector<float> y(out);
  resize_bilinear(BilinearMode::kTf1, 1, 1, in, 1, ramp.data(), 1, out, y.data());
  for (int i = 0; i < out; ++i)  // src = i·in/out, clamped at the last pixel
    EXPECT_NEAR(y[i], std::min(double(i) * in / out, double(in - 1)), 1e-4) << i;
  resize_bilinear(BilinearMode::kHalfPixel, 1, 1, in, 1, ramp.data(), 1, out, y.data());
  for (int i = 0; i < out; ++i)  // src = (i + ½)·in/out − ½, clamped to [0, in − 1]
    EXPECT_NEAR(y[i], std::clamp((i + 0.5) * in / out - 0.5, 0.0, double(in - 1)), 1e-4) << i;
  std::vector<float> image(5 * 7 * 2), same(image.size());
  for (size_t k = 0; k < image.size(); ++k) image[k] = std::sin(float(k));
  for (BilinearMode mode : {BilinearMode::kTf1, BilinearMode::kHalfPixel}) {
    resize_bilinear(mode, 1, 5, 7, 2, image.data(), 5, 7, same.data());
    EXPECT_EQ(same, image);
  }
}

TEST(FeatureOps, AveragePoolConcatAndAffineRelu) {
  const std::vector<float> x = {1, 10, 2, 20, 3, 30, 6, 60};  // (1, 2, 2, 2)
  std::vector<float> mean(2);
  global_average_pool(1, 4, 2, x.data(), mean.data());
  EXPECT_EQ(mean, (std::vector<float>{3, 30}));
  const std::vector<float> a = {1, 2}, b = {3, 4, 5, 6};  // (2, 1) and (2, 2)
  std::vector<float> both(6, -1);
  copy_channels(2, 1, a.data(), 3, 0, both.data());
  copy_channels(2, 2, b.data(), 3, 1, both.data());
  EXPECT_EQ(both, (std::vector<float>{1, 3, 4, 2, 5, 6}));
  const std::vector<float> scale = {2, -1}, shift = {-3, 1};
  std::vector<float> y(4);
  const std::vector<float> in = {1, 0.5f, 2, 2};  // (2, 2)
  channel_affine(2, 2, in.data(), scale.data(), shift.data(), true, y.data());
  EXPECT_EQ(y, (std::vector<float>{0, 0.5f, 1, 0}));
  channel_affine(2, 2, in.data(), scale.data(), shift.data(), false, y.data());  // no ReLU: negatives stay
  EXPECT_EQ(y, (std::vector<float>{-1, 0.5f, 1, -1}));
}

}  // namespace
}  // namespace ladder::cpu
