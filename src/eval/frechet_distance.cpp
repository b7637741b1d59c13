// Why this file exists: FID's two routes to tr √(S₁S₂) (eval/frechet_distance.h).
#include "eval/frechet_distance.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "eval/linear_algebra.h"

namespace ladder::eval {
namespace {

void check_same_dims(int a, int b) {
  LADDER_CHECK(a == b, "FID: feature sets of ", a, " and ", b, " dimensions");
}

double sum_of_square_roots(const std::vector<double>& values) {
  double sum = 0;
  for (double v : values) sum += std::sqrt(std::max(v, 0.0));
  return sum;
}

// ‖μ₁ − μ₂‖² + tr S₁ + tr S₂ − 2 · trace_term
double assemble(const FeatureStatistics& a, const FeatureStatistics& b, double trace_term) {
  double distance = 0, traces = 0;
  for (int j = 0; j < a.dims; ++j) {
    const double d = a.mean[j] - b.mean[j];
    distance += d * d;
    traces += a.covariance[int64_t(j) * a.dims + j] + b.covariance[int64_t(j) * b.dims + j];
  }
  return distance + traces - 2 * trace_term;
}

}  // namespace

double trace_sqrt_product(const FeatureStatistics& a, const FeatureStatistics& b) {
  check_same_dims(a.dims, b.dims);
  const int d = a.dims;
  // √S₁ = V diag(√λ) Vᵀ, with V's eigenvectors as rows of `vectors`.
  std::vector<double> vectors = a.covariance;
  const std::vector<double> lambda = symmetric_eigen(d, vectors, true);
  std::vector<double> scaled(vectors.size());  // row i: √λᵢ · vᵢ
  for (int i = 0; i < d; ++i) {
    const double root = std::sqrt(std::max(lambda[i], 0.0));
    for (int j = 0; j < d; ++j) scaled[int64_t(i) * d + j] = root * vectors[int64_t(i) * d + j];
  }
  std::vector<double> root_a(vectors.size());  // √S₁ = Vᵀ-rows… = Σᵢ vᵢ (√λᵢ vᵢ)ᵀ
  cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, d, d, d, 1.0, vectors.data(), d, scaled.data(), d, 0.0,
              root_a.data(), d);
  std::vector<double> product(vectors.size()), middle(vectors.size());
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, root_a.data(), d, b.covariance.data(), d, 0.0,
              product.data(), d);  // √S₁ S₂
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, d, d, d, 1.0, product.data(), d, root_a.data(), d, 0.0,
              middle.data(), d);  // √S₁ S₂ √S₁
  for (int r = 0; r < d; ++r)  // symmetric in exact arithmetic; make it so in rounding
    for (int c = r + 1; c < d; ++c) {
      const double mean = 0.5 * (middle[int64_t(r) * d + c] + middle[int64_t(c) * d + r]);
      middle[int64_t(r) * d + c] = middle[int64_t(c) * d + r] = mean;
    }
  return sum_of_square_roots(symmetric_eigen(d, middle, false));
}

namespace {

// (n, dims) features minus their mean, in double.
std::vector<double> centred(const float* x, int64_t n, int dims, const std::vector<double>& mean) {
  std::vector<double> out(static_cast<size_t>(n * dims));
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < dims; ++j) out[i * dims + j] = double(x[i * dims + j]) - mean[j];
  return out;
}

// The singular-value route, given the sets' statistics (their means centre the features).
double trace_from_features(const float* a, const FeatureStatistics& sa, const float* b, const FeatureStatistics& sb) {
  const int64_t count_a = sa.count, count_b = sb.count;
  const int dims = sa.dims;
  const std::vector<double> xa = centred(a, count_a, dims, sa.mean), xb = centred(b, count_b, dims, sb.mean);
  std::vector<double> cross(static_cast<size_t>(count_a * count_b));  // X₁X₂ᵀ (N₁, N₂)
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(count_a), static_cast<int>(count_b), dims, 1.0,
              xa.data(), dims, xb.data(), dims, 0.0, cross.data(), static_cast<int>(count_b));
  double sum = 0;
  for (double s : singular_values(static_cast<int>(count_a), static_cast<int>(count_b), cross)) sum += s;
  return sum / std::sqrt(static_cast<double>(count_a - 1) * static_cast<double>(count_b - 1));
}

}  // namespace

double trace_sqrt_product(const float* a, int64_t count_a, const float* b, int64_t count_b, int dims) {
  return trace_from_features(a, feature_statistics(a, count_a, dims), b, feature_statistics(b, count_b, dims));
}

double frechet_distance(const FeatureStatistics& a, const FeatureStatistics& b) {
  return assemble(a, b, trace_sqrt_product(a, b));
}

double frechet_distance(const float* a, int64_t count_a, const float* b, int64_t count_b, int dims) {
  return frechet_distance(a, feature_statistics(a, count_a, dims), b, feature_statistics(b, count_b, dims));
}

double frechet_distance(const float* a, const FeatureStatistics& sa, const float* b, const FeatureStatistics& sb) {
  if (std::min(sa.count, sb.count) < sa.dims) return assemble(sa, sb, trace_from_features(a, sa, b, sb));
  return frechet_distance(sa, sb);
}

}  // namespace ladder::eval
