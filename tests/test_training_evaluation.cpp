// Why this file exists: FID and KID during training (train/training_evaluation.h) and the
// sample grids every rank helps to make. The scores a 2-rank run logs at the end of a rung are
// the very bits `ladder evaluate` computes on 1 rank from the checkpoint of that step; the grid
// before the first step (the seeded initial weights) is the same PNG on 1 and 2 ranks; the keys
// are checked, and a missing weights file says how to make one.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "test_support.h"

namespace ladder {
namespace {

using testing::TempDir;

std::string tiny_autoencoder(const std::string& run_dir) {
  return "train --config /dev/null --run.dir " + run_dir + " --run.device cpu --run.sample_every 0"
         " --log.tensorboard false --model.channels 8,16 --model.norm_groups 4 --model.res_blocks 1"
         " --model.latent_channels 2 --data.store " + testing::small_synthetic_store() +
         " --stages.resolutions 32 --stages.images 8 --train.batch 4";
}

nlohmann::json last_metrics(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line, last;
  while (std::getline(in, line)) last = line;
  return nlohmann::json::parse(last);
}

TEST(TrainingEvaluation, TwoRanksLogTheScoresEvaluateComputesOnOne) {
  TempDir dir;
  const std::string eval = " --eval.count 6 --eval.weights random:3";
  const testing::CommandResult two = testing::run_ladder_ranks(2, tiny_autoencoder(dir / "two") + eval);
  ASSERT_EQ(two.exit_code, 0) << two.output;
  EXPECT_NE(two.output.find("evaluation at step 2: fid "), std::string::npos) << two.output;
  EXPECT_NE(two.output.find("6 reconstructions at 32x32, mode pytorch_fid"), std::string::npos) << two.output;
  const nlohmann::json metrics = last_metrics(dir / "two");
  ASSERT_TRUE(metrics.contains("fid")) << metrics.dump();
  EXPECT_EQ(metrics["eval_count"].get<double>(), 6);
  EXPECT_EQ(metrics["eval_mode"].get<std::string>(), "pytorch_fid");
  EXPECT_NE(metrics["eval_network"].get<std::string>().find("random:3"), std::string::npos);
  EXPECT_GT(metrics["eval_seconds"].get<double>(), 0);
  EXPECT_GE(metrics["kid_std"].get<double>(), 0);

  const testing::CommandResult one = testing::run_ladder(
      "evaluate --checkpoint " + (dir / "two/checkpoints/step-00000002") + " --store " +
      testing::small_synthetic_store() + " --weights random:3 --resolution 32 --count 6 --device cpu");
  ASSERT_EQ(one.exit_code, 0) << one.output;
  double rfid = 0;
  const size_t at = one.output.find("rfid ");
  ASSERT_NE(at, std::string::npos) << one.output;
  ASSERT_EQ(std::sscanf(one.output.c_str() + at, "rfid %lf", &rfid), 1);
  EXPECT_GT(rfid, 0);
  EXPECT_EQ(metrics["fid"].get<double>(), rfid) << "the 2-rank run's fid differs from evaluate's on 1 rank";

  // The grid before the first step: every rank makes its images, the same PNG on any world size.
  const testing::CommandResult single = testing::run_ladder(tiny_autoencoder(dir / "one"));
  ASSERT_EQ(single.exit_code, 0) << single.output;
  const std::string grid = "/samples/step-00000000-r32.png";
  const std::string a = testing::read_file(dir / "one" + grid), b = testing::read_file(dir / "two" + grid);
  ASSERT_FALSE(a.empty());
  EXPECT_TRUE(a == b) << "the first grid differs between 1 and 2 ranks";
}

TEST(TrainingEvaluation, KeysAreCheckedAndMissingWeightsSayHowToMakeThem) {
  TempDir dir;
  const testing::CommandResult no_weights = testing::run_ladder(tiny_autoencoder(dir / "a") + " --eval.count 4");
  EXPECT_EQ(no_weights.exit_code, 2) << no_weights.output;
  EXPECT_NE(no_weights.output.find("eval.weights"), std::string::npos) << no_weights.output;
  const testing::CommandResult one_image =
      testing::run_ladder(tiny_autoencoder(dir / "b") + " --eval.count 1 --eval.weights random");
  EXPECT_EQ(one_image.exit_code, 2) << one_image.output;
  EXPECT_NE(one_image.output.find("eval.count"), std::string::npos) << one_image.output;
  const testing::CommandResult missing = testing::run_ladder(tiny_autoencoder(dir / "c") +
                                                             " --eval.count 4 --eval.weights " + (dir / "none.st"));
  EXPECT_EQ(missing.exit_code, 2) << missing.output;
  EXPECT_NE(missing.output.find("launch/fid_weights.py"), std::string::npos) << missing.output;
  const testing::CommandResult mode =
      testing::run_ladder(tiny_autoencoder(dir / "d") + " --eval.count 4 --eval.weights random --eval.mode tf2");
  EXPECT_EQ(mode.exit_code, 2) << mode.output;
  EXPECT_NE(mode.output.find("eval.mode"), std::string::npos) << mode.output;
}

}  // namespace
}  // namespace ladder
