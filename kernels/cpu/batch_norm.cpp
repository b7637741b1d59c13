// Why this file exists: BatchNorm2d (the PatchDiscriminator's norm, PyTorch semantics), split
// into passes whose per-channel sums a caller can all-reduce over ranks in between
// (docs/reference-patch-discriminator.md): channel sums → centred squares → normalise, and in
// the backward reduce → data.
//
// Every per-channel sum runs over fixed blocks of kRowBlock rows in double, one partial per
// block, and the partials are added in block order: the result depends on the shape only, not
// on the thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "core/check.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

constexpr int64_t kRowBlock = 256;
// Below this many elements a pass runs on one thread.
constexpr int64_t kParallelGrain = int64_t(1) << 15;

void check_dims(const BatchNormDims& d) {
  LADDER_CHECK(d.rows > 0 && d.c > 0, "batch_norm: bad size ", d.rows, " x ", d.c);
  LADDER_CHECK(d.eps > 0, "batch_norm: eps must be positive");
}

// out (K, C) = Σ over rows of what add_row(row, partial) adds into a zeroed (K, C) partial.
template <int K, class AddRow>
void channel_reduce(const BatchNormDims& d, AddRow add_row, double* out) {
  const int64_t blocks = (d.rows + kRowBlock - 1) / kRowBlock;
  const int64_t width = int64_t(K) * d.c;
  std::vector<double> partial(static_cast<size_t>(blocks * width), 0.0);  // (blocks, K, C)
#pragma omp parallel for schedule(static) if (d.rows * d.c > kParallelGrain)
  for (int64_t b = 0; b < blocks; ++b) {
    double* p = partial.data() + b * width;
    const int64_t end = std::min(d.rows, (b + 1) * kRowBlock);
    for (int64_t r = b * kRowBlock; r < end; ++r) add_row(r, p);
  }
  for (int64_t j = 0; j < width; ++j) {
    double sum = 0;
    for (int64_t b = 0; b < blocks; ++b) sum += partial[b * width + j];
    out[j] = sum;
  }
}

}  // namespace

template <class T>
void batch_norm_channel_sums(const BatchNormDims& d, const T* x, T* sum) {
  // x (rows, C); sum (C)
  check_dims(d);
  std::vector<double> total(d.c);
  channel_reduce<1>(
      d,
      [&](int64_t r, double* p) {
        const T* row = x + r * d.c;
        for (int j = 0; j < d.c; ++j) p[j] += row[j];
      },
      total.data());
  for (int j = 0; j < d.c; ++j) sum[j] = T(total[j]);
}

template <class T>
void batch_norm_centered_squares(const BatchNormDims& d, double count, const T* x, const T* sum,
                                 T* sq) {
  check_dims(d);
  LADDER_CHECK(count > 0, "batch_norm: count must be positive");
  std::vector<double> mean(d.c), total(d.c);
  for (int j = 0; j < d.c; ++j) mean[j] = double(sum[j]) / count;
  channel_reduce<1>(
      d,
      [&](int64_t r, double* p) {
        const T* row = x + r * d.c;
        for (int j = 0; j < d.c; ++j) {
          const double v = double(row[j]) - mean[j];
          p[j] += v * v;
        }
      },
      total.data());
  for (int j = 0; j < d.c; ++j) sq[j] = T(total[j]);
}

template <class T>
void batch_norm_normalize(const BatchNormDims& d, double count, const T* x, const T* sum,
                          const T* sq, const T* gamma, const T* beta, T* y, T* mean, T* rstd) {
  // x, y (rows, C); sum, sq, gamma, beta, mean, rstd (C)
  check_dims(d);
  LADDER_CHECK(count > 0, "batch_norm: count must be positive");
  std::vector<double> scale(d.c), shift(d.c);  // y = x·scale + shift
  for (int j = 0; j < d.c; ++j) {
    const double mu = double(sum[j]) / count;
    const double rs = 1.0 / std::sqrt(double(sq[j]) / count + d.eps);
    mean[j] = T(mu);
    rstd[j] = T(rs);
    scale[j] = rs * double(gamma[j]);
    shift[j] = double(beta[j]) - mu * scale[j];
  }
#pragma omp parallel for schedule(static) if (d.rows * d.c > kParallelGrain)
  for (int64_t r = 0; r < d.rows; ++r)
    for (int j = 0; j < d.c; ++j) y[r * d.c + j] = T(double(x[r * d.c + j]) * scale[j] + shift[j]);
}

template <class T>
void batch_norm_update_running(int c, double count, double momentum, const T* sum, const T* sq,
                               T* running_mean, T* running_var) {
  LADDER_CHECK(c > 0 && count > 0, "batch_norm_update_running: bad size");
  LADDER_CHECK(momentum >= 0 && momentum <= 1, "batch_norm: momentum ", momentum, " not in [0, 1]");
  const double unbiased = count > 1 ? 1.0 / (count - 1) : 0.0;
  for (int j = 0; j < c; ++j) {
    running_mean[j] = T((1 - momentum) * double(running_mean[j]) + momentum * double(sum[j]) / count);
    running_var[j] = T((1 - momentum) * double(running_var[j]) + momentum * double(sq[j]) * unbiased);
  }
}

template <class T>
void batch_norm_eval_forward(const BatchNormDims& d, const T* x, const T* running_mean,
                             const T* running_var, const T* gamma, const T* beta, T* y) {
  check_dims(d);
  std::vector<double> scale(d.c), shift(d.c);
  for (int j = 0; j < d.c; ++j) {
    scale[j] = double(gamma[j]) / std::sqrt(double(running_var[j]) + d.eps);
    shift[j] = double(beta[j]) - double(running_mean[j]) * scale[j];
  }
#pragma omp parallel for schedule(static) if (d.rows * d.c > kParallelGrain)
  for (int64_t r = 0; r < d.rows; ++r)
    for (int j = 0; j < d.c; ++j) y[r * d.c + j] = T(double(x[r * d.c + j]) * scale[j] + shift[j]);
}

template <class T>
void batch_norm_backward_reduce(const BatchNormDims& d, const T* x, const T* mean, const T* rstd,
                                const T* dy, T* dsum, T* dsum_xhat, T* dgamma, T* dbeta) {
  check_dims(d);
  std::vector<double> total(2 * size_t(d.c));  // (2, C): Σ dy | Σ dy·x̂
  channel_reduce<2>(
      d,
      [&](int64_t r, double* p) {
        const T *xr = x + r * d.c, *g = dy + r * d.c;
        for (int j = 0; j < d.c; ++j) {
          const double xhat = (double(xr[j]) - double(mean[j])) * double(rstd[j]);
          p[j] += g[j];
          p[d.c + j] += double(g[j]) * xhat;
        }
      },
      total.data());
  for (int j = 0; j < d.c; ++j) {
    dsum[j] = T(total[j]);
    dsum_xhat[j] = T(total[d.c + j]);
    if (dbeta != nullptr) dbeta[j] += T(total[j]);
    if (dgamma != nullptr) dgamma[j] += T(total[d.c + j]);
  }
}

template <class T>
void batch_norm_backward_data(const BatchNormDims& d, double count, const T* x, const T* mean,
                              const T* rstd, const T* gamma, const T* dy, const T* dsum,
                              const T* dsum_xhat, T* dx) {
  check_dims(d);
  LADDER_CHECK(count > 0, "batch_norm: count must be positive");
  std::vector<double> mean_dy(d.c), mean_dy_xhat(d.c), gain(d.c);
  for (int j = 0; j < d.c; ++j) {
    mean_dy[j] = double(dsum[j]) / count;
    mean_dy_xhat[j] = double(dsum_xhat[j]) / count;
    gain[j] = double(gamma[j]) * double(rstd[j]);
  }
#pragma omp parallel for schedule(static) if (d.rows * d.c > kParallelGrain)
  for (int64_t r = 0; r < d.rows; ++r)
    for (int j = 0; j < d.c; ++j) {
      const int64_t i = r * d.c + j;
      const double xhat = (double(x[i]) - double(mean[j])) * double(rstd[j]);
      dx[i] = T(gain[j] * (double(dy[i]) - mean_dy[j] - xhat * mean_dy_xhat[j]));
    }
}

#define LADDER_INSTANTIATE(T)                                                                        \
  template void batch_norm_channel_sums<T>(const BatchNormDims&, const T*, T*);                     \
  template void batch_norm_centered_squares<T>(const BatchNormDims&, double, const T*, const T*, T*); \
  template void batch_norm_normalize<T>(const BatchNormDims&, double, const T*, const T*, const T*,  \
                                        const T*, const T*, T*, T*, T*);                             \
  template void batch_norm_update_running<T>(int, double, double, const T*, const T*, T*, T*);      \
  template void batch_norm_eval_forward<T>(const BatchNormDims&, const T*, const T*, const T*,       \
                                           const T*, const T*, T*);                                  \
  template void batch_norm_backward_reduce<T>(const BatchNormDims&, const T*, const T*, const T*,    \
                                              const T*, T*, T*, T*, T*);                             \
  template void batch_norm_backward_data<T>(const BatchNormDims&, double, const T*, const T*,        \
                                            const T*, const T*, const T*, const T*, const T*, T*);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(double)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cpu
