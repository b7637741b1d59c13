// Why this file exists: BatchNorm2d on the GPU (the PatchDiscriminator's norm), the twin of
// kernels/cpu/batch_norm.cpp pass for pass, so that a trainer can all-reduce the per-channel
// sums between passes (docs/reference-patch-discriminator.md). Activations x, y, dy, dx are T
// (N·H·W rows of C channels, NHWC); sums, statistics, γ/β and their gradients, running
// statistics are fp32.
//
// Per-channel sums: a grid of (channel tiles of 32, row blocks of kRowsPerBlock rows); a block's
// 32 × 8 threads read 32 consecutive channels of 8 rows at a time (coalesced), accumulate in
// double, and add their 8 row partials in a fixed order into one (K, C) partial per row block;
// a second kernel adds the row blocks' partials in index order. No atomics: the sums depend on
// the sizes only (deterministic).
#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace ladder::cuda {
namespace {

using detail::from_float;
using detail::kThreads;
using detail::to_float;

constexpr int kTileChannels = 32, kTileRows = 8;
constexpr int64_t kRowsPerBlock = 256;

void check_dims(const BatchNormDims& d) {
  LADDER_CHECK(d.rows > 0 && d.c > 0, "CUDA batch_norm: bad size ", d.rows, " x ", d.c);
  LADDER_CHECK(d.eps > 0, "CUDA batch_norm: eps must be positive");
  LADDER_CHECK((d.rows + kRowsPerBlock - 1) / kRowsPerBlock < 65536, "CUDA batch_norm: ", d.rows,
               " rows is too many");
}

int64_t row_blocks(const BatchNormDims& d) { return (d.rows + kRowsPerBlock - 1) / kRowsPerBlock; }

// Σx.
template <class T>
struct SumOp {
  static constexpr int K = 1;
  const T* x;
  int c;
  __device__ void operator()(int64_t r, int j, double* v) const { v[0] = to_float(x[r * c + j]); }
};
// Σ(x − sum/count)².
template <class T>
struct CenteredSquareOp {
  static constexpr int K = 1;
  const T* x;
  const float* sum;
  double count;
  int c;
  __device__ void operator()(int64_t r, int j, double* v) const {
    const double centred = double(to_float(x[r * c + j])) - double(sum[j]) / count;
    v[0] = centred * centred;
  }
};
// Σdy, Σdy·x̂.
template <class T>
struct BackwardOp {
  static constexpr int K = 2;
  const T *x, *dy;
  const float *mean, *rstd;
  int c;
  __device__ void operator()(int64_t r, int j, double* v) const {
    const double g = to_float(dy[r * c + j]);
    v[0] = g;
    v[1] = g * (double(to_float(x[r * c + j])) - mean[j]) * rstd[j];
  }
};

// partials (row blocks, K, C).
template <class Op>
__global__ void channel_partials_kernel(int64_t rows, int c, Op op, double* partials) {
  constexpr int K = Op::K;
  __shared__ double tile[K][kTileRows][kTileChannels];
  const int j = blockIdx.x * kTileChannels + threadIdx.x;
  const int64_t first = int64_t(blockIdx.y) * kRowsPerBlock;
  const int64_t last = first + kRowsPerBlock < rows ? first + kRowsPerBlock : rows;
  double acc[K] = {};
  if (j < c)
    for (int64_t r = first + threadIdx.y; r < last; r += kTileRows) {
      double v[K];
      op(r, j, v);
#pragma unroll
      for (int k = 0; k < K; ++k) acc[k] += v[k];
    }
#pragma unroll
  for (int k = 0; k < K; ++k) tile[k][threadIdx.y][threadIdx.x] = acc[k];
  __syncthreads();
  if (threadIdx.y == 0 && j < c) {
#pragma unroll
    for (int k = 0; k < K; ++k) {
      double total = 0;
      for (int t = 0; t < kTileRows; ++t) total += tile[k][t][threadIdx.x];
      partials[(int64_t(blockIdx.y) * K + k) * c + j] = total;
    }
  }
}

// out_k[j] = Σ_blocks partials[b][k][j] (written, rounded to fp32 once); add_k[j] += the same
// when add_k is not null.
template <int K>
__global__ void channel_totals_kernel(int64_t blocks, int c, const double* partials, float* out0, float* out1,
                                      float* add0, float* add1) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= c) return;
  double total[K] = {};
  for (int64_t b = 0; b < blocks; ++b)
#pragma unroll
    for (int k = 0; k < K; ++k) total[k] += partials[(b * K + k) * c + j];
  float* out[2] = {out0, out1};
  float* add[2] = {add0, add1};
#pragma unroll
  for (int k = 0; k < K; ++k) {
    out[k][j] = static_cast<float>(total[k]);
    if (add[k] != nullptr) add[k][j] += static_cast<float>(total[k]);
  }
}

template <class Op>
void channel_reduce(const BatchNormDims& d, Op op, double* scratch, float* out0, float* out1, float* add0,
                    float* add1, cudaStream_t stream) {
  const int64_t blocks = row_blocks(d);
  const dim3 grid((d.c + kTileChannels - 1) / kTileChannels, static_cast<unsigned>(blocks));
  channel_partials_kernel<Op><<<grid, dim3(kTileChannels, kTileRows), 0, stream>>>(d.rows, d.c, op, scratch);
  LADDER_CUDA_CHECK_LAUNCH();
  channel_totals_kernel<Op::K><<<(d.c + kThreads - 1) / kThreads, kThreads, 0, stream>>>(blocks, d.c, scratch, out0,
                                                                                         out1, add0, add1);
  LADDER_CUDA_CHECK_LAUNCH();
}

// mean = sum/count, rstd = 1/√(sq/count + eps), in double, one thread per channel.
__global__ void statistics_kernel(int c, double count, double eps, const float* sum, const float* sq, float* mean,
                                  float* rstd) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= c) return;
  mean[j] = static_cast<float>(double(sum[j]) / count);
  rstd[j] = static_cast<float>(1.0 / sqrt(double(sq[j]) / count + eps));
}

// y = (x − mean)·rstd·γ + β; with `eval`, mean and rstd are the running mean and variance.
template <class T>
__global__ void normalize_kernel(int64_t n, int c, bool eval, float eps, const T* x, const float* mean,
                                 const float* rstd_or_var, const float* gamma, const float* beta, T* y) {
  for (int64_t i = detail::global_thread(); i < n; i += detail::grid_stride()) {
    const int j = static_cast<int>(i % c);
    const float rstd = eval ? rsqrtf(rstd_or_var[j] + eps) : rstd_or_var[j];
    y[i] = from_float<T>((to_float(x[i]) - mean[j]) * rstd * gamma[j] + beta[j]);
  }
}

// dx = γ·rstd·(dy − dsum/count − x̂·dsum_xhat/count).
template <class T>
__global__ void backward_data_kernel(int64_t n, int c, float inv_count, const T* x, const float* mean,
                                     const float* rstd, const float* gamma, const T* dy, const float* dsum,
                                     const float* dsum_xhat, T* dx) {
  for (int64_t i = detail::global_thread(); i < n; i += detail::grid_stride()) {
    const int j = static_cast<int>(i % c);
    const float xhat = (to_float(x[i]) - mean[j]) * rstd[j];
    dx[i] = from_float<T>(gamma[j] * rstd[j] *
                          (to_float(dy[i]) - dsum[j] * inv_count - xhat * dsum_xhat[j] * inv_count));
  }
}

__global__ void update_running_kernel(int c, double count, double momentum, const float* sum, const float* sq,
                                      float* running_mean, float* running_var) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= c) return;
  const double unbiased = count > 1 ? 1.0 / (count - 1) : 0.0;
  running_mean[j] = static_cast<float>((1 - momentum) * running_mean[j] + momentum * double(sum[j]) / count);
  running_var[j] = static_cast<float>((1 - momentum) * running_var[j] + momentum * double(sq[j]) * unbiased);
}

__global__ void reset_running_kernel(int c, float* running_mean, float* running_var) {
  const int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= c) return;
  running_mean[j] = 0.0f;
  running_var[j] = 1.0f;
}

unsigned channel_grid(int c) { return static_cast<unsigned>((c + kThreads - 1) / kThreads); }

}  // namespace

int64_t batch_norm_scratch_doubles(const BatchNormDims& d) {
  check_dims(d);
  return row_blocks(d) * 2 * d.c;
}

template <class T>
void batch_norm_channel_sums(const BatchNormDims& d, const T* x, float* sum, double* scratch, cudaStream_t stream) {
  check_dims(d);
  channel_reduce(d, SumOp<T>{x, d.c}, scratch, sum, nullptr, nullptr, nullptr, stream);
}

template <class T>
void batch_norm_centered_squares(const BatchNormDims& d, double count, const T* x, const float* sum, float* sq,
                                 double* scratch, cudaStream_t stream) {
  check_dims(d);
  LADDER_CHECK(count > 0, "CUDA batch_norm: count must be positive");
  channel_reduce(d, CenteredSquareOp<T>{x, sum, count, d.c}, scratch, sq, nullptr, nullptr, nullptr, stream);
}

template <class T>
void batch_norm_normalize(const BatchNormDims& d, double count, const T* x, const float* sum, const float* sq,
                          const float* gamma, const float* beta, T* y, float* mean, float* rstd,
                          cudaStream_t stream) {
  check_dims(d);
  LADDER_CHECK(count > 0, "CUDA batch_norm: count must be positive");
  statistics_kernel<<<channel_grid(d.c), kThreads, 0, stream>>>(d.c, count, d.eps, sum, sq, mean, rstd);
  LADDER_CUDA_CHECK_LAUNCH();
  const int64_t n = d.rows * d.c;
  normalize_kernel<T><<<detail::grid_for(n), kThreads, 0, stream>>>(n, d.c, false, 0.f, x, mean, rstd, gamma, beta, y);
  LADDER_CUDA_CHECK_LAUNCH();
}

void batch_norm_update_running(int c, double count, double momentum, const float* sum, const float* sq,
                               float* running_mean, float* running_var, cudaStream_t stream) {
  LADDER_CHECK(c > 0 && count > 0 && momentum >= 0 && momentum <= 1, "CUDA batch_norm_update_running: bad arguments");
  update_running_kernel<<<channel_grid(c), kThreads, 0, stream>>>(c, count, momentum, sum, sq, running_mean,
                                                                 running_var);
  LADDER_CUDA_CHECK_LAUNCH();
}

void batch_norm_reset_running(int c, float* running_mean, float* running_var, cudaStream_t stream) {
  LADDER_CHECK(c > 0, "CUDA batch_norm_reset_running: bad size ", c);
  reset_running_kernel<<<channel_grid(c), kThreads, 0, stream>>>(c, running_mean, running_var);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void batch_norm_eval_forward(const BatchNormDims& d, const T* x, const float* running_mean, const float* running_var,
                             const float* gamma, const float* beta, T* y, cudaStream_t stream) {
  check_dims(d);
  const int64_t n = d.rows * d.c;
  normalize_kernel<T><<<detail::grid_for(n), kThreads, 0, stream>>>(n, d.c, true, static_cast<float>(d.eps), x,
                                                                    running_mean, running_var, gamma, beta, y);
  LADDER_CUDA_CHECK_LAUNCH();
}

template <class T>
void batch_norm_backward_reduce(const BatchNormDims& d, const T* x, const float* mean, const float* rstd, const T* dy,
                                float* dsum, float* dsum_xhat, float* dgamma, float* dbeta, double* scratch,
                                cudaStream_t stream) {
  check_dims(d);
  channel_reduce(d, BackwardOp<T>{x, dy, mean, rstd, d.c}, scratch, dsum, dsum_xhat, dbeta, dgamma, stream);
}

template <class T>
void batch_norm_backward_data(const BatchNormDims& d, double count, const T* x, const float* mean, const float* rstd,
                              const float* gamma, const T* dy, const float* dsum, const float* dsum_xhat, T* dx,
                              cudaStream_t stream) {
  check_dims(d);
  LADDER_CHECK(count > 0, "CUDA batch_norm: count must be positive");
  const int64_t n = d.rows * d.c;
  backward_data_kernel<T><<<detail::grid_for(n), kThreads, 0, stream>>>(
      n, d.c, static_cast<float>(1.0 / count), x, mean, rstd, gamma, dy, dsum, dsum_xhat, dx);
  LADDER_CUDA_CHECK_LAUNCH();
}

#define LADDER_INSTANTIATE(T)                                                                                     \
  template void batch_norm_channel_sums<T>(const BatchNormDims&, const T*, float*, double*, cudaStream_t);       \
  template void batch_norm_centered_squares<T>(const BatchNormDims&, double, const T*, const float*, float*,     \
                                               double*, cudaStream_t);                                           \
  template void batch_norm_normalize<T>(const BatchNormDims&, double, const T*, const float*, const float*,      \
                                        const float*, const float*, T*, float*, float*, cudaStream_t);           \
  template void batch_norm_eval_forward<T>(const BatchNormDims&, const T*, const float*, const float*,           \
                                           const float*, const float*, T*, cudaStream_t);                        \
  template void batch_norm_backward_reduce<T>(const BatchNormDims&, const T*, const float*, const float*,        \
                                              const T*, float*, float*, float*, float*, double*, cudaStream_t);  \
  template void batch_norm_backward_data<T>(const BatchNormDims&, double, const T*, const float*, const float*,  \
                                            const float*, const T*, const float*, const float*, T*, cudaStream_t);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(bf16_t)
LADDER_INSTANTIATE(half_t)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cuda
