// Why this file exists: mean and N − 1 covariance of feature rows (eval/feature_statistics.h),
// in two passes over blocks of rows, the covariance's outer products through one double SYRK
// per block (OpenBLAS).
#include "eval/feature_statistics.h"

#include <cblas.h>

#include <algorithm>

#include "core/check.h"

namespace ladder::eval {

FeatureStatistics feature_statistics(const float* features, int64_t count, int dims) {
  LADDER_CHECK(count >= 2 && dims >= 1, "feature_statistics: needs at least 2 feature vectors (got ", count,
               ") of at least 1 dimension");
  FeatureStatistics s;
  s.count = count;
  s.dims = dims;
  s.mean.assign(static_cast<size_t>(dims), 0.0);
  for (int64_t i = 0; i < count; ++i)  // in row order
    for (int j = 0; j < dims; ++j) s.mean[j] += features[i * dims + j];
  for (double& m : s.mean) m /= static_cast<double>(count);

  constexpr int64_t kBlock = 256;  // rows centred at a time
  std::vector<double> centred(static_cast<size_t>(kBlock * dims));  // (rows, d)
  s.covariance.assign(static_cast<size_t>(dims) * dims, 0.0);
  for (int64_t first = 0; first < count; first += kBlock) {
    const int64_t rows = std::min(kBlock, count - first);
    for (int64_t i = 0; i < rows; ++i)
      for (int j = 0; j < dims; ++j) centred[i * dims + j] = double(features[(first + i) * dims + j]) - s.mean[j];
    // upper triangle of C (d, d) += Xᵀ X
    cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, dims, static_cast<int>(rows), 1.0, centred.data(), dims, 1.0,
                s.covariance.data(), dims);
  }
  const double scale = 1.0 / static_cast<double>(count - 1);
  for (int r = 0; r < dims; ++r)
    for (int c = r; c < dims; ++c) {
      const double value = s.covariance[int64_t(r) * dims + c] * scale;
      s.covariance[int64_t(r) * dims + c] = value;
      s.covariance[int64_t(c) * dims + r] = value;
    }
  return s;
}

}  // namespace ladder::eval
