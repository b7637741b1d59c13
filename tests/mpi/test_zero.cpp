// Why this file exists: the data-parallel equivalences of issue #4, under real mpirun with 4
// ranks (sub-worlds of 1, 2, 3 and 4 ranks are split from MPI_COMM_WORLD):
//   1 rank × micro 8  =  2 ranks × micro 4  =  4 ranks × micro 2  =  2 ranks × micro 2 × 2 acc
//   ZeRO 0 = ZeRO 1 = ZeRO 2 on 3 ranks (odd world, parameter count not divisible)
// each after 5 optimizer steps, ‖a − b‖ / ‖b‖ < 1e-5, for the autoencoder and for the
// diffusion UNet (stage 2, the same trainer, on a synthetic latent store); identical parameters on every rank after
// every step (a hash compared across ranks); optimizer and ZeRO-2 gradient state shrinking
// as 1/N, measured from the allocations.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>

#include "comm/mpi_communicator.h"
#include "config/config.h"
#include "train/trainer.h"
#include "trainer_checks.h"

namespace ladder {
namespace {

using testing::expect_identical_replicas;
using testing::relative_difference;
using testing::world_rank;
using testing::world_size;

// A shared directory for the test's store and runs (rank 0 makes it, everyone learns it).
std::string shared_dir() {
  static const std::string dir = testing::make_shared_store_dir("ladder-zero");
  return dir;
}

// The model keys of the small UNet (on 4×4 latents of 2 channels), after the autoencoder's.
const std::vector<std::string> kUNetFlags = {
    "--model.kind", "diffusion_unet", "--model.in_channels", "2", "--model.head_channels", "0,8",
    "--diffusion.timesteps", "100", "--diffusion.snr_gamma", "5", "--diffusion.noise_offset", "0.1"};

// 8 images = one global batch: every step sees every image, whatever the world size.
Config small_config(const std::string& run, int micro, int zero_stage, bool unet = false,
                    const std::vector<std::string>& extra = {}) {
  std::vector<std::string> flags = {"--run.dir", shared_dir() + "/" + run, "--run.seed", "3",
                          "--run.log_every", "1", "--run.sample_every", "0",
                          "--model.channels", "8,16", "--model.norm_groups", "4",
                          "--model.res_blocks", "1", "--model.attention_levels", "0,1",
                          "--data.store", shared_dir() + "/s.h5", "--data.flip", "true",
                          "--stages.resolutions", "16", "--stages.images", "40",
                          "--train.batch", "8", "--train.micro_batch", std::to_string(micro),
                          "--train.lr", "3e-3", "--train.zero_stage", std::to_string(zero_stage),
                          // small buckets: several per rank, a padded last one
                          "--train.bucket_mb", "0.01", "--log.tensorboard", "false"};
  if (unet) {
    flags.insert(flags.end(), kUNetFlags.begin(), kUNetFlags.end());
    *std::find(flags.begin(), flags.end(), shared_dir() + "/s.h5") = shared_dir() + "/l.h5";
  }
  flags.insert(flags.end(), extra.begin(), extra.end());
  return load_config("", flags);
}

// Trains a small autoencoder on the ranks that share `color` (a sub-world split from
// MPI_COMM_WORLD) and returns the final parameters.
std::vector<float> train(int color, const std::string& run, int batch, int micro, int zero_stage,
                         bool unet = false, const std::vector<std::string>& extra = {}) {
  MpiCommunicator all(60);
  std::unique_ptr<MpiCommunicator> group = all.split(color);
  Config config = small_config(run + "-color" + std::to_string(color), micro, zero_stage, unet, extra);
  config.train.batch = batch;
  Trainer trainer(config, std::move(group));
  trainer.set_step_callback([&](int64_t step) { expect_identical_replicas(trainer, step); });
  TrainSummary summary = trainer.run();
  EXPECT_EQ(summary.steps, (40 + batch - 1) / batch);
  const ParamStore& p = trainer.params();
  return std::vector<float>(p.values(), p.values() + p.count());
}

TEST(Zero, WorldSizesAndAccumulationAgree) {
  if (world_size() != 4) GTEST_SKIP() << "needs mpirun -np 4";
  const int rank = world_rank();
  const std::vector<float> one = train(rank, "np1-micro8", 8, 8, 2);       // every rank alone
  const std::vector<float> two = train(rank / 2, "np2-micro4", 8, 4, 2);   // {0,1} {2,3}
  const std::vector<float> four = train(0, "np4-micro2", 8, 2, 2);
  const std::vector<float> two_acc = train(rank / 2, "np2-micro2x2", 8, 2, 2);
  EXPECT_LT(relative_difference(two, one), 1e-5);
  EXPECT_LT(relative_difference(four, one), 1e-5);
  EXPECT_LT(relative_difference(two_acc, one), 1e-5);
  const std::vector<float> four_stage0 = train(0, "np4-stage0", 8, 2, 0);
  EXPECT_LT(relative_difference(four_stage0, one), 1e-5);
  // The runs moved the weights: 5 steps at this rate change them by far more than 1e-5.
  const std::vector<float> short_run = train(rank, "np1-short", 40, 8, 2);  // 1 step of 40
  EXPECT_GT(relative_difference(short_run, one), 1e-3);
}

TEST(Zero, UNetWorldSizesAndAccumulationAgree) {
  if (world_size() != 4) GTEST_SKIP() << "needs mpirun -np 4";
  const int rank = world_rank();
  const std::vector<float> one = train(rank, "u-np1-micro8", 8, 8, 2, true);
  const std::vector<float> two = train(rank / 2, "u-np2-micro4", 8, 4, 2, true);
  const std::vector<float> four = train(0, "u-np4-micro2", 8, 2, 2, true);
  const std::vector<float> two_acc = train(rank / 2, "u-np2-micro2x2", 8, 2, 2, true);
  const std::vector<float> four_stage0 = train(0, "u-np4-stage0", 8, 2, 0, true);
  EXPECT_LT(relative_difference(two, one), 1e-5);
  EXPECT_LT(relative_difference(four, one), 1e-5);
  EXPECT_LT(relative_difference(two_acc, one), 1e-5);
  EXPECT_LT(relative_difference(four_stage0, one), 1e-5);
  const std::vector<float> short_run = train(rank, "u-np1-short", 40, 8, 2, true);
  EXPECT_GT(relative_difference(short_run, one), 1e-3);
}

TEST(Zero, StagesAgreeOnThreeRanks) {
  if (world_size() < 3) GTEST_SKIP() << "needs mpirun -np 3 or more";
  const int color = world_rank() < 3 ? 0 : 1;  // ranks 0-2 train together; any others alone
  std::vector<std::vector<float>> by_stage;
  for (int stage = 0; stage <= 2; ++stage)
    by_stage.push_back(train(color, "np3-stage" + std::to_string(stage), 6, 2, stage));
  if (color != 0) return;
  EXPECT_LT(relative_difference(by_stage[1], by_stage[0]), 1e-5);
  EXPECT_LT(relative_difference(by_stage[2], by_stage[0]), 1e-5);
}

TEST(Zero, UNetStagesAgreeOnThreeRanks) {
  if (world_size() < 3) GTEST_SKIP() << "needs mpirun -np 3 or more";
  const int color = world_rank() < 3 ? 0 : 1;
  std::vector<std::vector<float>> by_stage;
  for (int stage = 0; stage <= 2; ++stage)
    by_stage.push_back(train(color, "u-np3-stage" + std::to_string(stage), 6, 2, stage, true));
  if (color != 0) return;
  EXPECT_LT(relative_difference(by_stage[1], by_stage[0]), 1e-5);
  EXPECT_LT(relative_difference(by_stage[2], by_stage[0]), 1e-5);
}

// Stage 1 with the PatchGAN loss from the second step on: the discriminator's parameters are a
// second optimizer group in the same flat buffer (sharded, reduce-scattered in buckets as its
// backward completes them, gathered). Its BatchNorm takes each rank's micro-batch statistics,
// as MONAI's (unsynchronised) does, so runs agree across ZeRO stages at one world size and
// micro-batch, not across world sizes or accumulation.
TEST(Zero, AdversarialStagesAgreeOnThreeRanks) {
  if (world_size() < 3) GTEST_SKIP() << "needs mpirun -np 3 or more";
  const int color = world_rank() < 3 ? 0 : 1;
  const std::vector<std::string> adversarial = {"--adversarial.weight", "0.1", "--adversarial.start_step", "1",
                                                "--adversarial.layers", "2", "--adversarial.channels", "4"};
  std::vector<std::vector<float>> by_stage;
  for (int stage = 0; stage <= 2; ++stage)
    by_stage.push_back(train(color, "g-np3-stage" + std::to_string(stage), 6, 2, stage, false, adversarial));
  const std::vector<float> without = train(color, "g-np3-off", 6, 2, 2);
  if (color != 0) return;
  EXPECT_LT(relative_difference(by_stage[1], by_stage[0]), 1e-5);
  EXPECT_LT(relative_difference(by_stage[2], by_stage[0]), 1e-5);
  // The adversarial term moved the autoencoder (its parameters come first in the buffer).
  const std::vector<float> autoencoder(by_stage[2].begin(), by_stage[2].begin() + static_cast<int64_t>(without.size()));
  EXPECT_GT(relative_difference(autoencoder, without), 1e-4);
}

// With adversarial.norm = instance the discriminator depends on each image alone, so the
// world-size, accumulation and ZeRO equivalences hold with the adversarial loss on; with
// MONAI's default BatchNorm the same comparison fails (each rank and micro-step normalises
// with its own batch), which shows the comparison can tell.
TEST(Zero, AdversarialWithInstanceNormWorldSizesAndAccumulationAgree) {
  if (world_size() != 4) GTEST_SKIP() << "needs mpirun -np 4";
  const int rank = world_rank();
  std::vector<std::string> adversarial = {"--adversarial.weight", "0.1", "--adversarial.start_step", "1",
                                          "--adversarial.layers", "2", "--adversarial.channels", "4",
                                          "--adversarial.norm", "instance"};
  const std::vector<float> one = train(rank, "gi-np1-micro8", 8, 8, 2, false, adversarial);
  const std::vector<float> two = train(rank / 2, "gi-np2-micro4", 8, 4, 2, false, adversarial);
  const std::vector<float> four = train(0, "gi-np4-micro2", 8, 2, 2, false, adversarial);
  const std::vector<float> two_acc = train(rank / 2, "gi-np2-micro2x2", 8, 2, 2, false, adversarial);
  const std::vector<float> four_stage0 = train(0, "gi-np4-stage0", 8, 2, 0, false, adversarial);
  EXPECT_LT(relative_difference(two, one), 1e-5);
  EXPECT_LT(relative_difference(four, one), 1e-5);
  EXPECT_LT(relative_difference(two_acc, one), 1e-5);
  EXPECT_LT(relative_difference(four_stage0, one), 1e-5);
  adversarial.back() = "batch";
  const std::vector<float> one_batch = train(rank, "gb-np1-micro8", 8, 8, 2, false, adversarial);
  const std::vector<float> four_batch = train(0, "gb-np4-micro2", 8, 2, 2, false, adversarial);
  EXPECT_GT(relative_difference(four_batch, one_batch), 1e-4);
}

// The validation values of a run whose weights do not move (lr 0) on the ranks of `color`.
std::map<std::string, double> validation(int color, const std::string& run, bool unet) {
  MpiCommunicator all(60);
  std::unique_ptr<MpiCommunicator> group = all.split(color);
  Config config = small_config(run + "-color" + std::to_string(color), 2, 2, unet);
  config.train.lr = 0;
  config.data.val_images = 4;
  config.run.val_every = 1;
  config.stages.images = {16};
  Trainer trainer(config, std::move(group));
  return trainer.run().last_validation;
}

TEST(Zero, ValidationIsTheSameBitsOnOneTwoAndFourRanks) {
  if (world_size() != 4) GTEST_SKIP() << "needs mpirun -np 4";
  const int rank = world_rank();
  for (bool unet : {false, true}) {
    const std::string kind = unet ? "u-" : "ae-";
    const std::map<std::string, double> one = validation(rank, kind + "val-np1", unet);
    const std::map<std::string, double> two = validation(rank / 2, kind + "val-np2", unet);
    const std::map<std::string, double> four = validation(0, kind + "val-np4", unet);
    ASSERT_EQ(one.size(), unet ? 1u : 2u);
    EXPECT_EQ(two, one) << kind;
    EXPECT_EQ(four, one) << kind;
    for (const auto& [name, value] : one) EXPECT_TRUE(std::isfinite(value) && value > 0) << name;
  }
}

TEST(Zero, StateShrinksAsOneOverWorld) {
  // Measured from the allocations: Adam moments (stages 1, 2) and the accumulated gradient
  // shard (stage 2) of a rank in worlds of 1, 2 and 4.
  const int world = world_size();
  for (int stage : {1, 2}) {
    for (int n : {1, 2, 4}) {
      if (n > world) continue;
      MpiCommunicator all(60);
      std::unique_ptr<MpiCommunicator> group = all.split(world_rank() / n);
      const int group_world = group->world();
      Trainer trainer(small_config("state-s" + std::to_string(stage) + "-n" + std::to_string(n) +
                                       "-r" + std::to_string(world_rank()), 2, stage),
                      std::move(group));
      const int64_t padded = trainer.params().padded_count();
      EXPECT_EQ(padded % group_world, 0);
      EXPECT_EQ(trainer.optimizer().state_bytes(), 8 * padded / group_world);
      EXPECT_EQ(trainer.gradient_sync().gradient_shard_bytes(),
                stage == 2 || stage == 1 ? 4 * padded / group_world : 0);
    }
  }
}

}  // namespace
}  // namespace ladder
