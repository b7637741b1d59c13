// Why this file exists: `ladder train` on the GPU (run.device = cuda) end to end, in one
// process: an fp32 GPU run follows the CPU run's loss curve; bf16 and fp16 runs learn (fp16
// through the dynamic loss scale); the metrics report device memory. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "kernels/cuda/device_memory.h"
#include "../test_support.h"
#include "train/trainer.h"

namespace ladder {
namespace {

using testing::TempDir;

#define LADDER_SKIP_WITHOUT_GPU()     \
  if (!cuda::cuda_device_available()) \
  GTEST_SKIP() << "no CUDA device: " << cuda::cuda_device_problem()

const std::string& small_store() { return testing::small_synthetic_store(); }

Config small_run(const std::string& dir, const std::string& device, const std::string& precision,
                 int steps) {
  return load_config("", {"--run.dir", dir, "--run.seed", "7", "--run.log_every", "1",
                          "--run.sample_every", "0", "--run.device", device,
                          "--model.channels", "16,32", "--model.norm_groups", "8",
                          "--model.res_blocks", "1", "--model.latent_channels", "4",
                          "--data.store", small_store(), "--data.flip", "false",
                          "--stages.resolutions", "32", "--stages.images", std::to_string(8 * steps),
                          "--train.batch", "8", "--train.micro_batch", "4", "--train.lr", "2e-3",
                          "--train.weight_decay", "0", "--train.precision", precision});
}

std::vector<double> losses(const std::string& metrics) {
  std::vector<double> values;
  std::ifstream in(metrics);
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find("\"loss\": ");
    if (at != std::string::npos) values.push_back(std::stod(line.substr(at + 8)));
  }
  return values;
}

TEST(CudaTraining, Fp32FollowsTheCpuLossCurve) {
  LADDER_SKIP_WITHOUT_GPU();
  TempDir dir;
  Trainer cpu(small_run(dir / "cpu", "cpu", "fp32", 10));
  cpu.run();
  Trainer gpu(small_run(dir / "gpu", "cuda", "fp32", 10));
  EXPECT_EQ(gpu.device().name().rfind("cuda:", 0), 0u);
  gpu.run();
  const std::vector<double> want = losses(cpu.metrics_path()), got = losses(gpu.metrics_path());
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-3 * want[i]) << "step " << i + 1;
}

TEST(CudaTraining, Bf16AndFp16Learn) {
  LADDER_SKIP_WITHOUT_GPU();
  for (const char* precision : {"bf16", "fp16"}) {
    TempDir dir;
    Trainer trainer(small_run(dir / precision, "cuda", precision, 60));
    EXPECT_EQ(trainer.device().precision(), precision);
    const TrainSummary summary = trainer.run();
    EXPECT_TRUE(std::isfinite(summary.last_rec_loss)) << precision;
    // The CPU overfit test reaches 13% of the first loss in 300 steps; 60 steps reach < 60%.
    EXPECT_LT(summary.last_rec_loss, 0.6 * summary.first_rec_loss) << precision;
    std::ifstream in(trainer.metrics_path());
    std::string last, line;
    while (std::getline(in, line)) last = line;
    EXPECT_NE(last.find("\"mem_peak_bytes\": "), std::string::npos);
    EXPECT_EQ(last.find("\"mem_peak_bytes\": 0,"), std::string::npos) << "device peak recorded";
  }
}

}  // namespace
}  // namespace ladder
