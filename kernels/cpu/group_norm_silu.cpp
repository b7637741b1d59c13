// Why this file exists: the CPU backend's fast GroupNorm, optionally fused with the SiLU that
// follows it in every ResBlock. The reference (kernels/cpu/group_norm.cpp, then silu_*) walks
// one (image, group) at a time over its few channels with a row stride, and the backward with
// SiLU recomputes the whole forward into two extra tensors; this one walks whole pixel rows
// of a block of groups (contiguous, vectorisable), keeps per-channel double sums, applies the
// normalisation and the SiLU in the same pass, and in the backward rebuilds the pre-SiLU value
// per element from the saved mean and rstd (no extra tensor). Statistics are sums in a fixed
// order per channel and then per group, so they do not depend on the thread count or on how
// the blocks are cut. test_group_norm_silu compares it with the reference.
#include <algorithm>
#include <cmath>
#include <vector>

#include "core/check.h"
#include "kernels/cpu/fast_exp.h"
#include "kernels/cpu/image_sums.h"
#include "kernels/cpu/ops.h"

namespace ladder::cpu {
namespace {

// Channels per task: whole groups, at least this many channels (a vector's worth of rows).
constexpr int kBlockChannels = 32;

struct Block {
  int64_t n;
  int g0, g1;  // groups [g0, g1)
};

std::vector<Block> blocks_of(const GroupNormDims& d) {
  const int cg = d.c / d.groups;
  const int per_block = std::max(1, kBlockChannels / cg);
  std::vector<Block> blocks;
  for (int64_t n = 0; n < d.n; ++n)
    for (int g = 0; g < d.groups; g += per_block) blocks.push_back({n, g, std::min(d.groups, g + per_block)});
  return blocks;
}

// One pixel row of the backward's first pass. du = dy·σ'(u)… with u the pre-SiLU value
// rebuilt as the forward made it: u = (x − mean)·a + bias, a = rstd·γ.
inline void silu_gradient_row(int width, const float* __restrict x, const float* __restrict dy,
                              const float* __restrict mean, const float* __restrict a,
                              const float* __restrict bias, float* __restrict du) {
  for (int j = 0; j < width; ++j) {
    const float u = (x[j] - mean[j]) * a[j] + bias[j];
    const float s = fast_sigmoid(u);
    du[j] = dy[j] * (s * (1.0f + u * (1.0f - s)));
  }
}

// The per-channel sums of du·x̂ and du over one pixel row, in double.
inline void add_gradient_sums_row(int width, const float* __restrict x, const float* __restrict du,
                                  const float* __restrict mean, const float* __restrict rstd,
                                  double* __restrict sum_gx, double* __restrict sum_g) {
  for (int j = 0; j < width; ++j) {
    const double xhat = (double(x[j]) - mean[j]) * rstd[j];
    sum_gx[j] += du[j] * xhat;
    sum_g[j] += du[j];
  }
}

}  // namespace

void group_norm_silu_forward(const GroupNormDims& d, bool silu, const float* x, const float* gamma,
                             const float* beta, float* y, float* mean, float* rstd) {
  LADDER_CHECK(d.n > 0 && d.hw > 0 && d.c > 0 && d.groups > 0 && d.c % d.groups == 0 && d.eps > 0,
               "group_norm: bad size");
  const int cg = d.c / d.groups;
  const double count = double(d.hw) * cg;
  const std::vector<Block> blocks = blocks_of(d);
#pragma omp parallel for schedule(static) if (int64_t(d.n) * d.hw * d.c > (int64_t(1) << 15))
  for (size_t b = 0; b < blocks.size(); ++b) {
    const Block& k = blocks[b];
    const int c0 = k.g0 * cg, width = (k.g1 - k.g0) * cg;
    const float* xb = x + k.n * d.hw * d.c + c0;  // (HW, width) with row stride C
    float* yb = y + k.n * d.hw * d.c + c0;
    std::vector<double> sums(static_cast<size_t>(width), 0.0), centred(static_cast<size_t>(width), 0.0);
    std::vector<double> mu(static_cast<size_t>(width));
    for (int64_t p = 0; p < d.hw; ++p)
      for (int j = 0; j < width; ++j) sums[j] += xb[p * d.c + j];
    for (int g = 0; g < k.g1 - k.g0; ++g) {
      double s = 0;
      for (int j = g * cg; j < (g + 1) * cg; ++j) s += sums[j];
      for (int j = g * cg; j < (g + 1) * cg; ++j) mu[j] = s / count;
    }
    for (int64_t p = 0; p < d.hw; ++p)
      for (int j = 0; j < width; ++j) {
        const double v = xb[p * d.c + j] - mu[j];
        centred[j] += v * v;
      }
    std::vector<float> m(static_cast<size_t>(width)), a(static_cast<size_t>(width)), bias(static_cast<size_t>(width));
    for (int g = 0; g < k.g1 - k.g0; ++g) {
      double sq = 0;
      for (int j = g * cg; j < (g + 1) * cg; ++j) sq += centred[j];
      const int64_t t = k.n * d.groups + k.g0 + g;
      mean[t] = float(mu[g * cg]);
      rstd[t] = float(1.0 / std::sqrt(sq / count + d.eps));
      for (int j = g * cg; j < (g + 1) * cg; ++j) {
        m[j] = mean[t];
        a[j] = rstd[t] * gamma[c0 + j];
        bias[j] = beta[c0 + j];
      }
    }
    for (int64_t p = 0; p < d.hw; ++p) {
      const float* row = xb + p * d.c;
      float* out = yb + p * d.c;
      if (silu) {
        for (int j = 0; j < width; ++j) {
          const float u = (row[j] - m[j]) * a[j] + bias[j];
          out[j] = u * fast_sigmoid(u);
        }
      } else {
        for (int j = 0; j < width; ++j) out[j] = (row[j] - m[j]) * a[j] + bias[j];
      }
    }
  }
}

void group_norm_silu_backward(const GroupNormDims& d, bool silu, const float* x, const float* gamma,
                              const float* beta, const float* mean, const float* rstd, const float* dy, float* dx,
                              float* dgamma, float* dbeta) {
  const int cg = d.c / d.groups;
  const double count = double(d.hw) * cg;
  const std::vector<Block> blocks = blocks_of(d);
  std::vector<double> part_gamma(size_t(d.n) * d.c, 0.0), part_beta(size_t(d.n) * d.c, 0.0);
#pragma omp parallel for schedule(static) if (int64_t(d.n) * d.hw * d.c > (int64_t(1) << 15))
  for (size_t b = 0; b < blocks.size(); ++b) {
    const Block& k = blocks[b];
    const int c0 = k.g0 * cg, width = (k.g1 - k.g0) * cg;
    const int64_t offset = k.n * d.hw * d.c + c0;
    const float *xb = x + offset, *dyb = dy + offset;
    float* dxb = dx + offset;
    std::vector<float> m(static_cast<size_t>(width)), rs(static_cast<size_t>(width)), a(static_cast<size_t>(width)),
        bias(static_cast<size_t>(width));
    for (int j = 0; j < width; ++j) {
      const int64_t t = k.n * d.groups + k.g0 + j / cg;
      m[j] = mean[t];
      rs[j] = rstd[t];
      a[j] = rstd[t] * gamma[c0 + j];
      bias[j] = beta[c0 + j];
    }
    // Pass 1: du (dy through the SiLU, from the pre-SiLU value rebuilt as the forward made it)
    // into dx, and the per-channel sums of du and du·x̂.
    double* pg = part_gamma.data() + k.n * d.c + c0;
    double* pb = part_beta.data() + k.n * d.c + c0;
    for (int64_t p = 0; p < d.hw; ++p) {
      const float* row = xb + p * d.c;
      float* du = dxb + p * d.c;
      if (silu) {
        silu_gradient_row(width, row, dyb + p * d.c, m.data(), a.data(), bias.data(), du);
      } else {
        std::copy(dyb + p * d.c, dyb + p * d.c + width, du);
      }
      add_gradient_sums_row(width, row, du, m.data(), rs.data(), pg, pb);
    }
    // Per group: mean(g) and mean(g·x̂) with g = du·γ; then dx = rstd·(g − mean(g) − x̂·mean(g·x̂)).
    std::vector<double> mean_g(static_cast<size_t>(width)), mean_gx(static_cast<size_t>(width));
    for (int g = 0; g < k.g1 - k.g0; ++g) {
      double sg = 0, sgx = 0;
      for (int j = g * cg; j < (g + 1) * cg; ++j) {
        sg += pb[j] * gamma[c0 + j];
        sgx += pg[j] * gamma[c0 + j];
      }
      for (int j = g * cg; j < (g + 1) * cg; ++j) {
        mean_g[j] = sg / count;
        mean_gx[j] = sgx / count;
      }
    }
    for (int64_t p = 0; p < d.hw; ++p) {
      const float* row = xb + p * d.c;
      float* out = dxb + p * d.c;
      for (int j = 0; j < width; ++j) {
        const double xhat = (double(row[j]) - m[j]) * rs[j];
        out[j] = float(rs[j] * (double(out[j]) * gamma[c0 + j] - mean_g[j] - xhat * mean_gx[j]));
      }
    }
  }
  add_image_sums(d.n, d.c, part_gamma, dgamma);
  add_image_sums(d.n, d.c, part_beta, dbeta);
}

}  // namespace ladder::cpu
