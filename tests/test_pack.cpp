// Why this file exists: `ladder pack` must turn folders of user images (and the synthetic
// generator) into stores whose pixels are exactly what the spec says: the top level bit-exact
// for images already at that size, every lower level the box filter of the top, files in
// sorted order, and bad inputs skipped or refused with a clear message (issue 3).
#include <gtest/gtest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/pack_command.h"
#include "core/check.h"
#include "data/synthetic_images.h"
#include "io/hdf5.h"
#include "io/image_decode.h"
#include "io/image_store.h"
#include "io/png.h"
#include "test_support.h"

namespace ladder {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

// Deterministic noise plus a gradient: (H, W, C).
std::vector<uint8_t> pattern(int height, int width, int channels, uint32_t seed) {
  std::vector<uint8_t> pixels(size_t(height) * width * channels);
  uint32_t state = seed * 2654435761u + 12345u;
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c) {
        state = state * 1664525u + 1013904223u;
        const int noise = int(state >> 27) - 16;  // [-16, 15]
        const int value = (x * 255 / std::max(1, width - 1) + y * 97 + c * 60) % 256 + noise;
        pixels[(size_t(y) * width + x) * channels + c] = uint8_t(std::clamp(value, 0, 255));
      }
  return pixels;
}

// Smooth content for JPEG inputs (noise would make lossy coding error large).
std::vector<uint8_t> smooth(int height, int width, int channels) {
  std::vector<uint8_t> pixels(size_t(height) * width * channels);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      for (int c = 0; c < channels; ++c)
        pixels[(size_t(y) * width + x) * channels + c] =
            uint8_t(40 + (x * 120) / width + (y * 60) / height + c * 20);
  return pixels;
}

// The spec's box filter, written out independently: (S, S, C) → (S/f, S/f, C).
std::vector<uint8_t> reference_box(const uint8_t* in, int side, int channels, int factor) {
  const int out_side = side / factor;
  std::vector<uint8_t> out(size_t(out_side) * out_side * channels);
  const unsigned area = unsigned(factor * factor);
  for (int oy = 0; oy < out_side; ++oy)
    for (int ox = 0; ox < out_side; ++ox)
      for (int c = 0; c < channels; ++c) {
        unsigned sum = 0;
        for (int y = oy * factor; y < (oy + 1) * factor; ++y)
          for (int x = ox * factor; x < (ox + 1) * factor; ++x)
            sum += in[(size_t(y) * side + x) * channels + c];
        out[(size_t(oy) * out_side + ox) * channels + c] = uint8_t((sum + area / 2) / area);
      }
  return out;
}

// Exact area average written out in 2-D (not separable): output pixel (oy, ox) covers
// [o·S/n, (o+1)·S/n) of the input in both axes; weights are overlap areas in units of 1/n².
std::vector<uint8_t> reference_area(const uint8_t* in, int side, int channels, int n) {
  std::vector<uint8_t> out(size_t(n) * n * channels);
  auto overlap = [&](int o, int i) {
    const long lo = std::max<long>(long(o) * side, long(i) * n);
    const long hi = std::min<long>(long(o + 1) * side, long(i + 1) * n);
    return std::max<long>(0, hi - lo);
  };
  const uint64_t area = uint64_t(side) * side;
  for (int oy = 0; oy < n; ++oy)
    for (int ox = 0; ox < n; ++ox)
      for (int c = 0; c < channels; ++c) {
        uint64_t sum = 0;
        for (int y = 0; y < side; ++y)
          for (int x = 0; x < side; ++x)
            sum += uint64_t(overlap(oy, y)) * uint64_t(overlap(ox, x)) *
                   in[(size_t(y) * side + x) * channels + c];
        out[(size_t(oy) * n + ox) * channels + c] = uint8_t((sum + area / 2) / area);
      }
  return out;
}

std::vector<uint8_t> crop(const std::vector<uint8_t>& in, int height, int width, int channels) {
  const int side = std::min(height, width), y0 = (height - side) / 2, x0 = (width - side) / 2;
  std::vector<uint8_t> out;
  for (int y = 0; y < side; ++y)
    for (int x = 0; x < side; ++x)
      for (int c = 0; c < channels; ++c)
        out.push_back(in[(size_t(y0 + y) * width + x0 + x) * channels + c]);
  return out;
}

// Image i of a level, as bytes.
std::vector<uint8_t> image_of(const data::ImageShard& shard, int64_t i) {
  const uint8_t* p = shard.image(i);
  return std::vector<uint8_t>(p, p + shard.image_bytes());
}

std::vector<std::string> read_names(const std::string& path) {
  io::h5::File file = io::h5::open_file(path);
  io::h5::Dataset names(io::h5::check(H5Dopen2(file.get(), "/names", H5P_DEFAULT), path, "open /names"));
  const std::vector<hsize_t> dims = io::h5::shape(names.get());
  std::vector<std::string> out;
  for (hsize_t i = 0; i < dims.at(0); ++i)
    out.push_back(io::h5::read_string_element(names.get(), i, path));
  return out;
}

int pack(const std::vector<std::string>& args) { return pack_command(args); }

// pack() with stderr captured into *err; the capture ends even when pack throws.
int pack_capturing_stderr(const std::vector<std::string>& args, std::string* err) {
  ::testing::internal::CaptureStderr();
  try {
    const int code = pack(args);
    *err = ::testing::internal::GetCapturedStderr();
    return code;
  } catch (...) {
    *err = ::testing::internal::GetCapturedStderr();
    throw;
  }
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

bool no_store_at(const std::string& out) {
  return !fs::exists(out) && !fs::exists(out + ".tmp");
}

// ---- pixel steps

TEST(PackPixels, ToChannels) {
  io::Image rgb{1, 2, 3, {10, 20, 30, 255, 0, 128}};
  io::Image gray = io::to_channels(rgb, 1);
  ASSERT_EQ(gray.channels, 1);
  EXPECT_EQ(gray.pixels[0], (299 * 10 + 587 * 20 + 114 * 30 + 500) / 1000);
  EXPECT_EQ(gray.pixels[1], (299 * 255 + 587 * 0 + 114 * 128 + 500) / 1000);
  io::Image rgba = io::to_channels(rgb, 4);
  EXPECT_EQ(rgba.pixels, (std::vector<uint8_t>{10, 20, 30, 255, 255, 0, 128, 255}));
  io::Image back = io::to_channels(rgba, 3);
  EXPECT_EQ(back.pixels, rgb.pixels);
  io::Image gray_alpha{1, 1, 2, {77, 9}};
  EXPECT_EQ(io::to_channels(gray_alpha, 3).pixels, (std::vector<uint8_t>{77, 77, 77}));
  EXPECT_EQ(io::to_channels(gray_alpha, 4).pixels, (std::vector<uint8_t>{77, 77, 77, 9}));
  EXPECT_EQ(io::to_channels(gray_alpha, 1).pixels, (std::vector<uint8_t>{77}));
}

TEST(PackPixels, CenterCrop) {
  io::Image tall{5, 2, 1, {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}};  // crop rows 1..2 ((5-2)/2 = 1)
  io::Image square = io::center_crop_square(tall);
  EXPECT_EQ(square.height, 2);
  EXPECT_EQ(square.pixels, (std::vector<uint8_t>{2, 3, 4, 5}));
  io::Image wide{1, 4, 1, {0, 1, 2, 3}};  // offset (4-1)/2 = 1
  EXPECT_EQ(io::center_crop_square(wide).pixels, (std::vector<uint8_t>{1}));
}

TEST(PackPixels, AreaResizeIsExact) {
  for (auto [side, n] : std::vector<std::pair<int, int>>{{7, 3}, {10, 4}, {24, 16}, {13, 13},
                                                         {12, 4}, {9, 3}, {30, 7}}) {
    io::Image image{side, side, 3, pattern(side, side, 3, uint32_t(side * 31 + n))};
    io::Image out = io::area_resize(image, n);
    ASSERT_EQ(out.height, n);
    EXPECT_EQ(out.pixels, reference_area(image.pixels.data(), side, 3, n)) << side << " -> " << n;
    if (side % n == 0) {
      EXPECT_EQ(out.pixels, reference_box(image.pixels.data(), side, 3, side / n)) << side;
    }
  }
  io::Image flat{11, 11, 1, std::vector<uint8_t>(121, 200)};
  EXPECT_EQ(io::area_resize(flat, 4).pixels, std::vector<uint8_t>(16, 200));
}

// ---- folder packs

struct JpegFiles {
  std::string good, truncated, garbage;
};

// A good 64×64 JPEG, a copy cut to half its length, and a copy with 64 garbage bytes two
// thirds in (inside the entropy-coded data).
JpegFiles write_jpegs(const TempDir& dir, const std::string& folder) {
  JpegFiles files{dir / (folder + "/good.jpg"), dir / (folder + "/truncated.jpg"),
                  dir / (folder + "/garbage.jpg")};
  const std::vector<uint8_t> pixels = pattern(64, 64, 3, 99);
  io::write_jpeg(files.good, 64, 64, 3, pixels.data(), 95);
  const std::string bytes = read_bytes(files.good);
  write_bytes(files.truncated, bytes.substr(0, bytes.size() / 2));
  std::string damaged = bytes;
  uint32_t state = 7;
  for (size_t i = damaged.size() * 2 / 3; i < damaged.size() * 2 / 3 + 64 && i + 2 < damaged.size(); ++i) {
    state = state * 1664525u + 1013904223u;
    damaged[i] = char(state >> 24);
  }
  write_bytes(files.garbage, damaged);
  return files;
}

TEST(Pack, FolderRoundTrip) {
  TempDir dir;
  const std::string images = dir / "images";
  fs::create_directories(images + "/sub");
  const auto a = pattern(16, 16, 3, 1), b = pattern(16, 16, 3, 2), c = pattern(16, 16, 3, 3);
  const auto large = pattern(40, 24, 3, 4);  // (H 40, W 24): crop 24×24 from row 8, area to 16
  const auto jpeg_pixels = smooth(16, 16, 3);
  io::write_png(images + "/b.png", 16, 16, 3, b.data());
  io::write_png(images + "/a.png", 16, 16, 3, a.data());
  io::write_png(images + "/sub/c.png", 16, 16, 3, c.data());
  io::write_png(images + "/large.png", 40, 24, 3, large.data());
  io::write_jpeg(images + "/e.jpg", 16, 16, 3, jpeg_pixels.data(), 95);

  const std::string out = dir / "s.h5";
  ASSERT_EQ(pack({"--images", images, "--out", out, "--levels", "4,8,16"}), 0);
  EXPECT_FALSE(fs::exists(out + ".tmp"));

  EXPECT_EQ(read_names(out),
            (std::vector<std::string>{"a.png", "b.png", "e.jpg", "large.png", "sub/c.png"}));
  io::ImageStoreReader reader(out);
  EXPECT_EQ(reader.info().count, 5);
  EXPECT_EQ(reader.info().channels, 3);
  const data::ImageShard top = reader.load_shard(16, 0, 1);
  ASSERT_EQ(top.count(), 5);
  EXPECT_EQ(image_of(top, 0), a);
  EXPECT_EQ(image_of(top, 1), b);
  EXPECT_EQ(image_of(top, 4), c);
  const std::vector<uint8_t> large_square = crop(large, 40, 24, 3);
  EXPECT_EQ(image_of(top, 3), reference_area(large_square.data(), 24, 3, 16));
  // The JPEG is lossy: its top level is what the decoder gives, close to the original.
  EXPECT_EQ(image_of(top, 2), io::decode_image_file(images + "/e.jpg").pixels);
  int worst = 0;
  for (size_t i = 0; i < jpeg_pixels.size(); ++i)
    worst = std::max(worst, std::abs(int(image_of(top, 2)[i]) - int(jpeg_pixels[i])));
  EXPECT_LE(worst, 12);

  for (int level : {4, 8}) {
    const data::ImageShard lower = reader.load_shard(level, 0, 1);
    ASSERT_EQ(lower.count(), 5);
    for (int64_t i = 0; i < 5; ++i)
      EXPECT_EQ(image_of(lower, i), reference_box(top.image(i), 16, 3, 16 / level))
          << "level " << level << " image " << i;
  }
}

TEST(Pack, CorruptJpegsAmongGoodOnesAreSkipped) {
  TempDir dir;
  const std::string images = dir / "images";
  fs::create_directories(images);
  const JpegFiles jpegs = write_jpegs(dir, "images");
  const auto png = pattern(16, 16, 3, 5);
  io::write_png(images + "/a.png", 16, 16, 3, png.data());

  for (const std::string& bad : {jpegs.truncated, jpegs.garbage}) {
    try {
      io::decode_image_file(bad);
      ADD_FAILURE() << bad << " decoded without an error";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
    }
  }

  const std::string out = dir / "s.h5";
  std::string err;
  const int code = pack_capturing_stderr({"--images", images, "--out", out, "--levels", "8,16"}, &err);
  ASSERT_EQ(code, 0);
  EXPECT_EQ(read_names(out), (std::vector<std::string>{"a.png", "good.jpg"}));
  EXPECT_NE(err.find("skipped 2 of 4 files"), std::string::npos) << err;
  EXPECT_NE(err.find("truncated.jpg"), std::string::npos) << err;
  EXPECT_NE(err.find("garbage.jpg"), std::string::npos) << err;
  const data::ImageShard top = io::ImageStoreReader(out).load_shard(16, 0, 1);
  EXPECT_EQ(image_of(top, 0), png);
}

TEST(Pack, EmptyFolderIsAnErrorAndLeavesNoStore) {
  TempDir dir;
  fs::create_directories(dir / "empty");
  const std::string out = dir / "s.h5";
  try {
    pack({"--images", dir / "empty", "--out", out, "--levels", "16"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no images found under"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(no_store_at(out));
}

TEST(Pack, OnlyNonImagesIsAnErrorListingThem) {
  TempDir dir;
  const std::string images = dir / "images";
  fs::create_directories(images);
  testing::write_file(images + "/notes.txt", "not an image\n");
  testing::write_file(images + "/fake.png", "a text file named like a PNG\n");
  const std::string out = dir / "s.h5";
  testing::write_file(out, "previous store");  // must survive a failed pack
  try {
    pack({"--images", images, "--out", out, "--levels", "16"});
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("no images found under " + images), std::string::npos) << message;
    EXPECT_NE(message.find("2 files skipped"), std::string::npos) << message;
    EXPECT_NE(message.find("notes.txt"), std::string::npos) << message;
    EXPECT_NE(message.find("fake.png"), std::string::npos) << message;
  }
  EXPECT_EQ(testing::read_file(out), "previous store");
  EXPECT_FALSE(fs::exists(out + ".tmp"));
}

TEST(Pack, TooSmallImagesAreSkipped) {
  TempDir dir;
  const std::string images = dir / "images";
  fs::create_directories(images);
  const auto big = pattern(16, 16, 3, 6), small = pattern(8, 30, 3, 7);
  io::write_png(images + "/big.png", 16, 16, 3, big.data());
  io::write_png(images + "/small.png", 8, 30, 3, small.data());
  const std::string out = dir / "s.h5";
  std::string err;
  ASSERT_EQ(pack_capturing_stderr({"--images", images, "--out", out, "--levels", "16"}, &err), 0);
  EXPECT_EQ(read_names(out), (std::vector<std::string>{"big.png"}));
  EXPECT_NE(err.find("smaller than 16 px"), std::string::npos) << err;
  EXPECT_NE(err.find("small.png"), std::string::npos) << err;
}

TEST(Pack, GrayAndRgbaBecomeRgb) {
  TempDir dir;
  const std::string images = dir / "images";
  fs::create_directories(images);
  const auto gray = pattern(16, 16, 1, 8), rgba = pattern(16, 16, 4, 9);
  io::write_png(images + "/gray.png", 16, 16, 1, gray.data());
  io::write_png(images + "/rgba.png", 16, 16, 4, rgba.data());
  const std::string out = dir / "s.h5";
  ASSERT_EQ(pack({"--images", images, "--out", out, "--levels", "8,16", "--channels", "3"}), 0);
  const data::ImageShard top = io::ImageStoreReader(out).load_shard(16, 0, 1);
  ASSERT_EQ(top.channels, 3);
  const auto g = image_of(top, 0), r = image_of(top, 1);
  for (int p = 0; p < 256; ++p)
    for (int c = 0; c < 3; ++c) {
      EXPECT_EQ(g[size_t(p) * 3 + c], gray[size_t(p)]);
      EXPECT_EQ(r[size_t(p) * 3 + c], rgba[size_t(p) * 4 + c]);
    }

  // And RGB into one channel: the integer BT.601 luminance.
  const std::string out1 = dir / "gray.h5";
  fs::remove(images + "/gray.png");
  ASSERT_EQ(pack({"--images", images, "--out", out1, "--levels", "16", "--channels", "1"}), 0);
  const data::ImageShard one = io::ImageStoreReader(out1).load_shard(16, 0, 1);
  ASSERT_EQ(one.channels, 1);
  for (int p = 0; p < 256; ++p) {
    const uint8_t* px = &rgba[size_t(p) * 4];
    ASSERT_EQ(one.image(0)[p], (299 * px[0] + 587 * px[1] + 114 * px[2] + 500) / 1000);
  }
}

// ---- synthetic packs

TEST(Pack, SyntheticIsDeterministicAndLevelsConsistent) {
  TempDir dir;
  const std::string first = dir / "a.h5", second = dir / "b.h5", other = dir / "c.h5";
  for (const std::string& out : {first, second})
    ASSERT_EQ(pack({"--synthetic", "5", "--out", out, "--levels", "8,16,32", "--seed", "7"}), 0);
  ASSERT_EQ(pack({"--synthetic", "5", "--out", other, "--levels", "8,16,32", "--seed", "8"}), 0);
  EXPECT_EQ(read_names(first)[4], "synthetic:7:4");

  io::ImageStoreReader a(first), b(second), c(other);
  const data::ImageShard top = a.load_shard(32, 0, 1);
  ASSERT_EQ(top.count(), 5);
  std::vector<uint8_t> direct(32 * 32 * 3);
  for (int64_t i = 0; i < 5; ++i) {
    data::render_synthetic_image(7, i, 32, 3, direct.data());
    EXPECT_EQ(image_of(top, i), direct) << i;
  }
  for (int level : {8, 16, 32}) {
    const data::ImageShard la = a.load_shard(level, 0, 1), lb = b.load_shard(level, 0, 1),
                           lc = c.load_shard(level, 0, 1);
    EXPECT_EQ(la.pixels.size(), lb.pixels.size());
    EXPECT_TRUE(std::equal(la.pixels.data(), la.pixels.data() + la.pixels.size(), lb.pixels.data()))
        << level;
    EXPECT_FALSE(std::equal(la.pixels.data(), la.pixels.data() + la.pixels.size(), lc.pixels.data()))
        << level;
    for (int64_t i = 0; i < 5; ++i)
      EXPECT_EQ(image_of(la, i), reference_box(top.image(i), 32, 3, 32 / level)) << level << " " << i;
  }
}

// ---- arguments

void expect_usage_error(const std::vector<std::string>& args, const std::string& text) {
  try {
    pack(args);
    ADD_FAILURE() << "no usage error for " << ::testing::PrintToString(args);
  } catch (const UsageError& e) {
    EXPECT_NE(std::string(e.what()).find(text), std::string::npos) << e.what();
  }
}

TEST(Pack, ArgumentErrors) {
  TempDir dir;
  const std::string out = dir / "s.h5";
  expect_usage_error({"--synthetic", "2", "--levels", "8"}, "--out");
  expect_usage_error({"--synthetic", "2", "--out", out, "--levels", "384,1024"},
                     "--levels: 384 does not divide 1024");
  expect_usage_error({"--synthetic", "2", "--out", out, "--levels", "8,x"}, "--levels");
  expect_usage_error({"--synthetic", "2", "--out", out, "--levels", ""}, "--levels");
  expect_usage_error({"--synthetic", "2", "--out", out, "--levels", "8,8"}, "--levels");
  expect_usage_error({"--synthetic", "2", "--out", out}, "--levels");
  expect_usage_error({"--synthetic", "0", "--out", out, "--levels", "8"}, "at least 1");
  expect_usage_error({"--synthetic", "2", "--out", out, "--levels", "8", "--channels", "2"},
                     "--channels");
  expect_usage_error({"--synthetic", "2", "--images", dir / ".", "--out", out, "--levels", "8"},
                     "give one of");
  expect_usage_error({"--out", out, "--levels", "8"}, "--images DIR, --nifti DIR or --synthetic N");
  expect_usage_error({"--synthetic", "2", "--out", out, "--levels", "8", "--bogus"}, "--bogus");
  expect_usage_error({"--images", dir / "missing", "--out", out, "--levels", "8"}, "not a folder");
  EXPECT_TRUE(no_store_at(out));

  ::testing::internal::CaptureStdout();
  EXPECT_EQ(pack({"--help"}), 0);
  EXPECT_NE(::testing::internal::GetCapturedStdout().find("ladder pack --images DIR"),
            std::string::npos);
}

}  // namespace
}  // namespace ladder
