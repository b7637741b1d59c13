// Why this file exists: `ladder evaluate` on an autoencoder and the InceptionV3 it scores with:
// seeded random weights are the same network every time and survive save() and load() bit for
// bit; --checkpoint prints rFID, and PSNR and L1 equal to `ladder reconstruct`'s on the same
// images, the same bits on 2 and 4 ranks as on 1; rFID is 0 for a store scored against itself and
// positive for reconstructions; LPIPS, given its weights, is positive and the same on 2 ranks.
// (Agreement with pytorch-fid and torch-fidelity: tests/interop/inception_parity.py and
// fid_parity.py.)
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "model/cpu_backend.h"
#include "model/inception_v3.h"
#include "test_support.h"

namespace ladder {
namespace {

using testing::TempDir;

std::vector<uint8_t> random_images(int n, int side, uint64_t seed) {
  Rng rng(seed, 0);
  std::vector<uint8_t> images(static_cast<size_t>(n) * side * side * 3);
  for (uint8_t& v : images) v = static_cast<uint8_t>(rng.below(256));
  return images;
}

TEST(InceptionV3, RandomWeightsAreSeededAndSurviveSaveAndLoad) {
  TempDir dir;
  CpuBackend backend;
  InceptionV3<CpuBackend> a(backend), b(backend), c(backend);
  a.load_or_randomize("random:7");
  b.load_or_randomize("random:7");
  c.load_or_randomize("random:8");
  const std::vector<uint8_t> images = random_images(2, 40, 1);
  std::vector<float> fa, fb, fc;
  a.features(images.data(), 2, 40, 40, 3, InceptionInput::kPytorchFid, fa);
  b.features(images.data(), 2, 40, 40, 3, InceptionInput::kPytorchFid, fb);
  c.features(images.data(), 2, 40, 40, 3, InceptionInput::kPytorchFid, fc);
  ASSERT_EQ(fa.size(), 2u * 2048);
  EXPECT_EQ(fa, fb);
  EXPECT_NE(fa, fc);
  a.save(dir / "w.safetensors");
  InceptionV3<CpuBackend> loaded(backend);
  loaded.load(dir / "w.safetensors");
  std::vector<float> fl;
  loaded.features(images.data(), 2, 40, 40, 3, InceptionInput::kPytorchFid, fl);
  EXPECT_EQ(fl, fa);
  double positive = 0;  // pool3 features are means of ReLU outputs: ≥ 0, and not all zero
  for (float v : fa) {
    EXPECT_GE(v, 0.f);
    positive += v > 0;
  }
  EXPECT_GT(positive, 1000);
  EXPECT_THROW(loaded.load_or_randomize("random:x"), UsageError);
}

TEST(Evaluate, AutoencoderScoresMatchReconstructAndAnyWorldSize) {
  TempDir dir;
  const testing::CommandResult train = testing::run_ladder(
      "train --config /dev/null --run.dir " + (dir / "ae") + " --run.device cpu --run.sample_every 0"
      " --model.channels 8,16 --model.norm_groups 4 --model.res_blocks 1 --model.latent_channels 2"
      " --data.store " + testing::small_synthetic_store() + " --stages.resolutions 32 --stages.images 8"
      " --train.batch 4");
  ASSERT_EQ(train.exit_code, 0) << train.output;
  const std::string checkpoint = dir / "ae/checkpoints/step-00000002";
  const std::string store = testing::small_synthetic_store();
  const std::string args = "evaluate --checkpoint " + checkpoint + " --store " + store +
                           " --weights random:3 --resolution 32 --count 5 --perceptual.weights " +
                           LADDER_TEST_FIXTURES "/lpips_alex_weights.safetensors";
  const testing::CommandResult one = testing::run_ladder(args);
  ASSERT_EQ(one.exit_code, 0) << one.output;
  const size_t at = one.output.find("rfid ");
  ASSERT_NE(at, std::string::npos) << one.output;
  double rfid = 0, psnr = 0, l1 = 0;
  ASSERT_EQ(std::sscanf(one.output.c_str() + at, "rfid %lf psnr %lf l1 %lf", &rfid, &psnr, &l1), 3) << one.output;
  EXPECT_GT(rfid, 0);
  EXPECT_NE(one.output.find("not comparable with published scores"), std::string::npos) << one.output;
  double lpips = 0;  // the fixture's AlexNet LPIPS of the reconstructions: positive, finite
  const size_t lpips_at = one.output.find("\nlpips ");
  ASSERT_NE(lpips_at, std::string::npos) << one.output;
  ASSERT_EQ(std::sscanf(one.output.c_str() + lpips_at + 1, "lpips %lf", &lpips), 1);
  EXPECT_TRUE(lpips > 0 && std::isfinite(lpips)) << one.output;

  const testing::CommandResult reconstruct = testing::run_ladder(
      "reconstruct --checkpoint " + checkpoint + " --store " + store + " --resolution 32 --count 5 --out " +
      (dir / "grid.png"));
  ASSERT_EQ(reconstruct.exit_code, 0) << reconstruct.output;
  double reconstruct_l1 = 0, reconstruct_psnr = 0;
  const size_t mean = reconstruct.output.find("mean L1 ");
  ASSERT_NE(mean, std::string::npos) << reconstruct.output;
  ASSERT_EQ(std::sscanf(reconstruct.output.c_str() + mean, "mean L1 %lf, PSNR %lf", &reconstruct_l1,
                        &reconstruct_psnr), 2);
  EXPECT_NEAR(l1, reconstruct_l1, 1e-6 * reconstruct_l1);  // reconstruct prints 6 digits
  EXPECT_NEAR(psnr, reconstruct_psnr, 1e-3);

  const testing::CommandResult four = testing::run_ladder_ranks(4, args);  // 5 images: one rank holds 2
  ASSERT_EQ(four.exit_code, 0) << four.output;
  EXPECT_NE(four.output.find(one.output.substr(at)), std::string::npos) << four.output << "\n---\n" << one.output;
  const testing::CommandResult two = testing::run_ladder_ranks(2, args);
  ASSERT_EQ(two.exit_code, 0) << two.output;
  const std::string& output = two.output;
  EXPECT_NE(output.find(one.output.substr(at)), std::string::npos) << output << "\n---\n" << one.output;

  // A store against itself: rFID's FID part is exactly what it compares, so the same features give 0.
  const testing::CommandResult features = testing::run_ladder(
      "evaluate --store " + store + " --weights random:3 --resolution 32 --count 5 --save-features " + (dir / "f.h5"));
  ASSERT_EQ(features.exit_code, 0) << features.output;
  const testing::CommandResult self = testing::run_ladder("evaluate --features " + (dir / "f.h5") + " --reference " +
                                                          (dir / "f.h5") + " --kid-subset-size 5 --kid-subsets 3");
  ASSERT_EQ(self.exit_code, 0) << self.output;
  double fid = 1;
  ASSERT_EQ(std::sscanf(self.output.c_str() + self.output.find("\nfid ") + 1, "fid %lf", &fid), 1) << self.output;
  EXPECT_LE(std::abs(fid), 1e-6);
}

}  // namespace
}  // namespace ladder
