// Why this file exists: checks the HDF5 image store (BRIEF §5): bit-exact round trips at
// every level, sharding that covers every image exactly once, foreign h5py-style files with
// box-filtered rungs, and, for each kind of bad input, one clear error naming the file and
// the problem, never a crash; plus `ladder inspect` on good and corrupt stores.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "cli/inspect_command.h"
#include "core/check.h"
#include "core/rng.h"
#include "io/hdf5.h"
#include "io/image_store.h"
#include "test_support.h"

namespace ladder {
namespace {

using testing::error_message;

using testing::TempDir;

// EXPECT that `message` is one line containing every fragment.
void expect_error(const std::string& message, const std::vector<std::string>& fragments) {
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  for (const std::string& fragment : fragments)
    EXPECT_NE(message.find(fragment), std::string::npos)
        << "missing '" << fragment << "' in: " << message;
}

std::vector<uint8_t> random_bytes(size_t count, uint64_t stream) {
  Rng rng(77, stream);
  std::vector<uint8_t> bytes(count);
  for (auto& b : bytes) b = static_cast<uint8_t>(rng.below(256));
  return bytes;
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string image_name(int i) { return "img-" + std::to_string(i) + ".png"; }

// A store's content: per level (ascending), the images (N, R, R, C) back to back.
struct Content {
  int channels = 3;
  std::vector<int> levels;
  std::vector<std::vector<uint8_t>> pixels;
  int64_t image_bytes(size_t l) const { return int64_t(levels[l]) * levels[l] * channels; }
};

// n random images at the top level; every lower level box-filtered from it.
Content make_content(int n, std::vector<int> levels, int channels = 3) {
  Content content;
  content.channels = channels;
  content.levels = levels;  // ascending, last is the top
  const int top = levels.back();
  content.pixels.resize(levels.size());
  content.pixels.back() = random_bytes(size_t(n) * top * top * channels, 1);
  for (size_t l = 0; l + 1 < levels.size(); ++l) {
    content.pixels[l].resize(size_t(n) * content.image_bytes(l));
    for (int i = 0; i < n; ++i)
      io::box_downsample(content.pixels.back().data() + i * content.image_bytes(levels.size() - 1),
                         top, top, channels, top / levels[l],
                         content.pixels[l].data() + i * content.image_bytes(l));
  }
  return content;
}

void write_store(const std::string& path, const Content& content) {
  // Levels given top first: the writer takes them in any order.
  std::vector<int> order(content.levels.rbegin(), content.levels.rend());
  io::ImageStoreWriter writer(path, content.channels, order);
  const int n = static_cast<int>(content.pixels[0].size() / content.image_bytes(0));
  for (int i = 0; i < n; ++i) {
    std::vector<const uint8_t*> images;
    for (size_t k = 0; k < order.size(); ++k) {
      const size_t l = content.levels.size() - 1 - k;
      images.push_back(content.pixels[l].data() + i * content.image_bytes(l));
    }
    writer.append(images, image_name(i));
  }
  EXPECT_EQ(writer.count(), n);
  writer.finish();
}

std::vector<uint8_t> shard_bytes(const data::ImageShard& shard) {
  return std::vector<uint8_t>(shard.pixels.data(), shard.pixels.data() + shard.pixels.size());
}

// ---- Round trip and sharding ----

TEST(ImageStore, RoundTripBitExactAtEveryLevel) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  const Content content = make_content(10, {8, 16});
  write_store(path, content);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));

  io::ImageStoreReader reader(path);
  const io::StoreInfo& info = reader.info();
  EXPECT_FALSE(info.foreign);
  EXPECT_EQ(info.count, 10);
  EXPECT_EQ(info.channels, 3);
  ASSERT_EQ(info.levels.size(), 2u);
  EXPECT_EQ(info.levels[0].resolution, 8);
  EXPECT_EQ(info.levels[1].resolution, 16);
  EXPECT_EQ(info.levels[1].bytes, 10 * 16 * 16 * 3);
  EXPECT_TRUE(reader.has_resolution(8));
  EXPECT_TRUE(reader.has_resolution(16));
  EXPECT_FALSE(reader.has_resolution(4));

  for (size_t l = 0; l < 2; ++l) {
    const data::ImageShard shard = reader.load_shard(content.levels[l], 0, 1);
    EXPECT_EQ(shard.resolution, content.levels[l]);
    EXPECT_EQ(shard.channels, 3);
    ASSERT_EQ(shard.count(), 10);
    for (int i = 0; i < 10; ++i) EXPECT_EQ(shard.indices[i], i);
    EXPECT_EQ(shard_bytes(shard), content.pixels[l]) << "level " << content.levels[l];
  }

  reader.verify_all();
  EXPECT_NE(info.levels[0].checksum, 0u);
  EXPECT_NE(info.levels[0].checksum, info.levels[1].checksum);
}

TEST(ImageStore, ShardsCoverEveryImageExactlyOnce) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  const Content content = make_content(10, {8, 16});
  write_store(path, content);
  io::ImageStoreReader reader(path);
  const int64_t image_bytes = content.image_bytes(1);
  for (int world = 1; world <= 4; ++world) {
    std::vector<int> held(10, 0);
    for (int rank = 0; rank < world; ++rank) {
      const data::ImageShard shard = reader.load_shard(16, rank, world);
      for (int64_t k = 0; k < shard.count(); ++k) {
        const int64_t i = shard.indices[k];
        ASSERT_TRUE(i >= 0 && i < 10);
        EXPECT_EQ(i % world, rank);
        ++held[i];
        EXPECT_EQ(0, std::memcmp(shard.image(k), content.pixels[1].data() + i * image_bytes,
                                 image_bytes))
            << "world " << world << " rank " << rank << " image " << i;
      }
    }
    for (int i = 0; i < 10; ++i) EXPECT_EQ(held[i], 1) << "world " << world << " image " << i;
  }
}

TEST(ImageStore, WriterWithoutFinishLeavesNothing) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  const Content content = make_content(2, {8});
  {
    io::ImageStoreWriter writer(path, 3, {8});
    writer.append({content.pixels[0].data()}, "a");
    EXPECT_TRUE(std::filesystem::exists(path + ".tmp"));
  }
  EXPECT_FALSE(std::filesystem::exists(path));
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
}

TEST(ImageStore, WriterRejectsBadArguments) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  EXPECT_THROW(io::ImageStoreWriter(path, 5, {8}), Error);
  EXPECT_THROW(io::ImageStoreWriter(path, 3, {}), Error);
  EXPECT_THROW(io::ImageStoreWriter(path, 3, {8, 8}), Error);
  io::ImageStoreWriter writer(path, 3, {8, 16});
  const std::vector<uint8_t> image(8 * 8 * 3);
  EXPECT_THROW(writer.append({image.data()}, "one level only"), Error);
  EXPECT_FALSE(std::filesystem::exists(path));
}

// ---- Bad inputs: each one clear line naming the file and the problem ----

TEST(ImageStoreErrors, TruncatedStore) {
  TempDir dir;
  const std::string good = dir / "good.h5", path = dir / "truncated.h5";
  write_store(good, make_content(10, {8, 16}));
  std::filesystem::copy_file(good, path);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) / 2);
  expect_error(error_message([&] { io::ImageStoreReader reader(path); }), {path, "truncated"});
}

TEST(ImageStoreErrors, FlippedByteInAChunkIsAChecksumMismatch) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  const Content content = make_content(10, {8, 16});
  write_store(path, content);
  // Random pixels are distinctive: find image 3 of level 16 in the raw file, flip one byte.
  std::string bytes = read_bytes(path);
  const int64_t image_bytes = content.image_bytes(1);
  const std::string image(reinterpret_cast<const char*>(content.pixels[1].data() + 3 * image_bytes),
                          image_bytes);
  const size_t at = bytes.find(image);
  ASSERT_NE(at, std::string::npos);
  EXPECT_EQ(bytes.find(image, at + 1), std::string::npos);
  bytes[at + 100] = static_cast<char>(bytes[at + 100] ^ 0x5a);
  write_bytes(path, bytes);

  io::ImageStoreReader reader(path);  // structure intact
  expect_error(error_message([&] { reader.load_shard(16, 0, 1); }),
               {path, "level 16, image 3 ('img-3.png')", "checksum mismatch"});
  expect_error(error_message([&] { reader.load_shard(16, 1, 2); }), {path, "image 3", "checksum mismatch"});
  EXPECT_NO_THROW(reader.load_shard(16, 0, 2));  // the even images are intact
  EXPECT_NO_THROW(reader.load_shard(8, 0, 1));   // and so is the other level
  expect_error(error_message([&] { reader.verify_all(); }),
               {path, "level 16, image 3", "checksum mismatch"});
}

// Replaces /levels/16 of a good store by a dataset of `type` and shape `dims`.
void replace_level(const std::string& path, hid_t type, std::vector<hsize_t> dims) {
  io::h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  ASSERT_TRUE(file.valid());
  ASSERT_GE(H5Ldelete(file.get(), "/levels/16", H5P_DEFAULT), 0);
  io::h5::Dataspace space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr));
  io::h5::Dataset dataset(H5Dcreate2(file.get(), "/levels/16", type, space.get(), H5P_DEFAULT,
                                     H5P_DEFAULT, H5P_DEFAULT));
  ASSERT_TRUE(dataset.valid());
}

TEST(ImageStoreErrors, WrongDtype) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  write_store(path, make_content(10, {8, 16}));
  replace_level(path, H5T_STD_U16LE, {10, 16, 16, 3});
  expect_error(error_message([&] { io::ImageStoreReader reader(path); }),
               {path, "/levels/16", "dtype uint16", "expected uint8"});
  replace_level(path, H5T_IEEE_F32LE, {10, 16, 16, 3});
  expect_error(error_message([&] { io::ImageStoreReader reader(path); }), {path, "float32"});
}

TEST(ImageStoreErrors, WrongShape) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  write_store(path, make_content(10, {8, 16}));
  replace_level(path, H5T_STD_U8LE, {10, 16, 8, 3});
  expect_error(error_message([&] { io::ImageStoreReader reader(path); }),
               {path, "/levels/16", "shape (10, 16, 8, 3)", "expected (N, 16, 16, 3)"});
  replace_level(path, H5T_STD_U8LE, {10, 16, 16, 4});  // channels attribute says 3
  expect_error(error_message([&] { io::ImageStoreReader reader(path); }), {path, "expected (N, 16, 16, 3)"});
}

TEST(ImageStoreErrors, MissingLevel) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  write_store(path, make_content(10, {8}));
  io::ImageStoreReader reader(path);
  EXPECT_TRUE(reader.has_resolution(8));
  EXPECT_FALSE(reader.has_resolution(16));
  expect_error(error_message([&] { reader.load_shard(16, 0, 1); }), {path, "no level 16", "levels: 8"});
}

TEST(ImageStoreErrors, CountMismatch) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  write_store(path, make_content(10, {8, 16}));
  {
    io::h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    io::h5::Dataset names(H5Dopen2(file.get(), "/names", H5P_DEFAULT));
    const hsize_t shorter = 9;
    ASSERT_GE(H5Dset_extent(names.get(), &shorter), 0);
  }
  expect_error(error_message([&] { io::ImageStoreReader reader(path); }),
               {path, "count mismatch", "/names has 9 entries", "10 images"});
}

TEST(ImageStoreErrors, MissingChecksums) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  write_store(path, make_content(4, {8, 16}));
  {
    io::h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    ASSERT_GE(H5Ldelete(file.get(), "/checksums/8", H5P_DEFAULT), 0);
  }
  expect_error(error_message([&] { io::ImageStoreReader reader(path); }), {path, "missing /checksums/8"});
}

TEST(ImageStoreErrors, WrongFormatAndVersion) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  write_store(path, make_content(2, {8}));
  {
    io::h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    ASSERT_GE(H5Adelete(file.get(), "version"), 0);
    io::h5::write_int_attribute(file.get(), "version", 3, path);
  }
  expect_error(error_message([&] { io::ImageStoreReader reader(path); }), {path, "version 3"});
  {
    io::h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    ASSERT_GE(H5Adelete(file.get(), "format"), 0);
    io::h5::write_string_attribute(file.get(), "format", "something-else", path);
  }
  expect_error(error_message([&] { io::ImageStoreReader reader(path); }),
               {path, "'something-else'", "expected 'ladder-image-store'"});
}

TEST(ImageStoreErrors, StoresOfOlderBuildsAskToBeRepacked) {
  TempDir dir;
  const std::string path = dir / "old.h5";
  write_store(path, make_content(2, {8}));
  {  // a store of a build that hashed images with its own function has no checksum attribute
    io::h5::File file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    ASSERT_GE(H5Adelete(file.get(), "checksum"), 0);
  }
  expect_error(error_message([&] { io::ImageStoreReader reader(path); }),
               {path, "older ladder", "repack it with ladder pack"});
}

TEST(ImageStoreErrors, NotHdf5AndMissingFile) {
  TempDir dir;
  const std::string text = dir / "notes.h5", missing = dir / "missing.h5";
  testing::write_file(text, "these are not the images you are looking for\n");
  expect_error(error_message([&] { io::ImageStoreReader reader(text); }), {text, "not an HDF5 file"});
  expect_error(error_message([&] { io::ImageStoreReader reader(missing); }), {missing, "no such file"});
  expect_error(error_message([&] { io::ImageStoreReader reader(dir.path().string()); }),
               {dir.path().string(), "directory"});
}

// ---- Foreign (h5py-style) files ----

// One (N, H, W, C) uint8 dataset `name`, no attributes, written through the HDF5 C API.
void write_foreign(const std::string& path, const std::string& name, std::vector<hsize_t> dims,
                   const std::vector<uint8_t>& pixels) {
  io::h5::File file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  ASSERT_TRUE(file.valid());
  io::h5::Dataspace space(H5Screate_simple(4, dims.data(), nullptr));
  io::h5::Dataset dataset(H5Dcreate2(file.get(), name.c_str(), H5T_STD_U8LE, space.get(),
                                     H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
  ASSERT_TRUE(dataset.valid());
  ASSERT_GE(H5Dwrite(dataset.get(), H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, pixels.data()), 0);
}

TEST(ImageStoreForeign, LoadsAtFullAndBoxFilteredResolution) {
  TempDir dir;
  const std::string path = dir / "h5py.h5";
  const int n = 7, h = 16, c = 3;
  const std::vector<uint8_t> pixels = random_bytes(size_t(n) * h * h * c, 9);  // (N, H, W, C)
  write_foreign(path, "images", {n, h, h, c}, pixels);

  io::ImageStoreReader reader(path, "images");
  const io::StoreInfo& info = reader.info();
  EXPECT_TRUE(info.foreign);
  EXPECT_EQ(info.dataset, "images");
  EXPECT_EQ(info.count, n);
  EXPECT_EQ(info.channels, c);
  EXPECT_EQ(info.height, h);
  EXPECT_TRUE(reader.has_resolution(16));
  EXPECT_TRUE(reader.has_resolution(8));
  EXPECT_TRUE(reader.has_resolution(4));
  EXPECT_FALSE(reader.has_resolution(5));
  EXPECT_FALSE(reader.has_resolution(32));

  EXPECT_EQ(shard_bytes(reader.load_shard(16, 0, 1)), pixels);

  // An independent 2x2 box filter (rounded mean), on rank 1 of 2.
  const data::ImageShard half = reader.load_shard(8, 1, 2);
  ASSERT_EQ(half.count(), 3);
  for (int64_t k = 0; k < half.count(); ++k) {
    const int64_t i = half.indices[k];
    EXPECT_EQ(i, 1 + 2 * k);
    const uint8_t* src = pixels.data() + i * h * h * c;
    for (int y = 0; y < 8; ++y)
      for (int x = 0; x < 8; ++x)
        for (int ch = 0; ch < c; ++ch) {
          int sum = 0;
          for (int dy = 0; dy < 2; ++dy)
            for (int dx = 0; dx < 2; ++dx) sum += src[((2 * y + dy) * h + 2 * x + dx) * c + ch];
          ASSERT_EQ(half.image(k)[(y * 8 + x) * c + ch], (sum + 2) / 4)
              << "image " << i << " at " << y << "," << x << "," << ch;
        }
  }

  expect_error(error_message([&] { reader.load_shard(5, 0, 1); }),
               {path, "resolution 5", "16x16"});
  reader.verify_all();
  ASSERT_EQ(info.levels.size(), 1u);
  EXPECT_EQ(info.levels[0].resolution, 16);
}

TEST(ImageStoreForeign, FilesThatReachOutsideThemselvesAreRefused) {
  // docs/SECURITY.md: a file must not make ladder read other files. An external link to a
  // good dataset, and a dataset whose raw data lives in an external file, are both refused
  // on open, naming the object.
  TempDir dir;
  const std::vector<uint8_t> pixels(2 * 8 * 8 * 3, 9);
  write_foreign(dir / "target.h5", "images", {2, 8, 8, 3}, pixels);
  {
    io::h5::File file(H5Fcreate((dir / "link.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    ASSERT_GE(H5Lcreate_external((dir / "target.h5").c_str(), "/images", file.get(), "images", H5P_DEFAULT,
                                 H5P_DEFAULT), 0);
  }
  expect_error(error_message([&] { io::ImageStoreReader reader(dir / "link.h5", "images"); }),
               {dir / "link.h5", "/images", "external", "self-contained"});
  {
    const std::string raw = dir / "raw.bin";
    std::ofstream(raw, std::ios::binary).write(reinterpret_cast<const char*>(pixels.data()), pixels.size());
    io::h5::File file(H5Fcreate((dir / "storage.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
    const hsize_t dims[4] = {2, 8, 8, 3};
    io::h5::Dataspace space(H5Screate_simple(4, dims, nullptr));
    io::h5::PropList create(H5Pcreate(H5P_DATASET_CREATE));
    ASSERT_GE(H5Pset_external(create.get(), raw.c_str(), 0, pixels.size()), 0);
    io::h5::Dataset dataset(H5Dcreate2(file.get(), "images", H5T_STD_U8LE, space.get(), H5P_DEFAULT, create.get(),
                                       H5P_DEFAULT));
    ASSERT_TRUE(dataset.valid());
  }
  expect_error(error_message([&] { io::ImageStoreReader reader(dir / "storage.h5", "images"); }),
               {dir / "storage.h5", "/images", "external files"});
  io::ImageStoreReader good(dir / "target.h5", "images");  // the target itself is fine
  EXPECT_EQ(good.info().count, 2);
}

TEST(ImageStoreForeign, ErrorsNameTheDatasetAndTheProblem) {
  TempDir dir;
  const std::string path = dir / "h5py.h5";
  write_foreign(path, "images", {2, 8, 8, 3}, std::vector<uint8_t>(2 * 8 * 8 * 3, 7));
  expect_error(error_message([&] { io::ImageStoreReader reader(path, "pixels"); }),
               {path, "no dataset 'pixels'", "images"});
  // Without a dataset name: not a ladder store, and the hint names what is there.
  expect_error(error_message([&] { io::ImageStoreReader reader(path); }),
               {path, "not a ladder image store", "images"});

  const std::string wide = dir / "wide.h5";
  write_foreign(wide, "images", {2, 8, 12, 3}, std::vector<uint8_t>(2 * 8 * 12 * 3, 7));
  expect_error(error_message([&] { io::ImageStoreReader reader(wide, "images"); }),
               {wide, "'images'", "not square"});

  const std::string five = dir / "five.h5";
  write_foreign(five, "images", {2, 8, 8, 5}, std::vector<uint8_t>(2 * 8 * 8 * 5, 7));
  expect_error(error_message([&] { io::ImageStoreReader reader(five, "images"); }),
               {five, "5 channels"});
}

// ---- ladder inspect ----

TEST(Inspect, GoodStoreIsValid) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  write_store(path, make_content(10, {8, 16}));
  ::testing::internal::CaptureStdout();
  const int code = inspect_command({path});
  const std::string output = ::testing::internal::GetCapturedStdout();
  EXPECT_EQ(code, 0);
  for (const char* fragment : {"ladder-image-store", "count:     10", "channels:  3", "valid",
                               "1920", "7680", "7.50 KiB"})
    EXPECT_NE(output.find(fragment), std::string::npos) << "missing '" << fragment << "' in:\n"
                                                        << output;
}

TEST(Inspect, CorruptStoreAndDirectoryThrow) {
  TempDir dir;
  const std::string path = dir / "s.h5";
  const Content content = make_content(4, {8});
  write_store(path, content);
  std::string bytes = read_bytes(path);
  const size_t at = bytes.find(std::string(reinterpret_cast<const char*>(content.pixels[0].data()), 192));
  ASSERT_NE(at, std::string::npos);
  bytes[at + 5] = static_cast<char>(bytes[at + 5] ^ 1);
  write_bytes(path, bytes);
  ::testing::internal::CaptureStdout();
  const std::string message = error_message([&] { inspect_command({path}); });
  ::testing::internal::GetCapturedStdout();
  expect_error(message, {path, "level 8, image 0", "checksum mismatch"});

  expect_error(error_message([&] { inspect_command({dir.path().string()}); }),
               {"neither a checkpoint (no manifest.json) nor a run directory"});
  EXPECT_THROW(inspect_command({}), UsageError);
}

}  // namespace
}  // namespace ladder
