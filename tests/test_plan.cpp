// Why this file exists: `ladder plan` against real runs. On the CPU the plan counts ladder's
// own allocations, so its step peak must be the mem_peak_bytes a real CPU run of the same
// config reports, within 5% (issue acceptance), for the autoencoder (also with its
// discriminator and LPIPS, and with FID evaluation) and the diffusion UNet, with and without
// recompute; recompute must plan fewer activation bytes; the command prints a plan for a GPU
// budget, with micro-batches that do not fit marked, and refuses a world size that does not
// divide data.partitions.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "config/config.h"
#include "plan/memory_planner.h"
#include "test_support.h"
#include "train/trainer.h"

namespace ladder {
namespace {

using testing::TempDir;

int64_t last_peak(const std::string& metrics) {
  std::ifstream in(metrics);
  std::string line, last;
  while (std::getline(in, line)) last = line;
  const size_t at = last.find("\"mem_peak_bytes\": ");
  return at == std::string::npos ? -1 : std::stoll(last.substr(at + 18));
}

void expect_plan_matches_run(const std::vector<std::string>& flags, const std::string& what) {
  for (const std::string recompute : {"none", "blocks"}) {
    TempDir dir;
    std::vector<std::string> all = flags;
    all.insert(all.end(), {"--run.dir", dir / "run", "--train.recompute", recompute});
    const Config config = load_config("", all);
    Trainer trainer(config);
    trainer.run();
    const int64_t measured = last_peak(trainer.metrics_path());
    const MemoryPlanner planner(config, PlanTarget{});
    const int64_t planned = planner.step_peak(0, config.train.micro_batch[0], recompute == "blocks");
    ASSERT_GT(measured, 0);
    EXPECT_NEAR(double(planned) / double(measured), 1.0, 0.05)
        << what << ", recompute " << recompute << ": planned " << planned << " bytes, the run measured "
        << measured;
  }
}

const std::string& latents() {
  static TempDir dir;
  static const std::string path = [] {
    const std::string store = dir / "latents.h5";
    testing::write_synthetic_latent_store(store, 16, {64}, 4, 3);
    return store;
  }();
  return path;
}

TEST(Plan, TheCpuStepPeakIsTheRunsMemPeakBytes) {
  expect_plan_matches_run({"--run.device", "cpu", "--run.sample_every", "0", "--log.tensorboard", "false",
                           "--model.channels", "16,32,32", "--model.norm_groups", "8", "--model.res_blocks", "1",
                           "--model.attention_levels", "0,0,1", "--model.latent_channels", "4",
                           "--data.store", testing::small_synthetic_store(), "--stages.resolutions", "32",
                           "--stages.images", "16", "--train.batch", "8", "--train.micro_batch", "4"},
                          "autoencoder");
  expect_plan_matches_run({"--run.device", "cpu", "--run.sample_every", "0", "--log.tensorboard", "false",
                           "--model.kind", "diffusion_unet", "--model.in_channels", "4", "--model.channels", "32,64",
                           "--model.norm_groups", "16", "--model.res_blocks", "1", "--model.attention_levels", "0,1",
                           "--model.head_channels", "0,32", "--data.store", latents(), "--stages.resolutions", "64",
                           "--stages.images", "16", "--train.batch", "8", "--train.micro_batch", "4",
                           "--diffusion.timesteps", "100"},
                          "diffusion UNet");
}

// Stage 1 with both critics: the discriminator and LPIPS (AlexNet, the fixture's weights, which
// the plan charges without reading) beside the autoencoder.
TEST(Plan, TheCpuStepPeakCountsTheCritics) {
  expect_plan_matches_run({"--run.device", "cpu", "--run.sample_every", "0", "--log.tensorboard", "false",
                           "--model.channels", "16,32", "--model.norm_groups", "8", "--model.res_blocks", "1",
                           "--model.latent_channels", "4", "--data.store", testing::small_synthetic_store(),
                           "--stages.resolutions", "32", "--stages.images", "16", "--train.batch", "8",
                           "--train.micro_batch", "4", "--adversarial.weight", "0.1", "--adversarial.start_step", "0",
                           "--adversarial.layers", "2", "--adversarial.channels", "8", "--perceptual.weight", "0.1",
                           "--perceptual.weights", std::string(LADDER_TEST_FIXTURES) + "/lpips_alex_weights.safetensors"},
                          "autoencoder with its critics");
}

// With FID during training: InceptionV3's weights and the scoring of one image (between steps)
// beside the autoencoder's step.
TEST(Plan, TheCpuStepPeakCountsTheEvaluation) {
  expect_plan_matches_run({"--run.device", "cpu", "--run.sample_every", "0", "--log.tensorboard", "false",
                           "--model.channels", "16,32", "--model.norm_groups", "8", "--model.res_blocks", "1",
                           "--model.latent_channels", "4", "--data.store", testing::small_synthetic_store(),
                           "--stages.resolutions", "32", "--stages.images", "16", "--train.batch", "8",
                           "--train.micro_batch", "4", "--eval.count", "6", "--eval.weights", "random"},
                          "autoencoder with FID evaluation");
}

TEST(Plan, RecomputePlansFewerActivationBytesAndGpuBudgetsMarkWhatFits) {
  const Config config = load_config("", {"--model.channels", "32,64,64", "--model.norm_groups", "16",
                                         "--model.res_blocks", "2", "--model.attention_levels", "none",
                                         "--data.store", testing::small_synthetic_store(),
                                         "--stages.resolutions", "32", "--train.batch", "8"});
  const RungMemoryPlan cpu = MemoryPlanner(config, PlanTarget{}).plan_rung(0);
  ASSERT_EQ(cpu.options.size(), 8u);  // micro 8, 4, 2, 1 without, then with recompute
  EXPECT_EQ(cpu.options[0].micro, 8);
  EXPECT_LT(cpu.options[4].activation_bytes, cpu.options[0].activation_bytes);  // recompute, micro 8
  EXPECT_LT(cpu.options[3].activation_bytes, cpu.options[0].activation_bytes);  // micro 1 < micro 8
  EXPECT_GT(cpu.training_flops_per_image, 0);
  PlanTarget gpu;
  gpu.gpu = true;
  gpu.gpu_memory = int64_t{1} << 30;  // below the allowance alone: nothing fits
  for (const MicroBatchPlan& option : MemoryPlanner(config, gpu).plan_rung(0).options) EXPECT_FALSE(option.fits);
  gpu.gpu_memory = int64_t{80} << 30;
  for (const MicroBatchPlan& option : MemoryPlanner(config, gpu).plan_rung(0).options) EXPECT_TRUE(option.fits);
  const testing::CommandResult printed = testing::run_ladder(
      "plan --config /dev/null --gpu-memory 80GiB --world 2 --model.channels 32,64,64 --model.norm_groups 16"
      " --data.store " + testing::small_synthetic_store() + " --stages.resolutions 32 --train.batch 8");
  EXPECT_EQ(printed.exit_code, 0) << printed.output;
  EXPECT_NE(printed.output.find("chosen: micro-batch 4"), std::string::npos) << printed.output;
  EXPECT_NE(printed.output.find("estimate"), std::string::npos) << printed.output;
}

TEST(Plan, AWorldThatBreaksTheDataOrderIsRefusedAsTrainRefusesIt) {
  const testing::CommandResult refused = testing::run_ladder(
      "plan --config /dev/null --world 4 --model.channels 32,64,64 --model.norm_groups 16 --data.store " +
      testing::small_synthetic_store() + " --stages.resolutions 32 --train.batch 8 --data.partitions 2");
  EXPECT_EQ(refused.exit_code, 2) << refused.output;
  EXPECT_NE(refused.output.find("world size 4 does not divide data.partitions (2)"), std::string::npos)
      << refused.output;
}

}  // namespace
}  // namespace ladder
