// Why this file exists: `ladder train` on the GPU (run.device = cuda) end to end, in one
// process: an fp32 GPU run follows the CPU run's loss curve; bf16 and fp16 runs learn (fp16
// through the dynamic loss scale); the metrics report device memory; a checkpoint written on
// the GPU (device → page-locked staging) resumes on the GPU and on the CPU with the saved
// master weights and moments bit for bit; the diffusion UNet (stage 2) on the GPU follows its
// CPU loss curve in fp32 (and its weights' moving average), and learns in bf16; stage 1 with
// the adversarial and perceptual terms follows the CPU term by term, and the discriminator's
// BatchNorm running statistics follow the CPU's and survive a resume. Skipped without a GPU.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "config/config.h"
#include "io/checkpoint_files.h"
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
                 int steps, const std::vector<std::string>& more_flags = {}) {
  std::vector<std::string> flags = {"--run.dir", dir, "--run.seed", "7", "--run.log_every", "1",
                                    "--run.sample_every", "0", "--run.device", device,
                                    "--model.channels", "16,32", "--model.norm_groups", "8",
                                    "--model.res_blocks", "1", "--model.latent_channels", "4",
                                    "--data.store", small_store(), "--data.flip", "false",
                                    "--stages.resolutions", "32", "--stages.images", std::to_string(8 * steps),
                                    "--train.batch", "8", "--train.micro_batch", "4", "--train.lr", "2e-3",
                                    "--train.weight_decay", "0", "--train.precision", precision};
  flags.insert(flags.end(), more_flags.begin(), more_flags.end());
  return load_config("", flags);
}

// A metrics.jsonl key's values, one per logged step.
std::vector<double> values_of(const std::string& metrics, const std::string& key) {
  std::vector<double> values;
  std::ifstream in(metrics);
  const std::string quoted = "\"" + key + "\": ";
  for (std::string line; std::getline(in, line);) {
    const size_t at = line.find(quoted);
    if (at != std::string::npos) values.push_back(std::stod(line.substr(at + quoted.size())));
  }
  return values;
}

// A small UNet on 8 synthetic latents (8×8, 2 channels), EMA on (the lerp kernel).
Config unet_run(const std::string& dir, const std::string& latents, const std::string& device,
                const std::string& precision, int steps) {
  return load_config("", {"--run.dir", dir, "--run.seed", "7", "--run.log_every", "1",
                          "--run.sample_every", "0", "--run.device", device, "--log.tensorboard", "false",
                          "--model.kind", "diffusion_unet", "--model.in_channels", "2",
                          "--model.channels", "16,32", "--model.norm_groups", "8", "--model.res_blocks", "1",
                          "--model.attention_levels", "0,1", "--model.head_channels", "0,16",
                          "--data.store", latents, "--data.flip", "false", "--stages.resolutions", "32",
                          "--stages.images", std::to_string(8 * steps), "--train.batch", "8",
                          "--train.micro_batch", "4", "--train.lr", "2e-3", "--train.precision", precision,
                          "--diffusion.timesteps", "100", "--diffusion.snr_gamma", "5", "--ema.decay", "0.9"});
}

TEST(CudaTraining, UNetFollowsTheCpuInFp32AndLearnsInBf16) {
  LADDER_SKIP_WITHOUT_GPU();
  TempDir dir;
  const std::string latents = dir / "latents.h5";
  testing::write_synthetic_latent_store(latents, 8, {32}, 2, 11);
  Trainer cpu(unet_run(dir / "cpu", latents, "cpu", "fp32", 10));
  cpu.run();
  Trainer gpu(unet_run(dir / "gpu", latents, "cuda", "fp32", 10));
  gpu.run();
  const std::vector<double> want = values_of(cpu.metrics_path(), "loss"), got = values_of(gpu.metrics_path(), "loss");
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-3 * want[i]) << "step " << i + 1;
  auto ema = [](const std::string& step_dir) {
    const io::Manifest manifest = io::verify_checkpoint(step_dir);
    std::vector<float> values(static_cast<size_t>(manifest.count));
    io::read_checkpoint_ranges(step_dir, manifest, "ema", {Range{0, manifest.count}}, values.data());
    return values;
  };
  const std::vector<float> a = ema(dir / "cpu/checkpoints/step-00000010"), b = ema(dir / "gpu/checkpoints/step-00000010");
  double diff = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    norm += double(a[i]) * a[i];
  }
  EXPECT_LT(std::sqrt(diff / norm), 1e-4) << "moving average, GPU fp32 against the CPU";
  Trainer bf16(unet_run(dir / "bf16", latents, "cuda", "bf16", 100));
  const TrainSummary summary = bf16.run();
  const std::vector<double> curve = values_of(bf16.metrics_path(), "loss");
  double first = 0, last = 0;
  for (int i = 0; i < 10; ++i) first += curve[i] / 10;
  for (int i = 80; i < 100; ++i) last += curve[i] / 20;
  EXPECT_TRUE(std::isfinite(summary.last_loss));
  EXPECT_LT(last, 0.8 * first) << "bf16 UNet: first 10 steps " << first << ", last 20 " << last;
}

TEST(CudaTraining, Fp32FollowsTheCpuLossCurve) {
  LADDER_SKIP_WITHOUT_GPU();
  TempDir dir;
  Trainer cpu(small_run(dir / "cpu", "cpu", "fp32", 10));
  cpu.run();
  Trainer gpu(small_run(dir / "gpu", "cuda", "fp32", 10));
  EXPECT_EQ(gpu.device().name().rfind("cuda:", 0), 0u);
  gpu.run();
  const std::vector<double> want = values_of(cpu.metrics_path(), "loss"), got = values_of(gpu.metrics_path(), "loss");
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i)
    EXPECT_NEAR(got[i], want[i], 1e-3 * want[i]) << "step " << i + 1;
}

// Stage 1 with its critics on the GPU: the PatchDiscriminator (instance norm: each image
// judged alone) from step 2 and LPIPS (AlexNet, the package's random-weight fixture) on its
// own backend. fp32 follows the CPU's run term by term; bf16 stays finite.
TEST(CudaTraining, AdversarialAndPerceptualTermsFollowTheCpu) {
  LADDER_SKIP_WITHOUT_GPU();
  const std::vector<std::string> critics = {
      "--adversarial.weight", "0.1", "--adversarial.start_step", "2", "--adversarial.layers", "2",
      "--adversarial.channels", "8", "--adversarial.norm", "instance", "--perceptual.weight", "0.1",
      "--perceptual.weights", std::string(LADDER_TEST_FIXTURES) + "/lpips_alex_weights.safetensors"};
  TempDir dir;
  Trainer cpu(small_run(dir / "cpu", "cpu", "fp32", 6, critics));
  cpu.run();
  Trainer gpu(small_run(dir / "gpu", "cuda", "fp32", 6, critics));
  gpu.run();
  for (const char* key : {"loss", "rec_loss", "p_loss", "g_adv_loss", "d_loss"}) {
    const std::vector<double> want = values_of(cpu.metrics_path(), key), got = values_of(gpu.metrics_path(), key);
    ASSERT_FALSE(want.empty()) << key << " is not in the CPU run's metrics";
    ASSERT_EQ(got.size(), want.size()) << key;
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-3 * std::abs(want[i]) + 1e-7) << key << " at logged step " << i + 1;
  }
  Trainer bf16(small_run(dir / "bf16", "cuda", "bf16", 6, critics));
  const TrainSummary summary = bf16.run();
  EXPECT_TRUE(std::isfinite(summary.last_terms.at("p_loss")));
  EXPECT_TRUE(std::isfinite(summary.last_terms.at("g_adv_loss")));
}

// BatchNorm's running statistics on the GPU (fp32 side tensors beside any precision): after 6
// steps with the discriminator on from step 3, the checkpoint's buffers follow the CPU run's
// (1e-3, an estimate; the counts exactly), and a resume on the GPU gives them back bit for bit
// (its finishing checkpoint in another run.dir holds the same buffers).
TEST(CudaTraining, BatchNormRunningStatisticsFollowTheCpuAndResume) {
  LADDER_SKIP_WITHOUT_GPU();
  const std::vector<std::string> critics = {"--adversarial.weight", "0.1", "--adversarial.start_step", "2",
                                            "--adversarial.layers", "2", "--adversarial.channels", "8"};
  TempDir dir;
  Trainer cpu(small_run(dir / "cpu", "cpu", "fp32", 6, critics));
  cpu.run();
  Trainer gpu(small_run(dir / "gpu", "cuda", "fp32", 6, critics));
  gpu.run();
  const std::string source = dir / "gpu/checkpoints/step-00000006";
  const io::Manifest want = io::verify_checkpoint(dir / "cpu/checkpoints/step-00000006");
  const io::Manifest got = io::verify_checkpoint(source);
  ASSERT_EQ(want.buffers.size(), 6u);
  ASSERT_EQ(got.buffers.size(), want.buffers.size());
  for (size_t b = 0; b < want.buffers.size(); ++b) {
    ASSERT_EQ(got.buffers[b].name, want.buffers[b].name);
    ASSERT_EQ(got.buffers[b].values.size(), want.buffers[b].values.size());
    for (size_t i = 0; i < want.buffers[b].values.size(); ++i)
      EXPECT_NEAR(got.buffers[b].values[i], want.buffers[b].values[i], 1e-3 * (1 + std::abs(want.buffers[b].values[i])))
          << want.buffers[b].name << "[" << i << "]";
  }
  EXPECT_EQ(got.buffers[2].values[0], 3.0 * 4 * 2) << "3 passes × 4 steps × 2 micro-batches";
  TrainOptions options;
  options.resume = source;
  Trainer resumed(small_run(dir / "resumed", "cuda", "bf16", 6, critics), nullptr, options);
  resumed.run();
  const io::Manifest again = io::verify_checkpoint(dir / "resumed/checkpoints/step-00000006");
  ASSERT_EQ(again.buffers.size(), got.buffers.size());
  for (size_t b = 0; b < got.buffers.size(); ++b) EXPECT_EQ(again.buffers[b].values, got.buffers[b].values) << b;
}

TEST(CudaTraining, Bf16AndFp16Learn) {
  LADDER_SKIP_WITHOUT_GPU();
  for (const char* precision : {"bf16", "fp16"}) {
    TempDir dir;
    Trainer trainer(small_run(dir / precision, "cuda", precision, 60));
    EXPECT_EQ(trainer.device().precision(), precision);
    const TrainSummary summary = trainer.run();
    EXPECT_TRUE(std::isfinite(summary.last_terms.at("rec_loss"))) << precision;
    // The CPU overfit test reaches 13% of the first loss in 300 steps; 60 steps reach < 60%.
    EXPECT_LT(summary.last_terms.at("rec_loss"), 0.6 * summary.first_terms.at("rec_loss")) << precision;
    std::ifstream in(trainer.metrics_path());
    std::string last, line;
    while (std::getline(in, line)) last = line;
    EXPECT_NE(last.find("\"mem_peak_bytes\": "), std::string::npos);
    EXPECT_EQ(last.find("\"mem_peak_bytes\": 0,"), std::string::npos) << "device peak recorded";
  }
}

TEST(CudaTraining, ACheckpointOfTheGpuResumesOnTheGpuAndTheCpu) {
  LADDER_SKIP_WITHOUT_GPU();
  TempDir dir;
  Config first = small_run(dir / "gpu", "cuda", "fp16", 4);  // fp16: the loss scale is saved too
  first.checkpoint.every = 2;
  Trainer trainer(first);
  trainer.run();
  const std::string source = dir / "gpu/checkpoints/step-00000004";
  const io::Manifest manifest = io::verify_checkpoint(source);
  EXPECT_EQ(manifest.state.scaler.scale, 65536);
  std::vector<float> master(static_cast<size_t>(manifest.count)), m(master.size()), v(master.size());
  io::read_checkpoint_ranges(source, manifest, "master", {Range{0, manifest.count}}, master.data());
  io::read_checkpoint_ranges(source, manifest, "exp_avg", {Range{0, manifest.count}}, m.data());
  io::read_checkpoint_ranges(source, manifest, "exp_avg_sq", {Range{0, manifest.count}}, v.data());
  // What the GPU trained to is what was saved.
  const ParamStore& trained = trainer.params();
  EXPECT_TRUE(std::equal(master.begin(), master.end(), trained.values()));
  for (const char* device : {"cuda", "cpu"}) {
    Config next = small_run(dir / (std::string("resume-") + device), device,
                            device == std::string("cpu") ? "fp32" : "fp16", 6);
    TrainOptions options;
    options.resume = source;
    Trainer resumed(next, nullptr, options);
    const ParamStore& params = resumed.params();
    EXPECT_TRUE(std::equal(master.begin(), master.end(), params.values())) << device;
    const std::vector<Range> all = {Range{0, manifest.count}};
    std::vector<float> got_m(m.size()), got_v(v.size());
    resumed.optimizer().download_moments(all, got_m.data(), got_v.data());
    EXPECT_EQ(got_m, m) << device;
    EXPECT_EQ(got_v, v) << device;
    EXPECT_EQ(resumed.run().steps, 6) << device;
  }
}

}  // namespace
}  // namespace ladder
