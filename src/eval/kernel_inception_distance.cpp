// Why this file exists: KID (eval/kernel_inception_distance.h): numpy's draw of index subsets
// reproduced on std::mt19937, and the polynomial-kernel MMD² through double GEMMs.
#include "eval/kernel_inception_distance.h"

#include <cblas.h>

#include <cmath>
#include <numeric>
#include <random>

#include "core/check.h"

namespace ladder::eval {
namespace {

// numpy's RandomState.choice(n, m, replace=False) = permutation(n)[:m]: a Fisher-Yates
// shuffle from the end, each swap index drawn by masked rejection on 32-bit outputs.
std::vector<int64_t> choice_without_replacement(std::mt19937& generator, int64_t n, int64_t m) {
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t(0));
  for (int64_t i = n - 1; i > 0; --i) {
    uint64_t mask = static_cast<uint64_t>(i);
    for (int shift : {1, 2, 4, 8, 16, 32}) mask |= mask >> shift;
    uint64_t j = 0;
    do {
      j = static_cast<uint64_t>(generator()) & mask;
    } while (j > static_cast<uint64_t>(i));
    std::swap(order[i], order[j]);
  }
  order.resize(static_cast<size_t>(m));
  return order;
}

// rows (m, d) in double
std::vector<double> gather_rows(const float* x, const std::vector<int64_t>& rows, int dims) {
  std::vector<double> out(rows.size() * static_cast<size_t>(dims));
  for (size_t i = 0; i < rows.size(); ++i)
    for (int j = 0; j < dims; ++j) out[i * dims + j] = x[rows[i] * dims + j];
  return out;
}

// Σ over the (m, m) kernel matrix (xᵀy/d + 1)³ of x against y, with or without the diagonal.
double kernel_sum(const std::vector<double>& x, const std::vector<double>& y, int64_t m, int dims, bool diagonal) {
  std::vector<double> dots(static_cast<size_t>(m * m));
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(m), static_cast<int>(m), dims, 1.0, x.data(),
              dims, y.data(), dims, 0.0, dots.data(), static_cast<int>(m));
  const double gamma = 1.0 / dims;
  double sum = 0;
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < m; ++j) {
      if (!diagonal && i == j) continue;
      const double k = dots[i * m + j] * gamma + 1.0;
      sum += k * k * k;
    }
  return sum;
}

}  // namespace

std::vector<std::vector<int64_t>> kid_subsets(int64_t count_a, int64_t count_b, const KidSettings& settings) {
  std::mt19937 generator(settings.seed);
  std::vector<std::vector<int64_t>> subsets;
  for (int s = 0; s < settings.subsets; ++s) {
    subsets.push_back(choice_without_replacement(generator, count_a, settings.subset_size));
    subsets.push_back(choice_without_replacement(generator, count_b, settings.subset_size));
  }
  return subsets;
}

double polynomial_mmd2(const float* a, const std::vector<int64_t>& ia, const float* b, const std::vector<int64_t>& ib,
                       int dims) {
  const int64_t m = static_cast<int64_t>(ia.size());
  LADDER_CHECK(m >= 2 && ib.size() == ia.size(), "KID: subsets of ", ia.size(), " and ", ib.size(), " features");
  const std::vector<double> x = gather_rows(a, ia, dims), y = gather_rows(b, ib, dims);
  const double md = static_cast<double>(m);
  return (kernel_sum(x, x, m, dims, false) + kernel_sum(y, y, m, dims, false)) / (md * (md - 1)) -
         2 * kernel_sum(x, y, m, dims, true) / (md * md);
}

KidScore kernel_inception_distance(const float* a, int64_t count_a, const float* b, int64_t count_b, int dims,
                                   const KidSettings& settings) {
  LADDER_CHECK_USAGE(settings.subsets >= 1 && settings.subset_size >= 2, "KID: needs at least 1 subset of 2 images");
  LADDER_CHECK_USAGE(count_a >= settings.subset_size && count_b >= settings.subset_size, "KID: subsets of ",
                     settings.subset_size, " images need at least that many in each set (got ", count_a, " and ",
                     count_b, ")");
  const std::vector<std::vector<int64_t>> subsets = kid_subsets(count_a, count_b, settings);
  std::vector<double> values;
  for (int s = 0; s < settings.subsets; ++s)
    values.push_back(polynomial_mmd2(a, subsets[2 * s], b, subsets[2 * s + 1], dims));
  KidScore score;
  score.subsets = settings.subsets;
  score.subset_size = settings.subset_size;
  for (double v : values) score.mean += v;
  score.mean /= static_cast<double>(values.size());
  for (double v : values) score.std += (v - score.mean) * (v - score.mean);
  score.std = std::sqrt(score.std / static_cast<double>(values.size()));
  return score;
}

}  // namespace ladder::eval
