// Why this file exists: the CPU backend's fused GroupNorm(+SiLU) against the reference
// (group_norm_* then silu_*, themselves checked by finite differences in test_ops_grad.cpp):
// forward outputs and statistics, input gradients and the accumulated γ/β gradients, with and
// without the SiLU, for group sizes of 1 to 16 channels, blocks cut across groups, batches of
// 1 and 3, and inputs with a large mean (the cancellation case). Also: equal bits on 1 and 2
// OpenMP threads.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <vector>

#include "core/rng.h"
#include "fast_path_checks.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

using testing::random_floats;
using testing::relative_error;

struct Case {
  GroupNormDims d;
  double offset;
};

TEST(GroupNormSilu, EqualsTheReference) {
  const Case cases[] = {{{2, 37, 32, 16, 1e-6}, 0}, {{1, 64, 64, 32, 1e-6}, 0}, {{3, 9, 48, 3, 1e-6}, 0},
                        {{2, 16, 256, 32, 1e-6}, 0}, {{1, 25, 16, 16, 1e-6}, 0}, {{2, 49, 64, 16, 1e-6}, 40}};
  Rng rng(5, 0);
  for (const Case& c : cases) {
    const GroupNormDims& d = c.d;
    const int64_t n = int64_t(d.n) * d.hw * d.c;
    const std::vector<float> x = random_floats(n, rng, c.offset), gamma = random_floats(d.c, rng), beta = random_floats(d.c, rng),
                             dy = random_floats(n, rng);
    for (bool silu : {false, true}) {
      const std::string what = "n " + std::to_string(d.n) + " hw " + std::to_string(d.hw) + " c " +
                               std::to_string(d.c) + " groups " + std::to_string(d.groups) + (silu ? " silu" : "");
      std::vector<float> y_ref(n), mean_ref(size_t(d.n) * d.groups), rstd_ref(mean_ref.size());
      group_norm_forward<float>(d, x.data(), gamma.data(), beta.data(), y_ref.data(), mean_ref.data(),
                                rstd_ref.data());
      std::vector<float> pre = y_ref;
      if (silu) silu_forward<float>(n, pre.data(), y_ref.data());
      std::vector<float> y(n, 7.f), mean(mean_ref.size()), rstd(mean_ref.size());
      group_norm_silu_forward(d, silu, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data());
      EXPECT_LT(relative_error(y, y_ref), 2e-6) << what << ": forward";
      EXPECT_LT(relative_error(mean, mean_ref), 1e-7) << what << ": mean";
      EXPECT_LT(relative_error(rstd, rstd_ref), 1e-7) << what << ": rstd";

      std::vector<float> du = dy;
      if (silu) silu_backward<float>(n, pre.data(), dy.data(), du.data());
      std::vector<float> dx_ref(n), dg_ref = random_floats(d.c, rng), db_ref = random_floats(d.c, rng);
      std::vector<float> dg = dg_ref, db = db_ref, dx(n, 7.f);
      group_norm_backward<float>(d, x.data(), gamma.data(), mean_ref.data(), rstd_ref.data(), du.data(),
                                 dx_ref.data(), dg_ref.data(), db_ref.data());
      group_norm_silu_backward(d, silu, x.data(), gamma.data(), beta.data(), mean.data(), rstd.data(), dy.data(),
                               dx.data(), dg.data(), db.data());
      EXPECT_LT(relative_error(dx, dx_ref), 1e-5) << what << ": dx";
      EXPECT_LT(relative_error(dg, dg_ref), 1e-5) << what << ": dgamma";
      EXPECT_LT(relative_error(db, db_ref), 1e-5) << what << ": dbeta";
    }
  }
}

TEST(GroupNormSilu, TheThreadCountDoesNotChangeTheBits) {
  const GroupNormDims d{3, 256, 64, 16, 1e-6};
  const int64_t n = int64_t(d.n) * d.hw * d.c;
  Rng rng(6, 0);
  const std::vector<float> x = random_floats(n, rng), gamma = random_floats(d.c, rng), beta = random_floats(d.c, rng),
                           dy = random_floats(n, rng);
  auto run = [&](int threads) {
    omp_set_num_threads(threads);
    std::vector<float> y(n), mean(size_t(d.n) * d.groups), rstd(mean.size()), dx(n), dg(d.c, 0.f), db(d.c, 0.f);
    group_norm_silu_forward(d, true, x.data(), gamma.data(), beta.data(), y.data(), mean.data(), rstd.data());
    group_norm_silu_backward(d, true, x.data(), gamma.data(), beta.data(), mean.data(), rstd.data(), dy.data(),
                             dx.data(), dg.data(), db.data());
    y.insert(y.end(), dx.begin(), dx.end());
    y.insert(y.end(), dg.begin(), dg.end());
    return y;
  };
  const int threads = omp_get_max_threads();
  EXPECT_EQ(run(1), run(2));
  omp_set_num_threads(threads);
}

}  // namespace
}  // namespace ladder::cpu
