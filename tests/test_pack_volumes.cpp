// Why this file exists: `ladder pack --nifti` against volumes written here with libnifti (the
// library ladder reads them with; NIfTI-1, .nii and .nii.gz): the stored slices equal the
// source slices along each axis (exactly for float32 and for uint16, within float16 rounding
// for float16; int16 with scl_slope/scl_inter applied), a baked window equals the window
// transform's bytes, non-square slices are padded or cropped as stated, truncated, forged-size
// and 4-D volumes are skipped with their reason while the others are packed, and NaN voxels
// become 0 (libnifti's rule, documented in io/volume.h).
#include <gtest/gtest.h>
#include <nifti2_io.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "cli/pack_command.h"
#include "core/check.h"
#include "core/fp16.h"
#include "data/intensity.h"
#include "io/image_decode.h"
#include "io/image_store.h"
#include "io/volume.h"
#include "test_support.h"

namespace ladder {
namespace {

using testing::TempDir;

// A phantom in HU: a body ellipsoid (40) in air (−1000) with an organ (80), (nz, ny, nx).
std::vector<float> phantom(int nx, int ny, int nz) {
  std::vector<float> v(static_cast<size_t>(nx) * ny * nz);
  for (int z = 0; z < nz; ++z)
    for (int y = 0; y < ny; ++y)
      for (int x = 0; x < nx; ++x) {
        const double dx = (x - nx / 2.0) / (0.45 * nx), dy = (y - ny / 2.0) / (0.4 * ny), dz = (z - nz / 2.0) / (0.45 * nz);
        const double ox = (x - 0.6 * nx) / (0.1 * nx), oy = (y - ny / 2.0) / (0.1 * ny);
        float value = dx * dx + dy * dy + dz * dz < 1 ? 40.0f : -1000.0f;
        if (ox * ox + oy * oy < 1 && value > 0) value = 80.0f;
        v[(static_cast<size_t>(z) * ny + y) * nx + x] = value + static_cast<float>((x * 7 + y * 3 + z) % 5);
      }
  return v;
}

// Writes a 3-D (or 4-D when nt > 1) NIfTI-1 file of `datatype` from `values` (as that type).
void write_nifti(const std::string& path, int nx, int ny, int nz, int datatype, const void* values, int nt = 1,
                 double slope = 0, double inter = 0) {
  const int64_t dims[8] = {nt > 1 ? 4 : 3, nx, ny, nz, nt, 1, 1, 1};
  nifti_image* image = nifti_make_new_nim(dims, datatype, 1);
  ASSERT_NE(image, nullptr);
  std::memcpy(image->data, values, static_cast<size_t>(image->nvox) * image->nbyper);
  image->scl_slope = slope;
  image->scl_inter = inter;
  ASSERT_EQ(nifti_set_filenames(image, path.c_str(), 0, 1), 0);
  image->nifti_type = NIFTI_FTYPE_NIFTI1_1;
  nifti_image_write(image);
  nifti_image_free(image);
  ASSERT_TRUE(std::filesystem::exists(path)) << path;
}

std::vector<float> stored_floats(const data::ImageShard& shard, int64_t image) {
  std::vector<float> out(static_cast<size_t>(shard.image_values()));
  for (int64_t e = 0; e < shard.image_values(); ++e)
    out[static_cast<size_t>(e)] = data::pixel_value(shard.type, shard.image(image), e);
  return out;
}

TEST(PackVolumes, SlicesAlongEachAxisEqualTheSource) {
  TempDir dir;
  const int n = 16;  // a cube: every slice is already square and at the top level
  const std::vector<float> hu = phantom(n, n, n);
  std::filesystem::create_directories(dir / "in");
  write_nifti(dir / "in/ct.nii.gz", n, n, n, DT_FLOAT32, hu.data());
  for (const std::string axis : {"axial", "coronal", "sagittal"}) {
    const std::string out = dir / (axis + ".h5");
    ASSERT_EQ(pack_command({"--nifti", dir / "in", "--out", out, "--levels", "8,16", "--axis", axis}), 0);
    const io::ImageStoreReader store(out);
    EXPECT_EQ(store.info().version, 2);
    EXPECT_EQ(store.info().type, data::PixelType::kFloat32);
    ASSERT_EQ(store.info().count, n);
    EXPECT_EQ(store.name(3), "ct.nii.gz:" + axis + ":3");
    const data::ImageShard shard = store.load_shard(16, 0, 1);
    const io::Volume volume = io::read_nifti(dir / "in/ct.nii.gz");
    for (int s : {0, 3, 15}) {
      int64_t h = 0, w = 0;
      const std::vector<float> want = io::extract_slice(volume, io::parse_slice_axis(axis), s, h, w);
      EXPECT_TRUE(stored_floats(shard, s) == want) << axis << " slice " << s;
    }
  }
  // The axial slice z is the source's z-th x-y plane, as written.
  const data::ImageShard axial = io::ImageStoreReader(dir / "axial.h5").load_shard(16, 0, 1);
  const std::vector<float> plane(hu.begin() + 5 * n * n, hu.begin() + 6 * n * n);
  EXPECT_TRUE(stored_floats(axial, 5) == plane);
}

TEST(PackVolumes, Int16WithScalingFloat16AndUint16KeepTheirValues) {
  TempDir dir;
  const int n = 16;
  const std::vector<float> hu = phantom(n, n, n);
  std::vector<int16_t> raw(hu.size());
  for (size_t i = 0; i < hu.size(); ++i) raw[i] = static_cast<int16_t>(hu[i] + 1024);  // HU + 1024
  std::filesystem::create_directories(dir / "in");
  write_nifti(dir / "in/ct.nii", n, n, n, DT_INT16, raw.data(), 1, 1.0, -1024.0);
  const io::Volume volume = io::read_nifti(dir / "in/ct.nii");
  EXPECT_TRUE(volume.voxels == hu) << "scl_slope / scl_inter not applied";
  ASSERT_EQ(pack_command({"--nifti", dir / "in", "--out", dir / "f16.h5", "--levels", "16", "--pixel-type", "float16",
                          "--slices", "every:4"}),
            0);
  const data::ImageShard half = io::ImageStoreReader(dir / "f16.h5").load_shard(16, 0, 1);
  ASSERT_EQ(half.count(), 4);  // slices 0, 4, 8, 12
  const std::vector<float> got = stored_floats(half, 2);
  for (int e = 0; e < n * n; ++e) EXPECT_EQ(got[e], half_bits_to_float(float_to_half_bits(hu[8 * n * n + e]))) << e;
  // uint16: the raw values (written as uint16 without scaling) come back exactly.
  std::vector<uint16_t> mr(hu.size());
  for (size_t i = 0; i < hu.size(); ++i) mr[i] = static_cast<uint16_t>(hu[i] + 1024) * 3;
  std::filesystem::create_directories(dir / "mr");
  write_nifti(dir / "mr/mr.nii", n, n, n, DT_UINT16, mr.data());
  ASSERT_EQ(pack_command({"--nifti", dir / "mr", "--out", dir / "u16.h5", "--levels", "16", "--pixel-type", "uint16",
                          "--slices", "middle:2"}),
            0);
  const data::ImageShard u16 = io::ImageStoreReader(dir / "u16.h5").load_shard(16, 0, 1);
  ASSERT_EQ(u16.count(), 2);  // slices 7 and 8
  EXPECT_EQ(std::memcmp(u16.image(0), mr.data() + 7 * n * n, static_cast<size_t>(n * n * 2)), 0);
  // HU do not fit uint16: that volume is skipped with the reason, and nothing is packed.
  const std::string message = testing::error_message(
      [&] { pack_command({"--nifti", dir / "in", "--out", dir / "bad.h5", "--levels", "16", "--pixel-type", "uint16"}); });
  EXPECT_NE(message.find("no volume could be packed"), std::string::npos) << message;
  EXPECT_NE(message.find("0..65535"), std::string::npos) << message;
}

TEST(PackVolumes, AWindowIsBakedIntoBytesAndSlicesAreSquaredAsStated) {
  TempDir dir;
  const int nx = 24, ny = 16, nz = 8;
  const std::vector<float> hu = phantom(nx, ny, nz);
  std::filesystem::create_directories(dir / "in");
  write_nifti(dir / "in/ct.nii.gz", nx, ny, nz, DT_FLOAT32, hu.data());
  ASSERT_EQ(pack_command({"--nifti", dir / "in", "--out", dir / "w.h5", "--levels", "24", "--window", "-160,240"}), 0);
  const io::ImageStoreReader windowed(dir / "w.h5");
  EXPECT_EQ(windowed.info().type, data::PixelType::kUint8);
  const data::ImageShard bytes = windowed.load_shard(24, 0, 1);
  ASSERT_EQ(bytes.count(), nz);
  // Axial slices are 24 wide, 16 high: padded to 24×24 with the volume's minimum, rows 4..19.
  const data::IntensityTransform window(data::parse_intensity("window:-160,240"), data::PixelType::kFloat32);
  const float minimum = *std::min_element(hu.begin(), hu.end());
  for (int y = 0; y < 24; ++y)
    for (int x = 0; x < 24; ++x) {
      const bool inside = y >= 4 && y < 20;
      const float source = inside ? hu[(static_cast<size_t>(3) * ny + (y - 4)) * nx + x] : minimum;
      float unit = 0;
      window.apply(reinterpret_cast<const uint8_t*>(&source), 1, &unit);
      ASSERT_EQ(bytes.image(3)[y * 24 + x], data::unit_to_byte(unit)) << y << "," << x;
    }
  // Cropped: the centred 16×16, columns 4..19; area-resized to 8 for the top level 8.
  ASSERT_EQ(pack_command({"--nifti", dir / "in", "--out", dir / "c.h5", "--levels", "16", "--square", "crop"}), 0);
  const data::ImageShard cropped = io::ImageStoreReader(dir / "c.h5").load_shard(16, 0, 1);
  EXPECT_EQ(stored_floats(cropped, 2)[0], hu[(static_cast<size_t>(2) * ny + 0) * nx + 4]);
}

TEST(PackVolumes, BrokenVolumesAreSkippedWithTheirReasonAndTheRestIsPacked) {
  TempDir dir;
  const int n = 16;
  const std::vector<float> hu = phantom(n, n, n);
  std::filesystem::create_directories(dir / "in");
  write_nifti(dir / "in/a-good.nii.gz", n, n, n, DT_FLOAT32, hu.data());
  write_nifti(dir / "in/b-plain.nii", n, n, n, DT_FLOAT32, hu.data());
  {  // c: the plain file cut short
    const std::string whole = testing::read_file(dir / "in/b-plain.nii");
    std::ofstream(dir / "in/c-truncated.nii", std::ios::binary) << whole.substr(0, whole.size() / 2);
  }
  {  // d: a gzip whose data is a fraction of what the header claims
    std::ofstream(dir / "in/d-cut.nii.gz", std::ios::binary) << testing::read_file(dir / "in/a-good.nii.gz").substr(0, 300);
  }
  std::vector<float> with_nan = hu;
  with_nan[100] = std::nanf("");
  write_nifti(dir / "in/e-nan.nii", n, n, n, DT_FLOAT32, with_nan.data());
  std::vector<float> series(hu.size() * 2);
  std::copy(hu.begin(), hu.end(), series.begin());
  std::copy(hu.begin(), hu.end(), series.begin() + static_cast<int64_t>(hu.size()));
  write_nifti(dir / "in/f-4d.nii", n, n, n, DT_FLOAT32, series.data(), 2);
  std::ofstream(dir / "in/g-notes.txt") << "not a volume";
  ASSERT_EQ(pack_command({"--nifti", dir / "in", "--out", dir / "s.h5", "--levels", "16", "--slices", "middle:1"}), 0);
  const io::ImageStoreReader store(dir / "s.h5");
  ASSERT_EQ(store.info().count, 3);  // a, b and e
  EXPECT_EQ(store.name(0), "a-good.nii.gz:axial:7");
  EXPECT_EQ(store.name(1), "b-plain.nii:axial:7");
  EXPECT_EQ(store.name(2), "e-nan.nii:axial:7");
  EXPECT_EQ(io::read_nifti(dir / "in/e-nan.nii").voxels[100], 0.0f) << "the NaN voxel was not replaced by 0";
  for (const auto& [file, reason] : std::vector<std::pair<std::string, std::string>>{
           {"c-truncated.nii", "truncated"}, {"d-cut.nii.gz", "truncated or forged"}, {"f-4d.nii", "4-D"}}) {
    try {
      io::read_nifti(dir / ("in/" + file));
      ADD_FAILURE() << file << " was read";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(reason), std::string::npos) << file << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find(file), std::string::npos) << e.what();
    }
  }
}

TEST(PackVolumes, AreaResizeOfFloatsIsTheExactAreaMean) {
  // 24 → 16 (a non-integer factor): the float path against the byte path on integer values.
  io::Image image;
  image.height = image.width = 24;
  image.channels = 1;
  std::vector<float> values(24 * 24);
  for (int i = 0; i < 24 * 24; ++i) {
    image.pixels.push_back(static_cast<uint8_t>((i * 37) % 251));
    values[static_cast<size_t>(i)] = image.pixels.back();
  }
  const io::Image bytes = io::area_resize(image, 16);
  std::vector<float> floats(16 * 16);
  io::area_resize_floats(values.data(), 24, 1, 16, floats.data());
  double mean_in = 0, mean_out = 0;
  for (float v : values) mean_in += v;
  for (size_t i = 0; i < floats.size(); ++i) {
    EXPECT_LE(std::abs(floats[i] - bytes.pixels[i]), 0.5f) << i;  // the byte path rounds the same mean
    mean_out += floats[i];
  }
  EXPECT_NEAR(mean_in / values.size(), mean_out / floats.size(), 1e-3);  // area preserved
}

TEST(PackVolumes, PackInspectTrainAndReconstructAWindowedCtSet) {
  TempDir dir;
  const int n = 32;
  const std::vector<float> hu = phantom(n, n, n);
  std::filesystem::create_directories(dir / "in");
  write_nifti(dir / "in/ct.nii.gz", n, n, n, DT_FLOAT32, hu.data());
  const testing::CommandResult packed = testing::run_ladder("pack --nifti " + (dir / "in") + " --out " +
                                                            (dir / "ct.h5") + " --levels 16,32 --slices every:2");
  ASSERT_EQ(packed.exit_code, 0) << packed.output;
  const testing::CommandResult inspected = testing::run_ladder("inspect " + (dir / "ct.h5"));
  EXPECT_EQ(inspected.exit_code, 0) << inspected.output;
  EXPECT_NE(inspected.output.find("pixels:    float32"), std::string::npos) << inspected.output;
  EXPECT_NE(inspected.output.find("valid"), std::string::npos) << inspected.output;
  const std::string model = " --model.in_channels 1 --model.channels 8,16 --model.norm_groups 4 --model.res_blocks 1"
                            " --model.latent_channels 2";
  const testing::CommandResult trained = testing::run_ladder(
      "train --config /dev/null --run.dir " + (dir / "run") + " --data.store " + (dir / "ct.h5") +
      " --data.intensity window:-160,240 --stages.resolutions 16,32 --stages.images 8 --train.batch 4" + model +
      " --log.tensorboard false");
  ASSERT_EQ(trained.exit_code, 0) << trained.output;
  const testing::CommandResult reconstructed = testing::run_ladder(
      "reconstruct --checkpoint " + (dir / "run/checkpoints/step-00000004") + " --store " + (dir / "ct.h5") +
      " --count 4 --out " + (dir / "grid.png"));
  ASSERT_EQ(reconstructed.exit_code, 0) << reconstructed.output;
  EXPECT_NE(reconstructed.output.find("PSNR"), std::string::npos) << reconstructed.output;
  EXPECT_TRUE(std::filesystem::exists(dir / "grid.png"));
}

TEST(PackVolumes, OptionsAreCheckedWithOneLineEach) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"--nifti", "x", "--out", "o.h5", "--levels", "16", "--axis", "up"},
        std::vector<std::string>{"--nifti", "x", "--out", "o.h5", "--levels", "16", "--slices", "some"},
        std::vector<std::string>{"--nifti", "x", "--out", "o.h5", "--levels", "16", "--window", "3"},
        std::vector<std::string>{"--nifti", "x", "--out", "o.h5", "--levels", "16", "--pixel-type", "uint8"},
        std::vector<std::string>{"--images", "x", "--out", "o.h5", "--levels", "16", "--axis", "axial"}}) {
    EXPECT_THROW(pack_command(args), UsageError) << args[6];
  }
}

}  // namespace
}  // namespace ladder
