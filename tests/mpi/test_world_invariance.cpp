// Why this file exists: the world-invariant data order (data/data_order.h) under real mpirun
// with 4 ranks, on a data set that is many global batches (40 images, batch 8: an epoch is 5
// steps, 15 steps are 3 epochs): 1, 2 and 4 ranks (sub-worlds split from MPI_COMM_WORLD) train
// on the same image ids in every slot of every global batch (the trainer's test-only trace,
// LADDER_TEST_BATCH_TRACE), log the same loss at every step within 1e-5 relative and end with
// the same weights within 1e-5, for the autoencoder and for the diffusion UNet; 3 ranks
// against 1 with batch 12 too. A world size that does not divide data.partitions is refused
// with one line naming the key.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "comm/mpi_communicator.h"
#include "config/config.h"
#include "train/trainer.h"
#include "trainer_checks.h"

namespace ladder {
namespace {

using testing::relative_difference;
using testing::world_rank;
using testing::world_size;

constexpr int64_t kImages = 40;

// A directory every rank sees holding s.h5 (40 synthetic 16×16 images) and l.h5 (their kind of
// latents: 40 images at image resolution 16, 4×4×2).
std::string shared_dir() {
  static const std::string dir = [] {
    char path[256] = {0};
    if (world_rank() == 0) {
      std::string made = (std::filesystem::temp_directory_path() / "ladder-order-XXXXXX").string();
      std::strncpy(path, mkdtemp(made.data()), sizeof path - 1);
      pack_command({"--synthetic", std::to_string(kImages), "--out", std::string(path) + "/s.h5", "--levels", "16",
                    "--seed", "5"});
      testing::write_synthetic_latent_store(std::string(path) + "/l.h5", kImages, {16}, 2, 5);
    }
    MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    return std::string(path);
  }();
  return dir;
}

struct TrainedRun {
  std::vector<float> weights;
  std::map<int64_t, double> losses;                       // step → loss
  std::map<int64_t, std::map<int64_t, int64_t>> batches;  // step → slot → image index
};

// Trains on the ranks that share `color` and returns what the group's rank 0 saw (the weights,
// every rank's trace, the logged losses); the other ranks return the weights only.
TrainedRun train(int color, const std::string& name, bool unet, int64_t batch, int micro) {
  MpiCommunicator all(60);
  std::unique_ptr<MpiCommunicator> group = all.split(color);
  const int rank = group->rank(), world = group->world();
  const std::string dir = shared_dir() + "/" + name + "-color" + std::to_string(color);
  std::vector<std::string> flags = {
      "--run.dir", dir, "--run.seed", "3", "--run.log_every", "1", "--run.sample_every", "0",
      "--model.channels", "8,16", "--model.norm_groups", "4", "--model.res_blocks", "1",
      "--model.attention_levels", "0,1", "--data.store", shared_dir() + (unet ? "/l.h5" : "/s.h5"),
      "--data.flip", "true", "--stages.resolutions", "16", "--stages.images", std::to_string(3 * kImages),
      "--train.batch", std::to_string(batch), "--train.micro_batch", std::to_string(micro), "--train.lr", "3e-3",
      "--log.tensorboard", "false"};
  if (unet)
    flags.insert(flags.end(), {"--model.kind", "diffusion_unet", "--model.in_channels", "2", "--model.head_channels",
                               "0,8", "--diffusion.timesteps", "100", "--diffusion.snr_gamma", "5"});
  const std::string trace = dir + "-trace";
  setenv("LADDER_TEST_BATCH_TRACE", trace.c_str(), 1);
  TrainedRun run;
  {
    Trainer trainer(load_config("", flags), std::move(group));
    trainer.run();
    const ParamStore& p = trainer.params();
    run.weights.assign(p.values(), p.values() + p.count());
  }  // the trace files are complete
  unsetenv("LADDER_TEST_BATCH_TRACE");
  all.barrier();
  if (rank != 0) return run;
  for (int r = 0; r < world; ++r) {
    std::ifstream in(trace + ".rank" + std::to_string(r));
    EXPECT_TRUE(in.good()) << trace << ".rank" << r;
    int64_t step, slot, index;
    while (in >> step >> slot >> index) {
      EXPECT_EQ(run.batches[step].count(slot), 0u) << "slot " << slot << " of step " << step << " drawn twice";
      run.batches[step][slot] = index;
    }
  }
  std::ifstream metrics(dir + "/metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    const nlohmann::json row = nlohmann::json::parse(line);
    run.losses[row["step"].get<int64_t>()] = row["loss"].get<double>();
  }
  return run;
}

// b's batches and losses equal a's (the world-1 run), within 1e-5 relative for the losses.
void expect_same_training(const TrainedRun& a, const TrainedRun& b, const std::string& what, int64_t steps, int64_t batch) {
  EXPECT_EQ(a.batches.size(), static_cast<size_t>(steps)) << what;
  for (const auto& [step, slots] : a.batches) EXPECT_EQ(slots.size(), static_cast<size_t>(batch)) << what << step;
  EXPECT_TRUE(a.batches == b.batches) << what << ": other images in some global batch";
  ASSERT_EQ(a.losses.size(), b.losses.size()) << what;
  for (const auto& [step, loss] : a.losses)
    EXPECT_LT(std::abs(b.losses.at(step) - loss), 1e-5 * std::abs(loss)) << what << ", step " << step;
  EXPECT_LT(relative_difference(b.weights, a.weights), 1e-5) << what;
}

TEST(WorldInvariance, OneTwoAndFourRanksTrainOnTheSameBatchesOverSeveralEpochs) {
  if (world_size() != 4) GTEST_SKIP() << "needs mpirun -np 4";
  const int rank = world_rank();
  for (bool unet : {false, true}) {
    const std::string model = unet ? "unet" : "ae";
    const TrainedRun one = train(rank, model + "-w1", unet, 8, 2);  // every rank alone: 4 micro-batches a step
    const TrainedRun two = train(rank / 2, model + "-w2", unet, 8, 2);
    const TrainedRun four = train(0, model + "-w4", unet, 8, 2);
    if (rank != 0) continue;
    // 15 steps over 3 epochs: every image trained on 3 times.
    std::map<int64_t, int> uses;
    for (const auto& [step, slots] : one.batches)
      for (const auto& [slot, index] : slots) ++uses[index];
    EXPECT_EQ(uses.size(), static_cast<size_t>(kImages)) << model;
    for (const auto& [index, count] : uses) EXPECT_EQ(count, 3) << model << " image " << index;
    expect_same_training(one, two, model + ": 2 ranks", 15, 8);
    expect_same_training(one, four, model + ": 4 ranks", 15, 8);
  }
}

TEST(WorldInvariance, ThreeRanksTrainOnTheSameBatchesAsOne) {
  if (world_size() != 4) GTEST_SKIP() << "needs mpirun -np 4";
  const int rank = world_rank();
  // Batch 12, partitions auto (12): ranks 0-2 train on 3 ranks while rank 3 trains alone.
  const TrainedRun run = train(rank < 3 ? 0 : 1, "ae-b12", false, 12, 4);
  // The two groups' rank 0 (world ranks 0 and 3) compare through world rank 0.
  std::vector<double> losses(run.losses.size() + 1, 0.0);
  std::vector<double> theirs(losses.size(), 0.0);
  if (rank == 3) {
    losses[0] = static_cast<double>(run.losses.size());
    size_t i = 1;
    for (const auto& entry : run.losses) losses[i++] = entry.second;
    MPI_Send(losses.data(), static_cast<int>(losses.size()), MPI_DOUBLE, 0, 7, MPI_COMM_WORLD);
  } else if (rank == 0) {
    MPI_Recv(theirs.data(), static_cast<int>(theirs.size()), MPI_DOUBLE, 3, 7, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    ASSERT_EQ(theirs[0], static_cast<double>(run.losses.size()));
    EXPECT_EQ(run.losses.size(), 10u);  // 120 images in batches of 12
    size_t i = 1;
    for (const auto& [step, loss] : run.losses) {
      EXPECT_LT(std::abs(theirs[i] - loss), 1e-5 * std::abs(loss)) << "3 ranks vs 1 at step " << step;
      ++i;
    }
  }
  // The traces: rank 0 reads both groups' files (the same shared directory).
  if (rank == 0) {
    auto read = [&](const std::string& prefix, int world) {
      std::map<int64_t, std::map<int64_t, int64_t>> batches;
      for (int r = 0; r < world; ++r) {
        std::ifstream in(shared_dir() + "/" + prefix + "-trace.rank" + std::to_string(r));
        int64_t step, slot, index;
        while (in >> step >> slot >> index) batches[step][slot] = index;
      }
      return batches;
    };
    const auto three = read("ae-b12-color0", 3), one = read("ae-b12-color1", 1);
    EXPECT_EQ(one.size(), 10u);
    EXPECT_TRUE(three == one) << "3 ranks drew other global batches than 1";
  }
}

TEST(WorldInvariance, AWorldThatDoesNotDivideThePartitionsIsRefusedNamingTheKey) {
  if (world_size() != 4) GTEST_SKIP() << "needs mpirun -np 4";
  MpiCommunicator all(60);
  const std::vector<std::string> flags = {
      "--run.dir", shared_dir() + "/refused-" + std::to_string(world_rank()), "--data.store", shared_dir() + "/s.h5",
      "--model.channels", "8,16", "--model.norm_groups", "4", "--stages.resolutions", "16", "--train.batch", "8",
      "--data.partitions", "2", "--log.tensorboard", "false"};
  try {
    Trainer trainer(load_config("", flags), all.split(0));
    ADD_FAILURE() << "4 ranks over data.partitions = 2 were accepted";
  } catch (const UsageError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("world size 4 does not divide data.partitions (2)"), std::string::npos) << message;
    EXPECT_NE(message.find("world sizes that work: 1, 2"), std::string::npos) << message;
  }
}

}  // namespace
}  // namespace ladder
