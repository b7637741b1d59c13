// Why this file exists: checks the image I/O the engine relies on: PNG round trips and
// clear errors, the synthetic data set (deterministic, same scene at every resolution),
// the comparison grid's layout and value mapping, and PSNR.
#include <gtest/gtest.h>
#include <png.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "data/synthetic_images.h"
#include "io/image_grid.h"
#include "io/png.h"
#include "test_support.h"

namespace ladder {
namespace {

using testing::error_message;

// A file path unique to this process and test, removed (with its ".tmp") when done.
class TempFile {
 public:
  explicit TempFile(const std::string& name)
      : path_(::testing::TempDir() + "ladder_" + std::to_string(::getpid()) + "_" + name) {}
  ~TempFile() {
    std::remove(path_.c_str());
    std::remove((path_ + ".tmp").c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

std::vector<uint8_t> random_bytes(size_t count, uint64_t stream) {
  Rng rng(1234, stream);
  std::vector<uint8_t> bytes(count);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng.below(256));
  return bytes;
}

// ---- PNG ----

class PngRoundTrip : public ::testing::TestWithParam<int> {};

TEST_P(PngRoundTrip, BitExact) {
  const int channels = GetParam(), height = 7, width = 13;
  TempFile file("roundtrip_" + std::to_string(channels) + ".png");
  const auto pixels = random_bytes(static_cast<size_t>(height) * width * channels, channels);
  io::write_png(file.path(), height, width, channels, pixels.data());
  EXPECT_FALSE(file_exists(file.path() + ".tmp"));

  const io::Image image = io::read_png(file.path());
  EXPECT_EQ(image.height, height);
  EXPECT_EQ(image.width, width);
  EXPECT_EQ(image.channels, channels);
  EXPECT_EQ(image.pixels, pixels);
}

INSTANTIATE_TEST_SUITE_P(Channels, PngRoundTrip, ::testing::Values(1, 3, 4));

TEST(Png, OverwritesExistingFile) {
  TempFile file("overwrite.png");
  const auto first = random_bytes(4 * 4 * 3, 10), second = random_bytes(2 * 5, 11);
  io::write_png(file.path(), 4, 4, 3, first.data());
  io::write_png(file.path(), 2, 5, 1, second.data());
  const io::Image image = io::read_png(file.path());
  EXPECT_EQ(image.channels, 1);
  EXPECT_EQ(image.pixels, second);
}

TEST(Png, MissingFileErrorNamesPath) {
  const std::string path = ::testing::TempDir() + "ladder_no_such_dir/missing.png";
  EXPECT_NE(error_message([&] { io::read_png(path); }).find(path), std::string::npos);
}

TEST(Png, NotAPngErrorNamesPath) {
  TempFile file("garbage.png");
  std::ofstream(file.path(), std::ios::binary) << "this is not a PNG file at all";
  EXPECT_NE(error_message([&] { io::read_png(file.path()); }).find(file.path()), std::string::npos);
}

TEST(Png, TruncatedFileErrorNamesPath) {
  TempFile file("truncated.png");
  const auto pixels = random_bytes(32 * 32 * 3, 3);  // random: compresses poorly, big file
  io::write_png(file.path(), 32, 32, 3, pixels.data());
  std::string bytes;
  {
    std::ifstream in(file.path(), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  std::ofstream(file.path(), std::ios::binary | std::ios::trunc)
      << bytes.substr(0, bytes.size() / 2);
  EXPECT_NE(error_message([&] { io::read_png(file.path()); }).find(file.path()), std::string::npos);
}

TEST(Png, CorruptDataErrorNamesPath) {
  TempFile file("corrupt.png");
  const auto pixels = random_bytes(16 * 16 * 3, 4);
  io::write_png(file.path(), 16, 16, 3, pixels.data());
  std::string bytes;
  {
    std::ifstream in(file.path(), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (size_t i = 60; i < bytes.size() - 20; i += 7) bytes[i] = static_cast<char>(~bytes[i]);
  std::ofstream(file.path(), std::ios::binary | std::ios::trunc) << bytes;
  EXPECT_NE(error_message([&] { io::read_png(file.path()); }).find(file.path()), std::string::npos);
}

TEST(Png, WriteErrorNamesPathAndLeavesNothing) {
  const std::string path = ::testing::TempDir() + "ladder_no_such_dir/out.png";
  const auto pixels = random_bytes(4, 5);
  EXPECT_NE(error_message([&] { io::write_png(path, 2, 2, 1, pixels.data()); }).find(path),
            std::string::npos);
  EXPECT_NE(error_message([&] { io::write_png(path, 2, 2, 2, pixels.data()); }).find(path),
            std::string::npos);
}

// Files in layouts write_png never produces, made with libpng's simplified API.
TEST(Png, ExpandsSixteenBitGrayAlphaAndPalette) {
  {
    TempFile file("gray16.png");
    png_image spec{};
    spec.version = PNG_IMAGE_VERSION;
    spec.width = 3;
    spec.height = 2;
    spec.format = PNG_FORMAT_LINEAR_Y;  // 16-bit gray
    const std::vector<uint16_t> gray = {0, 257 * 1, 257 * 100, 257 * 200, 257 * 254, 65535};
    ASSERT_TRUE(png_image_write_to_file(&spec, file.path().c_str(), 0, gray.data(), 0, nullptr));
    const io::Image image = io::read_png(file.path());
    EXPECT_EQ(image.channels, 1);
    EXPECT_EQ(image.pixels, (std::vector<uint8_t>{0, 1, 100, 200, 254, 255}));
  }
  {
    TempFile file("gray_alpha.png");
    png_image spec{};
    spec.version = PNG_IMAGE_VERSION;
    spec.width = 2;
    spec.height = 1;
    spec.format = PNG_FORMAT_GA;
    const std::vector<uint8_t> ga = {10, 200, 90, 255};
    ASSERT_TRUE(png_image_write_to_file(&spec, file.path().c_str(), 0, ga.data(), 0, nullptr));
    const io::Image image = io::read_png(file.path());
    EXPECT_EQ(image.channels, 4);
    EXPECT_EQ(image.pixels, (std::vector<uint8_t>{10, 10, 10, 200, 90, 90, 90, 255}));
  }
  {
    TempFile file("palette.png");
    png_image spec{};
    spec.version = PNG_IMAGE_VERSION;
    spec.width = 4;
    spec.height = 1;
    spec.format = PNG_FORMAT_RGB_COLORMAP;
    spec.colormap_entries = 2;
    const std::vector<uint8_t> colormap = {255, 0, 0, 0, 128, 255};
    const std::vector<uint8_t> indices = {0, 1, 1, 0};
    ASSERT_TRUE(
        png_image_write_to_file(&spec, file.path().c_str(), 0, indices.data(), 0, colormap.data()));
    const io::Image image = io::read_png(file.path());
    EXPECT_EQ(image.channels, 3);
    EXPECT_EQ(image.pixels, (std::vector<uint8_t>{255, 0, 0, 0, 128, 255, 0, 128, 255, 255, 0, 0}));
  }
}

// ---- synthetic images ----

std::vector<uint8_t> render(uint64_t seed, int64_t index, int resolution, int channels) {
  std::vector<uint8_t> out(static_cast<size_t>(resolution) * resolution * channels);
  data::render_synthetic_image(seed, index, resolution, channels, out.data());
  return out;
}

double mean_abs_diff(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  double sum = 0;
  for (size_t i = 0; i < a.size(); ++i) sum += std::abs(int(a[i]) - int(b[i]));
  return sum / static_cast<double>(a.size());
}

// 2x2 box filter of an (R, R, C) image, rounded.
std::vector<uint8_t> downsample2(const std::vector<uint8_t>& image, int resolution, int channels) {
  const int half = resolution / 2;
  std::vector<uint8_t> out(static_cast<size_t>(half) * half * channels);
  for (int y = 0; y < half; ++y)
    for (int x = 0; x < half; ++x)
      for (int c = 0; c < channels; ++c) {
        int sum = 0;
        for (int dy = 0; dy < 2; ++dy)
          for (int dx = 0; dx < 2; ++dx)
            sum += image[((2 * y + dy) * resolution + 2 * x + dx) * channels + c];
        out[(y * half + x) * channels + c] = static_cast<uint8_t>((sum + 2) / 4);
      }
  return out;
}

TEST(SyntheticImages, Deterministic) {
  for (int channels : {1, 3, 4})
    EXPECT_EQ(render(7, 42, 48, channels), render(7, 42, 48, channels));
}

TEST(SyntheticImages, IndicesAndSeedsDiffer) {
  const auto base = render(7, 0, 32, 3);
  EXPECT_GT(mean_abs_diff(base, render(7, 1, 32, 3)), 10.0);
  EXPECT_GT(mean_abs_diff(base, render(8, 0, 32, 3)), 10.0);
}

TEST(SyntheticImages, HasStructure) {
  // Not flat: a wide spread of values in every image.
  for (int64_t index = 0; index < 8; ++index) {
    const auto image = render(3, index, 64, 1);
    const auto [lo, hi] = std::minmax_element(image.begin(), image.end());
    EXPECT_GT(int(*hi) - int(*lo), 60) << "index " << index;
  }
}

TEST(SyntheticImages, SameSceneAtEveryResolution) {
  for (int64_t index = 0; index < 16; ++index) {
    const double d32 =
        mean_abs_diff(render(11, index, 32, 3), downsample2(render(11, index, 64, 3), 64, 3));
    const double d128 =
        mean_abs_diff(render(11, index, 128, 3), downsample2(render(11, index, 256, 3), 256, 3));
    EXPECT_LT(d32, 3.0) << "index " << index;
    EXPECT_LT(d128, 2.0) << "index " << index;
  }
  // Another image is far apart at the same resolution.
  EXPECT_GT(mean_abs_diff(render(11, 0, 32, 3), downsample2(render(11, 1, 64, 3), 64, 3)), 12.0);
}

TEST(SyntheticImages, ChannelsShareTheScene) {
  const auto rgb = render(5, 3, 32, 3), rgba = render(5, 3, 32, 4), gray = render(5, 3, 32, 1);
  for (size_t p = 0; p < 32 * 32; ++p) {
    for (int c = 0; c < 3; ++c) ASSERT_EQ(rgba[p * 4 + c], rgb[p * 3 + c]);
    ASSERT_EQ(rgba[p * 4 + 3], gray[p]);
    const double luma = 0.299 * rgb[p * 3] + 0.587 * rgb[p * 3 + 1] + 0.114 * rgb[p * 3 + 2];
    ASSERT_NEAR(gray[p], luma, 1.5);
  }
}

// ---- image grid and PSNR ----

TensorF ramp_tensor(Shape shape, float offset) {
  TensorF t(shape);
  for (int64_t i = 0; i < t.numel(); ++i)
    t[i] = -1.0f + 2.0f * static_cast<float>((i * 37) % 101) / 100.0f + offset;
  return t;
}

TEST(ImageGrid, ValueMapping) {
  EXPECT_EQ(data::unit_to_byte(-1.0f), 0);
  EXPECT_EQ(data::unit_to_byte(1.0f), 255);
  EXPECT_EQ(data::unit_to_byte(0.0f), 128);  // 127.5 rounds up
  EXPECT_EQ(data::unit_to_byte(-3.0f), 0);
  EXPECT_EQ(data::unit_to_byte(2.5f), 255);
  EXPECT_EQ(data::unit_to_byte(std::nanf("")), 0);
}

TEST(ImageGrid, RgbLayoutAndValues) {
  const Shape shape{3, 4, 5, 3};  // (N, H, W, C)
  const TensorF originals = ramp_tensor(shape, 0.0f), reconstructions = ramp_tensor(shape, 0.1f);
  TempFile file("grid_rgb.png");
  io::write_image_grid(file.path(), {&originals, &reconstructions});

  const io::Image image = io::read_png(file.path());
  const int gap = io::kGridGap;
  ASSERT_EQ(image.height, 2 * 4 + gap);
  ASSERT_EQ(image.width, 3 * 5 + 2 * gap);
  ASSERT_EQ(image.channels, 3);
  auto pixel = [&](int y, int x, int c) { return image.pixels[(y * image.width + x) * 3 + c]; };
  for (int r = 0; r < 2; ++r) {
    const TensorF& t = r == 0 ? originals : reconstructions;
    for (int n = 0; n < 3; ++n)
      for (int y = 0; y < 4; ++y)
        for (int x = 0; x < 5; ++x)
          for (int c = 0; c < 3; ++c)
            ASSERT_EQ(pixel(r * (4 + gap) + y, n * (5 + gap) + x, c),
                      data::unit_to_byte(t.at(n, y, x, c)))
                << "row " << r << " tile " << n;
  }
  EXPECT_EQ(pixel(4, 0, 0), 255);  // horizontal gap
  EXPECT_EQ(pixel(0, 5, 1), 255);  // vertical gap
}

TEST(ImageGrid, GrayFromFirstChannel) {
  for (int64_t channels : {1, 2}) {
    const Shape shape{2, 3, 3, channels};
    const TensorF t = ramp_tensor(shape, 0.0f);
    TempFile file("grid_gray.png");
    io::write_image_grid(file.path(), {&t});
    const io::Image image = io::read_png(file.path());
    ASSERT_EQ(image.channels, 1);
    ASSERT_EQ(image.height, 3);
    ASSERT_EQ(image.width, 2 * 3 + io::kGridGap);
    EXPECT_EQ(image.pixels[2 * image.width + 3 + io::kGridGap + 1],
              data::unit_to_byte(t.at(1, 2, 1, 0)));
  }
}

TEST(ImageGrid, ShapeMismatchThrows) {
  const TensorF a(Shape{2, 4, 4, 3}), b(Shape{2, 4, 4, 1});
  TempFile file("grid_mismatch.png");
  EXPECT_THROW(io::write_image_grid(file.path(), {&a, &b}), Error);
  EXPECT_FALSE(file_exists(file.path()));
}

TEST(Psnr, IdenticalIsInfinite) {
  const TensorF a = ramp_tensor(Shape{2, 4, 4, 3}, 0.0f);
  EXPECT_TRUE(std::isinf(io::psnr(a, a)));
  EXPECT_GT(io::psnr(a, a), 0.0);
}

TEST(Psnr, KnownOffset) {
  const TensorF a = ramp_tensor(Shape{2, 4, 4, 3}, 0.0f);
  TensorF b = a;
  for (int64_t i = 0; i < b.numel(); ++i) b[i] += 0.1f;
  // MSE 0.01 on a peak-to-peak range of 2: 10 log10(4 / 0.01) = 26.0206 dB.
  EXPECT_NEAR(io::psnr(a, b), 10.0 * std::log10(400.0), 1e-4);
  EXPECT_THROW(io::psnr(a, TensorF(Shape{1, 4, 4, 3})), Error);
}

}  // namespace
}  // namespace ladder
