// Why this file exists: the LAPACK calls of src/eval/linear_algebra.h (dsyevd, dgesdd from
// OpenBLAS), with their workspace queries and error codes turned into ladder errors.
#include "eval/linear_algebra.h"

#include <algorithm>
#include <cstddef>

#include "core/check.h"

// LAPACK's Fortran symbols, with gfortran's hidden lengths of the character arguments passed
// explicitly (leaving them out is undefined behaviour that newer compilers exploit).
extern "C" {
void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
             double* work, const int* lwork, int* iwork, const int* liwork, int* info, std::size_t jobz_length,
             std::size_t uplo_length);
void dgesdd_(const char* jobz, const int* m, const int* n, double* a, const int* lda, double* s, double* u,
             const int* ldu, double* vt, const int* ldvt, double* work, const int* lwork, int* iwork, int* info,
             std::size_t jobz_length);
}

namespace ladder::eval {

std::vector<double> symmetric_eigen(int n, std::vector<double>& a, bool vectors) {
  LADDER_CHECK(n >= 1 && static_cast<int64_t>(a.size()) == int64_t(n) * n, "symmetric_eigen: a holds ", a.size(),
               " values, not ", n, "x", n);
  // Row-major upper = column-major lower of the same memory: LAPACK sees the transpose, which
  // for a symmetric matrix is itself; its column-major eigenvectors are our rows.
  const char jobz = vectors ? 'V' : 'N', uplo = 'L';
  std::vector<double> eigenvalues(static_cast<size_t>(n));
  int info = 0, lwork = -1, liwork = -1, iwork_size = 0;
  double work_size = 0;
  dsyevd_(&jobz, &uplo, &n, a.data(), &n, eigenvalues.data(), &work_size, &lwork, &iwork_size, &liwork, &info, 1, 1);
  LADDER_CHECK(info == 0, "LAPACK dsyevd workspace query failed (info ", info, ")");
  lwork = static_cast<int>(work_size) + 1;
  liwork = iwork_size;
  std::vector<double> work(static_cast<size_t>(lwork));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  dsyevd_(&jobz, &uplo, &n, a.data(), &n, eigenvalues.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1,
          1);
  LADDER_CHECK(info == 0, "LAPACK dsyevd failed on a ", n, "x", n, " matrix (info ", info, ")");
  return eigenvalues;
}

std::vector<double> singular_values(int m, int n, std::vector<double>& a) {
  LADDER_CHECK(m >= 1 && n >= 1 && static_cast<int64_t>(a.size()) == int64_t(m) * n, "singular_values: a holds ",
               a.size(), " values, not ", m, "x", n);
  // Row-major (m, n) is column-major (n, m): the same singular values.
  const char jobz = 'N';
  const int rows = n, columns = m, one = 1;
  std::vector<double> values(static_cast<size_t>(std::min(m, n)));
  std::vector<int> iwork(static_cast<size_t>(8 * std::min(m, n)));
  int info = 0, lwork = -1;
  double work_size = 0, unused = 0;
  dgesdd_(&jobz, &rows, &columns, a.data(), &rows, values.data(), &unused, &one, &unused, &one, &work_size, &lwork,
          iwork.data(), &info, 1);
  LADDER_CHECK(info == 0, "LAPACK dgesdd workspace query failed (info ", info, ")");
  lwork = static_cast<int>(work_size) + 1;
  std::vector<double> work(static_cast<size_t>(lwork));
  dgesdd_(&jobz, &rows, &columns, a.data(), &rows, values.data(), &unused, &one, &unused, &one, work.data(), &lwork,
          iwork.data(), &info, 1);
  LADDER_CHECK(info == 0, "LAPACK dgesdd failed on a ", m, "x", n, " matrix (info ", info, ")");
  return values;
}

}  // namespace ladder::eval
