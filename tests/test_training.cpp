// Why this file exists: the trainer's end-to-end properties on the CPU (issue #2 acceptance):
// the model's backward agrees with finite differences, it overfits 8 images, accumulation
// equals one big batch, and equal seeds give equal bytes.
#include <gtest/gtest.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "config/config.h"
#include "core/check.h"
#include "core/rng.h"
#include "data/synthetic_images.h"
#include "model/autoencoder_critics.h"
#include "model/autoencoder_kl.h"
#include "model/cpu_backend.h"
#include "io/checkpoint_files.h"
#include "io/image_store.h"
#include "train/compute_device.h"
#include "test_support.h"
#include "train/trainer.h"

namespace ladder {
namespace {

using testing::TempDir;

// A store of 8 synthetic 32×32 images, packed once for the whole test program.
const std::string& small_store() { return testing::small_synthetic_store(); }

// A small autoencoder on those images.
std::vector<std::string> small_run(const std::string& dir, std::vector<std::string> extra) {
  std::vector<std::string> flags = {
      "--run.dir", dir, "--run.seed", "7", "--run.log_every", "1", "--run.sample_every", "0",
      "--model.channels", "16,32", "--model.norm_groups", "8", "--model.res_blocks", "1",
      "--model.latent_channels", "4", "--data.store", small_store(), "--data.flip", "false",
      "--stages.resolutions", "32", "--train.batch", "8", "--train.lr", "2e-3",
      "--train.weight_decay", "0"};
  flags.insert(flags.end(), extra.begin(), extra.end());
  return flags;
}

double relative_difference(const ParamStore& a, const ParamStore& b) {
  double diff = 0, norm = 0;
  for (int64_t i = 0; i < b.count(); ++i) {
    double d = static_cast<double>(a.values()[i]) - b.values()[i];
    diff += d * d;
    norm += static_cast<double>(b.values()[i]) * b.values()[i];
  }
  return std::sqrt(diff / norm);
}

TEST(Training, ModelGradientMatchesFiniteDifferences) {
  // Directional derivative of the whole loss (attention and mid block included) along a
  // random direction: analytic g·d against (L(θ+hd) − L(θ−hd)) / 2h.
  Config c = load_config("", {"--model.channels", "8,16", "--model.norm_groups", "4",
                              "--model.attention_levels", "0,1", "--model.mid_attention", "true",
                              "--model.latent_channels", "2", "--stages.resolutions", "8"});
  ParamStore store;
  CpuBackend backend;
  AutoencoderKL<CpuBackend> model(c.model, store, backend);
  store.allocate();
  store.initialize(3);
  Rng rng(11, 0);
  TensorF images({2, 8, 8, 3});
  for (int64_t i = 0; i < images.numel(); ++i) images[i] = static_cast<float>(rng.uniform(-1, 1));
  TensorF noise(model.latent_shape(images.shape()));
  for (int64_t i = 0; i < noise.numel(); ++i) noise[i] = static_cast<float>(rng.normal());
  const double kl_weight = 0.05;  // large enough that the KL path matters
  auto loss = [&]() {
    AutoencoderLossSums s = model.forward_backward(images, noise, 0.0, kl_weight);
    return (s.reconstruction + kl_weight * s.kl) / 2.0;
  };
  store.zero_grads();
  model.forward_backward(images, noise, 0.5, kl_weight);  // grad_scale = 1 / 2 images
  std::vector<float> direction(store.count());
  double analytic = 0;
  for (int64_t i = 0; i < store.count(); ++i) {
    direction[i] = static_cast<float>(rng.normal());
    analytic += static_cast<double>(store.grads()[i]) * direction[i];
  }
  const float h = 1e-3f;
  std::vector<float> original(store.values(), store.values() + store.count());
  for (int64_t i = 0; i < store.count(); ++i) store.values()[i] = original[i] + h * direction[i];
  double plus = loss();
  for (int64_t i = 0; i < store.count(); ++i) store.values()[i] = original[i] - h * direction[i];
  double minus = loss();
  double numeric = (plus - minus) / (2.0 * h);
  EXPECT_NEAR(analytic, numeric, 0.03 * std::abs(numeric)) << "analytic " << analytic;
}

TEST(Training, OverfitsEightImages) {
  TempDir dir;
  Config c = load_config("", small_run(dir / "run", {"--stages.images", "2400"}));  // 300 steps
  Trainer trainer(c);
  TrainSummary s = trainer.run();
  EXPECT_EQ(s.steps, 300);
  EXPECT_LT(s.last_terms.at("rec_loss"), 0.25 * s.first_terms.at("rec_loss"))
      << "rec L1 " << s.first_terms.at("rec_loss") << " -> " << s.last_terms.at("rec_loss");
  EXPECT_GT(s.last_report.quality, s.first_report.quality + 3.0);
}

TEST(Training, AccumulatedMicroBatchesEqualOneBatch) {
  TempDir dir;
  Config whole = load_config("", small_run(dir / "a", {"--stages.images", "40",
                                                       "--train.micro_batch", "8"}));
  Config split = load_config("", small_run(dir / "b", {"--stages.images", "40",
                                                       "--train.micro_batch", "2"}));
  Trainer a(whole), b(split);
  EXPECT_EQ(a.run().steps, 5);
  EXPECT_EQ(b.run().steps, 5);
  EXPECT_LT(relative_difference(b.params(), a.params()), 1e-5);
  // and the runs did move the weights (the comparison is not between two initialisations)
  ParamStore fresh;
  CpuBackend backend;
  AutoencoderKL<CpuBackend> model(whole.model, fresh, backend);
  fresh.allocate();
  fresh.initialize(whole.run.seed);
  EXPECT_GT(relative_difference(fresh, a.params()), 1e-3);
}

TEST(Training, SameSeedGivesIdenticalMetricsAndWeights) {
  TempDir dir;
  auto losses = [](const std::string& metrics) {
    std::string kept;
    std::istringstream lines(metrics);
    for (std::string line; std::getline(lines, line);) {
      size_t from = line.find("\"loss\"");
      size_t to = line.find("\"lr\"");
      kept += line.substr(from, to - from) + "\n";
    }
    return kept;
  };
  Config first = load_config("", small_run(dir / "a", {"--stages.images", "48", "--data.flip", "true"}));
  Config second = load_config("", small_run(dir / "b", {"--stages.images", "48", "--data.flip", "true"}));
  Trainer a(first), b(second);
  a.run();
  b.run();
  std::string la = losses(testing::read_file(a.metrics_path()));
  EXPECT_EQ(std::count(la.begin(), la.end(), '\n'), 6);
  EXPECT_EQ(la, losses(testing::read_file(b.metrics_path())));
  EXPECT_EQ(0, std::memcmp(a.params().values(), b.params().values(),
                           sizeof(float) * a.params().count()));
  // a different seed gives a different run
  Config other = load_config("", small_run(dir / "c", {"--stages.images", "48", "--run.seed", "8"}));
  Trainer c(other);
  c.run();
  EXPECT_NE(la, losses(testing::read_file(c.metrics_path())));
}

TEST(Training, TrainsFromAnH5pyStyleDataset) {
  // One (N, H, W, C) uint8 dataset, no attributes, written with the plain HDF5 C API as h5py
  // users do; rung 16 is box-filtered from the stored 32×32 images on load.
  TempDir dir;
  const std::string path = dir / "foreign.h5";
  const hsize_t dims[4] = {8, 32, 32, 3};
  std::vector<uint8_t> pixels(8 * 32 * 32 * 3);
  for (int i = 0; i < 8; ++i) data::render_synthetic_image(3, i, 32, 3, pixels.data() + i * 32 * 32 * 3);
  hid_t file = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  hid_t space = H5Screate_simple(4, dims, nullptr);
  hid_t dataset = H5Dcreate2(file, "train_images", H5T_STD_U8LE, space, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT);
  ASSERT_GE(H5Dwrite(dataset, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, pixels.data()), 0);
  H5Dclose(dataset);
  H5Sclose(space);
  H5Fclose(file);

  std::vector<std::string> flags = small_run(dir / "run", {"--stages.resolutions", "16,32",
                                                           "--stages.images", "16"});
  flags.insert(flags.end(), {"--data.store", path, "--data.dataset", "train_images"});
  Trainer trainer(load_config("", flags));
  TrainSummary summary = trainer.run();
  EXPECT_EQ(summary.steps, 4);  // 2 steps per rung
  EXPECT_TRUE(std::isfinite(summary.last_loss));
  EXPECT_NE(testing::read_file(trainer.metrics_path()).find("\"resolution\": 16"), std::string::npos);
  // a wrong dataset name is a clear error naming it
  flags.push_back("--data.dataset");
  flags.push_back("nope");
  flags.push_back("--run.dir");
  flags.push_back(dir / "run2");
  try {
    Trainer again(load_config("", flags));
    FAIL() << "no error for a missing dataset";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("nope"), std::string::npos) << e.what();
  }
}

TEST(Training, RecomputeGivesTheSameWeightsWithLessMemory) {
  // train.recompute = blocks runs each ResBlock's inside twice (forward, then again in the
  // backward) instead of keeping it: the same ops on the same inputs, so the same bits, and a
  // lower peak of host memory.
  TempDir dir;
  auto run = [&](const std::string& name, const std::string& recompute, std::vector<float>& weights) {
    Trainer trainer(load_config("", small_run(dir / name, {"--stages.images", "24",
                                                           "--train.recompute", recompute})));
    trainer.run();
    weights.assign(trainer.params().values(), trainer.params().values() + trainer.params().count());
    const std::string metrics = testing::read_file(trainer.metrics_path());
    const size_t at = metrics.rfind("\"mem_peak_bytes\": ") + 18;
    return std::stoll(metrics.substr(at));
  };
  std::vector<float> kept, recomputed;
  const int64_t peak_kept = run("kept", "none", kept);
  const int64_t peak_recomputed = run("recomputed", "blocks", recomputed);
  EXPECT_EQ(0, std::memcmp(kept.data(), recomputed.data(), kept.size() * sizeof(float)));
  EXPECT_LT(peak_recomputed, peak_kept * 0.9) << peak_recomputed << " vs " << peak_kept;
}

TEST(Training, ValidationHoldsOutTheLastImagesAndMeasuresTheirReconstructions) {
  TempDir dir;
  const Config config = load_config("", small_run(dir / "run", {"--stages.images", "36", "--train.batch", "6",
                                                                "--data.val_images", "2", "--run.val_every", "2",
                                                                "--run.log_every", "100"}));
  Trainer trainer(config);
  const TrainSummary summary = trainer.run();
  EXPECT_EQ(summary.steps, 6);
  // Lines at steps 2, 4 and 6 (the last) carry val_l1 and val_psnr; log_every 100 writes no other.
  std::ifstream metrics(trainer.metrics_path());
  std::vector<int64_t> steps;
  double last_l1 = 0;
  for (std::string line; std::getline(metrics, line);) {
    steps.push_back(std::stoll(line.substr(line.find("\"step\": ") + 8)));
    ASSERT_NE(line.find("\"val_psnr\": "), std::string::npos) << line;
    last_l1 = std::stod(line.substr(line.find("\"val_l1\": ") + 10));
  }
  EXPECT_EQ(steps, (std::vector<int64_t>{2, 4, 6}));
  // The held-out images 6 and 7 through the final weights, computed here.
  ParamStore params;
  std::unique_ptr<AutoencoderDevice> device = make_autoencoder_device(config, params, 0);
  params.allocate();
  std::copy_n(trainer.params().values(), params.padded_count(), params.values());
  device->attach_parameters(params);
  const data::ImageShard held_out = io::ImageStoreReader(small_store()).load_shard(32, 0, 1, {6, 8});
  ASSERT_EQ(held_out.indices, (std::vector<int64_t>{6, 7}));
  TensorF images, reconstruction;
  data::images_to_tensor(held_out, 0, 2, images);
  device->reconstruct(images, reconstruction);
  double l1 = 0, squared = 0;
  for (int64_t i = 0; i < images.numel(); ++i) {
    l1 += std::abs(double(reconstruction[i]) - images[i]) / images.numel();
    squared += std::pow(double(reconstruction[i]) - images[i], 2) / images.numel();
  }
  EXPECT_NEAR(last_l1, l1, 1e-6 * l1);
  EXPECT_NEAR(summary.last_validation.at("val_psnr"), 10 * std::log10(4 / squared), 1e-4);
  // Too few images left to train is a config error naming the key.
  const std::string message = testing::error_message([&] {
    Trainer(load_config("", small_run(dir / "bad", {"--data.val_images", "8"})));
  });
  EXPECT_NE(message.find("data.val_images"), std::string::npos) << message;
}

TEST(Training, RunDirectoryHoldsConfigMetricsAndSamples) {
  TempDir dir;
  Config c = load_config("", small_run(dir / "run", {"--stages.images", "32",
                                                     "--run.sample_every", "2"}));
  Trainer trainer(c);
  trainer.run();
  EXPECT_EQ(testing::read_file(dir / "run/config.ini"), c.to_ini());
  std::string metrics = testing::read_file(trainer.metrics_path());
  for (const char* field : {"\"step\"", "\"stage\"", "\"resolution\"", "\"images_seen\"",
                            "\"loss\"", "\"rec_loss\"", "\"kl_loss\"", "\"lr\"", "\"grad_norm\"",
                            "\"img_per_s\"", "\"data_wait_frac\"", "\"mem_peak_bytes\"",
                            "\"skipped_steps\"", "\"time_s\""})
    EXPECT_NE(metrics.find(field), std::string::npos) << field;
  for (const char* sample : {"step-00000000-r32.png", "step-00000002-r32.png", "step-00000004-r32.png"})
    EXPECT_TRUE(std::filesystem::exists(dir.path() / "run/samples" / sample)) << sample;
  // a second run into the same directory is refused rather than mixed in
  EXPECT_THROW(Trainer again(c), UsageError);
}

// Stage 1 with the PatchGAN loss after step 2: the discriminator (the flat buffer's second
// optimizer group) learns from step 3 on, the terms are logged, and its weights go where they
// belong: `export` writes the autoencoder without them and, with --discriminator, them alone
// under MONAI's PatchDiscriminator names; train.init_from takes an autoencoder with or without
// a discriminator on either side.
TEST(Training, AdversarialRunTrainsItsDiscriminatorAndExportsBothModels) {
  TempDir dir;
  const std::vector<std::string> adversarial = {"--adversarial.weight", "0.1", "--adversarial.start_step", "2",
                                                "--adversarial.layers", "2", "--adversarial.channels", "8",
                                                "--stages.images", "48"};  // 6 steps of 8
  Trainer trainer(load_config("", small_run(dir / "adv", adversarial)));
  const int64_t boundary = discriminator_offset(trainer.params());
  const int64_t count = trainer.params().count();
  ASSERT_LT(boundary, count);
  const std::vector<float> fresh(trainer.params().values(), trainer.params().values() + count);
  const TrainSummary s = trainer.run();
  EXPECT_EQ(s.steps, 6);
  EXPECT_EQ(s.first_terms.at("d_loss"), 0.0);  // before adversarial.start_step
  EXPECT_GT(s.last_terms.at("d_loss"), 0.0);
  EXPECT_GT(s.last_terms.at("g_adv_loss"), 0.0);
  EXPECT_TRUE(std::isfinite(s.last_loss));
  const std::vector<float> trained(trainer.params().values(), trainer.params().values() + count);
  double moved = 0;
  for (int64_t i = boundary; i < count; ++i) moved = std::max(moved, double(std::abs(trained[i] - fresh[i])));
  EXPECT_GT(moved, 1e-4) << "the discriminator did not learn";

  const std::string checkpoint = dir / "adv/checkpoints/step-00000006";
  ASSERT_EQ(testing::run_ladder("export --checkpoint " + checkpoint + " --out " + (dir / "ae.safetensors")).exit_code, 0);
  const testing::CommandResult d = testing::run_ladder("export --checkpoint " + checkpoint + " --out " +
                                                       (dir / "d.safetensors") + " --discriminator");
  ASSERT_EQ(d.exit_code, 0) << d.output;
  int64_t autoencoder_numel = 0, discriminator_numel = 0;
  for (const io::SafetensorEntry& e : io::read_safetensors_header(dir / "ae.safetensors").tensors) {
    EXPECT_NE(e.name.rfind(kDiscriminatorPrefix, 0), 0u) << e.name;
    int64_t n = 1;
    for (int64_t size : e.shape) n *= size;
    autoencoder_numel += n;
  }
  std::vector<std::string> names;
  int buffers = 0;
  for (const io::SafetensorEntry& e : io::read_safetensors_header(dir / "d.safetensors").tensors) {
    names.push_back(e.name);
    const auto ends_with = [&](const std::string& tail) {
      return e.name.size() > tail.size() && e.name.compare(e.name.size() - tail.size(), tail.size(), tail) == 0;
    };
    if (ends_with(".running_mean") || ends_with(".running_var") || ends_with(".num_batches_tracked")) {
      ++buffers;  // BatchNorm buffers, the checkpoint's
      continue;
    }
    int64_t n = 1;
    for (int64_t size : e.shape) n *= size;
    discriminator_numel += n;
  }
  EXPECT_EQ(buffers, 3 * 2);  // two BatchNorm layers
  // The running statistics are the trained ones: three training-mode forwards (the generator's
  // term, the fake and the real pass) in each of the 4 steps from step 3, one micro-batch each.
  const io::SafetensorsHeader exported = io::read_safetensors_header(dir / "d.safetensors");
  EXPECT_EQ(exported.metadata.at("batch_norm_running_statistics"), "checkpoint");
  for (const char* layer : {"0.adn.N", "1.adn.N"}) {
    for (const io::SafetensorEntry& e : exported.tensors)
      if (e.name == std::string(layer) + ".num_batches_tracked") {
        const std::vector<uint8_t> bytes = io::read_safetensors_tensor(exported, e);
        int64_t tracked = 0;
        ASSERT_EQ(bytes.size(), sizeof tracked);
        std::memcpy(&tracked, bytes.data(), sizeof tracked);
        EXPECT_EQ(tracked, 3 * 4) << layer;
      }
    const std::vector<float> mean = testing::safetensor_floats(exported, std::string(layer) + ".running_mean");
    const std::vector<float> var = testing::safetensor_floats(exported, std::string(layer) + ".running_var");
    ASSERT_FALSE(mean.empty());
    double moved = 0;
    for (size_t c = 0; c < mean.size(); ++c) {
      ASSERT_TRUE(std::isfinite(mean[c]) && var[c] > 0) << layer << " channel " << c;
      moved = std::max({moved, std::abs(double(mean[c])), std::abs(var[c] - 1.0)});
    }
    EXPECT_GT(moved, 1e-3) << layer << ": the running statistics are still at their reset values";
  }
  EXPECT_EQ(autoencoder_numel, boundary);
  EXPECT_EQ(discriminator_numel, count - boundary);
  for (const char* name : {"initial_conv.conv.weight", "0.conv.weight", "0.adn.N.weight", "1.adn.N.bias", "final_conv.conv.bias"})
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
  // Warm starts: the checkpoint (with a discriminator) into a run without one, and the
  // exported autoencoder (without) into a run with one, whose discriminator starts fresh.
  Trainer plain(load_config("", small_run(dir / "plain", {"--train.init_from", checkpoint, "--stages.images", "8"})));
  ASSERT_EQ(plain.params().count(), boundary);
  for (int64_t i = 0; i < boundary; ++i) ASSERT_EQ(plain.params().values()[i], trained[i]) << i;
  plain.run();
  const testing::CommandResult none = testing::run_ladder("export --checkpoint " + (dir / "plain/checkpoints/step-00000001") +
                                                          " --out " + (dir / "x.safetensors") + " --discriminator");
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_NE(none.output.find("holds no discriminator"), std::string::npos) << none.output;
  // A checkpoint written before ladder kept the running statistics (its manifest without
  // `buffers`) still exports, with them reset and a warning, and still resumes.
  const std::string old = dir / "old-step", old_manifest = old + "/" + io::kManifestFile;
  std::filesystem::copy(checkpoint, old, std::filesystem::copy_options::recursive);
  io::Manifest stripped = io::read_manifest(old_manifest);
  stripped.buffers.clear();
  {
    std::ofstream out(old_manifest, std::ios::trunc);
    out << io::manifest_to_json(stripped);
  }
  const testing::CommandResult reset = testing::run_ladder("export --checkpoint " + old + " --out " +
                                                           (dir / "old.safetensors") + " --discriminator");
  ASSERT_EQ(reset.exit_code, 0) << reset.output;
  EXPECT_NE(reset.output.find("holds no BatchNorm running statistics"), std::string::npos) << reset.output;
  const io::SafetensorsHeader old_export = io::read_safetensors_header(dir / "old.safetensors");
  EXPECT_EQ(old_export.metadata.at("batch_norm_running_statistics"), "reset");
  for (float v : testing::safetensor_floats(old_export, "0.adn.N.running_var")) EXPECT_EQ(v, 1.0f);
  TrainOptions resume_old;
  resume_old.resume = old;
  std::vector<std::string> longer = adversarial;
  longer.back() = "56";  // one step more than the checkpoint's 6
  Trainer continued(load_config("", small_run(dir / "old-run", longer)), nullptr, resume_old);
  EXPECT_EQ(continued.run().steps_this_run, 1);

  // The checkpoint into a run with the same discriminator: its weights and running statistics.
  std::vector<std::string> warm_flags = adversarial;
  warm_flags.insert(warm_flags.end(), {"--train.init_from", checkpoint});
  Trainer warm(load_config("", small_run(dir / "warm", warm_flags)));
  for (int64_t i = 0; i < count; ++i) ASSERT_EQ(warm.params().values()[i], trained[i]) << i;
  const std::vector<ModelBuffer> saved = io::verify_checkpoint(checkpoint).buffers, loaded = warm.device().buffers();
  ASSERT_EQ(loaded.size(), saved.size());
  for (size_t b = 0; b < saved.size(); ++b) EXPECT_EQ(loaded[b].values, saved[b].values) << saved[b].name;
  std::vector<std::string> again_flags = adversarial;
  again_flags.insert(again_flags.end(), {"--train.init_from", dir / "ae.safetensors"});
  Trainer again(load_config("", small_run(dir / "again", again_flags)));
  ASSERT_EQ(again.params().count(), count);
  for (int64_t i = 0; i < boundary; ++i) ASSERT_EQ(again.params().values()[i], trained[i]) << i;
  for (int64_t i = boundary; i < count; ++i) ASSERT_EQ(again.params().values()[i], fresh[i]) << i;
}

}  // namespace
}  // namespace ladder
