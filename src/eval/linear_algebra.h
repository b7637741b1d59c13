// Why this file exists: FID needs two dense eigenproblems and, for small sets, singular values;
// LAPACK (OpenBLAS's, already linked for the double GEMMs) solves them. This header is the only
// place that speaks LAPACK's Fortran calling convention; the rest of ladder sees vectors.
#pragma once

#include <cstdint>
#include <vector>

namespace ladder::eval {

// The eigenvalues (ascending) of the symmetric (n, n) matrix `a` (row-major; only its upper
// triangle is read). With `vectors`, `a` is overwritten by the eigenvectors, one per row
// (row i belongs to eigenvalue i); without, its contents are destroyed.
std::vector<double> symmetric_eigen(int n, std::vector<double>& a, bool vectors);

// The singular values (descending) of the (m, n) row-major matrix `a` (destroyed).
std::vector<double> singular_values(int m, int n, std::vector<double>& a);

}  // namespace ladder::eval
