// Why this file exists: GroupNorm (optionally fused with the SiLU that follows it in every
// residual block), forward and backward, on NHWC activations with fp32 statistics.
//
// Forward:  1. stats: one block per (image, group); each thread sums its share of the
//              group's (HW, C/G) elements in fp32 (shifted sums), then the block merges the
//              (count, mean, M2) triples in a fixed tree → mean, rstd = 1/√(var + eps).
//           2. apply: elementwise over the whole tensor (coalesced, vectorised along C):
//              y = x̂·γ + β, or silu(x̂·γ + β).
// Backward: with du = dy (or dy·silu'(u), u = x̂·γ + β recomputed) and g = du·γ:
//           1. reduce: one block per (image, group) computes per-channel sums
//              Σ_p du·x̂ and Σ_p du into scratch (N, C) tables, and from them the group
//              means mean(g·x̂), mean(g) into scratch (N, G) tables;
//           2. dx = rstd · (g − mean(g) − x̂ · mean(g·x̂)), elementwise;
//           3. dgamma[c] += Σ_n table[n][c], dbeta likewise, one thread per channel, images
//              summed in order. No atomics anywhere: the results are deterministic.
//
// Thread layout of the per-group kernels: the group's cg = C/G channels are spread over
// `cols` = min(cg, threads) consecutive threads and the pixels over `rows` = threads / cols
// rows of threads, so that a warp reads runs of consecutive channels (coalesced within each
// pixel's run of cg channels). Groups wider than the block take several column passes.
#include <algorithm>
#include <initializer_list>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/ops.h"

namespace ladder::cuda {
namespace {

using detail::from_float;
using detail::kThreads;
using detail::Pack;
using detail::to_float;

constexpr int kGroupThreads = 512;

// (count, mean, M2) of a set of values; merged pairwise (Chan et al.).
struct Welford {
  float count = 0, mean = 0, m2 = 0;

  __device__ void merge(const Welford& o) {
    if (o.count == 0) return;
    if (count == 0) {
      *this = o;
      return;
    }
    const float total = count + o.count;
    const float delta = o.mean - mean;
    const float weight = o.count / total;
    mean += delta * weight;
    m2 += o.m2 + delta * delta * count * weight;
    count = total;
  }
};

__device__ Welford warp_merge(Welford w) {
#pragma unroll
  for (int offset = 16; offset > 0; offset >>= 1) {
    Welford o;
    o.count = __shfl_down_sync(0xffffffffu, w.count, offset);
    o.mean = __shfl_down_sync(0xffffffffu, w.mean, offset);
    o.m2 = __shfl_down_sync(0xffffffffu, w.m2, offset);
    w.merge(o);
  }
  return w;
}

// Block-wide merge in a fixed order; the result is valid in thread 0.
__device__ Welford block_merge(Welford w) {
  __shared__ float counts[kGroupThreads / 32], means[kGroupThreads / 32], m2s[kGroupThreads / 32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  w = warp_merge(w);
  if (lane == 0) {
    counts[warp] = w.count;
    means[warp] = w.mean;
    m2s[warp] = w.m2;
  }
  __syncthreads();
  if (warp == 0) {
    Welford v;
    if (lane < kGroupThreads / 32) {
      v.count = counts[lane];
      v.mean = means[lane];
      v.m2 = m2s[lane];
    }
    w = warp_merge(v);
  }
  return w;
}

struct GroupLayout {
  int cols, rows;
};

__host__ __device__ inline GroupLayout group_layout(int cg) {
  const int cols = cg < kGroupThreads ? cg : kGroupThreads;
  return {cols, kGroupThreads / cols};
}

// ---- Forward, pass 1: statistics. grid = N·G blocks of kGroupThreads.
template <class T>
__global__ void __launch_bounds__(kGroupThreads)
    group_norm_stats_kernel(int hw, int c, int cg, int groups, float eps, const T* x,
                            float* mean, float* rstd) {
  const int ng = blockIdx.x;
  const int64_t n = ng / groups;
  const int g = ng % groups;
  const T* xg = x + n * hw * c + int64_t(g) * cg;
  const GroupLayout layout = group_layout(cg);
  const int col = threadIdx.x % layout.cols, row = threadIdx.x / layout.cols;
  // Each thread sums its values shifted by its first value (a sample of the group, so the
  // shifted sums are well conditioned; no division per element), then the threads' triples
  // are merged.
  float shift = 0, s1 = 0, s2 = 0;
  int count = 0;
  if (row < layout.rows && row < hw) {
    shift = to_float(xg[int64_t(row) * c + col]);
    for (int j = col; j < cg; j += layout.cols)
      for (int64_t p = row; p < hw; p += layout.rows) {
        const float d = to_float(xg[p * c + j]) - shift;
        s1 += d;
        s2 += d * d;
        ++count;
      }
  }
  Welford w;
  if (count > 0) {
    const float mean_shifted = s1 / float(count);
    w.count = float(count);
    w.mean = shift + mean_shifted;
    w.m2 = fmaxf(s2 - s1 * mean_shifted, 0.0f);
  }
  w = block_merge(w);
  if (threadIdx.x == 0) {
    const float variance = fmaxf(w.m2 / w.count, 0.0f);  // biased, as PyTorch/MONAI
    mean[ng] = w.mean;
    rstd[ng] = 1.0f / sqrtf(variance + eps);
  }
}

// ---- Forward, pass 2: y = x̂·γ + β (then SiLU). grid (blocks, N); W channels per thread.
template <class T, int W, bool kSilu>
__global__ void group_norm_apply_kernel(int hwc_packs, int c, int cg, int groups, const T* x,
                                        const float* gamma, const float* beta,
                                        const float* mean, const float* rstd, T* y) {
  const int64_t n = blockIdx.y;
  const auto* xs = reinterpret_cast<const Pack<T, W>*>(x + n * int64_t(hwc_packs) * W);
  auto* ys = reinterpret_cast<Pack<T, W>*>(y + n * int64_t(hwc_packs) * W);
  const float* mean_n = mean + n * groups;
  const float* rstd_n = rstd + n * groups;
  const int cp = c / W;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < hwc_packs; i += gridDim.x * blockDim.x) {
    const int c0 = (i % cp) * W;
    const Pack<T, W> a = xs[i];
    Pack<T, W> b;
#pragma unroll
    for (int e = 0; e < W; ++e) {
      const int ch = c0 + e, g = ch / cg;
      float u = (to_float(a.v[e]) - mean_n[g]) * rstd_n[g] * gamma[ch] + beta[ch];
      if (kSilu) u = u * detail::sigmoid(u);
      b.v[e] = from_float<T>(u);
    }
    ys[i] = b;
  }
}

// du = dy, or dy · silu'(u) with u = x̂·γ + β.
template <bool kSilu>
__device__ __forceinline__ float pre_silu_grad(float dy, float xhat, float gamma, float beta) {
  if (!kSilu) return dy;
  const float u = xhat * gamma + beta;
  const float s = detail::sigmoid(u);
  return dy * s * (1.0f + u * (1.0f - s));
}

// ---- Backward, pass 1: per-channel and per-group sums. grid = N·G blocks.
// part_gx, part_g (N, C): Σ_p du·x̂, Σ_p du; group_means (N, G, 2): mean(g·x̂), mean(g).
template <class T, bool kSilu>
__global__ void __launch_bounds__(kGroupThreads)
    group_norm_backward_reduce_kernel(int hw, int c, int cg, int groups, const T* x,
                                      const T* dy, const float* gamma, const float* beta,
                                      const float* mean, const float* rstd, float* part_gx,
                                      float* part_g, float* group_means) {
  __shared__ float sum_gx[kGroupThreads], sum_g[kGroupThreads];
  const int ng = blockIdx.x;
  const int64_t n = ng / groups;
  const int g = ng % groups;
  const int64_t offset = n * hw * c + int64_t(g) * cg;
  const T *xg = x + offset, *dyg = dy + offset;
  const float mu = mean[ng], rs = rstd[ng];
  const GroupLayout layout = group_layout(cg);
  const int t = threadIdx.x, col = t % layout.cols, row = t / layout.cols;
  int rows_pow2 = 1;  // smallest power of two ≥ rows
  while (rows_pow2 < layout.rows) rows_pow2 <<= 1;

  float total_gx = 0, total_g = 0;  // Σ γ·du·x̂, Σ γ·du over the group (thread 0)
  for (int j0 = 0; j0 < cg; j0 += layout.cols) {  // one pass per `cols` channels
    const int j = j0 + col;
    const bool active = row < layout.rows && j < cg;
    float a = 0, b = 0;
    if (active) {
      const float gam = gamma[g * cg + j], bet = beta[g * cg + j];
      for (int64_t p = row; p < hw; p += layout.rows) {
        const float xhat = (to_float(xg[p * c + j]) - mu) * rs;
        const float du = pre_silu_grad<kSilu>(to_float(dyg[p * c + j]), xhat, gam, bet);
        a += du * xhat;
        b += du;
      }
    }
    sum_gx[t] = a;
    sum_g[t] = b;
    __syncthreads();
    // Tree over rows (same column): entry (row, col) lives at row·cols + col.
    for (int s = rows_pow2 / 2; s > 0; s >>= 1) {
      if (row < s && row + s < layout.rows) {
        sum_gx[t] += sum_gx[t + s * layout.cols];
        sum_g[t] += sum_g[t + s * layout.cols];
      }
      __syncthreads();
    }
    if (row == 0 && active) {
      part_gx[n * c + g * cg + j] = sum_gx[col];
      part_g[n * c + g * cg + j] = sum_g[col];
    }
    if (t == 0) {
      const int width = min(layout.cols, cg - j0);
      for (int k = 0; k < width; ++k) {
        const float gam = gamma[g * cg + j0 + k];
        total_gx += gam * sum_gx[k];
        total_g += gam * sum_g[k];
      }
    }
    __syncthreads();  // the shared sums are rewritten by the next pass
  }
  if (t == 0) {
    const float inv_count = 1.0f / (float(hw) * float(cg));
    group_means[2 * ng] = total_gx * inv_count;
    group_means[2 * ng + 1] = total_g * inv_count;
  }
}

// ---- Backward, pass 2: dx. grid (blocks, N); W channels per thread.
template <class T, int W, bool kSilu>
__global__ void group_norm_dx_kernel(int hwc_packs, int c, int cg, int groups, const T* x,
                                     const T* dy, const float* gamma, const float* beta,
                                     const float* mean, const float* rstd,
                                     const float* group_means, T* dx) {
  const int64_t n = blockIdx.y;
  const int64_t base = n * int64_t(hwc_packs) * W;
  const auto* xs = reinterpret_cast<const Pack<T, W>*>(x + base);
  const auto* dys = reinterpret_cast<const Pack<T, W>*>(dy + base);
  auto* dxs = reinterpret_cast<Pack<T, W>*>(dx + base);
  const float* mean_n = mean + n * groups;
  const float* rstd_n = rstd + n * groups;
  const float* means_n = group_means + 2 * n * groups;
  const int cp = c / W;
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < hwc_packs; i += gridDim.x * blockDim.x) {
    const int c0 = (i % cp) * W;
    const Pack<T, W> a = xs[i], d = dys[i];
    Pack<T, W> r;
#pragma unroll
    for (int e = 0; e < W; ++e) {
      const int ch = c0 + e, g = ch / cg;
      const float rs = rstd_n[g];
      const float xhat = (to_float(a.v[e]) - mean_n[g]) * rs;
      const float du = pre_silu_grad<kSilu>(to_float(d.v[e]), xhat, gamma[ch], beta[ch]);
      const float gd = du * gamma[ch];
      r.v[e] = from_float<T>(rs * (gd - means_n[2 * g + 1] - xhat * means_n[2 * g]));
    }
    dxs[i] = r;
  }
}

// ---- Backward, pass 3: parameter gradients, images summed in order.
__global__ void group_norm_param_grad_kernel(int n, int c, const float* part_gx,
                                             const float* part_g, float* dgamma, float* dbeta) {
  const int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  float sg = 0, sb = 0;
  for (int i = 0; i < n; ++i) {
    sg += part_gx[int64_t(i) * c + ch];
    sb += part_g[int64_t(i) * c + ch];
  }
  dgamma[ch] += sg;
  dbeta[ch] += sb;
}

void check_dims(const GroupNormDims& d) {
  LADDER_CHECK(d.n > 0 && d.hw > 0 && d.c > 0 && d.groups > 0, "group_norm: bad size ", d.n,
               "x", d.hw, "x", d.c, " in ", d.groups, " groups");
  LADDER_CHECK(d.c % d.groups == 0, "group_norm: ", d.c, " channels not divisible into ",
               d.groups, " groups");
  LADDER_CHECK(d.eps > 0, "group_norm: eps must be positive");
  // (2^31 − 2^22: the int grid-stride index of the per-image kernels cannot overflow.)
  LADDER_CHECK(int64_t(d.hw) * d.c <= (int64_t(1) << 31) - (int64_t(1) << 22), "group_norm: ",
               d.hw, "x", d.c, " elements per image is too many (about 2^31 at most)");
  LADDER_CHECK(d.n < 65536, "group_norm: batch of ", d.n, " is too large (65535 at most)");
  LADDER_CHECK(int64_t(d.n) * d.groups < (int64_t(1) << 31), "group_norm: too many groups");
}

// Grid for the per-image elementwise kernels: (blocks per image, N).
dim3 image_grid(const GroupNormDims& d, int packs_per_image) {
  // Enough blocks to fill the GPU several times over whatever N is.
  const int64_t wanted = (packs_per_image + kThreads - 1) / kThreads;
  const int64_t cap = std::max<int64_t>(1, 4096 / d.n);
  return dim3(static_cast<unsigned>(std::max<int64_t>(1, std::min(wanted, cap))),
              static_cast<unsigned>(d.n));
}

template <class T>
bool vectorizable(const GroupNormDims& d, std::initializer_list<const void*> pointers) {
  if (d.c % detail::kPackWidth<T> != 0) return false;
  for (const void* p : pointers)
    if (!detail::aligned16(p)) return false;
  return true;
}

}  // namespace

template <class T>
void group_norm_forward(const GroupNormDims& d, bool silu, const T* x, const float* gamma,
                        const float* beta, T* y, float* mean, float* rstd, cudaStream_t stream) {
  check_dims(d);
  const int cg = d.c / d.groups;
  group_norm_stats_kernel<T><<<d.n * d.groups, kGroupThreads, 0, stream>>>(
      d.hw, d.c, cg, d.groups, static_cast<float>(d.eps), x, mean, rstd);
  LADDER_CUDA_CHECK_LAUNCH();

  const int hwc = d.hw * d.c;
  constexpr int V = detail::kPackWidth<T>;
  if (vectorizable<T>(d, {x, y})) {
    const dim3 grid = image_grid(d, hwc / V);
    if (silu)
      group_norm_apply_kernel<T, V, true><<<grid, kThreads, 0, stream>>>(
          hwc / V, d.c, cg, d.groups, x, gamma, beta, mean, rstd, y);
    else
      group_norm_apply_kernel<T, V, false><<<grid, kThreads, 0, stream>>>(
          hwc / V, d.c, cg, d.groups, x, gamma, beta, mean, rstd, y);
  } else {
    const dim3 grid = image_grid(d, hwc);
    if (silu)
      group_norm_apply_kernel<T, 1, true><<<grid, kThreads, 0, stream>>>(
          hwc, d.c, cg, d.groups, x, gamma, beta, mean, rstd, y);
    else
      group_norm_apply_kernel<T, 1, false><<<grid, kThreads, 0, stream>>>(
          hwc, d.c, cg, d.groups, x, gamma, beta, mean, rstd, y);
  }
  LADDER_CUDA_CHECK_LAUNCH();
}

int64_t group_norm_backward_scratch_floats(const GroupNormDims& d) {
  return 2 * int64_t(d.n) * d.c + 2 * int64_t(d.n) * d.groups;
}

template <class T>
void group_norm_backward(const GroupNormDims& d, bool silu, const T* x, const float* gamma,
                         const float* beta, const float* mean, const float* rstd, const T* dy,
                         T* dx, float* dgamma, float* dbeta, float* scratch,
                         cudaStream_t stream) {
  check_dims(d);
  LADDER_CHECK(scratch != nullptr, "group_norm_backward: no scratch");
  const int cg = d.c / d.groups;
  float* part_gx = scratch;                                   // (N, C)
  float* part_g = part_gx + int64_t(d.n) * d.c;               // (N, C)
  float* group_means = part_g + int64_t(d.n) * d.c;           // (N, G, 2)

  if (silu)
    group_norm_backward_reduce_kernel<T, true><<<d.n * d.groups, kGroupThreads, 0, stream>>>(
        d.hw, d.c, cg, d.groups, x, dy, gamma, beta, mean, rstd, part_gx, part_g, group_means);
  else
    group_norm_backward_reduce_kernel<T, false><<<d.n * d.groups, kGroupThreads, 0, stream>>>(
        d.hw, d.c, cg, d.groups, x, dy, gamma, beta, mean, rstd, part_gx, part_g, group_means);
  LADDER_CUDA_CHECK_LAUNCH();

  const int hwc = d.hw * d.c;
  constexpr int V = detail::kPackWidth<T>;
  if (vectorizable<T>(d, {x, dy, dx})) {
    const dim3 grid = image_grid(d, hwc / V);
    if (silu)
      group_norm_dx_kernel<T, V, true><<<grid, kThreads, 0, stream>>>(
          hwc / V, d.c, cg, d.groups, x, dy, gamma, beta, mean, rstd, group_means, dx);
    else
      group_norm_dx_kernel<T, V, false><<<grid, kThreads, 0, stream>>>(
          hwc / V, d.c, cg, d.groups, x, dy, gamma, beta, mean, rstd, group_means, dx);
  } else {
    const dim3 grid = image_grid(d, hwc);
    if (silu)
      group_norm_dx_kernel<T, 1, true><<<grid, kThreads, 0, stream>>>(
          hwc, d.c, cg, d.groups, x, dy, gamma, beta, mean, rstd, group_means, dx);
    else
      group_norm_dx_kernel<T, 1, false><<<grid, kThreads, 0, stream>>>(
          hwc, d.c, cg, d.groups, x, dy, gamma, beta, mean, rstd, group_means, dx);
  }
  LADDER_CUDA_CHECK_LAUNCH();

  group_norm_param_grad_kernel<<<(d.c + kThreads - 1) / kThreads, kThreads, 0, stream>>>(
      d.n, d.c, part_gx, part_g, dgamma, dbeta);
  LADDER_CUDA_CHECK_LAUNCH();
}

#define LADDER_INSTANTIATE(T)                                                                  \
  template void group_norm_forward<T>(const GroupNormDims&, bool, const T*, const float*,      \
                                      const float*, T*, float*, float*, cudaStream_t);         \
  template void group_norm_backward<T>(const GroupNormDims&, bool, const T*, const float*,     \
                                       const float*, const float*, const float*, const T*, T*, \
                                       float*, float*, float*, cudaStream_t);
LADDER_INSTANTIATE(float)
LADDER_INSTANTIATE(bf16_t)
LADDER_INSTANTIATE(half_t)
#undef LADDER_INSTANTIATE

}  // namespace ladder::cuda
