// Why this file exists: stage 2 through the shared trainer on the CPU: the objective's inputs
// (x_t, targets, Min-SNR weights, offset noise) keyed by (seed, step, image) alone, the
// denoising loss's backward against directional derivatives of the whole UNet, accumulation
// equal to one big batch, equal seeds giving equal weights, the loss falling, a run
// directory whose metrics carry no stage-1 fields, and the moving average of the weights
// (ema.decay): its recurrence, its checkpoint array, export --ema and sample --ema.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "io/checkpoint_files.h"
#include "io/safetensors.h"
#include "core/rng.h"
#include "diffusion/denoising_loss.h"
#include "diffusion/diffusion_objective.h"
#include "model/cpu_backend.h"
#include "model/diffusion_unet.h"
#include "test_support.h"
#include "train/trainer.h"

namespace ladder {
namespace {

using testing::TempDir;

// 8 images' latents at image resolution 32 (8×8, 2 channels), written once per test program.
const std::string& latent_store() {
  static TempDir dir;
  static const std::string path = [] {
    const std::string store = dir / "latents.h5";
    testing::write_synthetic_latent_store(store, 8, {32}, 2, 11);
    return store;
  }();
  return path;
}

std::vector<std::string> unet_run(const std::string& dir, std::vector<std::string> extra) {
  std::vector<std::string> flags = {
      "--run.dir", dir, "--run.seed", "7", "--run.log_every", "1", "--run.sample_every", "0",
      "--model.kind", "diffusion_unet", "--model.in_channels", "2", "--model.channels", "8,16",
      "--model.norm_groups", "4", "--model.res_blocks", "1", "--model.attention_levels", "0,1",
      "--model.head_channels", "0,8", "--data.store", latent_store(), "--data.flip", "true",
      "--stages.resolutions", "32", "--train.batch", "8", "--train.lr", "2e-3", "--train.weight_decay", "0",
      "--diffusion.timesteps", "100", "--log.tensorboard", "false"};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

double relative_difference(const ParamStore& a, const ParamStore& b) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < b.count(); ++i) {
    const double d = static_cast<double>(a.values()[i]) - b.values()[i];
    diff += d * d;
    norm += static_cast<double>(b.values()[i]) * b.values()[i];
  }
  return std::sqrt(diff / norm);
}

// Records (n, side, side, [μ | log σ²]) with random μ and the given log σ².
std::vector<float> records(int64_t n, int side, int channels, double logvar, Rng& rng) {
  std::vector<float> out(static_cast<size_t>(n * side * side * 2 * channels));
  for (int64_t p = 0; p < n * side * side; ++p)
    for (int c = 0; c < channels; ++c) {
      out[static_cast<size_t>(p * 2 * channels + c)] = static_cast<float>(rng.normal());
      out[static_cast<size_t>(p * 2 * channels + channels + c)] = static_cast<float>(logvar);
    }
  return out;
}

DiffusionConfig diffusion(const std::string& prediction, double snr_gamma, double noise_offset) {
  DiffusionConfig config = load_config("", {}).diffusion;
  config.prediction = prediction;
  config.snr_gamma = snr_gamma;
  config.noise_offset = noise_offset;
  return config;
}

TEST(DiffusionObjective, AnImagesDrawsDependOnlyOnSeedStepAndImage) {
  Rng rng(1, 0);
  const std::vector<float> two = records(2, 4, 3, -2.0, rng);
  const DiffusionObjective objective(diffusion("epsilon", 0, 0), 0.7, 5);
  DenoisingBatch pair, alone, later;
  objective.prepare(two.data(), {2, 4, 4, 3}, {3, 9}, 12, pair);
  // Image 9 alone (its record second in `two`), at the same step: the same t, x_t and target.
  objective.prepare(two.data() + 4 * 4 * 6, {1, 4, 4, 3}, {9}, 12, alone);
  EXPECT_EQ(alone.timesteps[0], pair.timesteps[1]);
  for (int64_t e = 0; e < 48; ++e) {
    EXPECT_EQ(alone.x_t[e], pair.x_t[48 + e]);
    EXPECT_EQ(alone.target[e], pair.target[48 + e]);
  }
  // Another step draws afresh.
  objective.prepare(two.data() + 4 * 4 * 6, {1, 4, 4, 3}, {9}, 13, later);
  EXPECT_NE(later.target[0], alone.target[0]);
}

TEST(DiffusionObjective, XtIsTheForwardProcessOfTheScaledLatent) {
  // log σ² at the clamp's lower end: σ = e^−15, so z = μ · scale to float precision and
  // x_t = √ᾱ_t z + √(1 − ᾱ_t) ε with ε the epsilon target.
  Rng rng(2, 0);
  const std::vector<float> in = records(3, 4, 2, -30.0, rng);
  const double scale = 0.4;
  const DiffusionObjective objective(diffusion("epsilon", 0, 0), scale, 1);
  DenoisingBatch batch;
  objective.prepare(in.data(), {3, 4, 4, 2}, {0, 1, 2}, 4, batch);
  for (int64_t b = 0; b < 3; ++b) {
    const int t = static_cast<int>(batch.timesteps[b]);
    ASSERT_GE(t, 0);
    ASSERT_LT(t, 1000);
    EXPECT_EQ(batch.weights[b], 1.f);  // Min-SNR off
    const double a = objective.schedule().alpha_bar(t);
    for (int64_t e = 0; e < 32; ++e) {
      const double mu = in[static_cast<size_t>(b * 64 + (e / 2) * 4 + e % 2)];
      const double expected = std::sqrt(a) * mu * scale + std::sqrt(1 - a) * batch.target[b * 32 + e];
      EXPECT_NEAR(batch.x_t[b * 32 + e], expected, 1e-5) << b << " " << e;
    }
  }
  // The timesteps cover [0, T): 64 images at one step are not all in one half.
  std::vector<float> many = records(64, 1, 2, -30.0, rng);
  std::vector<int64_t> indices(64);
  for (int64_t i = 0; i < 64; ++i) indices[i] = i;
  objective.prepare(many.data(), {64, 1, 1, 2}, indices, 4, batch);
  int low = 0;
  for (float t : batch.timesteps) low += t < 500;
  EXPECT_GT(low, 16);
  EXPECT_LT(low, 48);
}

TEST(DiffusionObjective, TargetsWeightsAndOffsetNoise) {
  Rng rng(3, 0);
  const std::vector<float> in = records(4, 4, 2, -1.0, rng);
  const std::vector<int64_t> indices = {0, 1, 2, 3};
  DenoisingBatch eps, v, offset;
  DiffusionObjective(diffusion("epsilon", 5, 0), 1.0, 2).prepare(in.data(), {4, 4, 4, 2}, indices, 7, eps);
  const DiffusionObjective v_objective(diffusion("v_prediction", 5, 0), 1.0, 2);
  v_objective.prepare(in.data(), {4, 4, 4, 2}, indices, 7, v);
  DiffusionObjective(diffusion("epsilon", 5, 0.3), 1.0, 2).prepare(in.data(), {4, 4, 4, 2}, indices, 7, offset);
  for (int64_t b = 0; b < 4; ++b) {
    const int t = static_cast<int>(eps.timesteps[b]);
    EXPECT_EQ(v.timesteps[b], eps.timesteps[b]);  // the same draws, another target
    EXPECT_FLOAT_EQ(eps.weights[b], static_cast<float>(min_snr_weight(v_objective.schedule(),
                                                                      Prediction::kEpsilon, t, 5)));
    EXPECT_FLOAT_EQ(v.weights[b], static_cast<float>(min_snr_weight(v_objective.schedule(),
                                                                    Prediction::kVelocity, t, 5)));
    // v = √ᾱ ε − √(1−ᾱ) z and x_t = √ᾱ z + √(1−ᾱ) ε give ε = √ᾱ v + √(1−ᾱ) x_t.
    const double a = v_objective.schedule().alpha_bar(t);
    for (int64_t e = 0; e < 32; ++e)
      EXPECT_NEAR(eps.target[b * 32 + e], std::sqrt(a) * v.target[b * 32 + e] + std::sqrt(1 - a) * v.x_t[b * 32 + e],
                  1e-5);
    // Offset noise adds one value per image and channel to ε, and nothing else.
    for (int c = 0; c < 2; ++c) {
      const double shift = offset.target[b * 32 + c] - eps.target[b * 32 + c];
      EXPECT_GT(std::abs(shift), 1e-6);
      for (int64_t p = 1; p < 16; ++p)
        EXPECT_NEAR(offset.target[b * 32 + p * 2 + c] - eps.target[b * 32 + p * 2 + c], shift, 1e-5);
    }
  }
}

TEST(DenoisingLoss, BackwardMatchesDirectionalDerivatives) {
  // The whole UNet with Min-SNR-like weights: ∂(Σ_i w_i mean (y − target)²)/∂θ along a random
  // direction against (L(θ+hd) − L(θ−hd)) / 2h.
  ParamStore store;
  CpuBackend backend;
  const ModelConfig model =
      load_config("", {"--model.in_channels", "2", "--model.channels", "8,16", "--model.norm_groups", "4",
                       "--model.res_blocks", "1", "--model.attention_levels", "0,1", "--model.head_channels", "0,8"})
          .model;
  DiffusionUNet<CpuBackend> unet(model, store, backend);
  store.allocate();
  store.initialize(3);
  Rng rng(8, 0);
  for (int64_t i = 0; i < store.count(); ++i) store.values()[i] += static_cast<float>(0.05 * rng.normal());
  TensorF x({2, 4, 4, 2}), target({2, 4, 4, 2}), grad;
  for (int64_t i = 0; i < x.numel(); ++i) {
    x[i] = static_cast<float>(rng.normal());
    target[i] = static_cast<float>(rng.normal());
  }
  const std::vector<float> timesteps = {5.f, 600.f}, weights = {0.3f, 1.7f};
  store.zero_grads();
  denoising_step(backend, unet, x, target, timesteps, weights, 1.0, grad);
  std::vector<float> direction(static_cast<size_t>(store.count()));
  double analytic = 0;
  for (int64_t i = 0; i < store.count(); ++i) {
    direction[i] = static_cast<float>(rng.normal());
    analytic += double(store.grads()[i]) * direction[i];
  }
  auto loss = [&]() {
    const TensorF& y = unet.forward(x, timesteps);
    double sum = 0;
    for (int64_t b = 0; b < 2; ++b) {
      double squares = 0;
      for (int64_t e = 0; e < 32; ++e) squares += std::pow(double(y[b * 32 + e]) - target[b * 32 + e], 2);
      sum += weights[b] * squares / 32;
    }
    return sum;
  };
  const float h = 1e-3f;
  const std::vector<float> original(store.values(), store.values() + store.count());
  for (int64_t i = 0; i < store.count(); ++i) store.values()[i] = original[i] + h * direction[i];
  const double plus = loss();
  for (int64_t i = 0; i < store.count(); ++i) store.values()[i] = original[i] - h * direction[i];
  const double minus = loss();
  EXPECT_NEAR(analytic, (plus - minus) / (2 * h), 0.01 * std::abs(analytic));
  EXPECT_GT(std::abs(analytic), 1e-3);
}

TEST(DiffusionTraining, AccumulatedMicroBatchesEqualOneBatch) {
  TempDir dir;
  const Config whole = load_config("", unet_run(dir / "a", {"--stages.images", "40", "--train.micro_batch", "8",
                                                            "--diffusion.snr_gamma", "5"}));
  const Config split = load_config("", unet_run(dir / "b", {"--stages.images", "40", "--train.micro_batch", "2",
                                                            "--diffusion.snr_gamma", "5"}));
  Trainer a(whole), b(split);
  EXPECT_EQ(a.run().steps, 5);
  EXPECT_EQ(b.run().steps, 5);
  EXPECT_LT(relative_difference(b.params(), a.params()), 1e-5);
  ParamStore fresh;  // and the runs moved the weights
  CpuBackend backend;
  DiffusionUNet<CpuBackend> model(whole.model, fresh, backend);
  fresh.allocate();
  fresh.initialize(whole.run.seed);
  EXPECT_GT(relative_difference(fresh, a.params()), 1e-3);
}

TEST(DiffusionTraining, SameSeedGivesIdenticalWeightsAndAnotherSeedDoesNot) {
  TempDir dir;
  auto run = [&](const std::string& name, const std::string& seed) {
    Trainer trainer(load_config("", unet_run(dir / name, {"--stages.images", "24", "--run.seed", seed})));
    trainer.run();
    const ParamStore& p = trainer.params();
    return std::vector<float>(p.values(), p.values() + p.count());
  };
  const std::vector<float> a = run("a", "7"), b = run("b", "7"), c = run("c", "8");
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
}

TEST(DiffusionTraining, LossFallsAndMetricsHoldNoAutoencoderFields) {
  TempDir dir;
  Trainer trainer(load_config("", unet_run(dir / "run", {"--stages.images", "1600", "--train.lr", "3e-3",
                                                         "--train.warmup_images", "80"})));
  const TrainSummary summary = trainer.run();
  EXPECT_EQ(summary.steps, 200);
  EXPECT_TRUE(summary.last_terms.empty());
  // ε-prediction from a zero-initialised output starts at E[ε²] ≈ 1; averaged over the noisy
  // per-step losses (random t), the last 40 steps must be well below the first 10.
  std::ifstream metrics(trainer.metrics_path());
  std::vector<double> losses;
  std::string line;
  while (std::getline(metrics, line)) {
    EXPECT_EQ(line.find("rec_loss"), std::string::npos) << line;
    const size_t at = line.find("\"loss\": ");
    ASSERT_NE(at, std::string::npos) << line;
    losses.push_back(std::atof(line.c_str() + at + 8));
  }
  ASSERT_EQ(losses.size(), 200u);
  double first = 0, last = 0;
  for (int i = 0; i < 10; ++i) first += losses[i] / 10;
  for (int i = 160; i < 200; ++i) last += losses[i] / 40;
  EXPECT_GT(first, 0.7);
  EXPECT_LT(last, 0.6 * first) << "first 10 steps " << first << ", last 40 " << last;
}

TEST(DiffusionTraining, TheMovingAverageFollowsItsRecurrenceAndExports) {
  TempDir dir;
  const std::string run = dir / "run";
  Trainer trainer(load_config("", unet_run(run, {"--stages.images", "24", "--ema.decay", "0.9",
                                                "--checkpoint.every", "1", "--checkpoint.keep", "5"})));
  trainer.run();
  const int64_t count = trainer.params().count();
  auto read = [&](int64_t step, const std::string& array) {
    const std::string step_dir = run + "/checkpoints/step-0000000" + std::to_string(step);
    const io::Manifest manifest = io::verify_checkpoint(step_dir);
    EXPECT_TRUE(io::has_ema(manifest));
    std::vector<float> values(static_cast<size_t>(count));
    io::read_checkpoint_ranges(step_dir, manifest, array, {Range{0, count}}, values.data());
    return values;
  };
  // ema_0 = w_0 (the initialisation), ema_k = 0.9 ema_{k−1} + 0.1 w_k, in float as the trainer does.
  ParamStore fresh;
  CpuBackend backend;
  DiffusionUNet<CpuBackend> model(load_config("", unet_run(run, {})).model, fresh, backend);
  fresh.allocate();
  fresh.initialize(7);
  std::vector<float> expected(fresh.values(), fresh.values() + count);
  for (int64_t step = 1; step <= 3; ++step) {
    const std::vector<float> master = read(step, "master");
    for (int64_t i = 0; i < count; ++i) expected[i] += 0.1f * (master[i] - expected[i]);
  }
  const std::vector<float> ema = read(3, "ema"), master = read(3, "master");
  double worst = 0, apart = 0;
  for (int64_t i = 0; i < count; ++i) {
    worst = std::max(worst, double(std::abs(ema[i] - expected[i])));
    apart = std::max(apart, double(std::abs(ema[i] - master[i])));
  }
  EXPECT_LT(worst, 1e-6);
  EXPECT_GT(apart, 1e-4);  // the average is not the weights
  // export --ema writes the average (a bias: the same layout in both), sample --ema runs on it.
  const std::string step_dir = run + "/checkpoints/step-00000003";
  const testing::CommandResult exported =
      testing::run_ladder("export --ema --checkpoint " + step_dir + " --out " + (dir / "ema.safetensors"));
  ASSERT_EQ(exported.exit_code, 0) << exported.output;
  const io::SafetensorsHeader file = io::read_safetensors_header(dir / "ema.safetensors");
  EXPECT_EQ(file.metadata.at("weights"), "ema");
  const ParamEntry* bias = nullptr;
  for (const ParamEntry& entry : fresh.entries())
    if (entry.name == "out.2.conv.bias") bias = &entry;
  ASSERT_NE(bias, nullptr);
  const std::vector<float> exported_bias = testing::safetensor_floats(file, "out.2.conv.bias");
  for (int64_t i = 0; i < bias->numel; ++i) EXPECT_EQ(exported_bias[i], ema[bias->offset + i]);
  const testing::CommandResult sampled = testing::run_ladder(
      "sample --ema --checkpoint " + step_dir + " --latent-resolution 8 --count 2 --steps 5 --save-latents " +
      (dir / "s.h5"));
  EXPECT_EQ(sampled.exit_code, 0) << sampled.output;
}

TEST(DiffusionTraining, WithoutAnAverageEmaFlagsAreRefused) {
  TempDir dir;
  const std::string run = dir / "run";
  Trainer(load_config("", unet_run(run, {"--stages.images", "8"}))).run();
  const std::string step_dir = run + "/checkpoints/step-00000001";
  const testing::CommandResult exported =
      testing::run_ladder("export --ema --checkpoint " + step_dir + " --out " + (dir / "x.safetensors"));
  EXPECT_EQ(exported.exit_code, 2) << exported.output;
  EXPECT_NE(exported.output.find("no moving average"), std::string::npos) << exported.output;
  EXPECT_FALSE(std::filesystem::exists(dir / "x.safetensors"));
  const testing::CommandResult sampled = testing::run_ladder(
      "sample --ema --checkpoint " + step_dir + " --latent-resolution 8 --count 1 --steps 2 --save-latents " +
      (dir / "s.h5"));
  EXPECT_EQ(sampled.exit_code, 2) << sampled.output;
  EXPECT_NE(sampled.output.find("no moving average"), std::string::npos) << sampled.output;
}

TEST(DiffusionTraining, ValidatesOnAnotherLatentStoreAndRefusesAnImageStore) {
  TempDir dir;
  Trainer trainer(load_config("", unet_run(dir / "run", {"--stages.images", "80", "--data.val_store", latent_store(),
                                                         "--run.val_every", "5"})));
  const TrainSummary summary = trainer.run();
  ASSERT_EQ(summary.last_validation.count("val_loss"), 1u);
  const double last = summary.last_validation.at("val_loss");
  EXPECT_TRUE(std::isfinite(last) && last > 0 && last < 2) << last;
  std::ifstream metrics(trainer.metrics_path());
  std::vector<double> values;
  for (std::string line; std::getline(metrics, line);)
    if (line.find("\"val_loss\": ") != std::string::npos)
      values.push_back(std::stod(line.substr(line.find("\"val_loss\": ") + 12)));
  ASSERT_EQ(values.size(), 2u);  // steps 5 and 10
  EXPECT_NEAR(values.back(), last, 1e-8 * last);  // metrics.jsonl prints 9 digits
  EXPECT_NE(values.front(), values.back());  // the weights moved between the two
  const std::string message = testing::error_message([&] {
    Trainer(load_config("", unet_run(dir / "bad", {"--data.val_store", testing::small_synthetic_store()})));
  });
  EXPECT_NE(message.find("not a latent store"), std::string::npos) << message;
}

TEST(DiffusionTraining, AnImageStoreIsRefusedNamingIt) {
  TempDir dir;
  const std::vector<std::string> flags =
      unet_run(dir / "run", {"--data.store", testing::small_synthetic_store(), "--stages.images", "8"});
  const std::string message = testing::error_message([&] { Trainer trainer(load_config("", flags)); });
  EXPECT_NE(message.find(testing::small_synthetic_store()), std::string::npos) << message;
  EXPECT_NE(message.find("not a latent store"), std::string::npos) << message;
}

}  // namespace
}  // namespace ladder
