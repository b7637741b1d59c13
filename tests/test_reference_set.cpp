// Why this file exists: the reference side of FID and KID (eval/reference_set.h) and the
// diversity of samples (eval/sample_diversity.h). pytorch-fid's .npz statistics are read from
// stored and deflated archives, float32 and float64, C and Fortran order, and give the FID the
// same features give; damaged ones are one line; an image store's features are cached beside
// it, read back on the next run, and extracted again once the store changes; MS-SSIM diversity
// is 1 for identical images, low for unrelated noise, and the mean of the pairs' MS-SSIM.
#include <gtest/gtest.h>
#include <zip.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "comm/communicator.h"
#include "core/rng.h"
#include "eval/feature_statistics.h"
#include "eval/sample_diversity.h"
#include "eval/structural_similarity.h"
#include "io/feature_file.h"
#include "io/npz_statistics.h"
#include "test_support.h"

namespace ladder {
namespace {

using testing::TempDir;

// A .npy of `values` with `shape`, as numpy.save writes it (format 1.0, header padded to 64).
std::string npy(const std::vector<double>& values, const std::vector<int64_t>& shape, bool float32, bool fortran) {
  std::string dims;
  for (int64_t d : shape) dims += std::to_string(d) + ", ";
  if (shape.size() > 1) dims.resize(dims.size() - 2);
  std::string header = std::string("{'descr': '") + (float32 ? "<f4" : "<f8") + "', 'fortran_order': " +
                       (fortran ? "True" : "False") + ", 'shape': (" + dims + "), }";
  while ((10 + header.size() + 1) % 64 != 0) header += ' ';
  header += '\n';
  std::string out = "\x93NUMPY";
  out += '\x01', out += '\x00';
  out += static_cast<char>(header.size() & 0xff), out += static_cast<char>(header.size() >> 8);
  out += header;
  for (double v : values) {
    if (float32) {
      const float f = static_cast<float>(v);
      out.append(reinterpret_cast<const char*>(&f), 4);
    } else {
      out.append(reinterpret_cast<const char*>(&v), 8);
    }
  }
  return out;
}

void write_npz(const std::string& path, const std::vector<std::pair<std::string, std::string>>& members, bool deflate) {
  int error = 0;
  zip_t* archive = zip_open(path.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &error);
  ASSERT_NE(archive, nullptr);
  for (const auto& [name, bytes] : members) {
    zip_source_t* source = zip_source_buffer(archive, bytes.data(), bytes.size(), 0);
    const zip_int64_t index = zip_file_add(archive, name.c_str(), source, ZIP_FL_OVERWRITE);
    ASSERT_GE(index, 0);
    zip_set_file_compression(archive, static_cast<zip_uint64_t>(index), deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  ASSERT_EQ(zip_close(archive), 0);  // writes the archive (the sources are read here)
}

std::vector<float> random_features(int64_t n, int d, uint64_t seed) {
  Rng rng(seed, 0);
  std::vector<float> f(static_cast<size_t>(n * d));
  for (float& v : f) v = static_cast<float>(rng.normal());
  return f;
}

double fid_line(const std::string& output) {
  double fid = NAN;
  const size_t at = output.find("\nfid ");
  if (at != std::string::npos) std::sscanf(output.c_str() + at + 1, "fid %lf", &fid);
  return fid;
}

TEST(Npz, PytorchFidStatisticsGiveTheFidOfTheirFeatures) {
  TempDir dir;
  constexpr int kDims = 8;
  io::FeatureSet a, b;
  a.count = 60, b.count = 50, a.dims = b.dims = kDims;
  a.values = random_features(60, kDims, 1);
  b.values = random_features(50, kDims, 2);
  for (float& v : b.values) v = 0.5f * v + 0.3f;
  io::write_feature_set(dir / "a.h5", a);
  io::write_feature_set(dir / "b.h5", b);
  const eval::FeatureStatistics s = eval::feature_statistics(b.values.data(), b.count, kDims);
  write_npz(dir / "b.npz", {{"mu.npy", npy(s.mean, {kDims}, false, false)},
                            {"sigma.npy", npy(s.covariance, {kDims, kDims}, false, false)}}, false);
  write_npz(dir / "b32.npz", {{"mu.npy", npy(s.mean, {kDims}, true, false)},
                              {"sigma.npy", npy(s.covariance, {kDims, kDims}, true, true)}}, true);

  const testing::CommandResult features = testing::run_ladder("evaluate --features " + (dir / "a.h5") +
                                                              " --reference " + (dir / "b.h5"));
  const testing::CommandResult stats = testing::run_ladder("evaluate --features " + (dir / "a.h5") +
                                                           " --reference " + (dir / "b.npz"));
  const testing::CommandResult stats32 = testing::run_ladder("evaluate --features " + (dir / "a.h5") +
                                                             " --reference " + (dir / "b32.npz"));
  ASSERT_EQ(features.exit_code, 0) << features.output;
  ASSERT_EQ(stats.exit_code, 0) << stats.output;
  ASSERT_EQ(stats32.exit_code, 0) << stats32.output;
  const double expected = fid_line(features.output);
  EXPECT_GT(expected, 0.5);
  EXPECT_NEAR(fid_line(stats.output), expected, 1e-12 * expected) << stats.output;
  EXPECT_NEAR(fid_line(stats32.output), expected, 1e-5 * expected) << stats32.output;  // float32 statistics
  EXPECT_NE(stats.output.find("kid: not available"), std::string::npos) << stats.output;

  // Fortran order is undone: a non-symmetric matrix comes back row-major.
  write_npz(dir / "f.npz", {{"mu.npy", npy({1, 2}, {2}, false, false)},
                            {"sigma.npy", npy({1, 3, 2, 4}, {2, 2}, false, true)}}, true);
  const io::NpzStatistics f = io::read_npz_statistics(dir / "f.npz");
  EXPECT_EQ(f.sigma, (std::vector<double>{1, 2, 3, 4}));
}

TEST(Npz, DamagedStatisticsAreOneLineNamingTheFile) {
  TempDir dir;
  testing::write_file(dir / "text.npz", "not a zip archive");
  write_npz(dir / "no_sigma.npz", {{"mu.npy", npy({1, 2}, {2}, false, false)}}, false);
  write_npz(dir / "shape.npz", {{"mu.npy", npy({1, 2}, {2}, false, false)},
                                {"sigma.npy", npy({1, 2, 3}, {3}, false, false)}}, false);
  write_npz(dir / "int.npz", {{"mu.npy", std::string("\x93NUMPY\x01\x00\x1e\x00{'descr': '<i8', 'shape': (1,), }"
                                                     "\n12345678", 48)},
                              {"sigma.npy", npy({1}, {1, 1}, false, false)}}, false);
  for (const auto& [file, says] : std::vector<std::pair<std::string, std::string>>{
           {"text.npz", "cannot read pytorch-fid statistics"},
           {"no_sigma.npz", "no array 'sigma'"},
           {"shape.npz", "sigma must be (2, 2)"},
           {"int.npz", "is not supported"}}) {
    const std::string message = testing::error_message([&] { io::read_npz_statistics(dir / file); });
    EXPECT_NE(message.find(dir / file), std::string::npos) << message;
    EXPECT_NE(message.find(says), std::string::npos) << file << ": " << message;
  }
}

TEST(ReferenceSet, StoreFeaturesAreCachedBesideTheStoreUntilItChanges) {
  TempDir dir;
  const std::string store = dir / "s.h5";
  std::filesystem::copy_file(testing::small_synthetic_store(), store);
  const std::string args = "evaluate --store " + testing::small_synthetic_store() +
                           " --weights random:3 --resolution 32 --count 6 --reference " + store;
  const testing::CommandResult first = testing::run_ladder(args);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  EXPECT_NE(first.output.find("features cached in " + store + ".fid-32-pytorch_fid-"), std::string::npos)
      << first.output;
  const testing::CommandResult second = testing::run_ladder(args);
  ASSERT_EQ(second.exit_code, 0) << second.output;
  EXPECT_NE(second.output.find("features from the cache"), std::string::npos) << second.output;
  EXPECT_EQ(fid_line(second.output), fid_line(first.output));
  // Another input mode is another cache; a changed store is not read from the stale one.
  const testing::CommandResult tf1 = testing::run_ladder(args + " --mode tf1");
  ASSERT_EQ(tf1.exit_code, 0) << tf1.output;
  EXPECT_NE(tf1.output.find("features cached in " + store + ".fid-32-tf1-"), std::string::npos) << tf1.output;
  std::filesystem::last_write_time(store, std::filesystem::last_write_time(store) + std::chrono::seconds(5));
  const testing::CommandResult changed = testing::run_ladder(args);
  ASSERT_EQ(changed.exit_code, 0) << changed.output;
  EXPECT_NE(changed.output.find("features cached in"), std::string::npos) << changed.output;
  EXPECT_EQ(fid_line(changed.output), fid_line(first.output));
  int caches = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path()))
    caches += entry.path().filename().string().rfind("s.h5.fid-", 0) == 0;
  EXPECT_EQ(caches, 3);
}

TEST(Diversity, IdenticalImagesScoreOneAndNoiseScoresLow) {
  const std::unique_ptr<Communicator> comm = make_communicator(CommSettings{"mpi", 60});
  constexpr int kSide = 64, kChannels = 3;
  constexpr int64_t kPer = int64_t(kSide) * kSide * kChannels;
  Rng rng(5, 0);
  std::vector<uint8_t> noise(static_cast<size_t>(4 * kPer));
  for (uint8_t& v : noise) v = static_cast<uint8_t>(rng.below(256));
  std::vector<uint8_t> same;
  for (int i = 0; i < 3; ++i) same.insert(same.end(), noise.begin(), noise.begin() + kPer);
  const eval::Diversity identical = eval::ms_ssim_diversity(*comm, same.data(), 3, kSide, kChannels, 3);
  EXPECT_EQ(identical.pairs, 3);
  EXPECT_NEAR(identical.mean, 1.0, 1e-12);
  EXPECT_NEAR(identical.std, 0.0, 1e-12);

  const eval::Diversity distinct = eval::ms_ssim_diversity(*comm, noise.data(), 4, kSide, kChannels, 4);
  EXPECT_EQ(distinct.pairs, 6);
  EXPECT_LT(distinct.mean, 0.2);
  std::vector<double> x(static_cast<size_t>(kPer)), y(x.size());
  double sum = 0;
  eval::SsimSettings window4;
  window4.window = 4;
  for (int a = 0; a < 4; ++a)
    for (int b = a + 1; b < 4; ++b) {
      for (int64_t e = 0; e < kPer; ++e) x[e] = noise[a * kPer + e] / 255.0, y[e] = noise[b * kPer + e] / 255.0;
      sum += eval::ms_ssim(x.data(), y.data(), kSide, kSide, kChannels, window4);
    }
  EXPECT_DOUBLE_EQ(distinct.mean, sum / 6);
  // Too small for five scales of a 4-pixel window: nan, as MONAI refuses it.
  const eval::Diversity small = eval::ms_ssim_diversity(*comm, noise.data(), 4, 32, 3, 4);
  EXPECT_TRUE(std::isnan(small.mean));
}

}  // namespace
}  // namespace ladder
