// Why this file exists: a single-rank NCCL run (issue #5): `ladder train` on one GPU with
// comm.backend = nccl moves its ZeRO-2 buckets through NCCL on device buffers and learns.
// Run under mpirun -np 1 (NCCL bootstraps over MPI); skipped without a GPU.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cmath>
#include <filesystem>

#include "cli/pack_command.h"
#include "config/config.h"
#include "kernels/cuda/device_memory.h"
#include "train/trainer.h"

namespace ladder {
namespace {

TEST(NcclGpu, SingleRankTrainsOverNccl) {
  if (!cuda::cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda::cuda_device_problem();
  const std::string dir = (std::filesystem::temp_directory_path() / "ladder-nccl-gpu").string();
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  pack_command({"--synthetic", "8", "--out", dir + "/s.h5", "--levels", "16", "--seed", "5"});
  Config config = load_config(
      "", {"--run.dir", dir + "/run", "--run.seed", "3", "--run.log_every", "1",
           "--run.sample_every", "0", "--run.device", "cuda", "--comm.backend", "nccl",
           "--model.channels", "8,16", "--model.norm_groups", "4", "--model.res_blocks", "1",
           "--data.store", dir + "/s.h5", "--stages.resolutions", "16", "--stages.images", "160",
           "--train.batch", "8", "--train.micro_batch", "4", "--train.lr", "3e-3",
           "--train.zero_stage", "2", "--train.bucket_mb", "0.01"});
  Trainer trainer(config);
  EXPECT_EQ(trainer.buffers_communicator().backend(), "nccl");
  EXPECT_TRUE(trainer.buffers_communicator().device_buffers());
  const TrainSummary summary = trainer.run();
  EXPECT_EQ(summary.steps, 20);
  EXPECT_TRUE(std::isfinite(summary.last_loss));
  EXPECT_LT(summary.last_terms.at("rec_loss"), summary.first_terms.at("rec_loss"));
}

}  // namespace
}  // namespace ladder
