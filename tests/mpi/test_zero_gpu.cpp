// Why this file exists: the ZeRO equivalences on GPU ranks (issue #5): two ranks that share one
// GPU, their gradients and parameters moved by MPI through host memory (the staged
// communicator), train the same weights with ZeRO 0, 1 and 2 as one GPU rank with the same
// global batch; replicas stay identical after every step. fp32 compute, so that the bounds
// are about the reduction order only. Run under mpirun -np 2; skipped without a GPU.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <cstring>
#include <filesystem>

#include "comm/mpi_communicator.h"
#include "config/config.h"
#include "kernels/cuda/device_memory.h"
#include "train/trainer.h"
#include "trainer_checks.h"

namespace ladder {
namespace {

using testing::expect_identical_replicas;
using testing::relative_difference;
using testing::world_rank;

std::string shared_dir() {
  static const std::string dir = testing::make_shared_store_dir("ladder-zero-gpu");
  return dir;
}

// On the ranks of `color`: 5 steps of a global batch of 8, ZeRO `stage`, fp32 on the GPU.
std::vector<float> train(int color, const std::string& run, int micro, int stage) {
  MpiCommunicator all(60);
  std::unique_ptr<MpiCommunicator> group = all.split(color);
  Config config = load_config(
      "", {"--run.dir", shared_dir() + "/" + run + "-r" + std::to_string(world_rank()),
           "--run.seed", "3", "--run.log_every", "1", "--run.sample_every", "0",
           "--run.device", "cuda", "--train.precision", "fp32", "--comm.backend", "mpi",
           "--model.channels", "8,16", "--model.norm_groups", "4", "--model.res_blocks", "1",
           "--model.attention_levels", "0,1", "--data.store", shared_dir() + "/s.h5",
           "--stages.resolutions", "16", "--stages.images", "40", "--train.batch", "8",
           "--train.micro_batch", std::to_string(micro), "--train.lr", "3e-3",
           "--train.zero_stage", std::to_string(stage), "--train.bucket_mb", "0.01"});
  Trainer trainer(config, std::move(group));
  EXPECT_TRUE(trainer.device().on_gpu());
  trainer.set_step_callback([&](int64_t step) { expect_identical_replicas(trainer, step); });
  trainer.run();
  const ParamStore& p = trainer.params();
  return std::vector<float>(p.values(), p.values() + p.count());
}

TEST(ZeroGpu, StagesAgreeOnTwoRanksSharingTheGpu) {
  if (!cuda::cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda::cuda_device_problem();
  if (testing::world_size() != 2) GTEST_SKIP() << "needs mpirun -np 2";
  const std::vector<float> alone = train(world_rank(), "alone", 8, 0);  // each rank by itself
  for (int stage = 0; stage <= 2; ++stage) {
    const std::vector<float> pair = train(0, "pair-stage" + std::to_string(stage), 4, stage);
    // One GPU rank with micro 8 vs two with micro 4: the same sums in another order (fp32).
    EXPECT_LT(relative_difference(pair, alone), 1e-4) << "ZeRO stage " << stage;
  }
}

}  // namespace
}  // namespace ladder
