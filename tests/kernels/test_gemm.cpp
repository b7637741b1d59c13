// Why this file exists: gemm<float> (oneDNN's dnnl_sgemm) against gemm<double> (OpenBLAS's
// dgemm, the finite-difference tests' GEMM) for the four transposition cases, strided
// operands and beta = 0 and 1, and equal bits when the same product is computed twice.
#include <gtest/gtest.h>

#include <vector>

#include "core/rng.h"
#include "fast_path_checks.h"
#include "kernels/cpu/gemm.h"

namespace ladder::cpu {
namespace {

using testing::random_floats;
using testing::relative_error;

TEST(Gemm, FloatMatchesDoubleForEveryTransposition) {
  Rng rng(17, 0);
  const int64_t m = 37, n = 53, k = 129, pad = 3;  // row strides larger than the rows
  for (bool trans_a : {false, true})
    for (bool trans_b : {false, true})
      for (float beta : {0.0f, 1.0f}) {
        const int64_t lda = (trans_a ? m : k) + pad, ldb = (trans_b ? k : n) + pad, ldc = n + pad;
        const std::vector<float> a = random_floats((trans_a ? k : m) * lda, rng);
        const std::vector<float> b = random_floats((trans_b ? n : k) * ldb, rng);
        std::vector<float> c = random_floats(m * ldc, rng);
        std::vector<double> c_double(c.begin(), c.end());
        const std::vector<double> a_double(a.begin(), a.end()), b_double(b.begin(), b.end());
        gemm<float>(trans_a, trans_b, m, n, k, 0.5f, a.data(), lda, b.data(), ldb, beta, c.data(), ldc);
        gemm<double>(trans_a, trans_b, m, n, k, 0.5, a_double.data(), lda, b_double.data(), ldb, beta,
                     c_double.data(), ldc);
        const std::vector<float> expected(c_double.begin(), c_double.end());
        EXPECT_LT(relative_error(c, expected), 1e-6) << "trans_a " << trans_a << " trans_b " << trans_b
                                                     << " beta " << beta;
      }
}

TEST(Gemm, EqualInputsGiveEqualBits) {
  Rng rng(18, 0);
  const int64_t m = 256, n = 192, k = 320;
  const std::vector<float> a = random_floats(m * k, rng), b = random_floats(k * n, rng);
  std::vector<float> first(static_cast<size_t>(m * n)), second(static_cast<size_t>(m * n));
  gemm<float>(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, first.data(), n);
  gemm<float>(false, true, m, n, k, 1.0f, a.data(), k, b.data(), k, 0.0f, second.data(), n);
  EXPECT_EQ(first, second);
}

}  // namespace
}  // namespace ladder::cpu
