// Why this file exists: images that are not 8-bit photos (BRIEF §5, store format 2): the
// intensity transforms of data.intensity against their MONAI formulas (ScaleIntensityRange and
// its percentile variant, numpy's linear percentiles), uint8's auto path unchanged; version-2
// stores of uint16, float16 and float32 written and read back value for value with their
// stated intensity range; h5py-style datasets of every pixel type in (N, H, W, C) and
// (N, C, H, W), the two layouts giving the same shard bits and the same trained weights; and
// the errors for an ambiguous layout, an unsupported dtype and a bad data.intensity.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "config/config.h"
#include "core/check.h"
#include "core/rng.h"
#include "data/intensity.h"
#include "io/hdf5.h"
#include "io/image_store.h"
#include "io/safetensors.h"
#include "test_support.h"
#include "train/trainer.h"

namespace ladder {
namespace {

using data::IntensitySpec;
using data::IntensityTransform;
using data::PixelType;
using testing::TempDir;

std::vector<uint8_t> as_bytes(const std::vector<uint16_t>& values) {
  std::vector<uint8_t> bytes(values.size() * 2);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

std::vector<uint8_t> as_bytes(const std::vector<float>& values) {
  std::vector<uint8_t> bytes(values.size() * 4);
  std::memcpy(bytes.data(), values.data(), bytes.size());
  return bytes;
}

std::vector<float> transformed(const IntensityTransform& t, const std::vector<uint8_t>& raw, int64_t count) {
  std::vector<float> out(static_cast<size_t>(count));
  t.apply(raw.data(), count, out.data());
  return out;
}

TEST(Intensity, ParsesTheFourFormsAndRefusesOthersNamingTheKey) {
  EXPECT_EQ(data::parse_intensity("auto").kind, IntensitySpec::Kind::kAuto);
  EXPECT_EQ(data::parse_intensity("minmax").kind, IntensitySpec::Kind::kMinMax);
  const IntensitySpec window = data::parse_intensity("window:-160,240");
  EXPECT_EQ(window.kind, IntensitySpec::Kind::kWindow);
  EXPECT_EQ(window.low, -160);
  EXPECT_EQ(window.high, 240);
  EXPECT_EQ(data::intensity_text(data::parse_intensity("percentile:0.5,99.5")), "percentile:0.5,99.5");
  for (const std::string bad : {"window:3", "window:5,5", "window:a,b", "percentile:-1,50", "percentile:10,101",
                                "linear", ""}) {
    try {
      data::parse_intensity(bad);
      ADD_FAILURE() << "accepted data.intensity = '" << bad << "'";
    } catch (const UsageError& e) {
      EXPECT_NE(std::string(e.what()).find("data.intensity"), std::string::npos) << e.what();
    }
  }
}

TEST(Intensity, Uint8AutoIsThePhotoPathAndItsBytesComeBack) {
  std::vector<uint8_t> raw(256);
  for (int v = 0; v < 256; ++v) raw[v] = static_cast<uint8_t>(v);
  const IntensityTransform t(IntensitySpec{}, PixelType::kUint8);
  const std::vector<float> out = transformed(t, raw, 256);
  for (int v = 0; v < 256; ++v) {
    EXPECT_EQ(out[v], float(v) * (2.0f / 255.0f) - 1.0f) << v;
    EXPECT_EQ(data::unit_to_byte(out[v]), v);
  }
}

TEST(Intensity, WindowIsScaleIntensityRangeClipped) {
  // CT in HU through a soft-tissue window −160..240, as float32 values.
  const std::vector<float> hu = {-1024, -160, -100, 0, 40, 239.5f, 240, 3071};
  const IntensityTransform t(data::parse_intensity("window:-160,240"), PixelType::kFloat32);
  const std::vector<float> out = transformed(t, as_bytes(hu), static_cast<int64_t>(hu.size()));
  for (size_t i = 0; i < hu.size(); ++i) {
    const double expected = std::clamp((double(hu[i]) + 160) / 400 * 2 - 1, -1.0, 1.0);
    EXPECT_NEAR(out[i], expected, 1e-6) << hu[i];
  }
  EXPECT_EQ(out.front(), -1.0f);
  EXPECT_EQ(out.back(), 1.0f);
}

TEST(Intensity, PercentilesInterpolateAsNumpyAndMinMaxSpansTheImage) {
  std::vector<float> values = {10, 1, 9, 2, 8, 3, 7, 4, 6, 5};
  EXPECT_FLOAT_EQ(data::percentile(values.data(), 10, 25), 3.25f);  // numpy.percentile(1..10, 25)
  EXPECT_FLOAT_EQ(data::percentile(values.data(), 10, 0), 1.0f);
  EXPECT_FLOAT_EQ(data::percentile(values.data(), 10, 100), 10.0f);
  EXPECT_FLOAT_EQ(data::percentile(values.data(), 10, 95), 9.55f);
  const std::vector<uint16_t> raw = {100, 200, 300, 400, 500};
  const std::vector<float> minmax =
      transformed(IntensityTransform(data::parse_intensity("minmax"), PixelType::kUint16), as_bytes(raw), 5);
  EXPECT_FLOAT_EQ(minmax[0], -1.0f);
  EXPECT_FLOAT_EQ(minmax[2], 0.0f);
  EXPECT_FLOAT_EQ(minmax[4], 1.0f);
  // percentile:25,75: A = 200, B = 400 (linear), clipped outside.
  const std::vector<float> middle =
      transformed(IntensityTransform(data::parse_intensity("percentile:25,75"), PixelType::kUint16), as_bytes(raw), 5);
  EXPECT_FLOAT_EQ(middle[0], -1.0f);
  EXPECT_FLOAT_EQ(middle[1], -1.0f);
  EXPECT_FLOAT_EQ(middle[2], 0.0f);
  EXPECT_FLOAT_EQ(middle[4], 1.0f);
  // A constant image: ScaleIntensityRange's A = B case, x − A + b_min = −1.
  const std::vector<uint16_t> flat(4, 700);
  for (float v : transformed(IntensityTransform(data::parse_intensity("minmax"), PixelType::kUint16), as_bytes(flat), 4))
    EXPECT_EQ(v, -1.0f);
}

TEST(Intensity, AutoUsesTheStatedRangeThenTheTypesRangeThenMinMax) {
  const std::vector<uint16_t> raw = {0, 32768, 65535};
  const std::vector<float> full = transformed(IntensityTransform({}, PixelType::kUint16), as_bytes(raw), 3);
  EXPECT_FLOAT_EQ(full[0], -1.0f);
  EXPECT_NEAR(full[1], 32768.0 / 65535 * 2 - 1, 1e-6);
  EXPECT_FLOAT_EQ(full[2], 1.0f);
  const std::vector<float> hu = {-1024, 1023.5f, 3071};
  const std::vector<float> stated =
      transformed(IntensityTransform({}, PixelType::kFloat32, std::make_pair(-1024.0, 3071.0)), as_bytes(hu), 3);
  EXPECT_FLOAT_EQ(stated[0], -1.0f);
  EXPECT_NEAR(stated[1], 0.0, 1e-6);
  const std::vector<float> floats = {2.5f, 3.5f, 4.5f};
  const std::vector<float> minmax = transformed(IntensityTransform({}, PixelType::kFloat32), as_bytes(floats), 3);
  EXPECT_FLOAT_EQ(minmax[0], -1.0f);
  EXPECT_FLOAT_EQ(minmax[1], 0.0f);
  EXPECT_FLOAT_EQ(minmax[2], 1.0f);
}

TEST(Intensity, EqualsMonaisScaleIntensityRangeAndItsPercentileVariant) {
  // tests/fixtures/make_intensity_golden.py: MONAI 1.6.1 on CT-like float32 slices in HU (one
  // with a constant patch) and a uint16 MR-like slice, 32×32, one channel.
  const io::SafetensorsHeader golden =
      io::read_safetensors_header(std::string(LADDER_TEST_FIXTURES) + "/intensity_golden.safetensors");
  int compared = 0;
  for (const std::string slice : {"ct", "ct_flat", "mr_uint16"}) {
    const std::vector<float> values = testing::safetensor_floats(golden, slice);
    ASSERT_EQ(values.size(), 32u * 32u);
    const PixelType type = slice == "mr_uint16" ? PixelType::kUint16 : PixelType::kFloat32;
    std::vector<uint8_t> raw;
    if (type == PixelType::kUint16) {
      std::vector<uint16_t> u(values.begin(), values.end());
      raw = as_bytes(u);
    } else {
      raw = as_bytes(values);
    }
    for (const auto& [key, spec] : std::vector<std::pair<std::string, std::string>>{
             {"window_-160_240", "window:-160,240"}, {"window_0_4095", "window:0,4095"},
             {"percentile_0.5_99.5", "percentile:0.5,99.5"}, {"percentile_0_100", "minmax"}}) {
      const std::vector<float> want = testing::safetensor_floats(golden, slice + "." + key);
      const std::vector<float> got =
          transformed(IntensityTransform(data::parse_intensity(spec), type), raw, static_cast<int64_t>(values.size()));
      double worst = 0;
      for (size_t i = 0; i < want.size(); ++i) worst = std::max(worst, std::abs(double(got[i]) - want[i]));
      EXPECT_LE(worst, 1e-6) << slice << " through " << spec;
      ++compared;
    }
  }
  EXPECT_EQ(compared, 12);
}

// Images of `type` with distinctive values: image i, value e.
std::vector<uint8_t> typed_images(PixelType type, int64_t values, uint64_t seed) {
  Rng rng(seed, 3);
  std::vector<uint8_t> raw(static_cast<size_t>(values * data::pixel_type_bytes(type)));
  for (int64_t e = 0; e < values; ++e) {
    const double v = rng.uniform(-1000, 3000);
    if (type == PixelType::kUint8) {
      raw[e] = static_cast<uint8_t>(rng.below(256));
    } else if (type == PixelType::kUint16) {
      const auto u = static_cast<uint16_t>(rng.below(65536));
      std::memcpy(raw.data() + 2 * e, &u, 2);
    } else if (type == PixelType::kFloat16) {
      const uint16_t bits = float_to_half_bits(static_cast<float>(v));
      std::memcpy(raw.data() + 2 * e, &bits, 2);
    } else {
      const auto f = static_cast<float>(v);
      std::memcpy(raw.data() + 4 * e, &f, 4);
    }
  }
  return raw;
}

TEST(PixelTypes, Version2StoresKeepEveryTypesValuesAndStatedRange) {
  TempDir dir;
  const int n = 5, side = 8, c = 1;
  for (PixelType type : {PixelType::kUint16, PixelType::kFloat16, PixelType::kFloat32}) {
    const std::string path = dir / (std::string(data::pixel_type_name(type)) + ".h5");
    const int64_t per_image = int64_t(side) * side * c, bytes = per_image * data::pixel_type_bytes(type);
    const std::vector<uint8_t> raw = typed_images(type, n * per_image, 4);
    {
      io::ImageStoreWriter writer(path, c, {side}, type, io::StatedIntensity{-1024, 3071, "HU"});
      for (int i = 0; i < n; ++i) writer.append({raw.data() + i * bytes}, "slice " + std::to_string(i));
      writer.finish();
    }
    io::ImageStoreReader reader(path);
    const io::StoreInfo& info = reader.info();
    EXPECT_EQ(info.version, 2);
    EXPECT_EQ(info.type, type);
    ASSERT_TRUE(info.stated.has_value());
    EXPECT_EQ(info.stated->low, -1024);
    EXPECT_EQ(info.stated->unit, "HU");
    EXPECT_EQ(info.levels[0].bytes, n * bytes);
    reader.verify_all();
    const data::ImageShard shard = reader.load_shard(side, 0, 1);
    EXPECT_EQ(shard.type, type);
    EXPECT_EQ(shard.pixels.bytes(), n * bytes);
    EXPECT_EQ(std::memcmp(shard.pixels.data(), raw.data(), raw.size()), 0) << data::pixel_type_name(type);
    // auto: the stated range as a window
    TensorF inputs;
    data::images_to_tensor(shard, 0, 1, inputs);
    const float first = data::pixel_value(type, raw.data(), 0);
    EXPECT_NEAR(inputs[0], std::clamp((first + 1024.0) / 4095.0 * 2 - 1, -1.0, 1.0), 1e-6);
  }
  // A uint8 store without a stated range stays format 1.
  const std::string plain = dir / "u8.h5";
  {
    io::ImageStoreWriter writer(plain, 1, {side});
    const std::vector<uint8_t> raw = typed_images(PixelType::kUint8, side * side, 2);
    writer.append({raw.data()}, "one");
    writer.finish();
  }
  EXPECT_EQ(io::ImageStoreReader(plain).info().version, 1);
}

// One dataset `name` of `type` with `dims`, no attributes, as h5py writes it (float16 as
// h5py's IEEE half type).
void write_foreign(const std::string& path, const std::string& name, PixelType type, std::vector<hsize_t> dims,
                   const std::vector<uint8_t>& raw) {
  io::h5::File file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  ASSERT_TRUE(file.valid());
  io::h5::Dataspace space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  const io::h5::Datatype stored = io::h5::file_type(type), memory = io::h5::memory_type(type);
  io::h5::Dataset dataset(
      H5Dcreate2(file.get(), name.c_str(), stored.get(), space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  ASSERT_TRUE(dataset.valid());
  ASSERT_GE(H5Dwrite(dataset.get(), memory.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data()), 0);
}

// (N, H, W, C) values → (N, C, H, W).
std::vector<uint8_t> to_channels_first(const std::vector<uint8_t>& raw, int n, int side, int c, int value_bytes) {
  std::vector<uint8_t> out(raw.size());
  for (int i = 0; i < n; ++i)
    for (int p = 0; p < side * side; ++p)
      for (int k = 0; k < c; ++k)
        std::memcpy(out.data() + ((int64_t(i) * c + k) * side * side + p) * value_bytes,
                    raw.data() + ((int64_t(i) * side * side + p) * c + k) * value_bytes, static_cast<size_t>(value_bytes));
  return out;
}

TEST(PixelTypes, ForeignDatasetsOfEveryTypeReadTheSameInEitherLayout) {
  TempDir dir;
  const int n = 6, side = 16, c = 2;
  for (PixelType type : {PixelType::kUint8, PixelType::kUint16, PixelType::kFloat16, PixelType::kFloat32}) {
    const int value_bytes = data::pixel_type_bytes(type);
    const std::vector<uint8_t> nhwc = typed_images(type, int64_t(n) * side * side * c, 6);
    const std::string a = dir / "nhwc.h5", b = dir / "nchw.h5";
    write_foreign(a, "x", type, {hsize_t(n), hsize_t(side), hsize_t(side), hsize_t(c)}, nhwc);
    write_foreign(b, "x", type, {hsize_t(n), hsize_t(c), hsize_t(side), hsize_t(side)},
                  to_channels_first(nhwc, n, side, c, value_bytes));
    const io::ImageStoreReader ra(a, "x"), rb(b, "x");
    EXPECT_FALSE(ra.info().channels_first);
    EXPECT_TRUE(rb.info().channels_first);
    EXPECT_EQ(rb.info().type, type);
    EXPECT_EQ(rb.info().channels, c);
    for (int resolution : {side, side / 2}) {  // as stored, and box-filtered
      const data::ImageShard sa = ra.load_shard(resolution, 1, 2), sb = rb.load_shard(resolution, 1, 2);
      ASSERT_EQ(sa.pixels.bytes(), sb.pixels.bytes());
      EXPECT_EQ(std::memcmp(sa.pixels.data(), sb.pixels.data(), static_cast<size_t>(sa.pixels.bytes())), 0)
          << data::pixel_type_name(type) << " at " << resolution;
    }
    const data::ImageShard full = ra.load_shard(side, 0, 1);
    EXPECT_EQ(std::memcmp(full.pixels.data(), nhwc.data(), nhwc.size()), 0) << data::pixel_type_name(type);
  }
}

TEST(PixelTypes, AmbiguousLayoutsUnsupportedTypesAndBadIntensityAreOneClearError) {
  TempDir dir;
  const std::string path = dir / "cube.h5";
  write_foreign(path, "x", PixelType::kUint8, {2, 3, 3, 3}, std::vector<uint8_t>(54, 7));
  try {
    io::ImageStoreReader reader(path, "x");
    ADD_FAILURE() << "an ambiguous (2, 3, 3, 3) dataset was read";
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find("data.layout"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(io::ImageStoreReader(path, "x", "nchw").info().channels_first);
  {
    io::h5::File file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    const hsize_t dims[4] = {2, 4, 4, 1};
    io::h5::Dataspace space(H5Screate_simple(4, dims, nullptr));
    io::h5::Dataset dataset(
        H5Dcreate2(file.get(), "x", H5T_STD_I32LE, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  }
  const std::string message = testing::error_message([&] { io::ImageStoreReader reader(path, "x"); });
  EXPECT_NE(message.find("int32"), std::string::npos) << message;
  EXPECT_NE(message.find("uint16, float16 or float32"), std::string::npos) << message;
  EXPECT_THROW(load_config("", {"--data.intensity", "window:1"}), UsageError);
}

// Trains a small autoencoder on a foreign dataset and returns its weights.
std::vector<float> train_on(const std::string& dir, const std::string& store, const std::string& intensity) {
  const std::vector<std::string> flags = {
      "--run.dir", dir, "--run.seed", "7", "--run.log_every", "1", "--run.sample_every", "0", "--model.in_channels",
      "1", "--model.channels", "8,16", "--model.norm_groups", "4", "--model.res_blocks", "1",
      "--model.latent_channels", "2", "--data.store", store, "--data.dataset", "x", "--data.intensity", intensity,
      "--data.flip", "true", "--stages.resolutions", "16", "--stages.images", "16", "--train.batch", "4",
      "--log.tensorboard", "false"};
  Trainer trainer(load_config("", flags));
  const TrainSummary summary = trainer.run();
  EXPECT_EQ(summary.steps, 4);
  EXPECT_TRUE(std::isfinite(summary.last_loss)) << store;
  const ParamStore& p = trainer.params();
  return std::vector<float>(p.values(), p.values() + p.count());
}

TEST(PixelTypes, Uint16AndFloat32DatasetsTrainAndChannelsFirstGivesTheSameBits) {
  TempDir dir;
  const int n = 8, side = 16;
  // CT-like float32 values in HU, through a soft-tissue window.
  const std::vector<uint8_t> hu = typed_images(PixelType::kFloat32, int64_t(n) * side * side, 8);
  write_foreign(dir / "f32.h5", "x", PixelType::kFloat32, {hsize_t(n), hsize_t(side), hsize_t(side), 1}, hu);
  write_foreign(dir / "f32-nchw.h5", "x", PixelType::kFloat32, {hsize_t(n), 1, hsize_t(side), hsize_t(side)}, hu);
  const std::vector<float> a = train_on(dir / "a", dir / "f32.h5", "window:-160,240");
  const std::vector<float> b = train_on(dir / "b", dir / "f32-nchw.h5", "window:-160,240");
  EXPECT_TRUE(a == b) << "the same data in (N, C, H, W) trained to other weights than in (N, H, W, C)";
  const std::vector<float> other_window = train_on(dir / "c", dir / "f32.h5", "window:-1000,3000");
  EXPECT_FALSE(a == other_window) << "the window did not reach the model";
  write_foreign(dir / "u16.h5", "x", PixelType::kUint16, {hsize_t(n), hsize_t(side), hsize_t(side), 1},
                typed_images(PixelType::kUint16, int64_t(n) * side * side, 9));
  train_on(dir / "d", dir / "u16.h5", "auto");
}

}  // namespace
}  // namespace ladder
