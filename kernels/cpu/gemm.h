// Why this file exists: the CPU ops do their heavy lifting in GEMMs. This header gives them one
// row-major GEMM, templated on the element type, plus the two bias helpers that go with every
// GEMM-shaped layer (conv, linear). float (training) goes to oneDNN's dnnl_sgemm, its JIT
// kernels for the machine's ISA: 2.5-5.7× OpenBLAS 0.3.21's on the attention and linear
// shapes of bench_matmul (docs/PERFORMANCE.md; that OpenBLAS picks its SSE3 "Prescott" kernels
// on this CPU). double (the finite-difference tests) goes to OpenBLAS's cblas_dgemm. Both
// thread themselves on the OpenMP pool: never call them from inside a parallel region.
#pragma once

#include <cblas.h>
#include <dnnl.h>

#include <climits>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "core/check.h"

namespace ladder::cpu {

// C (m, n) = alpha · op(A) (m, k) · op(B) (k, n) + beta · C, all row-major.
// op(A) = Aᵀ when trans_a (A is then stored (k, m)); likewise for B. lda/ldb/ldc are the row
// strides of A, B, C as stored.
template <class T>
void gemm(bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, T alpha, const T* a,
          int64_t lda, const T* b, int64_t ldb, T beta, T* c, int64_t ldc) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double>, "gemm: float or double");
  LADDER_CHECK(m >= 0 && n >= 0 && k >= 0, "gemm: negative size ", m, "x", n, "x", k);
  LADDER_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX && lda <= INT_MAX &&
                   ldb <= INT_MAX && ldc <= INT_MAX,
               "gemm: size exceeds the BLAS integer range: ", m, "x", n, "x", k);
  if (m == 0 || n == 0) return;
  if constexpr (std::is_same_v<T, float>) {
    const dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', m, n, k, alpha, a, lda, b,
                                            ldb, beta, c, ldc);
    LADDER_CHECK(status == dnnl_success, "gemm: dnnl_sgemm failed (status ", int(status), ") on ", m, "x", n, "x", k);
  } else {
    const CBLAS_TRANSPOSE ta = trans_a ? CblasTrans : CblasNoTrans;
    const CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    cblas_dgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), alpha, a, int(lda), b, int(ldb),
                beta, c, int(ldc));
  }
}

// y (rows, cols) += b (cols) on every row. Serial: it sits between BLAS calls, where OpenMP
// threads would compete with the GEMM's spinning threads (see conv2d.cpp).
template <class T>
void add_row_bias(int64_t rows, int64_t cols, const T* b, T* y) {
  if (b == nullptr) return;
  for (int64_t r = 0; r < rows; ++r) {
    T* row = y + r * cols;
    for (int64_t c = 0; c < cols; ++c) row[c] += b[c];
  }
}

// db (cols) += Σ_rows dy (rows, cols). Serial, in row order, with double accumulators, so the
// result does not depend on the thread count.
template <class T>
void accumulate_column_sums(int64_t rows, int64_t cols, const T* dy, T* db) {
  if (db == nullptr) return;
  std::vector<double> sum(static_cast<size_t>(cols), 0.0);
  for (int64_t r = 0; r < rows; ++r) {
    const T* row = dy + r * cols;
    for (int64_t c = 0; c < cols; ++c) sum[c] += row[c];
  }
  for (int64_t c = 0; c < cols; ++c) db[c] += static_cast<T>(sum[c]);
}

}  // namespace ladder::cpu
