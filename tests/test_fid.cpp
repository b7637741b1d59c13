// Why this file exists: the FID and KID arithmetic (src/eval/) against independent
// computations: statistics against plain loops, tr √(S₁S₂) against a Denman–Beavers square
// root of S₁S₂, the singular-value route against the eigenvalue route, FID's properties
// (zero on equal sets, symmetric, growing with added noise), numpy's subset draws for
// torch-fidelity's seed, and the MMD² against its formula written as loops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <vector>

#include "core/check.h"
#include "core/rng.h"
#include "eval/feature_statistics.h"
#include "eval/frechet_distance.h"
#include "eval/kernel_inception_distance.h"
#include "eval/structural_similarity.h"
#include "io/feature_file.h"
#include "io/hdf5.h"
#include "test_support.h"

namespace ladder::eval {
namespace {

// (count, dims) features: a random linear mix of `rank` latent factors plus a little noise and
// an offset, so the covariance has structure (and is near-singular when rank < dims).
std::vector<float> features(int64_t count, int dims, uint64_t seed, int rank, double offset = 0.5) {
  Rng rng(seed, 0);
  std::vector<double> mix(static_cast<size_t>(rank) * dims);
  for (double& m : mix) m = rng.normal();
  std::vector<float> out(static_cast<size_t>(count * dims));
  for (int64_t i = 0; i < count; ++i) {
    std::vector<double> factors(static_cast<size_t>(rank));
    for (double& f : factors) f = rng.normal();
    for (int j = 0; j < dims; ++j) {
      double v = offset + 0.05 * rng.normal();
      for (int r = 0; r < rank; ++r) v += factors[r] * mix[r * dims + j] / std::sqrt(double(rank));
      out[i * dims + j] = static_cast<float>(v);
    }
  }
  return out;
}

// (d, d) products and the Denman–Beavers iteration for the principal square root.
std::vector<double> matmul(const std::vector<double>& a, const std::vector<double>& b, int d) {
  std::vector<double> c(static_cast<size_t>(d) * d, 0.0);
  for (int i = 0; i < d; ++i)
    for (int k = 0; k < d; ++k)
      for (int j = 0; j < d; ++j) c[i * d + j] += a[i * d + k] * b[k * d + j];
  return c;
}

std::vector<double> inverse(std::vector<double> a, int d) {  // Gauss-Jordan, partial pivoting
  std::vector<double> inv(static_cast<size_t>(d) * d, 0.0);
  for (int i = 0; i < d; ++i) inv[i * d + i] = 1;
  for (int c = 0; c < d; ++c) {
    int pivot = c;
    for (int r = c + 1; r < d; ++r)
      if (std::abs(a[r * d + c]) > std::abs(a[pivot * d + c])) pivot = r;
    for (int j = 0; j < d; ++j) {
      std::swap(a[c * d + j], a[pivot * d + j]);
      std::swap(inv[c * d + j], inv[pivot * d + j]);
    }
    const double p = a[c * d + c];
    for (int j = 0; j < d; ++j) a[c * d + j] /= p, inv[c * d + j] /= p;
    for (int r = 0; r < d; ++r) {
      if (r == c) continue;
      const double f = a[r * d + c];
      for (int j = 0; j < d; ++j) a[r * d + j] -= f * a[c * d + j], inv[r * d + j] -= f * inv[c * d + j];
    }
  }
  return inv;
}

double trace_of_square_root(const std::vector<double>& m, int d) {
  std::vector<double> y = m, z(static_cast<size_t>(d) * d, 0.0);
  for (int i = 0; i < d; ++i) z[i * d + i] = 1;
  for (int iteration = 0; iteration < 60; ++iteration) {
    const std::vector<double> yi = inverse(y, d), zi = inverse(z, d);
    for (size_t k = 0; k < y.size(); ++k) y[k] = 0.5 * (y[k] + zi[k]), z[k] = 0.5 * (z[k] + yi[k]);
  }
  double trace = 0;
  for (int i = 0; i < d; ++i) trace += y[i * d + i];
  return trace;
}

TEST(FeatureStatistics, EqualPlainLoopsWithNMinusOne) {
  const int d = 5;
  const int64_t n = 700;  // more than one block of rows
  const std::vector<float> x = features(n, d, 1, 3);
  const FeatureStatistics s = feature_statistics(x.data(), n, d);
  for (int j = 0; j < d; ++j) {
    double mean = 0;
    for (int64_t i = 0; i < n; ++i) mean += x[i * d + j];
    mean /= n;
    EXPECT_NEAR(s.mean[j], mean, 1e-12);
    for (int k = 0; k < d; ++k) {
      double c = 0, mean_k = 0;
      for (int64_t i = 0; i < n; ++i) mean_k += x[i * d + k];
      mean_k /= n;
      for (int64_t i = 0; i < n; ++i) c += (x[i * d + j] - mean) * (x[i * d + k] - mean_k);
      EXPECT_NEAR(s.covariance[j * d + k], c / (n - 1), 1e-12) << j << "," << k;
    }
  }
}

TEST(FrechetDistance, TraceTermEqualsTheSquareRootOfTheProduct) {
  const int d = 6;
  const std::vector<float> a = features(400, d, 2, 6), b = features(300, d, 3, 6, 0.8);
  const FeatureStatistics sa = feature_statistics(a.data(), 400, d), sb = feature_statistics(b.data(), 300, d);
  const double want = trace_of_square_root(matmul(sa.covariance, sb.covariance, d), d);
  EXPECT_NEAR(trace_sqrt_product(sa, sb), want, 1e-10 * want);
  // The singular-value route gives the same trace from the features themselves.
  EXPECT_NEAR(trace_sqrt_product(a.data(), 400, b.data(), 300, d), want, 1e-10 * want);
}

TEST(FrechetDistance, ZeroOnEqualSetsSymmetricAndGrowingWithNoise) {
  for (const auto& [count, d] : {std::pair<int64_t, int>{300, 32}, std::pair<int64_t, int>{40, 64}}) {
    const std::vector<float> a = features(count, d, 4, 8);
    EXPECT_LE(std::abs(frechet_distance(a.data(), count, a.data(), count, d)), 1e-6) << count << " < " << d;
    const std::vector<float> b = features(count, d, 5, 8);
    const double ab = frechet_distance(a.data(), count, b.data(), count, d);
    const double ba = frechet_distance(b.data(), count, a.data(), count, d);
    EXPECT_GT(ab, 0);
    EXPECT_NEAR(ab, ba, 1e-9 * ab);
    Rng rng(6, 0);
    std::vector<float> noise(a.size());
    for (float& v : noise) v = static_cast<float>(rng.normal());
    double previous = 0;
    for (double strength : {0.05, 0.1, 0.2, 0.4, 0.8}) {
      std::vector<float> noisy = a;
      for (size_t k = 0; k < noisy.size(); ++k) noisy[k] += static_cast<float>(strength * noise[k]);
      const double fid = frechet_distance(a.data(), count, noisy.data(), count, d);
      EXPECT_GT(fid, previous) << "noise " << strength;
      previous = fid;
    }
  }
}

TEST(FrechetDistance, BothRoutesAgreeWhenTheCovariancesAreFullRank) {
  const int d = 16;
  const std::vector<float> a = features(200, d, 7, 16), b = features(150, d, 8, 16, 0.7);
  const double from_statistics =
      frechet_distance(feature_statistics(a.data(), 200, d), feature_statistics(b.data(), 150, d));
  EXPECT_NEAR(from_statistics, frechet_distance(a.data(), 200, b.data(), 150, d), 1e-9 * from_statistics);
  EXPECT_NEAR(trace_sqrt_product(a.data(), 200, b.data(), 150, d),
              trace_sqrt_product(feature_statistics(a.data(), 200, d), feature_statistics(b.data(), 150, d)), 1e-9);
}

// numpy: RandomState(2020).choice(1500, 1000, replace=False)[:5] = 1170, 737, 148, 824, 396
// (docs/reference-fid.md §5), the first draw torch-fidelity's KID makes on sets of that size.
TEST(KernelInceptionDistance, SubsetsAreNumpysDrawsForTheSeed) {
  KidSettings settings;
  settings.subsets = 1;
  const std::vector<std::vector<int64_t>> subsets = kid_subsets(1500, 1300, settings);
  ASSERT_EQ(subsets.size(), 2u);
  ASSERT_EQ(subsets[0].size(), 1000u);
  EXPECT_EQ(std::vector<int64_t>(subsets[0].begin(), subsets[0].begin() + 5),
            (std::vector<int64_t>{1170, 737, 148, 824, 396}));
  std::vector<int64_t> sorted = subsets[1];
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::unique(sorted.begin(), sorted.end()), sorted.end());  // without replacement
  EXPECT_LT(sorted.back(), 1300);
}

TEST(KernelInceptionDistance, MmdEqualsItsFormulaAndSeparatesSets) {
  const int d = 8;
  const std::vector<float> a = features(60, d, 9, 4), b = features(60, d, 10, 4, 1.5);
  std::vector<int64_t> ia, ib;
  for (int64_t i = 0; i < 30; ++i) ia.push_back(2 * i), ib.push_back(59 - i);
  auto k = [d](const float* x, const float* y) {
    double dot = 0;
    for (int j = 0; j < d; ++j) dot += double(x[j]) * y[j];
    return std::pow(dot / d + 1, 3);
  };
  double xx = 0, yy = 0, xy = 0;
  for (int64_t i = 0; i < 30; ++i)
    for (int64_t j = 0; j < 30; ++j) {
      if (i != j) xx += k(&a[ia[i] * d], &a[ia[j] * d]), yy += k(&b[ib[i] * d], &b[ib[j] * d]);
      xy += k(&a[ia[i] * d], &b[ib[j] * d]);
    }
  const double want = (xx + yy) / (30.0 * 29) - 2 * xy / (30.0 * 30);
  EXPECT_NEAR(polynomial_mmd2(a.data(), ia, b.data(), ib, d), want, 1e-12 * std::abs(want) + 1e-15);

  KidSettings settings;
  settings.subsets = 10;
  settings.subset_size = 40;
  const KidScore same = kernel_inception_distance(a.data(), 60, a.data(), 60, d, settings);
  const KidScore apart = kernel_inception_distance(a.data(), 60, b.data(), 60, d, settings);
  EXPECT_GT(apart.mean, 10 * std::abs(same.mean));
  EXPECT_GT(apart.std, 0);
  settings.subset_size = 61;
  EXPECT_THROW(kernel_inception_distance(a.data(), 60, b.data(), 60, d, settings), UsageError);
}

// Without MONAI (tests/interop/ssim_parity.py compares with it): equal images score 1, noise
// lowers SSIM monotonically, and images too small for the window or the five scales give nan.
TEST(StructuralSimilarity, OneForEqualImagesFallingWithNoiseNanWhenTooSmall) {
  const int side = 180, c = 2;
  std::vector<double> x(static_cast<size_t>(side) * side * c), noise(x.size());
  Rng rng(13, 0);
  for (int i = 0; i < side; ++i)
    for (int j = 0; j < side; ++j)
      for (int k = 0; k < c; ++k) x[(i * side + j) * c + k] = 0.5 + 0.3 * std::sin(0.1 * i + 0.05 * j + k);
  for (double& v : noise) v = rng.normal();
  EXPECT_NEAR(ssim(x.data(), x.data(), side, side, c), 1.0, 1e-12);
  EXPECT_NEAR(ms_ssim(x.data(), x.data(), side, side, c), 1.0, 1e-12);
  double previous_ssim = 1, previous_ms = 1;
  for (double strength : {0.01, 0.03, 0.1, 0.3}) {
    std::vector<double> y = x;
    for (size_t k = 0; k < y.size(); ++k) y[k] += strength * noise[k];
    const double s = ssim(y.data(), x.data(), side, side, c), m = ms_ssim(y.data(), x.data(), side, side, c);
    EXPECT_LT(s, previous_ssim) << strength;
    EXPECT_LT(m, previous_ms) << strength;
    previous_ssim = s, previous_ms = m;
  }
  EXPECT_TRUE(std::isnan(ms_ssim(x.data(), x.data(), 160, 160, c)));  // 160 // 16 = 10, not above 10
  EXPECT_TRUE(std::isnan(ssim(x.data(), x.data(), 10, 10, c)));
}

TEST(Evaluate, ScoresFeatureFilesAndNamesTheFileAtFault) {
  testing::TempDir dir;
  const int d = 24;
  io::FeatureSet a, b;
  a.count = 50, b.count = 40, a.dims = b.dims = d;
  a.values = features(50, d, 11, 6), b.values = features(40, d, 12, 6, 0.9);
  io::write_feature_set(dir / "a.h5", a);
  io::write_feature_set(dir / "b.h5", b);
  const testing::CommandResult ok = testing::run_ladder("evaluate --features " + (dir / "a.h5") + " --reference " +
                                                        (dir / "b.h5") + " --kid-subsets 5 --kid-subset-size 30");
  ASSERT_EQ(ok.exit_code, 0) << ok.output;
  double fid = 0, kid_mean = 0, kid_std = 0;
  ASSERT_EQ(std::sscanf(ok.output.c_str() + ok.output.find("\nfid ") + 1, "fid %lf", &fid), 1) << ok.output;
  const size_t kid_line = ok.output.find("kid_mean");
  ASSERT_NE(kid_line, std::string::npos) << ok.output;
  ASSERT_EQ(std::sscanf(ok.output.c_str() + kid_line, "kid_mean %lf kid_std %lf", &kid_mean, &kid_std), 2);
  EXPECT_EQ(fid, frechet_distance(a.values.data(), 50, b.values.data(), 40, d));  // printed with 17 digits
  KidSettings settings;
  settings.subsets = 5, settings.subset_size = 30;
  EXPECT_EQ(kid_mean, kernel_inception_distance(a.values.data(), 50, b.values.data(), 40, d, settings).mean);

  io::FeatureSet narrow = b;
  narrow.dims = d / 2, narrow.count = 80;
  io::write_feature_set(dir / "narrow.h5", narrow);
  {
    io::h5::File file = io::h5::create_file(dir / "empty.h5");
    ASSERT_TRUE(file.close());
  }
  std::ofstream(dir / "text.h5") << "not hdf5";
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"--features " + (dir / "a.h5") + " --reference " + (dir / "narrow.h5"), "12-d"},
      {"--features " + (dir / "empty.h5") + " --reference " + (dir / "b.h5"), "empty.h5: no dataset /features"},
      {"--features " + (dir / "text.h5") + " --reference " + (dir / "b.h5"), "text.h5"},
      {"--features " + (dir / "missing.h5") + " --reference " + (dir / "b.h5"), "missing.h5"},
      {"--features " + (dir / "a.h5") + " --reference " + (dir / "b.h5") + " --kid-subset-size 45", "at least"},
      {"--features " + (dir / "a.h5"), "--reference are required"},
  };
  for (const auto& [args, expected] : bad) {
    const testing::CommandResult result = testing::run_ladder("evaluate " + args);
    EXPECT_EQ(result.exit_code, 2) << args << "\n" << result.output;
    EXPECT_NE(result.output.find(expected), std::string::npos) << args << "\n" << result.output;
    EXPECT_EQ(std::count(result.output.begin(), result.output.end(), '\n'), 1) << result.output;
  }
}

}  // namespace
}  // namespace ladder::eval
