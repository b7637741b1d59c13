// Why this file exists: the Kernel Inception Distance of two feature sets as torch-fidelity
// computes it: over `subsets` random subsets of m = subset_size features of each set, the
// unbiased MMD² with the polynomial kernel k(a, b) = (aᵀb/d + 1)³, reported as the mean and
// the population std (ddof 0) of the subsets' values. The subsets are drawn exactly as
// numpy's RandomState(seed).choice(n, m, replace=False) draws them (MT19937), X's before Y's,
// subset after subset, so with torch-fidelity's seed (2020) both tools use the same images.
// Computed in double (torch-fidelity's float32 differs from it by about 1e-5 relative).
#pragma once

#include <cstdint>
#include <vector>

namespace ladder::eval {

struct KidSettings {
  int subsets = 100;
  int64_t subset_size = 1000;  // m; at most the smaller set's size
  uint32_t seed = 2020;        // torch-fidelity's rng_seed
};

struct KidScore {
  double mean = 0;
  double std = 0;
  int subsets = 0;
  int64_t subset_size = 0;
};

// features (count, dims) row-major. UsageError when a set has fewer than subset_size features.
KidScore kernel_inception_distance(const float* a, int64_t count_a, const float* b, int64_t count_b, int dims,
                                   const KidSettings& settings = {});

// The unbiased MMD² of the rows `ia` of a and `ib` of b (same count m ≥ 2), polynomial kernel.
double polynomial_mmd2(const float* a, const std::vector<int64_t>& ia, const float* b, const std::vector<int64_t>& ib,
                       int dims);

// The index subsets, in the order they are drawn: subsets × (X indices, Y indices).
std::vector<std::vector<int64_t>> kid_subsets(int64_t count_a, int64_t count_b, const KidSettings& settings);

}  // namespace ladder::eval
