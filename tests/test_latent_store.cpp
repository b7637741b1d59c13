// Why this file exists: `ladder encode` and the latent store (BRIEF §5 "HDF5 latent store"):
// μ and log σ² equal the autoencoder's own encoding, the same bits on 2 ranks as on 1, scale_factor
// is 1 / std of the sampled latents of the top level, a rank's share holds images
// i ≡ rank (mod world), and a flipped byte is a checksum error naming the image; inspect
// validates the store; `ladder sample` decodes a UNet's samples with it.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "config/config.h"
#include "core/rng.h"
#include "data/image_shard.h"
#include "io/hdf5.h"
#include "io/image_store.h"
#include "io/latent_store.h"
#include "io/safetensors.h"
#include "model/cpu_backend.h"
#include "model/diffusion_unet.h"
#include "model/torch_layout.h"
#include "test_support.h"
#include "train/compute_device.h"
#include "train/resume.h"

namespace ladder {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// part 0: μ, 1: log σ², (count, side, side, latent), from a shard's [μ | log σ²] records.
std::vector<float> part_of(const data::ImageShard& records, int part) {
  const int channels = records.channels / 2;
  const auto* values = reinterpret_cast<const float*>(records.pixels.data());
  const int64_t pixels = records.count() * records.resolution * records.resolution;
  std::vector<float> out(static_cast<size_t>(pixels * channels));
  for (int64_t p = 0; p < pixels; ++p)
    std::copy_n(values + p * 2 * channels + part * channels, channels, out.data() + p * channels);
  return out;
}

class LatentStore : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    const testing::CommandResult train = testing::run_ladder(
        "train --config /dev/null --run.dir " + (*dir_ / "ae") + " --run.device cpu --run.sample_every 0"
        " --model.channels 8,16 --model.norm_groups 4 --model.res_blocks 1 --model.latent_channels 2"
        " --data.store " + testing::small_synthetic_store() + " --stages.resolutions 32 --stages.images 8"
        " --train.batch 4");
    ASSERT_EQ(train.exit_code, 0) << train.output;
    const testing::CommandResult packed = testing::run_ladder(
        "pack --synthetic 7 --out " + (*dir_ / "s.h5") + " --levels 16,32 --seed 2");
    ASSERT_EQ(packed.exit_code, 0) << packed.output;
    const testing::CommandResult encoded = testing::run_ladder(
        "encode --checkpoint " + checkpoint() + " --store " + (*dir_ / "s.h5") + " --out " + (*dir_ / "l.h5"));
    ASSERT_EQ(encoded.exit_code, 0) << encoded.output;
  }
  static void TearDownTestSuite() { delete dir_; }
  static std::string checkpoint() { return *dir_ / "ae/checkpoints/step-00000002"; }
  static TempDir* dir_;
};
TempDir* LatentStore::dir_ = nullptr;

TEST_F(LatentStore, HoldsTheAutoencodersEncodingAndItsScale) {
  const io::LatentStoreReader latents(*dir_ / "l.h5");
  const io::LatentStoreInfo& info = latents.info();
  EXPECT_EQ(info.count, 7);
  EXPECT_EQ(info.latent_channels, 2);
  EXPECT_EQ(info.downsampling, 2);
  EXPECT_EQ(info.resolutions, (std::vector<int>{16, 32}));
  EXPECT_EQ(info.autoencoder_step, 2);

  // The autoencoder's own encoding of the store's images, in one batch.
  Config config = load_config("", model_flags_of(checkpoint()));
  config.run.device = "cpu";
  ParamStore params;
  std::unique_ptr<AutoencoderDevice> device = make_autoencoder_device(config, params, 0);
  params.allocate();
  warm_start(checkpoint(), params);
  device->attach_parameters(params);
  const io::ImageStoreReader store(*dir_ / "s.h5");
  double sums[3] = {0, 0, 0};
  for (int resolution : {16, 32}) {
    const data::ImageShard images = store.load_shard(resolution, 0, 1);
    TensorF batch, mu, logvar;
    data::images_to_tensor(images, 0, images.count(), batch);
    device->encode(batch, mu, logvar);
    const data::ImageShard stored = latents.load_shard(resolution, 0, 1);
    ASSERT_EQ(stored.count(), 7);
    ASSERT_TRUE(stored.latents && stored.type == data::PixelType::kFloat32);
    const std::vector<float> stored_mu = part_of(stored, 0), stored_logvar = part_of(stored, 1);
    double worst = 0;
    for (int64_t i = 0; i < mu.numel(); ++i)
      worst = std::max({worst, std::abs(double(stored_mu[i]) - mu[i]),
                        std::abs(double(stored_logvar[i]) - logvar[i])});
    EXPECT_LT(worst, 1e-5) << resolution;  // one image at a time against a batch of 7: rounding only
    if (resolution != 32) continue;
    const int64_t per_image = static_cast<int64_t>(stored_mu.size()) / stored.count();
    for (int64_t k = 0; k < stored.count(); ++k) {  // the sampled latents' moments, as encode draws them
      Rng rng(0 ^ 0x6c6174656e74ull, static_cast<uint64_t>(stored.indices[k]));
      for (int64_t e = 0; e < per_image; ++e) {
        const double lv = std::clamp(double(stored_logvar[k * per_image + e]), -30.0, 20.0);
        const double z = stored_mu[k * per_image + e] + std::exp(0.5 * lv) * rng.normal();
        sums[0] += z;
        sums[1] += z * z;
        sums[2] += 1;
      }
    }
  }
  const double mean = sums[0] / sums[2];
  const double std = std::sqrt((sums[1] - sums[2] * mean * mean) / (sums[2] - 1));
  EXPECT_NEAR(info.scale_factor * std, 1.0, 1e-9);

  const data::ImageShard share = latents.load_shard(32, 1, 3);  // images 1 and 4
  EXPECT_EQ(share.indices, (std::vector<int64_t>{1, 4}));
  const testing::CommandResult inspect = testing::run_ladder("inspect " + (*dir_ / "l.h5"));
  EXPECT_EQ(inspect.exit_code, 0) << inspect.output;
  EXPECT_NE(inspect.output.find("ladder-latent-store"), std::string::npos) << inspect.output;
}

TEST_F(LatentStore, TwoRanksWriteWhatOneRankWrites) {
  const char* binary = std::getenv("LADDER_BINARY");
  const std::string command =
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 mpirun -np 2 --oversubscribe " +
      std::string(binary ? binary : "ladder") + " encode --checkpoint " + checkpoint() + " --store " +
      (*dir_ / "s.h5") + " --out " + (*dir_ / "l2.h5") + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(command.c_str()), 0);
  // Each image is encoded alone and the statistics are summed in image order, so the world
  // size (and the thread count: l.h5 was written by one process on every core) changes no bit.
  const io::LatentStoreReader one(*dir_ / "l.h5"), two(*dir_ / "l2.h5");
  EXPECT_EQ(two.info().scale_factor, one.info().scale_factor);
  for (int resolution : {16, 32})
    for (int part : {0, 1})
      EXPECT_EQ(part_of(one.load_shard(resolution, 0, 1), part), part_of(two.load_shard(resolution, 0, 1), part))
          << resolution << (part == 0 ? " mu" : " logvar");
}

TEST_F(LatentStore, AFlippedByteIsAChecksumErrorNamingTheImage) {
  const std::string path = *dir_ / "flipped.h5";
  fs::copy_file(*dir_ / "l.h5", path, fs::copy_options::overwrite_existing);
  {  // the chunks are written in image order; the last image's log σ² ends the data
    const io::LatentStoreReader reader(path);
    const std::vector<float> all = part_of(reader.load_shard(32, 0, 1), 0);
    const float* last = all.data() + 6 * (all.size() / 7);
    std::string bytes = testing::read_file(path);
    const size_t at = bytes.find(std::string(reinterpret_cast<const char*>(last), 64));
    ASSERT_NE(at, std::string::npos);
    bytes[at + 3] = static_cast<char>(bytes[at + 3] ^ 0x10);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  }
  const io::LatentStoreReader reader(path);
  const std::string message = testing::error_message([&] { reader.load_shard(32, 0, 1); });
  EXPECT_NE(message.find("image 6 at resolution 32: checksum mismatch"), std::string::npos) << message;
  const testing::CommandResult inspect = testing::run_ladder("inspect " + path);
  EXPECT_NE(inspect.exit_code, 0) << inspect.output;
}

}  // namespace
}  // namespace ladder

namespace ladder {
namespace {

// `ladder sample` end to end on the CPU: a UNet written as a safetensors file (random
// non-zero weights, MONAI names), the autoencoder of this suite, a grid and the latents.
TEST_F(LatentStore, SampleWritesAGridAndItsLatents) {
  Config unet_config = load_config("", {"--model.kind", "diffusion_unet", "--model.in_channels", "2",
                                        "--model.res_blocks", "1", "--model.channels", "8,16",
                                        "--model.attention_levels", "0,1", "--model.head_channels", "0,8",
                                        "--model.norm_groups", "4"});
  ParamStore params;
  CpuBackend backend;
  DiffusionUNet<CpuBackend> unet(unet_config.model, params, backend);
  params.allocate();
  params.initialize(4);
  Rng rng(2, 0);
  for (int64_t i = 0; i < params.count(); ++i) params.values()[i] += static_cast<float>(0.02 * rng.normal());
  std::vector<io::SafetensorToWrite> tensors;
  for (const ParamEntry& entry : params.entries())
    tensors.push_back(torch_tensor(entry.name, entry.shape, params.values() + entry.offset, "F32"));
  const std::string weights = *dir_ / "unet.safetensors";
  io::write_safetensors(weights, {}, tensors);
  const std::string model = " --model.kind diffusion_unet --model.in_channels 2 --model.res_blocks 1"
                            " --model.channels 8,16 --model.attention_levels 0,1 --model.head_channels 0,8"
                            " --model.norm_groups 4";
  const testing::CommandResult sampled = testing::run_ladder(
      "sample --checkpoint " + weights + model + " --autoencoder " + checkpoint() +
      " --count 3 --resolution 16 --sampler ddpm --steps 5 --scale-factor 0.6 --out " + (*dir_ / "grid.png") +
      " --save-latents " + (*dir_ / "z.h5"));
  ASSERT_EQ(sampled.exit_code, 0) << sampled.output;
  EXPECT_GT(fs::file_size(*dir_ / "grid.png"), 100u);
  io::h5::File file = io::h5::open_file(*dir_ / "z.h5");
  io::h5::Dataset latents(H5Dopen2(file.get(), "latents", H5P_DEFAULT));
  EXPECT_EQ(io::h5::shape(latents.get()), (std::vector<hsize_t>{3, 8, 8, 2}));
  // Without the scale factor nothing decodes; a bad sampler is a usage error.
  for (const std::string& bad : {" --out x.png --autoencoder " + checkpoint() + " --resolution 16",
                                 std::string(" --sampler euler --latent-resolution 8 --save-latents y.h5")}) {
    const testing::CommandResult result = testing::run_ladder("sample --checkpoint " + weights + model + bad);
    EXPECT_EQ(result.exit_code, 2) << bad << "\n" << result.output;
  }
}

}  // namespace
}  // namespace ladder
