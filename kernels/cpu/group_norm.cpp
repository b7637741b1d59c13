// Why this file exists: GroupNorm, the normalisation of every residual block.
//   y = (x − mean)·rstd·gamma + beta, with mean and biased variance over (HW, C/G) per
//   (image, group), rstd = 1/√(var + eps).
// Each (image, group) pair is one task, computed serially by one thread with double
// accumulators (two passes: mean, then centred variance), so the statistics do not depend on
// the thread count. dgamma/dbeta are summed per (image, channel) into a scratch table and then
// over images in fixed order, for the same reason.
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/check.h"
#include "kernels/cpu/image_sums.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

void check_dims(const GroupNormDims& d) {
  LADDER_CHECK(d.n > 0 && d.hw > 0 && d.c > 0 && d.groups > 0, "group_norm: bad size");
  LADDER_CHECK(d.c % d.groups == 0, "group_norm: ", d.c, " channels not divisible into ",
               d.groups, " groups");
  LADDER_CHECK(d.eps > 0, "group_norm: eps must be positive");
}

// Tasks below this many elements in total run on one thread.
constexpr int64_t kParallelGrain = int64_t(1) << 15;

}  // namespace

template <class T>
void group_norm_forward(const GroupNormDims& d, const T* x, const T* gamma, const T* beta,
                        T* y, T* mean, T* rstd) {
  // x, y (N, HW, C); gamma, beta (C); mean, rstd (N, G)
  check_dims(d);
  const int cg = d.c / d.groups;
  const int64_t tasks = int64_t(d.n) * d.groups;
  const double count = double(d.hw) * cg;
#pragma omp parallel for schedule(static) if (tasks * d.hw * cg > kParallelGrain)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t n = t / d.groups, c0 = (t % d.groups) * cg;
    const T* xg = x + n * d.hw * d.c + c0;  // (HW, cg) with row stride C
    T* yg = y + n * d.hw * d.c + c0;
    double sum = 0;
    for (int64_t p = 0; p < d.hw; ++p)
      for (int j = 0; j < cg; ++j) sum += xg[p * d.c + j];
    const double mu = sum / count;
    double sq = 0;
    for (int64_t p = 0; p < d.hw; ++p)
      for (int j = 0; j < cg; ++j) {
        const double v = xg[p * d.c + j] - mu;
        sq += v * v;
      }
    const double rs = 1.0 / std::sqrt(sq / count + d.eps);
    mean[t] = T(mu);
    rstd[t] = T(rs);
    for (int64_t p = 0; p < d.hw; ++p)
      for (int j = 0; j < cg; ++j) {
        const double xhat = (xg[p * d.c + j] - mu) * rs;
        yg[p * d.c + j] = T(xhat * gamma[c0 + j] + beta[c0 + j]);
      }
  }
}

// With x̂ = (x − mean)·rstd and g = dy·gamma, per (image, group) of count elements:
//   dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)),  dgamma += Σ dy·x̂,  dbeta += Σ dy.
template <class T>
void group_norm_backward(const GroupNormDims& d, const T* x, const T* gamma, const T* mean,
                         const T* rstd, const T* dy, T* dx, T* dgamma, T* dbeta) {
  check_dims(d);
  const int cg = d.c / d.groups;
  const int64_t tasks = int64_t(d.n) * d.groups;
  const double count = double(d.hw) * cg;
  // Per (image, channel) partial sums of dy·x̂ and dy.
  std::vector<double> part_gamma(size_t(d.n) * d.c), part_beta(size_t(d.n) * d.c);
#pragma omp parallel for schedule(static) if (tasks * d.hw * cg > kParallelGrain)
  for (int64_t t = 0; t < tasks; ++t) {
    const int64_t n = t / d.groups, c0 = (t % d.groups) * cg;
    const int64_t offset = n * d.hw * d.c + c0;
    const T *xg = x + offset, *dyg = dy + offset;  // (HW, cg) with row stride C
    T* dxg = dx + offset;
    const double mu = mean[t], rs = rstd[t];
    double* pg = part_gamma.data() + n * d.c + c0;
    double* pb = part_beta.data() + n * d.c + c0;
    double sum_g = 0, sum_gx = 0;
    for (int64_t p = 0; p < d.hw; ++p)
      for (int j = 0; j < cg; ++j) {
        const double xhat = (xg[p * d.c + j] - mu) * rs, g = dyg[p * d.c + j];
        pg[j] += g * xhat;
        pb[j] += g;
        sum_g += g * gamma[c0 + j];
        sum_gx += g * gamma[c0 + j] * xhat;
      }
    const double mean_g = sum_g / count, mean_gx = sum_gx / count;
    for (int64_t p = 0; p < d.hw; ++p)
      for (int j = 0; j < cg; ++j) {
        const double xhat = (xg[p * d.c + j] - mu) * rs;
        const double g = double(dyg[p * d.c + j]) * gamma[c0 + j];
        dxg[p * d.c + j] = T(rs * (g - mean_g - xhat * mean_gx));
      }
  }
  add_image_sums(d.n, d.c, part_gamma, dgamma);
  add_image_sums(d.n, d.c, part_beta, dbeta);
}

#define LADDER_INSTANTIATE(T)                                                               \
  template void group_norm_forward<T>(const GroupNormDims&, const T*, const T*, const T*,   \
                                      T*, T*, T*);                                          \
  template void group_norm_backward<T>(const GroupNormDims&, const T*, const T*, const T*,  \
                                       const T*, const T*, T*, T*, T*);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
