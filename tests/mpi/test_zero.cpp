// Why this file exists: the data-parallel equivalences of issue #4, under real mpirun with 4
// ranks (sub-worlds of 1, 2, 3 and 4 ranks are split from MPI_COMM_WORLD):
//   1 rank × micro 8  =  2 ranks × micro 4  =  4 ranks × micro 2  =  2 ranks × micro 2 × 2 acc
//   ZeRO 0 = ZeRO 1 = ZeRO 2 on 3 ranks (odd world, parameter count not divisible)
// each after 5 optimizer steps, ‖a − b‖ / ‖b‖ < 1e-5; identical parameters on every rank after
// every step (a hash compared across ranks); optimizer and ZeRO-2 gradient state shrinking
// as 1/N, measured from the allocations.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "cli/pack_command.h"
#include "comm/mpi_communicator.h"
#include "config/config.h"
#include "train/trainer.h"

namespace ladder {
namespace {

// A shared directory for the test's store and runs (rank 0 makes it, everyone learns it).
std::string shared_dir() {
  static const std::string dir = [] {
    char path[256] = {0};
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (rank == 0) {
      std::string made = (std::filesystem::temp_directory_path() / "ladder-zero-XXXXXX").string();
      std::strncpy(path, mkdtemp(made.data()), sizeof path - 1);
      pack_command({"--synthetic", "8", "--out", std::string(path) + "/s.h5", "--levels", "16",
                    "--seed", "5"});
    }
    MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    return std::string(path);
  }();
  return dir;
}

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

// 8 images = one global batch: every step sees every image, whatever the world size.
Config small_config(const std::string& run, int micro, int zero_stage) {
  return load_config("", {"--run.dir", shared_dir() + "/" + run, "--run.seed", "3",
                          "--run.log_every", "1", "--run.sample_every", "0",
                          "--model.channels", "8,16", "--model.norm_groups", "4",
                          "--model.res_blocks", "1", "--model.attention_levels", "0,1",
                          "--data.store", shared_dir() + "/s.h5", "--data.flip", "true",
                          "--stages.resolutions", "16", "--stages.images", "40",
                          "--train.batch", "8", "--train.micro_batch", std::to_string(micro),
                          "--train.lr", "3e-3", "--train.zero_stage", std::to_string(zero_stage),
                          // small buckets: several per rank, a padded last one
                          "--train.bucket_mb", "0.01"});
}

int world_size() {
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  return world;
}

// Every rank of the trainer's world holds the same parameters: their hashes, all-gathered
// (as 8 raw bytes each), are equal.
void expect_identical_replicas(Trainer& trainer, int64_t step) {
  const ParamStore& p = trainer.params();
  uint64_t hash = 1469598103934665603ull;  // FNV-1a over the whole flat buffer
  const auto* bytes = reinterpret_cast<const unsigned char*>(p.values());
  for (int64_t i = 0; i < p.padded_count() * 4; ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;
  Communicator& comm = trainer.communicator();
  std::vector<uint64_t> hashes(static_cast<size_t>(comm.world()));
  comm.all_gather(&hash, hashes.data(), 1, DType::kF64);
  for (uint64_t other : hashes) EXPECT_EQ(other, hash) << "replicas differ after step " << step;
}

// Trains a small autoencoder on the ranks that share `color` (a sub-world split from
// MPI_COMM_WORLD) and returns the final parameters.
std::vector<float> train(int color, const std::string& run, int batch, int micro, int zero_stage) {
  MpiCommunicator all(60);
  std::unique_ptr<MpiCommunicator> group = all.split(color);
  Config config = small_config(run + "-color" + std::to_string(color), micro, zero_stage);
  config.train.batch = batch;
  Trainer trainer(config, std::move(group));
  trainer.set_step_callback([&](int64_t step) { expect_identical_replicas(trainer, step); });
  TrainSummary summary = trainer.run();
  EXPECT_EQ(summary.steps, (40 + batch - 1) / batch);
  const ParamStore& p = trainer.params();
  return std::vector<float>(p.values(), p.values() + p.count());
}

double relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  double diff = 0, norm = 0;
  for (size_t i = 0; i < b.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(b[i]) * b[i];
  }
  return std::sqrt(diff / norm);
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
