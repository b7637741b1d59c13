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

#include "cli/pack_command.h"
#include "comm/mpi_communicator.h"
#include "config/config.h"
#include "kernels/cuda/device_memory.h"
#include "train/trainer.h"

namespace ladder {
namespace {

int world_rank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

std::string shared_dir() {
  static const std::string dir = [] {
    char path[256] = {0};
    if (world_rank() == 0) {
      std::string made = (std::filesystem::temp_directory_path() / "ladder-zero-gpu-XXXXXX").string();
      std::strncpy(path, mkdtemp(made.data()), sizeof path - 1);
      pack_command({"--synthetic", "8", "--out", std::string(path) + "/s.h5", "--levels", "16",
                    "--seed", "5"});
    }
    MPI_Bcast(path, sizeof path, MPI_CHAR, 0, MPI_COMM_WORLD);
    return std::string(path);
  }();
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
  trainer.set_step_callback([&](int64_t step) {
    const ParamStore& p = trainer.params();
    uint64_t hash = 1469598103934665603ull;  // FNV-1a over the flat buffer
    const auto* bytes = reinterpret_cast<const unsigned char*>(p.values());
    for (int64_t i = 0; i < p.padded_count() * 4; ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;
    std::vector<uint64_t> hashes(static_cast<size_t>(trainer.communicator().world()));
    trainer.communicator().all_gather(&hash, hashes.data(), 1, DType::kF64);
    for (uint64_t other : hashes) EXPECT_EQ(other, hash) << "replicas differ after step " << step;
  });
  trainer.run();
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

TEST(ZeroGpu, StagesAgreeOnTwoRanksSharingTheGpu) {
  if (!cuda::cuda_device_available()) GTEST_SKIP() << "no CUDA device: " << cuda::cuda_device_problem();
  int world = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &world);
  if (world != 2) GTEST_SKIP() << "needs mpirun -np 2";
  const std::vector<float> alone = train(world_rank(), "alone", 8, 0);  // each rank by itself
  for (int stage = 0; stage <= 2; ++stage) {
    const std::vector<float> pair = train(0, "pair-stage" + std::to_string(stage), 4, stage);
    // One GPU rank with micro 8 vs two with micro 4: the same sums in another order (fp32).
    EXPECT_LT(relative_difference(pair, alone), 1e-4) << "ZeRO stage " << stage;
  }
}

}  // namespace
}  // namespace ladder
